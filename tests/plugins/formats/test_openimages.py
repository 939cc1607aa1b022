"""Open Images V6 1.0: round trip, Open Images' own files, Datumaro cross-checks, bad input, detection."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annota.core.errors import FormatError
from annota.core.formats import masks
from annota.core.formats.model import Item, LabelSpec, Shape, Tag
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

OPEN_IMAGES = "Open Images V6 1.0"
LABELS = [LabelSpec(name="/m/cat"), LabelSpec(name="/m/dog")]


def _items(tmp_path: Path) -> list[Item]:
    box = Shape(type="rectangle", label="/m/cat", points=[2, 1, 12, 6], group=3, occluded=True, score=0.75,
                attributes={"is_group_of": "true", "truncated": "false"})  # fmt: skip
    mask = Shape(type="mask", label="/m/cat", points=masks.bitmap_to_cvat(block(3, 2, 8, 5)), group=3,
                 attributes={"predicted_iou": "0.5"})  # fmt: skip
    polygon = Shape(type="polygon", label="/m/dog", points=[14, 0, 18, 0, 18, 4, 14, 4])
    return [
        Item(
            name="0001eeaf4aed83f9.jpg",
            width=20,
            height=10,
            image=str(make_image(tmp_path / "src" / "a.jpg", 20, 10)),
            tags=[Tag(label="/m/dog")],
            shapes=[box, mask, polygon],
        ),
        Item(name="b.png", subset="validation", width=20, height=10),
    ]


def test_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    target = export(
        formats, OPEN_IMAGES, dataset(_items(tmp_path), LABELS), tmp_path / "o.zip", save_images=True
    )
    archive = zipfile.ZipFile(target)
    names = set(archive.namelist())
    assert {
        "annotations/class-descriptions.csv",
        "annotations/bbox_labels_600_hierarchy.json",
        "annotations/images.meta",
        "annotations/default-images-with-rotation.csv",
        "annotations/validation-images-with-rotation.csv",
        "annotations/default-annotations-human-imagelabels.csv",
        "annotations/default-annotations-bbox.csv",
        "annotations/default-annotations-object-segmentation.csv",
        "images/default/0001eeaf4aed83f9.jpg",
    } <= names
    assert len([n for n in names if n.startswith("masks/default/")]) == 2
    assert archive.read("annotations/class-descriptions.csv").decode() == "/m/cat,/m/cat\n/m/dog,/m/dog\n"
    boxes = archive.read("annotations/default-annotations-bbox.csv").decode().splitlines()
    assert boxes[1] == "0001eeaf4aed83f9,,/m/cat,0.75,0.1,0.6,0.1,0.6,1,0,1,-1,-1"
    segments = archive.read("annotations/default-annotations-object-segmentation.csv").decode().splitlines()
    assert (
        segments[1]
        == "0001eeaf4aed83f9_m_cat_00000000.png,0001eeaf4aed83f9,/m/cat,00000000,0.1,0.6,0.1,0.6,0.5,"
    )

    result = load(formats, OPEN_IMAGES, target, tmp_path / "work")
    assert [label.name for label in result.labels] == ["/m/cat", "/m/dog"]
    items = items_by_name(result)
    assert list(items) == ["0001eeaf4aed83f9", "b"]
    first = items["0001eeaf4aed83f9"]
    assert (first.name, first.width, first.subset) == ("0001eeaf4aed83f9.jpg", 20, "default")
    assert [t.label for t in first.tags] == ["/m/dog"]
    box, mask, polygon = first.shapes
    assert (box.points, box.occluded, box.score) == ([2, 1, 12, 6], True, 0.75)
    assert box.attributes == {"truncated": "false", "is_group_of": "true"}
    assert mask.type == "mask" and mask.group == box.group != 0
    assert mask.attributes == {"box_id": "00000000", "predicted_iou": "0.5"}
    assert masks.cvat_to_bitmap(mask.points, 20, 10).tolist() == block(3, 2, 8, 5).tolist()
    assert (polygon.label, polygon.group, int(masks.cvat_to_bitmap(polygon.points, 20, 10).sum())) == (
        "/m/dog",
        0,
        25,
    )
    assert (items["b"].subset, items["b"].shapes, items["b"].width) == ("validation", [], None)


def test_reads_open_images_files(formats: FormatRegistry, tmp_path: Path) -> None:
    """Open Images' own files: oidv6 names, extra columns, masks smaller than the images, no images
    list (items come from the annotation files) and images.meta for an image that is missing."""
    root = tmp_path / "in"
    annotations = root / "annotations"
    annotations.mkdir(parents=True)
    (annotations / "oidv6-class-descriptions.csv").write_text("LabelName,DisplayName\n/m/011k07,Tortoise\n")
    (annotations / "oidv6-train-annotations-bbox.csv").write_text(
        "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,"
        "IsInside,XClick1X\n"
        "000002b66c9c498e,xclick,/m/011k07,1,0.0125,0.5,0.25,0.75,0,1,0,0,0,0.1\n"
        "gone,xclick,/m/011k07,1,0,0.5,0,0.5,-1,-1,-1,-1,-1,0.1\n"
    )
    (annotations / "train-annotations-object-segmentation.csv").write_text(
        "MaskPath,ImageID,LabelName,BoxID,BoxXMin,BoxXMax,BoxYMin,BoxYMax,PredictedIoU,Clicks\n"
        "m.png,000002b66c9c498e,/m/011k07,0a1b,,,,,,\n"
    )
    (annotations / "images.meta").write_text("gone 10 40\n")
    make_image(root / "images" / "train" / "000002b66c9c498e.jpg", 80, 40)
    (root / "masks" / "train").mkdir(parents=True)
    small = np.zeros((4, 8), dtype=np.uint8)
    small[:2, :4] = 255
    Image.fromarray(small).save(root / "masks" / "train" / "m.png")
    fmt = formats.find(OPEN_IMAGES)
    assert fmt is not None and fmt.detect is not None and fmt.detect(root) > 0.5
    items = items_by_name(load(formats, OPEN_IMAGES, root, tmp_path / "work"))
    first = items["000002b66c9c498e"]
    assert (first.subset, first.width, first.height) == ("train", 80, 40)
    box, mask = first.shapes
    assert box.points == [1, 10, 40, 30] and box.attributes["truncated"] == "true"
    assert masks.cvat_to_bitmap(mask.points, 80, 40).sum() == 40 * 20 and mask.group == 0
    assert items["gone"].shapes[0].points == [0, 0, 20, 5] and items["gone"].shapes[0].attributes == {}


HEADER = (
    "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,"
    "IsInside\n"
)
BOXES = "s-annotations-bbox.csv"
SEGMENTS = "s-annotations-object-segmentation.csv"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (BOXES, "ImageID,LabelName\nx,/m/a\n", r"s-annotations-bbox.csv:1: the header lacks the column"),
        (BOXES, HEADER + "x,,/m/a,1,0,1,0,1,0,0,0,0,0\n",
         r"s-annotations-bbox.csv:2: item 'x': the image is not in the dataset nor in images.meta"),
        (BOXES, HEADER + "x,,/m/b,1,0,1,0,1,0,0,0,0,0\n", r"bbox.csv:2: item 'x': unknown label '/m/b'"),
        (BOXES, HEADER + "x,,/m/a,1,a,1,0,1,0,0,0,0,0\n", r"bbox.csv:2: item 'x': annotation 0: the coord"),
        (SEGMENTS, "MaskPath,ImageID,LabelName\n../m.png,x,/m/a\n",
         r"segmentation.csv:2: item 'x': annotation 0: MaskPath '../m.png' is not a plain file name"),
        (SEGMENTS, "MaskPath,ImageID,LabelName\nm.png,x,/m/a\n",
         r"segmentation.csv:2: item 'x': annotation 0: the mask masks/s/m.png does not exist"),
        ("s-images-with-rotation.csv", "ImageID,Subset\nx,../up\n", r"rotation.csv:2: item 'x': the subset"),
    ],
)  # fmt: skip
def test_bad_files(formats: FormatRegistry, tmp_path: Path, name: str, text: str, message: str) -> None:
    annotations = tmp_path / "in" / "annotations"
    annotations.mkdir(parents=True)
    (annotations / "class-descriptions.csv").write_text("/m/a,A\n")
    (annotations / name).write_text(text)
    with pytest.raises(FormatError, match=message):
        list(load(formats, OPEN_IMAGES, tmp_path / "in", tmp_path / "work").items())


def test_refuses_boxes_without_a_size(formats: FormatRegistry, tmp_path: Path) -> None:
    item = Item(name="a.jpg", shapes=[Shape(type="rectangle", label="/m/cat", points=[0, 0, 1, 1])])
    with pytest.raises(FormatError, match=r"item 'a.jpg': the frame's size is unknown"):
        export(formats, OPEN_IMAGES, dataset([item], LABELS), tmp_path / "o")


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    exported = export(formats, OPEN_IMAGES, dataset(_items(tmp_path), LABELS), tmp_path / "out")
    assert_detected(formats, OPEN_IMAGES, exported, tmp_path / "src")


def test_datumaro_reads_the_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    exported = export(
        formats, OPEN_IMAGES, dataset(_items(tmp_path), LABELS), tmp_path / "out", save_images=True
    )
    imported = dm.Dataset.import_from(str(exported), "open_images")
    names = [label.name for label in imported.categories()[dm.AnnotationType.label]]
    assert names == ["/m/cat", "/m/dog"]
    items = {(i.subset, i.id): i for i in imported}
    assert set(items) == {("default", "0001eeaf4aed83f9"), ("validation", "b")}
    anns = items[("default", "0001eeaf4aed83f9")].annotations
    tag, box, mask, polygon = anns
    assert (tag.type.name, names[tag.label]) == ("label", "/m/dog")
    assert box.get_bbox() == pytest.approx([2, 1, 10, 5])
    assert box.attributes == {"score": 0.75, "occluded": True, "truncated": False, "is_group_of": True}
    assert mask.group == box.group and mask.attributes == {"box_id": "00000000", "predicted_iou": 0.5}
    assert mask.image.tolist() == block(3, 2, 8, 5).tolist()
    assert names[polygon.label] == "/m/dog" and polygon.image.sum() == 25


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
                    dm.Label(1),
                    dm.Bbox(1, 2, 4, 4, label=0, group=1, attributes={"occluded": True, "is_inside": False}),
                    dm.Mask(image=block(1, 2, 5, 6), label=0, group=1),
                ],
            ),
        ],
        categories=["cat", "dog"],
    )
    source.export(str(tmp_path / "dm"), "open_images", save_media=True)
    result = load(formats, OPEN_IMAGES, tmp_path / "dm", tmp_path / "work")
    assert [label.name for label in result.labels] == ["cat", "dog"]
    a = items_by_name(result)["a"]
    assert (a.subset, a.name, a.width) == ("train", "a.jpg", 20)
    assert [t.label for t in a.tags] == ["dog"]
    box, mask = a.shapes
    assert (box.points, box.occluded, box.attributes) == ([1, 2, 5, 6], True, {"is_inside": "false"})
    assert mask.group == box.group != 0
    assert masks.cvat_to_bitmap(mask.points, 20, 10).tolist() == block(1, 2, 5, 6).tolist()
