"""Datumaro 1.0: round trip, the JSON layout, the Datumaro package reading our export and the
reverse, bad input."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from annota.core.errors import FormatError
from annota.core.formats import masks
from annota.core.formats.model import AttributeSpec, Item, LabelSpec, Shape, Tag, Track, TrackShape
from annota.core.formats.registry import FormatRegistry
from tests.plugins.formats.helpers import dataset, export, items_by_name, load, make_image

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

W, H = 64, 48
SVG = (
    '<line x1="1" y1="1" x2="2" y2="2" data-type="edge" data-node-from="1" data-node-to="2"/>'
    '<circle r="1" cx="1" cy="1" data-type="element node" data-node-id="1" data-label-name="head"/>'
    '<circle r="1" cx="2" cy="2" data-type="element node" data-node-id="2" data-label-name="foot"/>'
)
LABELS = [
    LabelSpec(
        name="car",
        attributes=[
            AttributeSpec(name="color", input_type="select", values=["red", "blue"]),
            AttributeSpec(name="speed", input_type="number", mutable=True),
            AttributeSpec(name="parked", input_type="checkbox"),
        ],
    ),
    LabelSpec(name="person"),
    LabelSpec(
        name="body",
        type="skeleton",
        svg=SVG,
        sublabels=[LabelSpec(name="head", type="points"), LabelSpec(name="foot", type="points")],
    ),
]


def _bitmap() -> np.ndarray:
    bitmap = np.zeros((H, W), dtype=bool)
    bitmap[10:20, 5:15] = True
    bitmap[30:35, 40:50] = True
    return bitmap


def _items() -> list[Item]:
    cuboid = [1, 2, 1, 12, 11, 2, 11, 12, 5, 0, 5, 10, 15, 0, 15, 10]
    return [
        Item(
            name="a.jpg",
            frame=0,
            width=W,
            height=H,
            tags=[Tag(label="person", group=1, attributes={"note": "x"})],
            shapes=[
                Shape(
                    type="rectangle",
                    label="car",
                    points=[1.5, 2.25, 11, 22],
                    rotation=30,
                    occluded=True,
                    z_order=2,
                    group=1,
                    attributes={"color": "red", "speed": "2.5", "parked": "true"},
                ),
                Shape(type="polygon", label="person", points=[1, 1, 30, 1, 30, 25, 1, 20]),
                Shape(type="polyline", label="car", points=[0, 0, 5, 5.5]),
                Shape(type="points", label="car", points=[3, 4, 5, 6]),
                Shape(type="ellipse", label="car", points=[20, 20, 30, 15], rotation=10),
                Shape(type="cuboid", label="car", points=cuboid),
                Shape(type="mask", label="car", points=masks.bitmap_to_cvat(_bitmap()), z_order=1),
                Shape(
                    type="skeleton",
                    label="body",
                    points=[],
                    group=4,
                    elements=[
                        Shape(type="points", label="head", points=[10, 10]),
                        Shape(type="points", label="foot", points=[12, 30], outside=True),
                    ],
                ),
            ],
        ),
        Item(name="dir/b.png", frame=1, width=W, height=H, subset="train"),
        Item(name="c.jpg", frame=2, width=W, height=H),
        Item(name="d.jpg", frame=3, width=W, height=H),
    ]


def _tracks() -> list[Track]:
    return [
        Track(
            id=9,
            label="car",
            shapes=[
                TrackShape(frame=0, type="rectangle", points=[0, 0, 10, 10]),
                TrackShape(frame=2, type="rectangle", points=[10, 10, 20, 20]),
                TrackShape(frame=3, type="rectangle", points=[10, 10, 20, 20], outside=True),
            ],
        )
    ]


def test_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    archive = export(formats, "Datumaro 1.0", dataset(_items(), LABELS, _tracks()), tmp_path / "out.zip")
    imported = load(formats, "Datumaro 1.0", archive, tmp_path / "work")

    assert [label.name for label in imported.labels] == ["car", "person", "body"]
    # Datumaro keeps attribute names only
    assert [a.name for a in imported.labels[0].attributes] == ["color", "parked", "speed"]
    body = imported.labels[2]
    assert body.type == "skeleton" and [s.name for s in body.sublabels] == ["head", "foot"]
    assert 'data-node-from="1" data-node-to="2"' in body.svg

    items = items_by_name(imported)
    assert sorted(items) == ["a", "c", "d", "dir/b"]
    assert items["dir/b"].subset == "train" and items["dir/b"].name == "dir/b.png"
    assert [(i.frame, i.width, i.height) for i in (items["a"], items["c"])] == [(0, W, H), (2, W, H)]
    first = items["a"]
    assert first.tags == _items()[0].tags
    plain = [s for s in first.shapes if s.track_id is None]
    expected = _items()[0].shapes
    assert [s.type for s in plain] == [s.type for s in expected]
    for got, want in zip(plain, expected, strict=True):
        assert got.label == want.label
        assert got.points == pytest.approx(want.points, abs=1e-3)
        assert (got.occluded, got.z_order, got.group, got.attributes) == (
            want.occluded,
            want.z_order,
            want.group,
            want.attributes,
        )
        assert got.rotation == pytest.approx(want.rotation)
        assert [(e.label, e.points, e.outside) for e in got.elements] == [
            (e.label, e.points, e.outside) for e in want.elements
        ]
    mask = next(s for s in first.shapes if s.type == "mask")
    assert np.array_equal(masks.cvat_to_bitmap(mask.points, W, H), _bitmap())

    # track shapes carry their track id and keyframe flag; the outside one is left out
    tracked = {
        item.frame: [(s.track_id, s.keyframe, s.points) for s in item.shapes if s.track_id is not None]
        for item in imported.items()
    }
    assert tracked == {
        0: [(9, True, [0, 0, 10, 10])],
        1: [(9, False, [5, 5, 15, 15])],
        2: [(9, True, [10, 10, 20, 20])],
        3: [],
    }


def test_json_layout(formats: FormatRegistry, tmp_path: Path) -> None:
    image = make_image(tmp_path / "src" / "a.jpg", W, H)
    items = _items()
    items[0].image = str(image)
    archive = export(formats, "Datumaro 1.0", dataset(items, LABELS), tmp_path / "out.zip", save_images=True)
    with zipfile.ZipFile(archive) as zipped:
        assert sorted(zipped.namelist()) == [
            "annotations/default.json",
            "annotations/train.json",
            "images/default/a.jpg",
        ]
        document = json.loads(zipped.read("annotations/default.json"))
    assert document["dm_format_version"] == "1.0"
    labels = document["categories"]["label"]["labels"]
    assert [(label["name"], label["parent"]) for label in labels] == [
        ("car", ""),
        ("person", ""),
        ("body", ""),
        ("head", "body"),
        ("foot", "body"),
    ]
    assert document["categories"]["points"]["items"] == [
        {"label_id": 2, "labels": ["head", "foot"], "joints": [[1, 2]], "positions": []}
    ]
    first = document["items"][0]
    assert first["id"] == "a" and first["attr"] == {"frame": 0}
    assert first["image"] == {"path": "a.jpg", "size": [H, W]}
    annotations = first["annotations"]
    assert [a["type"] for a in annotations] == [
        "label", "bbox", "polygon", "polyline", "points", "ellipse", "cuboid_2d", "mask", "skeleton",
    ]  # fmt: skip
    ids = [a["id"] for a in annotations] + [e["id"] for e in annotations[-1]["elements"]]
    assert len(set(ids)) == len(ids)
    box = annotations[1]
    assert box["bbox"] == [1.5, 2.25, 9.5, 19.75]
    assert box["attributes"] == {
        "color": "red",
        "speed": 2.5,
        "parked": True,
        "occluded": True,
        "rotation": 30.0,
    }
    assert annotations[5]["points"] == [10, 15, 30, 25]
    assert annotations[6]["points"][:2] == [[1, 2], [1, 12]]
    assert [e["visibility"] for e in annotations[-1]["elements"]] == [[2], [0]]
    import pycocotools.mask as mask_utils

    rle = annotations[7]["rle"]
    decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    assert np.array_equal(decoded.astype(bool), _bitmap())


def test_datumaro_reads_the_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    items = [
        Item(
            name=f"{name}.jpg",
            frame=index,
            width=W,
            height=H,
            tags=[Tag(label="person")],
            shapes=[
                Shape(type="rectangle", label="car", points=[1.25, 2.5, 11, 22 + index]),
                Shape(type="polygon", label="person", points=[1, 1, 30, 1, 30, 25]),
                Shape(type="mask", label="car", points=masks.bitmap_to_cvat(_bitmap())),
            ],
        )
        for index, name in enumerate(["a", "b"])
    ]
    target = export(formats, "Datumaro 1.0", dataset(items, LABELS[:2]), tmp_path / "out")
    imported = dm.Dataset.import_from(str(target), "datumaro")
    assert [label.name for label in imported.categories()[dm.AnnotationType.label]] == ["car", "person"]
    assert len(imported) == 2
    for item in items:
        got = imported.get(Path(item.name).stem, "default")
        assert len(got.annotations) == 4
        (box,) = [a for a in got.annotations if a.type == dm.AnnotationType.bbox]
        assert [box.x, box.y, box.x + box.w, box.y + box.h] == pytest.approx(item.shapes[0].points, abs=1e-3)
        (mask,) = [a for a in got.annotations if a.type == dm.AnnotationType.mask]
        assert np.array_equal(mask.image.astype(bool), _bitmap())


def test_datumaro_export_imports(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    from datumaro.components.media import Image

    bitmap = _bitmap()
    source = dm.Dataset.from_iterable(
        [
            dm.DatasetItem(
                id="a",
                subset="train",
                media=Image.from_numpy(np.zeros((H, W, 3), dtype=np.uint8)),
                attributes={"frame": 0},
                annotations=[
                    dm.Bbox(1.5, 2, 10, 20, label=0, id=1, group=2, z_order=3, attributes={"occluded": True}),
                    dm.Polygon([1, 1, 30, 1, 30, 25], label=1, id=2),
                    dm.Mask(bitmap.astype(np.uint8), label=0, id=3),
                    dm.Points([4, 5, 6, 7], label=1, id=4),
                    dm.Label(1, id=5),
                ],
            ),
            dm.DatasetItem(
                id="b",
                subset="val",
                media=Image.from_numpy(np.zeros((H, W, 3), dtype=np.uint8)),
                annotations=[dm.Bbox(0, 0, 5, 5, label=1, id=6)],
            ),
        ],
        categories=["car", "person"],
        media_type=Image,
    )
    source.export(str(tmp_path / "dm"), "datumaro", save_media=True)
    imported = load(formats, "Datumaro 1.0", tmp_path / "dm", tmp_path / "work")
    assert [label.name for label in imported.labels] == ["car", "person"]
    items = items_by_name(imported)
    assert sorted(items) == ["a", "b"]
    first = items["a"]
    assert (first.subset, first.frame, first.width, first.height) == ("train", 0, W, H)
    assert first.image is not None and Path(first.image).is_file()
    assert len(first.tags) == 1 and len(first.shapes) == 4
    box = first.shapes[0]
    assert box.points == pytest.approx([1.5, 2, 11.5, 22], abs=1e-3)
    assert (box.occluded, box.group, box.z_order) == (True, 2, 3)
    mask = next(s for s in first.shapes if s.type == "mask")
    assert np.array_equal(masks.cvat_to_bitmap(mask.points, W, H), bitmap)
    assert items["b"].subset == "val"
    assert items["b"].shapes[0].points == pytest.approx([0, 0, 5, 5])


def _document(annotations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "dm_format_version": "1.0",
        "categories": {
            "label": {
                "labels": [
                    {"name": "car", "parent": "", "attributes": []},
                    {"name": "body", "parent": "", "attributes": []},
                    {"name": "head", "parent": "body", "attributes": []},
                ],
                "attributes": [],
            }
        },
        "items": [{"id": "ok", "annotations": []}, {"id": "img1", "annotations": annotations}],
    }


def _load_all(formats: FormatRegistry, root: Path, work: Path) -> None:
    list(load(formats, "Datumaro 1.0", root, work).items())


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        ({"type": "bbox", "label_id": 7, "bbox": [0, 0, 1, 1]}, "unknown label_id 7"),
        ({"type": "bbox", "label_id": 0, "bbox": [0, 0, -1, 1]}, "the bbox has a negative size (-1 x 1)"),
        ({"type": "polygon", "label_id": 0, "points": [0, 0, 1, 1]}, "a polygon needs at least 3 points"),
        ({"type": "polygon", "label_id": 0, "points": []}, "a polygon needs at least 3 points"),
        ({"type": "polyline", "label_id": 0, "points": [0, 0, 1]}, "a polyline needs at least 2 points"),
        ({"type": "polyline", "label_id": 7, "points": [0, 0]}, "unknown label_id 7"),
        ({"type": "bbox", "label_id": 2, "bbox": [0, 0, 1, 1]}, "is a point of skeleton 'body'"),
        ({"type": "bbox", "label_id": 0, "bbox": [0, "x", 1, 1]}, "bbox must be a list of numbers"),
        ({"type": "caption", "label_id": 0}, "unsupported annotation type 'caption'"),
        ({"type": "mask", "label_id": 0, "rle": {"counts": "!!", "size": [2, 2]}}, "bad mask rle"),
        (
            {
                "type": "skeleton",
                "label_id": 1,
                "elements": [{"type": "points", "label_id": 0, "points": [1, 1]}],
            },
            "label_id 0 ('car') is not a skeleton point",
        ),
    ],
)
def test_bad_annotations(
    formats: FormatRegistry, tmp_path: Path, annotation: dict[str, Any], expected: str
) -> None:
    root = tmp_path / "ds"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "default.json").write_text(json.dumps(_document([{"id": 1, **annotation}])))
    with pytest.raises(FormatError) as error:
        _load_all(formats, root, tmp_path / "work")
    message = str(error.value)
    assert message.startswith("annotations/default.json: /items/1/annotations/0")
    assert "item 'img1': annotation 0: " in message
    assert expected in message


def test_flat_boxes_import_and_empty_lines_are_left_out(formats: FormatRegistry, tmp_path: Path) -> None:
    """A bbox of zero width or height is a flat box, as Datumaro reads it; a polyline of fewer than
    2 points and points without any draw nothing and are left out (Datumaro takes them silently)."""
    annotations = [
        {"id": 1, "type": "bbox", "label_id": 0, "bbox": [1, 2, 0, 3]},
        {"id": 2, "type": "bbox", "label_id": 0, "bbox": [4, 4, 0, 0]},
        {"id": 3, "type": "polyline", "label_id": 0, "points": [5, 5]},
        {"id": 4, "type": "polyline", "label_id": 0, "points": []},
        {"id": 5, "type": "points", "label_id": 0, "points": []},
        {"id": 6, "type": "polyline", "label_id": 0, "points": [0, 0, 2, 2]},
    ]
    root = tmp_path / "ds"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "default.json").write_text(json.dumps(_document(annotations)))
    items = {item.name: item for item in load(formats, "Datumaro 1.0", root, tmp_path / "work").items()}
    assert [(s.type, s.points) for s in items["img1"].shapes] == [
        ("rectangle", [1, 2, 1, 5]),
        ("rectangle", [4, 4, 4, 4]),
        ("polyline", [0, 0, 2, 2]),
    ]


def test_malformed_json_names_line_and_column(formats: FormatRegistry, tmp_path: Path) -> None:
    path = tmp_path / "default.json"
    path.write_text('{\n  "categories": {},\n  "items": [\n    {"id": "a",, }\n  ]\n}\n')
    with pytest.raises(FormatError) as error:
        _load_all(formats, path, tmp_path / "work")
    assert (error.value.file, error.value.line, error.value.column) == ("default.json", 4, 16)
    assert "default.json:4:16: malformed JSON" in str(error.value)


def test_missing_annotation_file(formats: FormatRegistry, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match="no Datumaro annotation file"):
        load(formats, "Datumaro 1.0", tmp_path / "empty", tmp_path / "work")


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    fmt = formats.get("Datumaro 1.0", direction="import")
    assert fmt.detect is not None
    target = export(formats, "Datumaro 1.0", dataset(_items(), LABELS), tmp_path / "out")
    assert fmt.detect(target) == 1.0
    coco = tmp_path / "coco" / "annotations"
    coco.mkdir(parents=True)
    (coco / "instances_default.json").write_text(
        json.dumps({"images": [], "annotations": [], "categories": []})
    )
    assert fmt.detect(tmp_path / "coco") == 0.0
    cvat = tmp_path / "cvat"
    cvat.mkdir()
    (cvat / "annotations.xml").write_text("<annotations><version>1.1</version></annotations>")
    assert fmt.detect(cvat) == 0.0
    assert formats.find("datumaro") is fmt


def test_conv_mask_to_poly(formats: FormatRegistry, tmp_path: Path) -> None:
    mask = Shape(type="mask", label="car", points=masks.bitmap_to_cvat(_bitmap()), group=2)
    items = [Item(name="a.jpg", frame=0, width=W, height=H, shapes=[mask])]
    target = export(formats, "Datumaro 1.0", dataset(items, LABELS), tmp_path / "out")
    (item,) = load(formats, "Datumaro 1.0", target, tmp_path / "work", conv_mask_to_poly=True).items()
    assert [(s.type, s.group) for s in item.shapes] == [("polygon", 2), ("polygon", 2)]
    assert np.array_equal(masks.polygons_to_bitmap([s.points for s in item.shapes], W, H), _bitmap())


def test_flags_written_as_strings(formats: FormatRegistry, tmp_path: Path) -> None:
    path = tmp_path / "default.json"
    flags = {"occluded": "false", "track_id": "4", "keyframe": "0", "rotation": "370", "size": 3}
    annotation = {"id": 1, "type": "bbox", "label_id": 0, "bbox": [0, 0, 2, 2], "attributes": flags}
    path.write_text(json.dumps(_document([annotation])))
    (_, item) = load(formats, "Datumaro 1.0", path, tmp_path / "work").items()
    (box,) = item.shapes
    assert (box.occluded, box.track_id, box.keyframe, box.rotation) == (False, 4, False, 10)
    assert box.attributes == {"size": "3"}
