"""YOLO 1.1: round trip, Datumaro cross-checks, bad input, detection."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from annota.core.errors import FormatError
from annota.core.formats.model import Item, LabelSpec, Shape
from annota.core.formats.registry import FormatRegistry
from tests.plugins.formats.helpers import dataset, export, items_by_name, load, make_image

FORMAT = "YOLO 1.1"
LABELS = [LabelSpec(name="cat"), LabelSpec(name="dog")]


def _items(tmp_path: Path) -> list[Item]:
    first = make_image(tmp_path / "src" / "frame_0.jpg", 64, 48)
    second = make_image(tmp_path / "src" / "frame_1.png", 80, 60, seed=1)
    return [
        Item(
            name="frame_0.jpg",
            frame=0,
            width=64,
            height=48,
            image=str(first),
            shapes=[
                Shape(type="rectangle", label="cat", points=[1.5, 2.25, 30.0, 40.0]),
                Shape(type="rectangle", label="dog", points=[10.0, 12.0, 20.0, 22.0], rotation=30.0),
                Shape(type="polygon", label="dog", points=[1, 1, 20, 1, 20, 20]),
                Shape(type="rectangle", label="cat", points=[0, 0, 5, 5], outside=True, track_id=4),
            ],
        ),
        Item(name="frame_1.png", frame=1, width=80, height=60, image=str(second)),
    ]


def test_round_trip_keeps_boxes_and_empty_items(formats: FormatRegistry, tmp_path: Path) -> None:
    target = export(
        formats, FORMAT, dataset(_items(tmp_path), LABELS), tmp_path / "out.zip", save_images=True
    )
    names = set(zipfile.ZipFile(target).namelist())
    assert {
        "obj.names",
        "obj.data",
        "train.txt",
        "obj_train_data/frame_0.txt",
        "obj_train_data/frame_1.txt",
    } <= names
    assert "obj_train_data/frame_0.jpg" in names
    obj_data = zipfile.ZipFile(target).read("obj.data").decode()
    assert "train = data/train.txt" in obj_data and "names = data/obj.names" in obj_data

    result = load(formats, FORMAT, target, tmp_path / "work")
    assert [label.name for label in result.labels] == ["cat", "dog"]
    items = items_by_name(result)
    assert set(items) == {"frame_0", "frame_1"}
    first = items["frame_0"]
    assert (first.name, first.width, first.height, first.subset) == ("frame_0.jpg", 64, 48, "train")
    boxes = [(s.label, s.points, s.rotation) for s in first.shapes]
    assert len(boxes) == 2  # the polygon and the outside box are not YOLO boxes
    assert boxes[0][0] == "cat" and boxes[0][1] == pytest.approx([1.5, 2.25, 30.0, 40.0], abs=1e-3)
    # rotation is lost, the unrotated box is kept
    assert boxes[1][0] == "dog" and boxes[1][1] == pytest.approx([10, 12, 20, 22], abs=1e-3)
    assert boxes[1][2] == 0.0
    assert items["frame_1"].shapes == [] and items["frame_1"].image is not None


def test_lines_use_six_decimals(formats: FormatRegistry, tmp_path: Path) -> None:
    target = export(formats, FORMAT, dataset(_items(tmp_path), LABELS), tmp_path / "out")
    lines = (target / "obj_train_data" / "frame_0.txt").read_text().splitlines()
    assert lines[0] == "0 0.246094 0.440104 0.445312 0.786458"
    assert (target / "obj_train_data" / "frame_1.txt").read_text() == ""


def test_export_needs_image_size(formats: FormatRegistry, tmp_path: Path) -> None:
    items = [Item(name="a.jpg", shapes=[Shape(type="rectangle", label="cat", points=[0, 0, 1, 1])])]
    with pytest.raises(FormatError, match="'a.jpg'.*size"):
        export(formats, FORMAT, dataset(items, LABELS), tmp_path / "out.zip")


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _dataset_dir(tmp_path: Path, label_text: str, with_image: bool = True) -> Path:
    root = _write(
        tmp_path / "in",
        {
            "obj.data": "classes = 2\ntrain = data/train.txt\nnames = data/obj.names\nbackup = backup/\n",
            "obj.names": "cat\ndog\n",
            "train.txt": "data/obj_train_data/a.jpg\n",
            "obj_train_data/a.txt": label_text,
        },
    )
    if with_image:
        make_image(root / "obj_train_data" / "a.jpg", 100, 50)
    return root


def _read_all(formats: FormatRegistry, root: Path, tmp_path: Path) -> list[Item]:
    return list(load(formats, FORMAT, root, tmp_path / "work").items())


def test_import_reads_size_from_image(formats: FormatRegistry, tmp_path: Path) -> None:
    root = _dataset_dir(tmp_path, "1 0.5 0.5 0.2 0.4\n")
    (item,) = _read_all(formats, root, tmp_path)
    assert (item.width, item.height) == (100, 50)
    assert item.shapes[0].label == "dog"
    assert item.shapes[0].points == pytest.approx([40, 15, 60, 35])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5 0.5 0.5 0.2 0.2\n", r"obj_train_data/a.txt:1: class index 5"),
        ("0 0.5 0.5 0.2 0.2\n0 0.5 abc 0.2 0.2\n", r"obj_train_data/a.txt:2: 'abc' is not a number"),
        ("0 0.5 0.5 -0.2 0.2\n", r"obj_train_data/a.txt:1: .*negative size"),
        ("0 0.5 0.5 0.2\n", r"obj_train_data/a.txt:1: expected 5 values"),
    ],
)
def test_bad_label_lines(formats: FormatRegistry, tmp_path: Path, text: str, message: str) -> None:
    root = _dataset_dir(tmp_path, text)
    with pytest.raises(FormatError, match=message):
        _read_all(formats, root, tmp_path)


def test_untidy_label_files_import(formats: FormatRegistry, tmp_path: Path) -> None:
    """CRLF line ends, runs of spaces or tabs, blank and trailing lines and zero-size boxes are read
    as CVAT reads them."""
    root = _dataset_dir(tmp_path, "\r\n  1   0.5\t0.5 0.2 0.4  \r\n\r\n0 0.1 0.1 0 0\r\n\r\n   \n")
    for name in ("obj.data", "obj.names", "train.txt"):
        path = root / name
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    (item,) = _read_all(formats, root, tmp_path)
    assert [(s.label, s.points) for s in item.shapes] == [
        ("dog", pytest.approx([40, 15, 60, 35])),
        ("cat", pytest.approx([10, 5, 10, 5])),
    ]


def test_missing_image_size_names_the_item(formats: FormatRegistry, tmp_path: Path) -> None:
    root = _dataset_dir(tmp_path, "0 0.5 0.5 0.2 0.2\n", with_image=False)
    with pytest.raises(FormatError, match="item 'a.jpg'.*size"):
        _read_all(formats, root, tmp_path)


def test_item_without_boxes_needs_no_image(formats: FormatRegistry, tmp_path: Path) -> None:
    root = _dataset_dir(tmp_path, "", with_image=False)
    (item,) = _read_all(formats, root, tmp_path)
    assert item.name == "a.jpg" and item.shapes == [] and item.image is None


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    fmt = formats.find(FORMAT)
    assert fmt is not None and fmt.detect is not None
    assert fmt.detect(_dataset_dir(tmp_path, "")) > 0.5
    other = export(
        formats, "Ultralytics YOLO Detection 1.0", dataset(_items(tmp_path), LABELS), tmp_path / "u"
    )
    assert fmt.detect(other) == 0.0


def test_datumaro_reads_the_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    target = export(formats, FORMAT, dataset(_items(tmp_path), LABELS), tmp_path / "out", save_images=True)
    imported = dm.Dataset.import_from(str(target), "yolo")
    assert [label.name for label in imported.categories()[dm.AnnotationType.label]] == ["cat", "dog"]
    items = {item.id: item for item in imported}
    assert set(items) == {"frame_0", "frame_1"}
    boxes = sorted((b.label, b.x, b.y, b.x + b.w, b.y + b.h) for b in items["frame_0"].annotations)
    assert len(boxes) == 2 and items["frame_1"].annotations == []
    assert boxes[0][1:] == pytest.approx((1.5, 2.25, 30.0, 40.0), abs=1e-3)
    assert boxes[1][1:] == pytest.approx((10, 12, 20, 22), abs=1e-3)


def test_imports_datumaro_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    import numpy as np

    source = dm.Dataset.from_iterable(
        [
            dm.DatasetItem(
                id="x",
                subset="train",
                media=dm.Image.from_numpy(data=np.zeros((40, 60, 3), dtype=np.uint8)),
                annotations=[dm.Bbox(3, 4, 10, 20, label=1, id=1), dm.Bbox(0, 0, 6, 8, label=0, id=2)],
            ),
            dm.DatasetItem(
                id="y", subset="train", media=dm.Image.from_numpy(data=np.zeros((40, 60, 3), np.uint8))
            ),
        ],
        categories=["cat", "dog"],
    )
    source.export(str(tmp_path / "dm"), "yolo", save_media=True)
    items = items_by_name(load(formats, FORMAT, tmp_path / "dm", tmp_path / "work"))
    assert set(items) == {"x", "y"}
    boxes = [(s.label, s.points) for s in items["x"].shapes]
    assert [label for label, _ in boxes] == ["dog", "cat"]
    assert boxes[0][1] == pytest.approx([3, 4, 13, 24], abs=1e-3)
    assert boxes[1][1] == pytest.approx([0, 0, 6, 8], abs=1e-3)
    assert items["y"].shapes == []


def test_paths_outside_the_dataset_are_refused(formats: FormatRegistry, tmp_path: Path) -> None:
    secret = make_image(tmp_path / "secret.jpg", 10, 10)
    root = _dataset_dir(tmp_path, "")
    (root / "train.txt").write_text(f"data/../../{secret.name}\n")
    with pytest.raises(FormatError, match=r"train.txt:1: .*outside the dataset"):
        _read_all(formats, root, tmp_path)
