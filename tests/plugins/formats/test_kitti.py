"""KITTI 1.0: round trip, KITTI's own files, Datumaro cross-checks, bad input, detection."""

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

KITTI = "KITTI 1.0"
LABELS = [LabelSpec(name="car", color="#ff0000"), LabelSpec(name="road", color="#00ff00")]


def _bitmap(shape: Shape, width: int = 20, height: int = 10) -> np.ndarray:
    return masks.cvat_to_bitmap(shape.points, width, height)


def _items(tmp_path: Path) -> list[Item]:
    road = Shape(type="mask", label="road", points=masks.bitmap_to_cvat(block(0, 6, 20, 10)))
    return [
        Item(
            name="000001.png",
            width=20,
            height=10,
            image=str(make_image(tmp_path / "src" / "1.png", 20, 10)),
            shapes=[
                Shape(
                    type="rectangle",
                    label="car",
                    points=[1, 2, 8.5, 6],
                    occluded=True,
                    attributes={"truncated": "true"},
                ),  # fmt: skip
                Shape(type="rectangle", label="car", points=[10, 1, 12, 3], score=0.5),
                road,
                Shape(type="polygon", label="car", points=[2, 2, 6, 2, 6, 5, 2, 5], z_order=1),
            ],
        ),
        Item(name="000002.png", subset="val", width=20, height=10, shapes=[]),
    ]


def test_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    target = export(formats, KITTI, dataset(_items(tmp_path), LABELS), tmp_path / "out.zip", save_images=True)
    archive = zipfile.ZipFile(target)
    assert set(archive.namelist()) == {
        "label_colors.txt",
        "default/label_2/000001.txt",
        "default/instance/000001.png",
        "default/semantic/000001.png",
        "default/semantic_rgb/000001.png",
        "default/image_2/000001.png",
    }
    assert archive.read("label_colors.txt").decode() == "0 0 0 background\n255 0 0 car\n0 255 0 road\n"
    assert archive.read("default/label_2/000001.txt").decode().splitlines() == [
        "car 1 1 -1 1 2 8.5 6 -1 -1 -1 -1 -1 -1 -1 1",
        "car 0 0 -1 10 1 12 3 -1 -1 -1 -1 -1 -1 -1 0.5",
    ]
    instance = np.asarray(Image.open(io.BytesIO(archive.read("default/instance/000001.png"))))
    assert set(np.unique(instance).tolist()) == {0, 1 * 256 + 1, 2 * 256 + 1}
    rgb = np.asarray(Image.open(io.BytesIO(archive.read("default/semantic_rgb/000001.png"))).convert("RGB"))
    assert rgb[8, 3].tolist() == [0, 255, 0] and rgb[3, 3].tolist() == [255, 0, 0]

    result = load(formats, KITTI, target, tmp_path / "work")
    assert [(label.name, label.color) for label in result.labels] == [("car", "#ff0000"), ("road", "#00ff00")]
    items = items_by_name(result)
    assert list(items) == ["000001"]  # the empty val item has no file at all without images
    first = items["000001"]
    assert (first.name, first.width, first.height) == ("000001.png", 20, 10)
    boxes = [s for s in first.shapes if s.type == "rectangle"]
    assert [(s.points, s.occluded, s.score, s.attributes) for s in boxes] == [
        ([1, 2, 8.5, 6], True, 1.0, {"truncated": "true"}),
        ([10, 1, 12, 3], False, 0.5, {"truncated": "false"}),
    ]
    segments = {s.label: _bitmap(s) for s in first.shapes if s.type == "mask"}
    assert segments["road"].tolist() == block(0, 6, 20, 10).tolist()
    assert segments["car"].sum() == 5 * 4


def test_polygons_on_import(formats: FormatRegistry, tmp_path: Path) -> None:
    target = export(formats, KITTI, dataset(_items(tmp_path), LABELS), tmp_path / "out")
    result = load(formats, KITTI, target, tmp_path / "work", conv_mask_to_poly=True)
    shapes = items_by_name(result)["000001"].shapes
    assert sorted((s.type, s.label) for s in shapes if s.type != "rectangle") == [
        ("polygon", "car"),
        ("polygon", "road"),
    ]


