"""Cityscapes 1.0: round trip, Cityscapes' own files, Datumaro cross-checks, bad input, detection."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annota.core.errors import FormatError
from annota.core.formats import masks
from annota.core.formats.model import Item, LabelSpec, Shape
from annota.core.formats.registry import FormatRegistry
from tests.plugins.formats.helpers import (
    assert_detected,
    block,
    dataset,
    export,
    items_by_name,
    load,
    make_image,
)

CITYSCAPES = "Cityscapes 1.0"
LABELS = [LabelSpec(name="car", color="#ff0000"), LabelSpec(name="road", color="#00ff00")]


def _bitmap(shape: Shape) -> np.ndarray:
    return masks.cvat_to_bitmap(shape.points, 20, 10)


def _items(tmp_path: Path) -> list[Item]:
    road = Shape(type="mask", label="road", points=masks.bitmap_to_cvat(block(0, 6, 20, 10)))
    crowd = Shape(type="rectangle", label="car", points=[0, 0, 3, 3])
    car = Shape(
        type="polygon", label="car", points=[10, 0, 14, 0, 14, 4, 10, 4], attributes={"is_crowd": "false"}
    )
    part = Shape(
        type="rectangle", label="car", points=[15, 0, 16, 1], group=7, attributes={"is_crowd": "false"}
    )
    rest = Shape(type="rectangle", label="car", points=[18, 0, 19, 1], group=7)
    return [
        Item(
            name="city/a.png",
            width=20,
            height=10,
            image=str(make_image(tmp_path / "src" / "a.png", 20, 10)),
            shapes=[road, crowd, car, part, rest],
        ),
        Item(name="b.jpg", subset="val", width=20, height=10),
    ]


def test_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    source = dataset(_items(tmp_path), LABELS)
    target = export(formats, CITYSCAPES, source, tmp_path / "out.zip", save_images=True)
    archive = zipfile.ZipFile(target)
    assert set(archive.namelist()) == {
        "label_colors.txt",
        "leftImg8bit/default/city/a_leftImg8bit.png",
        "gtFine/default/city/a_gtFine_instanceIds.png",
        "gtFine/default/city/a_gtFine_labelIds.png",
        "gtFine/default/city/a_gtFine_color.png",
    }
    assert archive.read("label_colors.txt").decode() == "0 0 0 background\n255 0 0 car\n0 255 0 road\n"
    instances = np.asarray(
        Image.open(io.BytesIO(archive.read("gtFine/default/city/a_gtFine_instanceIds.png")))
    )
    assert sorted(np.unique(instances).tolist()) == [0, 1, 2, 1001, 1002]
    assert instances[0, 15] == instances[0, 18] == 1002
    label_ids = np.asarray(Image.open(io.BytesIO(archive.read("gtFine/default/city/a_gtFine_labelIds.png"))))
    assert sorted(np.unique(label_ids).tolist()) == [0, 1, 2]

    result = load(formats, CITYSCAPES, target, tmp_path / "work")
    assert [(label.name, label.color) for label in result.labels] == [("car", "#ff0000"), ("road", "#00ff00")]
    items = items_by_name(result)
    assert list(items) == ["city/a"]  # b has neither an image nor a map
    first = items["city/a"]
    assert (first.name, first.width, first.height) == ("city/a.png", 20, 10)
    found = [(s.label, s.attributes, int(_bitmap(s).sum())) for s in first.shapes]
    assert found == [
        ("car", {}, 16),
        ("road", {}, 80),
        ("car", {"is_crowd": "false"}, 25),
        ("car", {"is_crowd": "false"}, 8),
    ]
    polygons = items_by_name(load(formats, CITYSCAPES, target, tmp_path / "w2", conv_mask_to_poly=True))
    shapes = polygons["city/a"].shapes
    assert [s.type for s in shapes] == ["polygon"] * 5
    # the instance in two pieces: two polygons sharing a group
    assert shapes[3].group == shapes[4].group != 0


def test_reads_cityscapes_files(formats: FormatRegistry, tmp_path: Path) -> None:
    """Cityscapes' own layout without label_colors.txt: its 35 classes, instances as id * 1000 + n."""
    root = tmp_path / "in"
    make_image(root / "leftImg8bit" / "train" / "bonn" / "bonn_000000_000019_leftImg8bit.png", 4, 3)
    values = np.zeros((3, 4), dtype=np.uint16)
    values[0] = 7  # road
    values[1, :2] = 26001  # car instance 1
    values[1, 2:] = 26002
    values[2] = 1  # egovehicle
    target = root / "gtFine" / "train" / "bonn" / "bonn_000000_000019_gtFine_instanceIds.png"
    target.parent.mkdir(parents=True)
    Image.fromarray(values).save(target)
    make_image(root / "leftImg8bit" / "train" / "bonn" / "bonn_000000_000020_leftImg8bit.png", 4, 3)
    fmt = formats.find(CITYSCAPES)
    assert fmt is not None and fmt.detect is not None and fmt.detect(root) > 0.5
    result = load(formats, CITYSCAPES, root, tmp_path / "work")
    assert len(result.labels) == 34 and result.labels[0].name == "egovehicle"
    first, second = list(result.items())
    assert (first.name, first.subset, first.width) == ("bonn/bonn_000000_000019.png", "train", 4)
    assert [(s.label, s.attributes) for s in first.shapes] == [
        ("egovehicle", {}),
        ("road", {}),
        ("car", {"is_crowd": "false"}),
        ("car", {"is_crowd": "false"}),
    ]
    assert (second.name, second.shapes) == ("bonn/bonn_000000_000020.png", [])


