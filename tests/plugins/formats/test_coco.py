"""COCO 1.0 and COCO Keypoints 1.0: round trips, pycocotools and Datumaro cross-checks, bad input."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from annota.core.errors import FormatError
from annota.core.formats import masks
from annota.core.formats.model import AttributeSpec, Item, LabelSpec, Shape, Track, TrackShape
from annota.core.formats.registry import FormatRegistry
from tests.plugins.formats.helpers import dataset, export, items_by_name, load, make_image

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

W, H = 64, 48
SVG = (
    '<line x1="1" y1="1" x2="2" y2="2" data-type="edge" data-node-from="1" data-node-to="2"/>'
    '<line x1="1" y1="1" x2="2" y2="2" data-type="edge" data-node-from="2" data-node-to="3"/>'
    '<circle r="1" cx="1" cy="1" data-type="element node" data-element-id="1" data-node-id="1" '
    'data-label-name="head"/>'
    '<circle r="1" cx="1" cy="1" data-type="element node" data-element-id="2" data-node-id="2" '
    'data-label-name="hip"/>'
    '<circle r="1" cx="1" cy="1" data-type="element node" data-element-id="3" data-node-id="3" '
    'data-label-name="foot"/>'
)
LABELS = [
    LabelSpec(
        name="car", attributes=[AttributeSpec(name="color", input_type="select", values=["red", "blue"])]
    ),
    LabelSpec(name="person"),
]
SKELETON_LABELS = [
    LabelSpec(
        name="body",
        type="skeleton",
        sublabels=[LabelSpec(name=n, type="points") for n in ("head", "hip", "foot")],
        svg=SVG,
    )
]


def _bitmap() -> np.ndarray:
    bitmap = np.zeros((H, W), dtype=bool)
    bitmap[10:20, 5:15] = True
    bitmap[30:35, 40:50] = True
    return bitmap


def _items() -> list[Item]:
    return [
        Item(
            name="a.jpg",
            frame=0,
            width=W,
            height=H,
            shapes=[
                Shape(
                    type="rectangle",
                    label="car",
                    points=[1.5, 2, 11, 22],
                    rotation=30,
                    occluded=True,
                    attributes={"color": "red"},
                ),
                Shape(type="polygon", label="person", points=[1, 1, 30, 1, 30, 25, 1, 20]),
                Shape(type="mask", label="car", points=masks.bitmap_to_cvat(_bitmap())),
                Shape(type="polyline", label="car", points=[0, 0, 5, 5]),
            ],
        ),
        Item(name="dir/b.png", frame=1, width=W, height=H),
        Item(name="c.jpg", frame=2, width=W, height=H, subset="train"),
    ]


def _tracks() -> list[Track]:
    return [
        Track(
            id=7,
            label="person",
            shapes=[
                TrackShape(frame=0, type="rectangle", points=[0, 0, 10, 10], attributes={}),
                TrackShape(frame=1, type="rectangle", points=[2, 2, 12, 12], outside=True),
            ],
        )
    ]


def _skeleton(points: list[tuple[float, float, bool, bool]]) -> Shape:
    return Shape(
        type="skeleton",
        label="body",
        points=[],
        elements=[
            Shape(type="points", label=name, points=[x, y], outside=outside, occluded=occluded)
            for name, (x, y, outside, occluded) in zip(("head", "hip", "foot"), points, strict=True)
        ],
    )


def _json(path: Path, name: str = "annotations/instances_default.json") -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((path / name).read_text())
    return loaded


def test_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    make_image(tmp_path / "src" / "a.jpg")
    items = _items()
    items[0].image = str(tmp_path / "src" / "a.jpg")
    out = export(
        formats, "COCO 1.0", dataset(items, LABELS, _tracks()), tmp_path / "out.zip", save_images=True
    )
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
    assert {"annotations/instances_default.json", "annotations/instances_train.json"} <= names
    assert "images/default/a.jpg" in names

    back = load(formats, "COCO 1.0", out, tmp_path / "work", labels=LABELS)
    assert [label.name for label in back.labels] == ["car", "person"]
    assert back.labels[0].attributes == LABELS[0].attributes
    got = items_by_name(back)
    assert set(got) == {"a", "dir/b", "c"}
    a = got["a"]
    assert (a.name, a.width, a.height, a.subset, a.frame) == ("a.jpg", W, H, "default", 0)
    assert a.image is not None and Path(a.image).is_file()
    assert got["c"].subset == "train"
    by_type = {(s.type, s.track_id): s for s in a.shapes}
    assert set(by_type) == {("rectangle", None), ("polygon", None), ("mask", None), ("rectangle", 7)}
    box = by_type["rectangle", None]
    assert box.points == pytest.approx([1.5, 2, 11, 22], abs=1e-3)
    assert box.rotation == pytest.approx(30)
    assert box.occluded and box.attributes == {"color": "red"}
    assert by_type["polygon", None].points == pytest.approx([1, 1, 30, 1, 30, 25, 1, 20])
    assert np.array_equal(masks.cvat_to_bitmap(by_type["mask", None].points, W, H), _bitmap())
    # the track is visible on frame 0 only; on frame 1 it is outside
    (track,) = back.tracks()
    assert track.id == 7 and [(s.frame, s.outside) for s in track.shapes] == [(0, False), (1, True)]
    assert [s.outside for s in got["dir/b"].shapes] == [True]


def test_written_json_follows_coco(formats: FormatRegistry, tmp_path: Path) -> None:
    out = export(formats, "COCO 1.0", dataset(_items(), LABELS, _tracks()), tmp_path / "out")
    data = _json(out)
    assert data["categories"] == [
        {"id": 1, "name": "car", "supercategory": ""},
        {"id": 2, "name": "person", "supercategory": ""},
    ]
    assert [image["file_name"] for image in data["images"]] == ["a.jpg", "dir/b.png"]
    assert data["images"][0] == {
        "id": 1,
        "width": W,
        "height": H,
        "file_name": "a.jpg",
        "license": 0,
        "flickr_url": "",
        "coco_url": "",
        "date_captured": 0,
    }
    rectangle, polygon, mask, tracked = data["annotations"]
    assert rectangle["bbox"] == [1.5, 2, 9.5, 20] and rectangle["segmentation"] == []
    assert rectangle["attributes"] == {"color": "red", "occluded": True, "rotation": 30}
    assert polygon["iscrowd"] == 0 and polygon["area"] == pytest.approx(29 * 24 - 29 * 5 / 2)
    assert mask["iscrowd"] == 1 and isinstance(mask["segmentation"]["counts"], str)
    assert mask["bbox"] == [5, 10, 45, 25] and mask["area"] == _bitmap().sum()
    assert tracked["attributes"]["track_id"] == 7 and tracked["attributes"]["keyframe"] is True
    assert len({a["id"] for a in data["annotations"]}) == 4
    assert _json(out, "annotations/instances_train.json")["annotations"] == []


def test_pycocotools_reads_the_export(formats: FormatRegistry, tmp_path: Path) -> None:
    coco_api = pytest.importorskip("pycocotools.coco")
    out = export(formats, "COCO 1.0", dataset(_items(), LABELS), tmp_path / "out")
    coco = coco_api.COCO(str(out / "annotations/instances_default.json"))
    assert sorted(coco.getCatIds()) == [1, 2]
    expected_polygon = masks.polygons_to_bitmap([[1, 1, 30, 1, 30, 25, 1, 20]], W, H)
    checked = 0
    for annotation in coco.loadAnns(coco.getAnnIds()):
        if not annotation["segmentation"]:
            continue
        bitmap = coco.annToMask(annotation).astype(bool)
        if annotation["iscrowd"]:
            assert np.array_equal(bitmap, _bitmap())
        else:
            # two rasterisers: they agree but for edge pixels
            assert (bitmap ^ expected_polygon).sum() < 0.1 * expected_polygon.sum()
        checked += 1
    assert checked == 2


def test_keypoints_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    items = [
        Item(
            name="p.jpg",
            frame=0,
            width=W,
            height=H,
            shapes=[
                _skeleton([(10, 5, False, False), (12, 20, False, True), (0, 0, True, False)]),
                Shape(type="rectangle", label="body", points=[0, 0, 1, 1]),
            ],
        )
    ]
    out = export(formats, "COCO Keypoints 1.0", dataset(items, SKELETON_LABELS), tmp_path / "out")
    data = _json(out, "annotations/person_keypoints_default.json")
    assert data["categories"][0]["keypoints"] == ["head", "hip", "foot"]
    assert data["categories"][0]["skeleton"] == [[1, 2], [2, 3]]
    (annotation,) = data["annotations"]
    assert annotation["keypoints"] == [10, 5, 2, 12, 20, 1, 0, 0, 0]
    assert annotation["num_keypoints"] == 2 and annotation["bbox"] == [10, 5, 2, 15]

    back = load(formats, "coco_keypoints", out, tmp_path / "work")
    (label,) = back.labels
    assert label.type == "skeleton" and [s.name for s in label.sublabels] == ["head", "hip", "foot"]
    assert 'data-node-from="1" data-node-to="2"' in label.svg
    assert 'data-node-from="2" data-node-to="3"' in label.svg
    (item,) = back.items()
    (skeleton,) = item.shapes
    elements = {e.label: e for e in skeleton.elements}
    assert elements["head"].points == [10, 5] and not elements["head"].occluded
    assert elements["hip"].occluded and elements["foot"].outside


def test_skeleton_track_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    def keyframe(frame: int, x: float, outside: bool = False) -> TrackShape:
        return TrackShape(frame=frame, type="points", points=[x, 10], outside=outside)

    track = Track(
        id=3,
        label="body",
        shapes=[
            TrackShape(frame=0, type="skeleton", points=[]),
            TrackShape(frame=2, type="skeleton", points=[]),
            TrackShape(frame=3, type="skeleton", points=[], outside=True),
        ],
        elements=[
            Track(id=1, label="head", shapes=[keyframe(0, 10), keyframe(2, 30)]),
            Track(id=2, label="hip", shapes=[keyframe(0, 5), keyframe(1, 5, outside=True)]),
            Track(id=3, label="foot", shapes=[keyframe(0, 1), keyframe(2, 3)]),
        ],
    )
    items = [Item(name=f"{n}.jpg", frame=n, width=W, height=H) for n in range(4)]
    out = export(formats, "COCO Keypoints 1.0", dataset(items, SKELETON_LABELS, [track]), tmp_path / "out")
    back = load(formats, "COCO Keypoints 1.0", out, tmp_path / "work")
    (imported,) = back.tracks()
    assert imported.id == 3 and [e.label for e in imported.elements] == ["head", "hip", "foot"]
    frames = {item.frame: item for item in back.items()}
    head_x = [
        next(e for e in frames[n].shapes[0].elements if e.label == "head").points[0]
        if frames[n].shapes
        else None
        for n in range(4)
    ]
    # interpolated on frame 1, gone after the last exported frame
    assert head_x[:3] == pytest.approx([10, 20, 30])
    assert [s.outside for s in frames[3].shapes] == [True]
    hip_visible = [
        not next(e for e in frames[n].shapes[0].elements if e.label == "hip").outside for n in range(3)
    ]
    assert hip_visible == [True, False, False]


def test_multi_polygon_and_rle_import(formats: FormatRegistry, tmp_path: Path) -> None:
    bitmap = _bitmap()
    document = {
        "images": [{"id": 3, "file_name": "x.jpg", "width": W, "height": H}],
        "categories": [{"id": 5, "name": "thing"}],
        "annotations": [
            {"id": 1, "image_id": 3, "category_id": 5, "bbox": [0, 0, 1, 1],
             "attributes": {"occluded": "false"},
             "segmentation": [[0, 0, 4, 0, 4, 4], [10, 10, 14, 10, 14, 14]]},
            {"id": 2, "image_id": 3, "category_id": 5, "iscrowd": 1,
             "segmentation": {"size": [H, W], "counts": masks.bitmap_to_coco_counts(bitmap)}},
        ],
    }  # fmt: skip
    (tmp_path / "in.json").write_text(json.dumps(document))
    (item,) = load(formats, "COCO 1.0", tmp_path / "in.json", tmp_path / "w1").items()
    first, second, mask = item.shapes
    assert first.type == second.type == "polygon" and first.group == second.group != 0
    assert not first.occluded and first.attributes == {}
    assert mask.type == "mask" and np.array_equal(masks.cvat_to_bitmap(mask.points, W, H), bitmap)

    (item,) = load(formats, "COCO 1.0", tmp_path / "in.json", tmp_path / "w2", conv_mask_to_poly=True).items()
    polygons = [s for s in item.shapes[2:]]
    assert len(polygons) == 2 and all(p.type == "polygon" for p in polygons)
    assert polygons[0].group == polygons[1].group != first.group
    drawn = masks.polygons_to_bitmap([p.points for p in polygons], W, H)
    assert (drawn ^ bitmap).sum() < 0.25 * bitmap.sum()


def test_degenerate_segmentations_fall_back_to_boxes(formats: FormatRegistry, tmp_path: Path) -> None:
    """CVAT's own files hold ``"segmentation": [[]]`` for boxes; empty parts and parts of fewer than
    3 points are no polygons, and an object without any other part is its box (or nothing)."""
    document = {
        "images": [{"id": 1, "file_name": "x.jpg", "width": W, "height": H}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[]], "bbox": [1, 2, 3, 4]},
            {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [], "bbox": [5, 5, 0, 0]},
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2],
             "segmentation": [[0, 0, 4, 0], [0, 0, 4, 0, 4, 4], []]},
            {"id": 4, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 2, 2]]},
            {"id": 5, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 2, 2]], "bbox": [1, 1, 1, 1]},
        ],
    }  # fmt: skip
    (tmp_path / "in.json").write_text(json.dumps(document))
    (item,) = load(formats, "COCO 1.0", tmp_path / "in.json", tmp_path / "work").items()
    assert [(s.type, s.points, s.group) for s in item.shapes] == [
        ("rectangle", [1, 2, 4, 6], 0),
        ("rectangle", [5, 5, 5, 5], 0),
        ("polygon", [0, 0, 4, 0, 4, 4], 0),
        ("rectangle", [1, 1, 2, 2], 0),
    ]


def _bad(annotation: dict[str, Any]) -> dict[str, Any]:
    return {
        "images": [{"id": 1, "file_name": "x.jpg", "width": W, "height": H}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]}, annotation],
    }


def _ann(category_id: Any = 1, image_id: int = 1, **fields: Any) -> dict[str, Any]:
    return {"image_id": image_id, "category_id": category_id, **fields}


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (_ann(bbox=[0, 0, -2, 3]), "/annotations/1/bbox: annotation 1: bbox has a negative width"),
        (_ann(9, bbox=[0, 0, 2, 3]), "/annotations/1/category_id: annotation 1: unknown category_id 9"),
        (_ann(image_id=4, bbox=[0, 0, 2, 3]), "/annotations/1/image_id: annotation 1: unknown image_id 4"),
        (
            _ann(segmentation=[[0, 0, 1, 1, 2]]),
            "/annotations/1/segmentation/0: annotation 1: polygon 0 has an odd number of coordinates",
        ),
        (
            _ann(segmentation={"size": [H, W], "counts": [5, 3]}),
            "/annotations/1/segmentation: annotation 1: malformed RLE",
        ),
        (_ann(segmentation={"size": [H, W], "counts": "\u00ff"}), "annotation 1: malformed RLE"),
        (
            _ann("car", bbox=[0, 0, 2, 3]),
            "/annotations/1/category_id: annotation 1: Expected `int`, got `str`",
        ),
        (
            _ann(bbox=[0, 0, 2, 3], attributes={"rotation": "left"}),
            "/annotations/1/attributes: annotation 1: the rotation and track_id attributes must be numbers",
        ),
        (_ann(bbox=[0, 0, 2]), "/annotations/1/bbox: annotation 1: bbox has 3 values, expected 4"),
        (_ann(), "/annotations/1: annotation 1: the annotation has neither segmentation, keypoints nor bbox"),
    ],
)
def test_bad_annotations(
    formats: FormatRegistry, tmp_path: Path, annotation: dict[str, Any], expected: str
) -> None:
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations/instances_default.json").write_text(json.dumps(_bad(annotation)))
    with pytest.raises(FormatError) as caught:
        list(load(formats, "COCO 1.0", tmp_path, tmp_path / "work").items())
    assert str(caught.value).startswith("annotations/instances_default.json: ")
    assert expected in str(caught.value)


def test_archive_with_a_top_folder(formats: FormatRegistry, tmp_path: Path) -> None:
    items = _items()[:1]
    items[0].image = str(make_image(tmp_path / "src" / "a.jpg", W, H))
    export(formats, "COCO 1.0", dataset(items, LABELS), tmp_path / "nested" / "export", save_images=True)
    archive = tmp_path / "nested.zip"
    with zipfile.ZipFile(archive, "w") as target:
        for path in (tmp_path / "nested").rglob("*"):
            target.write(path, path.relative_to(tmp_path / "nested").as_posix())
    (item,) = load(formats, "COCO 1.0", archive, tmp_path / "work").items()
    assert item.name == "a.jpg" and len(item.shapes) == 3
    assert item.image is not None and Path(item.image).read_bytes() == (tmp_path / "src/a.jpg").read_bytes()


def test_malformed_json_names_line_and_column(formats: FormatRegistry, tmp_path: Path) -> None:
    (tmp_path / "instances_default.json").write_text('{"images": [],\n  "annotations": [1 2]}')
    with pytest.raises(FormatError) as caught:
        load(formats, "COCO 1.0", tmp_path, tmp_path / "work")
    assert caught.value.file == "instances_default.json"
    assert (caught.value.line, caught.value.column) == (2, 21)
    assert "instances_default.json:2:21: JSON is malformed" in str(caught.value)


def test_missing_annotation_file(formats: FormatRegistry, tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("nothing")
    with pytest.raises(FormatError, match="no annotations/instances_<subset>.json"):
        load(formats, "COCO 1.0", tmp_path, tmp_path / "work")


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    instances = export(formats, "COCO 1.0", dataset(_items(), LABELS), tmp_path / "instances")
    keypoints = export(formats, "COCO Keypoints 1.0", dataset([], SKELETON_LABELS), tmp_path / "keypoints")
    coco = formats.get("COCO 1.0", direction="import")
    coco_kp = formats.get("COCO Keypoints 1.0", direction="import")
    assert coco.detect is not None and coco_kp.detect is not None
    assert coco.detect(instances) == 1.0 and coco_kp.detect(instances) == 0.0
    assert coco_kp.detect(keypoints) == 1.0 and coco.detect(keypoints) == 0.0
    other = tmp_path / "other"
    other.mkdir()
    (other / "annotations.json").write_text('{"items": [], "categories": {}}')
    assert coco.detect(other) == 0.0 and coco_kp.detect(other) == 0.0
    single = tmp_path / "single"
    single.mkdir()
    (single / "mine.json").write_text('{"images": [], "annotations": [], "categories": []}')
    assert coco.detect(single) > 0.5


def test_skeleton_edges_by_node_position() -> None:
    from annota.plugins.formats.coco import skeleton_edges

    label = LabelSpec(
        name="s",
        type="skeleton",
        sublabels=[LabelSpec(name="a"), LabelSpec(name="b")],
        svg='<line data-type="edge" data-node-from="2" data-node-to="1"/>'
        '<circle data-type="element node" data-node-id="1" data-label-id="41"/>'
        '<circle data-type="element node" data-node-id="2" data-label-id="42"/>',
    )
    assert skeleton_edges(label) == [[2, 1]]


# --- Datumaro ----------------------------------------------------------------------------------


def test_datumaro_reads_the_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    items = _items()
    items[0].shapes[0].rotation = 0
    for number, item in enumerate(items):
        item.image = str(make_image(tmp_path / "src" / item.name, W, H, seed=number))
    # Datumaro insists on an images directory
    out = export(formats, "COCO 1.0", dataset(items, LABELS), tmp_path / "out", save_images=True)
    imported = dm.Dataset.import_from(str(out), "coco_instances")
    labels = [c.name for c in imported.categories()[dm.AnnotationType.label]]
    assert labels == ["car", "person"]
    assert len(imported) == 3
    item = imported.get("a", "default")
    # Datumaro adds the bbox of every annotation, in the annotation's group
    by_id: dict[int, dict[str, Any]] = {}
    for ann in item.annotations:
        by_id.setdefault(ann.id, {})[ann.type.name] = ann
    assert len(by_id) == 3
    kinds = sorted((sorted(anns), labels[next(iter(anns.values())).label]) for anns in by_id.values())
    assert kinds == [(["bbox"], "car"), (["bbox", "mask"], "car"), (["bbox", "polygon"], "person")]
    boxes = sorted(anns["bbox"].get_bbox() for anns in by_id.values())
    assert boxes[0] == pytest.approx([1, 1, 29, 24], abs=1e-3)
    assert boxes[1] == pytest.approx([1.5, 2, 9.5, 20], abs=1e-3)
    assert boxes[2] == pytest.approx([5, 10, 45, 25], abs=1e-3)
    mask = next(anns["mask"] for anns in by_id.values() if "mask" in anns)
    assert np.array_equal(mask.image, _bitmap())


def test_datumaro_export_imports(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    mask = np.zeros((H, W), dtype=bool)
    mask[5:10, 20:30] = True
    source = dm.Dataset.from_iterable(
        [
            dm.DatasetItem(
                id="img1",
                subset="train",
                media=dm.Image.from_numpy(np.zeros((H, W, 3), dtype=np.uint8)),
                annotations=[
                    dm.Bbox(1, 2, 3, 4, label=0, id=1, attributes={"occluded": True, "color": "red"}),
                    dm.Polygon([1, 1, 10, 1, 10, 10], label=1, id=2),
                    dm.Mask(mask, label=0, id=3),
                ],
            ),
            dm.DatasetItem(
                id="img2", subset="train", media=dm.Image.from_numpy(np.zeros((H, W, 3), dtype=np.uint8))
            ),
        ],
        categories=["car", "person"],
    )
    source.export(str(tmp_path / "dm"), "coco_instances", save_media=True)
    back = load(formats, "COCO 1.0", tmp_path / "dm", tmp_path / "work")
    assert [label.name for label in back.labels] == ["car", "person"]
    got = items_by_name(back)
    assert set(got) == {"img1", "img2"} and got["img1"].subset == "train"
    assert got["img1"].image is not None
    shapes = {s.type: s for s in got["img1"].shapes}
    assert len(got["img1"].shapes) == 3
    assert shapes["rectangle"].points == pytest.approx([1, 2, 4, 6], abs=1e-3)
    assert shapes["rectangle"].occluded and shapes["rectangle"].attributes == {"color": "red"}
    assert shapes["polygon"].label == "person"
    assert np.array_equal(masks.cvat_to_bitmap(shapes["mask"].points, W, H), mask)


def test_datumaro_keypoints_both_ways(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    skeleton = _skeleton([(10, 5, False, False), (12, 20, False, True), (0, 0, True, False)])
    image = str(make_image(tmp_path / "src" / "p.jpg", W, H))
    items = [Item(name="p.jpg", frame=0, width=W, height=H, shapes=[skeleton], image=image)]
    out = export(
        formats, "COCO Keypoints 1.0", dataset(items, SKELETON_LABELS), tmp_path / "out", save_images=True
    )
    imported = dm.Dataset.import_from(str(out), "coco_person_keypoints")
    (item,) = list(imported)
    points = [a for a in item.annotations if a.type.name == "points"]
    assert len(points) == 1
    assert points[0].points[:4] == pytest.approx([10, 5, 12, 20])
    assert list(points[0].visibility)[:3] == [2, 1, 0]
    bbox = next(a for a in item.annotations if a.type.name == "bbox")
    assert bbox.get_bbox() == pytest.approx([10, 5, 2, 15], abs=1e-3)

    imported.export(str(tmp_path / "dm"), "coco_person_keypoints")
    back = load(formats, "COCO Keypoints 1.0", tmp_path / "dm", tmp_path / "work")
    (label,) = back.labels
    assert [s.name for s in label.sublabels] == ["head", "hip", "foot"]
    (item_back,) = back.items()
    skeletons = [s for s in item_back.shapes if s.type == "skeleton"]
    assert len(skeletons) == 1
    elements = {e.label: e for e in skeletons[0].elements}
    assert elements["hip"].points == pytest.approx([12, 20]) and elements["foot"].outside