def test_reads_kitti_files(formats: FormatRegistry, tmp_path: Path) -> None:
    """KITTI's own detection files: 15 values, DontCare, no label_colors.txt, images elsewhere."""
    root = tmp_path / "in" / "training"
    (root / "label_2").mkdir(parents=True)
    (root / "label_2" / "000000.txt").write_text(
        "Pedestrian 0.00 0 -0.20 712.40 143.00 810.73 307.92 1.89 0.48 1.20 1.84 1.47 8.41 0.01\n"
        "DontCare -1 -1 -10 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10\n"
    )
    fmt = formats.find(KITTI)
    assert fmt is not None and fmt.detect is not None and fmt.detect(tmp_path / "in") > 0.5
    result = load(formats, KITTI, tmp_path / "in", tmp_path / "work", labels=[LabelSpec(name="Pedestrian")])
    assert [label.name for label in result.labels] == ["Pedestrian", "DontCare"]
    (item,) = list(result.items())
    assert (item.name, item.subset) == ("000000", "training")
    assert [(s.label, s.points, s.attributes) for s in item.shapes] == [
        ("Pedestrian", [712.40, 143.00, 810.73, 307.92], {"truncated": "false"}),
        ("DontCare", [503.89, 169.71, 590.61, 190.13], {"truncated": "true"}),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "car 0 0 -1 1 2 3\n",
            r"s/label_2/x.txt:1: item 'x': annotation 0: expected 15 or 16 values, found 7",
        ),
        (
            "car 0 0 -1 1 2 3 a -1 -1 -1 -1 -1 -1 -1\n",
            r"label_2/x.txt:1: item 'x': annotation 0: .* must be numbers",
        ),
        (
            "car 0 0 -1 5 5 1 1 -1 -1 -1 -1 -1 -1 -1\n",
            r"label_2/x.txt:1: item 'x': annotation 0: the box's second",
        ),
    ],
)
def test_bad_lines(formats: FormatRegistry, tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "in" / "s" / "label_2").mkdir(parents=True)
    (tmp_path / "in" / "s" / "label_2" / "x.txt").write_text(text)
    with pytest.raises(FormatError, match=message):
        list(load(formats, KITTI, tmp_path / "in", tmp_path / "work").items())


def test_bad_segmentation(formats: FormatRegistry, tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "s" / "instance").mkdir(parents=True)
    (root / "label_colors.txt").write_text("0 0 0 background\n1 2 x car\n")
    Image.fromarray(np.full((4, 4), 5 * 256 + 1, dtype=np.uint16)).save(root / "s/instance/x.png")
    with pytest.raises(FormatError, match=r"label_colors.txt:2: expected 'r g b name'"):
        load(formats, KITTI, root, tmp_path / "w1")
    (root / "label_colors.txt").write_text("0 0 0 background\n1 2 3 car\n")
    with pytest.raises(FormatError, match=r"s/instance/x.png: annotation 1281: class index 5"):
        list(load(formats, KITTI, root, tmp_path / "w2").items())


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    exported = export(formats, KITTI, dataset(_items(tmp_path), LABELS), tmp_path / "out")
    assert_detected(formats, KITTI, exported, tmp_path / "src")


def test_datumaro_reads_the_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    exported = export(formats, KITTI, dataset(_items(tmp_path), LABELS), tmp_path / "out", save_images=True)
    detection = dm.Dataset.import_from(str(exported), "kitti_detection")
    names = [label.name for label in detection.categories()[dm.AnnotationType.label]]
    (item,) = list(detection)
    assert item.media.data.shape[:2] == (10, 20)
    assert [(names[a.label], a.get_bbox(), a.attributes) for a in item.annotations] == [
        ("car", [1, 2, 7.5, 4], {"truncated": True, "occluded": True, "score": 1.0}),
        ("car", [10, 1, 2, 2], {"truncated": False, "occluded": False, "score": 0.5}),
    ]
    segmented = dm.Dataset.import_from(str(exported), "kitti_segmentation")
    names = [label.name for label in segmented.categories()[dm.AnnotationType.label]]
    assert names == ["background", "car", "road"]
    (item,) = list(segmented)
    found = {names[a.label]: a.image for a in item.annotations if names[a.label] != "background"}
    assert found["road"].tolist() == block(0, 6, 20, 10).tolist()
    assert found["car"].sum() == 20


def test_imports_datumaro_exports(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    image = dm.Image.from_numpy(data=np.zeros((10, 20, 3), dtype=np.uint8))
    source = dm.Dataset.from_iterable(
        [
            dm.DatasetItem(
                id="a",
                subset="train",
                media=image,
                annotations=[
                    dm.Bbox(1, 2, 3, 4, label=0, attributes={"truncated": True, "occluded": False}),
                    dm.Mask(image=block(0, 0, 5, 5), label=1, id=1),
                    dm.Mask(image=block(10, 5, 20, 10), label=0, id=2),
                ],
            )
        ],
        categories=["car", "road"],
    )
    source.export(str(tmp_path / "det"), "kitti_detection", save_media=True)
    items = items_by_name(load(formats, KITTI, tmp_path / "det", tmp_path / "w1"))
    item = items["a"]
    assert (item.subset, item.name, item.width) == ("train", "a.png", 20)
    assert [(s.label, s.points, s.attributes) for s in item.shapes] == [
        ("car", [1, 2, 4, 6], {"truncated": "true"})
    ]
    source.export(str(tmp_path / "seg"), "kitti_segmentation", save_media=True)
    result = load(formats, KITTI, tmp_path / "seg", tmp_path / "w2")
    assert [label.name for label in result.labels][:2] == ["car", "road"]
    item = items_by_name(result)["a"]
    found = {s.label: _bitmap(s) for s in item.shapes}
    assert found["road"].tolist() == block(0, 0, 5, 5).tolist()
    assert found["car"].tolist() == block(10, 5, 20, 10).tolist()
