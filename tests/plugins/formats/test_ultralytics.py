"""The Ultralytics YOLO family: detection, segmentation, oriented boxes, pose, classification, tracks."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from annota.core.errors import FormatError
from annota.core.formats.masks import bitmap_to_cvat, cvat_to_bitmap, polygons_to_bitmap
from annota.core.formats.model import Item, LabelSpec, Shape, Tag
from annota.core.formats.registry import FormatRegistry
from annota.plugins.formats.yolo import parse_data_yaml
from tests.plugins.formats.helpers import dataset, export, items_by_name, load, make_image

DETECTION = "Ultralytics YOLO Detection 1.0"
SEGMENTATION = "Ultralytics YOLO Segmentation 1.0"
ORIENTED = "Ultralytics YOLO Oriented Bounding Boxes 1.0"
POSE = "Ultralytics YOLO Pose 1.0"
CLASSIFICATION = "Ultralytics YOLO Classification 1.0"
TRACK = "Ultralytics YOLO Detection Track 1.0"
LABELS = [LabelSpec(name="cat"), LabelSpec(name="dog")]


def _item(tmp_path: Path, name: str, shapes: list[Shape], *, seed: int = 0, **fields: object) -> Item:
    image = make_image(tmp_path / "src" / name, 64, 48, seed=seed)
    return Item(name=name, width=64, height=48, image=str(image), shapes=shapes, **fields)


def test_detection_round_trip_and_layout(formats: FormatRegistry, tmp_path: Path) -> None:
    items = [
        _item(tmp_path, "a.jpg", [Shape(type="rectangle", label="dog", points=[2, 4, 30, 44])], frame=0),
        _item(tmp_path, "b.jpg", [], frame=1, seed=1),
        _item(
            tmp_path,
            "c.jpg",
            [Shape(type="rectangle", label="cat", points=[1, 1, 9, 9])],
            subset="val",
            seed=2,
        ),
    ]
    target = export(formats, DETECTION, dataset(items, LABELS), tmp_path / "out.zip", save_images=True)
    archive = zipfile.ZipFile(target)
    names = set(archive.namelist())
    assert {"data.yaml", "train.txt", "val.txt", "images/train/a.jpg", "labels/train/a.txt"} <= names
    assert "labels/train/b.txt" in names and "labels/val/c.txt" in names
    assert archive.read("train.txt").decode().splitlines() == ["images/train/a.jpg", "images/train/b.jpg"]
    config = parse_data_yaml(archive.read("data.yaml").decode(), "data.yaml")
    assert config == {"path": ".", "train": "train.txt", "val": "val.txt", "names": {0: "cat", 1: "dog"}}

    result = items_by_name(load(formats, DETECTION, target, tmp_path / "work"))
    assert set(result) == {"a", "b", "c"}
    assert (result["a"].subset, result["c"].subset, result["a"].name) == ("train", "val", "a.jpg")
    assert result["a"].shapes[0].label == "dog"
    assert result["a"].shapes[0].points == pytest.approx([2, 4, 30, 44], abs=1e-3)
    assert result["b"].shapes == []


def test_segmentation_exports_polygons_and_masks(formats: FormatRegistry, tmp_path: Path) -> None:
    bitmap = polygons_to_bitmap([[10, 10, 30, 10, 30, 30, 10, 30]], 64, 48)
    shapes = [
        Shape(type="polygon", label="cat", points=[1, 2, 20, 2, 20, 30, 5, 25]),
        Shape(type="mask", label="dog", points=bitmap_to_cvat(bitmap)),
    ]
    target = export(
        formats, SEGMENTATION, dataset([_item(tmp_path, "a.jpg", shapes)], LABELS), tmp_path / "o.zip"
    )
    lines = zipfile.ZipFile(target).read("labels/train/a.txt").decode().splitlines()
    assert lines[0] == "0 0.015625 0.041667 0.312500 0.041667 0.312500 0.625000 0.078125 0.520833"
    assert lines[1].startswith("1 ")

    make_image(tmp_path / "img" / "images" / "train" / "a.jpg", 64, 48)
    with zipfile.ZipFile(target) as archive:
        archive.extractall(tmp_path / "img")
    (item,) = load(formats, SEGMENTATION, tmp_path / "img", tmp_path / "work").items()
    polygon, from_mask = item.shapes
    assert polygon.type == "polygon" and polygon.points == pytest.approx(shapes[0].points, abs=1e-3)
    # the mask comes back as its contour polygon, covering the same pixels
    redrawn = polygons_to_bitmap([from_mask.points], 64, 48)
    assert from_mask.label == "dog" and (redrawn == cvat_to_bitmap(shapes[1].points, 64, 48)).all()


def test_oriented_boxes_keep_rotation(formats: FormatRegistry, tmp_path: Path) -> None:
    shapes = [
        Shape(type="rectangle", label="cat", points=[10, 10, 30, 20], rotation=30.0),
        Shape(type="rectangle", label="dog", points=[1, 2, 5, 9]),
    ]
    target = export(
        formats,
        ORIENTED,
        dataset([_item(tmp_path, "a.jpg", shapes)], LABELS),
        tmp_path / "o.zip",
        save_images=True,
    )
    line = zipfile.ZipFile(target).read("labels/train/a.txt").decode().splitlines()[1]
    assert line == "1 0.015625 0.041667 0.078125 0.041667 0.078125 0.187500 0.015625 0.187500"
    (item,) = load(formats, ORIENTED, target, tmp_path / "work").items()
    rotated, plain = item.shapes
    assert rotated.points == pytest.approx([10, 10, 30, 20], abs=1e-3)
    assert rotated.rotation == pytest.approx(30.0, abs=1e-3)
    assert plain.points == pytest.approx([1, 2, 5, 9], abs=1e-3) and plain.rotation == pytest.approx(
        0.0, abs=1e-6
    )


POSE_LABELS = [
    LabelSpec(
        name="person",
        type="skeleton",
        sublabels=[LabelSpec(name=n, type="points") for n in ("head", "hand", "foot")],
    ),
    LabelSpec(name="bird", type="skeleton", sublabels=[LabelSpec(name="beak", type="points")]),
    LabelSpec(name="cat"),
]


def _skeleton(label: str, points: dict[str, tuple[float, float, str]]) -> Shape:
    elements = [
        Shape(
            type="points", label=name, points=[x, y], outside=state == "outside", occluded=state == "occluded"
        )
        for name, (x, y, state) in points.items()
    ]
    return Shape(type="skeleton", label=label, points=[], elements=elements)


def test_pose_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    shapes = [
        _skeleton("person", {"head": (10, 5, ""), "hand": (20, 25, "occluded"), "foot": (3, 4, "outside")}),
        _skeleton("bird", {"beak": (40, 30, "")}),
    ]
    target = export(
        formats,
        POSE,
        dataset([_item(tmp_path, "a.jpg", shapes)], POSE_LABELS),
        tmp_path / "o.zip",
        save_images=True,
    )
    archive = zipfile.ZipFile(target)
    config = parse_data_yaml(archive.read("data.yaml").decode(), "data.yaml")
    assert config["kpt_shape"] == [3, 3] and config["names"] == {0: "person", 1: "bird"}
    lines = archive.read("labels/train/a.txt").decode().splitlines()
    # the box spans the visible keypoints; the bird is padded to 3 keypoints
    assert lines[0].startswith(
        "0 0.234375 0.312500 0.156250 0.416667 0.156250 0.104167 2 0.312500 0.520833 1 "
    )
    assert lines[1].endswith("0.000000 0.000000 0 0.000000 0.000000 0")

    result = load(formats, POSE, target, tmp_path / "work", labels=POSE_LABELS)
    assert [label.name for label in result.labels] == ["person", "bird"]
    (item,) = result.items()
    person, bird = item.shapes
    elements = {e.label: e for e in person.elements}
    assert elements["head"].points == pytest.approx([10, 5], abs=1e-3)
    assert elements["hand"].occluded and not elements["hand"].outside
    assert elements["foot"].outside
    assert [e.label for e in bird.elements] == ["beak"]


def test_pose_without_known_labels_numbers_keypoints(formats: FormatRegistry, tmp_path: Path) -> None:
    shapes = [_skeleton("person", {"head": (10, 5, ""), "hand": (20, 25, ""), "foot": (3, 4, "")})]
    target = export(
        formats,
        POSE,
        dataset([_item(tmp_path, "a.jpg", shapes)], POSE_LABELS),
        tmp_path / "o.zip",
        save_images=True,
    )
    result = load(formats, POSE, target, tmp_path / "work")
    assert [s.name for s in result.labels[0].sublabels] == ["1", "2", "3"]
    (item,) = result.items()
    assert [e.points for e in item.shapes[0].elements][2] == pytest.approx([3, 4], abs=1e-3)


def test_classification_with_and_without_images(formats: FormatRegistry, tmp_path: Path) -> None:
    items = [
        _item(tmp_path, "a.jpg", [], tags=[Tag(label="cat")]),
        _item(tmp_path, "b.jpg", [], tags=[Tag(label="dog"), Tag(label="cat")], seed=1),
        _item(tmp_path, "c.jpg", [], subset="val", tags=[Tag(label="dog")], seed=2),
    ]
    with_images = export(
        formats, CLASSIFICATION, dataset(items, LABELS), tmp_path / "i.zip", save_images=True
    )
    assert {"train/cat/a.jpg", "train/dog/b.jpg", "train/cat/b.jpg", "val/dog/c.jpg"} <= set(
        zipfile.ZipFile(with_images).namelist()
    )
    without = export(formats, CLASSIFICATION, dataset(items, LABELS), tmp_path / "n.zip")
    assert not any(name.endswith(".jpg") for name in zipfile.ZipFile(without).namelist())
    for index, target in enumerate((with_images, without)):
        result = items_by_name(load(formats, CLASSIFICATION, target, tmp_path / f"work{index}"))
        assert {name: sorted(t.label for t in item.tags) for name, item in result.items()} == {
            "a": ["cat"],
            "b": ["cat", "dog"],
            "c": ["dog"],
        }
        assert result["c"].subset == "val"
        assert (result["a"].image is not None) == (target == with_images)


def test_detection_track_appends_track_ids(formats: FormatRegistry, tmp_path: Path) -> None:
    shapes = [
        Shape(type="rectangle", label="cat", points=[0, 0, 32, 24], track_id=7),
        Shape(type="rectangle", label="dog", points=[0, 0, 32, 24]),
    ]
    target = export(formats, TRACK, dataset([_item(tmp_path, "a.jpg", shapes)], LABELS), tmp_path / "o.zip")
    lines = zipfile.ZipFile(target).read("labels/train/a.txt").decode().splitlines()
    assert lines == ["0 0.250000 0.250000 0.500000 0.500000 7", "1 0.250000 0.250000 0.500000 0.500000"]
    assert formats.find(TRACK) not in formats.importers()
    with zipfile.ZipFile(target) as archive:
        archive.extractall(tmp_path / "d")
    make_image(tmp_path / "d" / "images" / "train" / "a.jpg", 64, 48)
    (item,) = load(formats, DETECTION, tmp_path / "d", tmp_path / "work").items()
    assert [s.track_id for s in item.shapes] == [7, None]


def test_data_yaml_variants() -> None:
    text = """# comment