def test_bad_files(formats: FormatRegistry, tmp_path: Path) -> None:
    root = tmp_path / "in"
    target = root / "gtFine" / "s" / "x_gtFine_instanceIds.png"
    target.parent.mkdir(parents=True)
    Image.fromarray(np.full((2, 2), 5, dtype=np.uint8)).save(target)
    (root / "label_colors.txt").write_text("0 0 0 background\n1 2 car\n")
    with pytest.raises(FormatError, match=r"label_colors.txt:2: expected 'r g b name'"):
        load(formats, CITYSCAPES, root, tmp_path / "w1")
    (root / "label_colors.txt").write_text("0 0 0 background\n1 2 3 car\n")
    with pytest.raises(FormatError, match=r"gtFine/s/x_gtFine_instanceIds.png: annotation 5: class id 5"):
        list(load(formats, CITYSCAPES, root, tmp_path / "w2").items())
    Image.fromarray(np.zeros((2, 2, 3), dtype=np.uint8)).save(target)
    with pytest.raises(
        FormatError, match=r"x_gtFine_instanceIds.png: the instance PNG is in RGB, a single channel"
    ):
        list(load(formats, CITYSCAPES, root, tmp_path / "w3").items())


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    exported = export(formats, CITYSCAPES, dataset(_items(tmp_path), LABELS), tmp_path / "out")
    assert_detected(formats, CITYSCAPES, exported, tmp_path / "src")


def test_datumaro_reads_the_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    items = _items(tmp_path)
    # Datumaro 1.13 reads each class's pixels (values equal to the class id): crowd regions
    items[0].shapes = items[0].shapes[:2]
    exported = export(formats, CITYSCAPES, dataset(items, LABELS), tmp_path / "out", save_images=True)
    imported = dm.Dataset.import_from(str(exported), "cityscapes")
    names = [label.name for label in imported.categories()[dm.AnnotationType.label]]
    assert names == ["background", "car", "road"]
    (item,) = list(imported)
    assert (item.id, item.subset, item.media.data.shape[:2]) == ("city/a", "default", (10, 20))
    found = {names[a.label]: a.image for a in item.annotations}
    assert found["road"].tolist() == block(0, 6, 20, 10).tolist()
    assert found["car"].tolist() == block(0, 0, 4, 4).tolist()


def test_imports_datumaro_exports(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    image = dm.Image.from_numpy(data=np.zeros((10, 20, 3), dtype=np.uint8))
    source = dm.Dataset.from_iterable(
        [
            dm.DatasetItem(
                id="c/a",
                subset="train",
                media=image,
                annotations=[
                    dm.Mask(image=block(0, 0, 5, 5), label=1),
                    dm.Mask(image=block(10, 5, 20, 10), label=0),
                ],
            ),
        ],
        categories=["car", "road"],
    )
    source.export(str(tmp_path / "dm"), "cityscapes", save_media=True)
    result = load(formats, CITYSCAPES, tmp_path / "dm", tmp_path / "work")
    assert [label.name for label in result.labels] == ["car", "road"]
    a = items_by_name(result)["c/a"]
    assert (a.subset, a.name, a.width) == ("train", "c/a.png", 20)
    found = {s.label: _bitmap(s) for s in a.shapes}
    assert found["road"].tolist() == block(0, 0, 5, 5).tolist()
    assert found["car"].tolist() == block(10, 5, 20, 10).tolist()
