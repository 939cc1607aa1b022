"""ImageNet 1.0: both layouts, Datumaro cross-checks, bad input, detection."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from annota.core.errors import FormatError
from annota.core.formats.model import Item, LabelSpec, Tag
from annota.core.formats.registry import FormatRegistry
from tests.plugins.formats.helpers import dataset, export, items_by_name, load, make_image

FORMAT = "ImageNet 1.0"
LABELS = [LabelSpec(name="cat"), LabelSpec(name="dog"), LabelSpec(name="bird")]


def _items(tmp_path: Path) -> list[Item]:
    def item(name: str, tags: list[str], seed: int) -> Item:
        image = make_image(tmp_path / "src" / name, 32, 24, seed=seed)
        return Item(name=name, width=32, height=24, image=str(image), tags=[Tag(label=t) for t in tags])

    return [item("a.jpg", ["cat"], 0), item("b.png", ["dog", "cat"], 1), item("c d.jpg", [], 2)]


def _tags(items: dict[str, Item]) -> dict[str, list[str]]:
    return {name: sorted(tag.label for tag in item.tags) for name, item in items.items()}


def test_round_trip_with_images(formats: FormatRegistry, tmp_path: Path) -> None:
    target = export(
        formats, FORMAT, dataset(_items(tmp_path), LABELS), tmp_path / "out.zip", save_images=True
    )
    assert set(zipfile.ZipFile(target).namelist()) == {
        "cat/a.jpg",
        "cat/b.png",
        "dog/b.png",
        "no_label/c d.jpg",
    }
    result = load(formats, FORMAT, target, tmp_path / "work")
    assert [label.name for label in result.labels] == ["cat", "dog"]
    items = items_by_name(result)
    assert _tags(items) == {"a": ["cat"], "b": ["cat", "dog"], "c d": []}
    assert (items["b"].name, items["b"].width, items["b"].height) == ("b.png", 32, 24)


def test_round_trip_without_images(formats: FormatRegistry, tmp_path: Path) -> None:
    target = export(formats, FORMAT, dataset(_items(tmp_path), LABELS), tmp_path / "out.zip")
    archive = zipfile.ZipFile(target)
    assert set(archive.namelist()) == {"default.txt", "synsets.txt"}
    assert archive.read("synsets.txt").decode() == "cat\ndog\nbird\n"
    assert archive.read("default.txt").decode().splitlines() == ["a.jpg 0", "b.png 1 0", '"c d".jpg']
    result = load(formats, FORMAT, target, tmp_path / "work")
    assert [label.name for label in result.labels] == ["cat", "dog", "bird"]
    items = items_by_name(result)
    assert _tags(items) == {"a": ["cat"], "b": ["cat", "dog"], "c d": []}
    assert items["c d"].name == "c d.jpg" and items["a"].image is None


def test_untidy_lists_import(formats: FormatRegistry, tmp_path: Path) -> None:
    """CRLF ends, runs of spaces or tabs and blank lines are read as Datumaro reads them."""
    root = tmp_path / "in"
    root.mkdir()
    (root / "synsets.txt").write_bytes(b"cat\r\ndog\r\n\r\n")
    (root / "train.txt").write_bytes(b"\r\na.jpg   1\t0 \r\n\r\nb.jpg\r\n  \r\n")
    result = load(formats, FORMAT, root, tmp_path / "work")
    assert [label.name for label in result.labels] == ["cat", "dog"]
    assert [(item.name, [tag.label for tag in item.tags]) for item in result.items()] == [
        ("a.jpg", ["dog", "cat"]),
        ("b.jpg", []),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [("a.jpg 0\nb.jpg 5\n", r"train.txt:2: label index 5"), ("a.jpg x\n", r"train.txt:1: label index 'x'")],
)
def test_bad_lists(formats: FormatRegistry, tmp_path: Path, text: str, message: str) -> None:
    root = tmp_path / "in"
    root.mkdir()
    (root / "synsets.txt").write_text("cat\ndog\n")
    (root / "train.txt").write_text(text)
    with pytest.raises(FormatError, match=message):
        list(load(formats, FORMAT, root, tmp_path / "work").items())


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    fmt = formats.find(FORMAT)
    assert fmt is not None and fmt.detect is not None
    source = dataset(_items(tmp_path), LABELS)
    assert fmt.detect(export(formats, FORMAT, source, tmp_path / "lists")) > 0.5
    assert fmt.detect(export(formats, FORMAT, source, tmp_path / "dirs", save_images=True)) > 0
    assert fmt.detect(export(formats, "MOT 1.1", source, tmp_path / "mot")) == 0.0


def test_datumaro_reads_the_exports(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    items = _items(tmp_path)[:1] + [
        Item(
            name="e.jpg",
            width=32,
            height=24,
            image=str(make_image(tmp_path / "e.jpg", 32, 24)),
            tags=[Tag(label="dog")],
        )
    ]
    directories = export(formats, FORMAT, dataset(items, LABELS), tmp_path / "dirs", save_images=True)
    imported = dm.Dataset.import_from(str(directories), "imagenet")
    names = [label.name for label in imported.categories()[dm.AnnotationType.label]]
    assert sorted((item.id, names[item.annotations[0].label]) for item in imported) == [
        ("cat:a", "cat"),
        ("dog:e", "dog"),
    ]
    lists = export(formats, FORMAT, dataset(items, LABELS), tmp_path / "lists")
    imported = dm.Dataset.import_from(str(lists), "imagenet_txt")
    names = [label.name for label in imported.categories()[dm.AnnotationType.label]]
    assert names == ["cat", "dog", "bird"]
    assert sorted((item.id, [names[a.label] for a in item.annotations]) for item in imported) == [
        ("a", ["cat"]),
        ("e", ["dog"]),
    ]


def test_imports_datumaro_exports(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    source = dm.Dataset.from_iterable(
        [
            dm.DatasetItem(
                id=name,
                subset="train",
                media=dm.Image.from_numpy(data=np.zeros((24, 32, 3), dtype=np.uint8)),
                annotations=[dm.Label(label) for label in labels],
            )
            for name, labels in (("x", [1]), ("y", [0, 1]), ("z", []))
        ],
        categories=["cat", "dog"],
    )
    source.export(str(tmp_path / "dirs"), "imagenet", save_media=True)
    result = items_by_name(load(formats, FORMAT, tmp_path / "dirs", tmp_path / "w1"))
    assert _tags(result) == {"x": ["dog"], "y": ["cat", "dog"], "z": []}
    source.export(str(tmp_path / "lists"), "imagenet_txt", save_media=True)
    result = items_by_name(load(formats, FORMAT, tmp_path / "lists", tmp_path / "w2"))
    assert _tags(result) == {"x": ["dog"], "y": ["cat", "dog"], "z": []}
    assert result["x"].subset == "train" and result["x"].width == 32
