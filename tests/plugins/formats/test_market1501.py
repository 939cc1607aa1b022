"""Market-1501 1.0: round trips, the dataset's own layout, Datumaro cross-checks, bad input, detection."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from annota.core.errors import FormatError
from annota.core.formats.model import Item, LabelSpec, Tag
from annota.core.formats.registry import FormatRegistry
from tests.plugins.formats.helpers import dataset, export, items_by_name, load, make_image

FORMAT = "Market-1501 1.0"
LABELS = [LabelSpec(name="market-1501")]


def _tag(**attributes: str) -> Tag:
    return Tag(label="market-1501", attributes=attributes)


def _items(tmp_path: Path) -> list[Item]:
    def image(name: str, seed: int) -> str:
        return str(make_image(tmp_path / "src" / name, 16, 32, seed=seed))

    return [
        Item(name="0001_c2s3_000100_01.jpg", image=image("p.jpg", 0), width=16, height=32),
        Item(name="a.jpg", image=image("a.jpg", 1), tags=[_tag(person_id="0002", camera_id="0")]),
        Item(name="b.jpg", image=image("b.jpg", 2), tags=[_tag(person_id="0002", camera_id="0")]),
        Item(
            name="c.png",
            subset="test",
            image=image("c.png", 3),
            tags=[
                _tag(person_id="7.0", camera_id="4", track_id="2", frame_id="5", bbox_id="3", query="true")
            ],
        ),
        Item(name="plain.jpg", image=image("plain.jpg", 4)),
    ]


def test_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    target = export(
        formats, FORMAT, dataset(_items(tmp_path), LABELS), tmp_path / "out.zip", save_images=True
    )
    archive = zipfile.ZipFile(target)
    assert archive.read("images_default.txt").decode().splitlines() == [
        "bounding_box_default/0001_c2s3_000100_01.jpg",
        "bounding_box_default/0002_c1s1_000000_00.jpg",
        "bounding_box_default/0002_c1s1_000001_00.jpg",
        "bounding_box_default/plain.jpg",
    ]
    assert archive.read("images_test.txt").decode() == "query/7_c5s2_000005_03.png\n"
    assert "query/7_c5s2_000005_03.png" in archive.namelist()
    result = load(formats, FORMAT, target, tmp_path / "work")
    assert [label.name for label in result.labels] == ["market-1501"]
    items = items_by_name(result)
    assert set(items) == {
        "0001_c2s3_000100_01",
        "0002_c1s1_000000_00",
        "0002_c1s1_000001_00",
        "plain",
        "7_c5s2_000005_03",
    }
    first = items["0001_c2s3_000100_01"]
    assert (first.subset, first.width, first.height) == ("default", 16, 32)
    assert [t.attributes for t in first.tags] == [
        {
            "person_id": "0001",
            "camera_id": "1",
            "track_id": "3",
            "frame_id": "100",
            "bbox_id": "1",
            "query": "false",
        }
    ]
    query = items["7_c5s2_000005_03"]
    assert query.subset == "test" and query.name == "7_c5s2_000005_03.png"
    assert query.tags[0].attributes["query"] == "true" and query.tags[0].attributes["camera_id"] == "4"
    assert items["plain"].tags == []


def test_reads_directories_without_lists(formats: FormatRegistry, tmp_path: Path) -> None:
    root = tmp_path / "in"
    make_image(root / "bounding_box_train" / "0002_c1s1_000451_03.jpg", 8, 16)
    make_image(root / "query" / "-1_c3s2_000001_00.jpg", 8, 16)
    (root / "bounding_box_train" / "Thumbs.db").write_text("x")
    fmt = formats.find(FORMAT)
    assert fmt is not None and fmt.detect is not None and fmt.detect(root) > 0.5
    items = list(load(formats, FORMAT, root, tmp_path / "work").items())
    assert [(i.name, i.subset, i.tags[0].attributes["person_id"]) for i in items] == [
        ("0002_c1s1_000451_03.jpg", "train", "0002"),
        ("-1_c3s2_000001_00.jpg", "query", "-1"),
    ]


def test_bad_input(formats: FormatRegistry, tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    (root / "images_train.txt").write_text("bounding_box_train/a.jpg\n../../etc/passwd\n")
    with pytest.raises(FormatError, match=r"images_train.txt:2: '../../etc/passwd' is outside the dataset"):
        list(load(formats, FORMAT, root, tmp_path / "work").items())
    bad = [Item(name="a.jpg", tags=[_tag(person_id="x")])]
    with pytest.raises(FormatError, match=r"item 'a.jpg': attribute 'person_id' value 'x' is not a number"):
        export(formats, FORMAT, dataset(bad, LABELS), tmp_path / "out")


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    fmt = formats.find(FORMAT)
    assert fmt is not None and fmt.detect is not None
    source = dataset(_items(tmp_path), LABELS)
    assert fmt.detect(export(formats, FORMAT, source, tmp_path / "market")) > 0.5
    assert fmt.detect(export(formats, "ImageNet 1.0", source, tmp_path / "imagenet")) == 0.0
    assert formats.detect(tmp_path / "market")[0][1] is fmt


def test_datumaro_reads_the_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    target = export(formats, FORMAT, dataset(_items(tmp_path), LABELS), tmp_path / "out", save_images=True)
    imported = dm.Dataset.import_from(str(target), "market1501")
    items = {(item.subset, item.id): item for item in imported}
    assert set(items) == {
        ("default", "0001_c2s3_000100_01"),
        ("default", "0002_c1s1_000000_00"),
        ("default", "0002_c1s1_000001_00"),
        ("default", "plain"),
        ("test", "7_c5s2_000005_03"),
        # Datumaro reads query/ as a subset of its own besides the list naming its image
        ("query", "7_c5s2_000005_03"),
    }
    query = items[("query", "7_c5s2_000005_03")]
    assert query.attributes == {
        "person_id": "7", "camera_id": 4, "track_id": 2, "frame_id": 5, "bbox_id": 3, "query": True
    }  # fmt: skip
    assert query.media.data.shape == (32, 16, 3)


def test_imports_datumaro_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    image = dm.Image.from_numpy(data=np.zeros((32, 16, 3), dtype=np.uint8))
    source = dm.Dataset.from_iterable(
        [
            dm.DatasetItem(id="0001_c2s3_000111_00", subset="train", media=image, attributes={"query": True}),
            dm.DatasetItem(
                id="x",
                subset="train",
                media=image,
                attributes={"person_id": "0005", "camera_id": 1, "track_id": 1, "frame_id": 7, "bbox_id": 2},
            ),
        ]
    )
    source.export(str(tmp_path / "dm"), "market1501", save_media=True)
    items = items_by_name(load(formats, FORMAT, tmp_path / "dm", tmp_path / "work"))
    assert set(items) == {"0001_c2s3_000111_00", "0005_c2s1_000007_02"}
    first = items["0001_c2s3_000111_00"]
    assert (first.subset, first.width, first.tags[0].attributes["query"]) == ("train", 16, "true")
    second = items["0005_c2s1_000007_02"].tags[0].attributes
    assert (second["person_id"], second["camera_id"], second["frame_id"], second["bbox_id"]) == (
        "0005",
        "1",
        "7",
        "2",
    )