path: ../datasets/x  # where
train: images/train
val: [images/val, 'more images']
kpt_shape: [17, 3]
names:
  - person
  - "bi cycle"
  - 'car: red'
"""
    assert parse_data_yaml(text, "data.yaml") == {
        "path": "../datasets/x",
        "train": "images/train",
        "val": ["images/val", "more images"],
        "kpt_shape": [17, 3],
        "names": ["person", "bi cycle", "car: red"],
    }
    assert parse_data_yaml("names: {0: a, 1: 'b c'}\n", "d")["names"] == {0: "a", 1: "b c"}
    with pytest.raises(FormatError, match="data.yaml:2"):
        parse_data_yaml("names:\nbad line\n", "data.yaml")


def _ultralytics_dir(tmp_path: Path, text: str, with_image: bool = True) -> Path:
    root = tmp_path / "in"
    (root / "labels" / "train").mkdir(parents=True)
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nnames:\n  0: cat\n  1: dog\n")
    (root / "labels" / "train" / "a.txt").write_text(text)
    if with_image:
        make_image(root / "images" / "train" / "a.png", 100, 50)
    return root


@pytest.mark.parametrize(
    ("fmt", "text", "message"),
    [
        (DETECTION, "2 0.5 0.5 0.1 0.1\n", r"labels/train/a.txt:1: class index 2"),
        (DETECTION, "0 0.5 0.5 0.1 0.1\n1 0.5 x 0.1 0.1\n", r"labels/train/a.txt:2: 'x' is not a number"),
        (DETECTION, "0 0.5 0.5 0.1 -0.1\n", r"labels/train/a.txt:1: .*negative size"),
        (SEGMENTATION, "0 0.1 0.1\n", r"labels/train/a.txt:1: .*at least 3 points"),
        (ORIENTED, "0 0.1 0.1 0.2 0.2\n", r"labels/train/a.txt:1: expected class x1 y1"),
    ],
)
def test_bad_label_lines(formats: FormatRegistry, tmp_path: Path, fmt: str, text: str, message: str) -> None:
    root = _ultralytics_dir(tmp_path, text)
    with pytest.raises(FormatError, match=message):
        list(load(formats, fmt, root, tmp_path / "work").items())


def test_segmentation_reads_box_lines_as_rectangles(formats: FormatRegistry, tmp_path: Path) -> None:
    """A ``class cx cy w h [track id]`` line among polygons is a box, as Ultralytics and CVAT read
    it; CRLF ends, extra spaces and blank lines are no matter."""
    text = "1 0.5 0.5 0.2 0.4\r\n\r\n0  0.1 0.1 0 0  7\r\n0 0 0 0.5 0 0.5 0.5 3\r\n\r\n"
    root = _ultralytics_dir(tmp_path, text)
    (item,) = load(formats, SEGMENTATION, root, tmp_path / "work").items()
    assert [(s.type, s.label, s.points, s.track_id) for s in item.shapes] == [
        ("rectangle", "dog", pytest.approx([40, 15, 60, 35]), None),
        ("rectangle", "cat", pytest.approx([10, 5, 10, 5]), 7),
        ("polygon", "cat", pytest.approx([0, 0, 50, 0, 50, 25]), 3),
    ]


def test_missing_image_size_names_the_item(formats: FormatRegistry, tmp_path: Path) -> None:
    root = _ultralytics_dir(tmp_path, "0 0.5 0.5 0.1 0.1\n", with_image=False)
    with pytest.raises(FormatError, match=r"item 'a'.*size"):
        list(load(formats, DETECTION, root, tmp_path / "work").items())


def test_import_reads_roboflow_order_and_image_size(formats: FormatRegistry, tmp_path: Path) -> None:
    root = tmp_path / "rf"
    (root / "valid" / "labels").mkdir(parents=True)
    (root / "data.yaml").write_text("names: ['cat', 'dog']\nnc: 2\n")
    (root / "valid" / "labels" / "x.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    make_image(root / "valid" / "images" / "x.png", 40, 20)
    (item,) = load(formats, DETECTION, root, tmp_path / "work").items()
    assert (item.name, item.subset, item.width, item.height) == ("x.png", "valid", 40, 20)
    assert item.shapes[0].label == "dog" and item.shapes[0].points == pytest.approx([10, 5, 30, 15])


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    boxes = [Shape(type="rectangle", label="cat", points=[1, 1, 9, 9])]
    source = dataset([_item(tmp_path, "a.jpg", boxes)], LABELS)
    detection = export(formats, DETECTION, source, tmp_path / "det")
    oriented = export(formats, ORIENTED, source, tmp_path / "obb")
    pose = export(formats, POSE, dataset([], POSE_LABELS), tmp_path / "pose")
    classification = export(
        formats,
        CLASSIFICATION,
        dataset([_item(tmp_path, "b.jpg", [], tags=[Tag(label="cat")])], LABELS),
        tmp_path / "c",
    )
    best = {
        path: formats.detect(path)[0][1].display_name for path in (detection, oriented, pose, classification)
    }
    assert best == {detection: DETECTION, oriented: ORIENTED, pose: POSE, classification: CLASSIFICATION}
    coco_like = tmp_path / "coco"
    make_image(coco_like / "images" / "default" / "a.jpg")
    (coco_like / "annotations").mkdir()
    (coco_like / "annotations" / "instances_default.json").write_text("{}")
    fmt = formats.find(CLASSIFICATION)
    assert fmt is not None and fmt.detect is not None and fmt.detect(coco_like) == 0.0
    yolo = export(formats, "YOLO 1.1", source, tmp_path / "yolo")
    for name in (DETECTION, SEGMENTATION, ORIENTED, POSE, CLASSIFICATION):
        fmt = formats.find(name)
        assert fmt is not None and fmt.detect is not None and fmt.detect(yolo) == 0.0


def test_datumaro_reads_detection_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    items = [
        _item(tmp_path, "a.jpg", [Shape(type="rectangle", label="dog", points=[2, 4, 30, 44])]),
        _item(tmp_path, "b.jpg", [], seed=1),
    ]
    target = export(formats, DETECTION, dataset(items, LABELS), tmp_path / "out", save_images=True)
    imported = dm.Dataset.import_from(str(target), "yolo")
    assert [label.name for label in imported.categories()[dm.AnnotationType.label]] == ["cat", "dog"]
    found = {item.id: item for item in imported}
    assert set(found) == {"a", "b"} and found["b"].annotations == []
    (box,) = found["a"].annotations
    assert box.label == 1 and (box.x, box.y, box.x + box.w, box.y + box.h) == pytest.approx(
        (2, 4, 30, 44), abs=1e-3
    )


def test_imports_datumaro_ultralytics_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")

    def image() -> object:
        return dm.Image.from_numpy(data=np.zeros((40, 60, 3), dtype=np.uint8))

    source = dm.Dataset.from_iterable(
        [
            dm.DatasetItem(
                id="x", subset="train", media=image(), annotations=[dm.Bbox(3, 4, 10, 20, label=1, id=1)]
            ),
            dm.DatasetItem(
                id="y", subset="val", media=image(), annotations=[dm.Bbox(0, 0, 6, 8, label=0, id=2)]
            ),
        ],
        categories=["cat", "dog"],
    )
    source.export(str(tmp_path / "dm"), "yolo_ultralytics", save_media=True)
    result = load(formats, DETECTION, tmp_path / "dm", tmp_path / "work")
    assert [label.name for label in result.labels] == ["cat", "dog"]
    items = items_by_name(result)
    assert set(items) == {"x", "y"} and items["y"].subset == "val"
    assert items["x"].shapes[0].label == "dog"
    assert items["x"].shapes[0].points == pytest.approx([3, 4, 13, 24], abs=1e-3)
    assert items["y"].shapes[0].points == pytest.approx([0, 0, 6, 8], abs=1e-3)
