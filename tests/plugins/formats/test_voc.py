"""PASCAL VOC 1.1: round trip, the written layout, Datumaro cross-checks, bad input, detection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from annota.core.errors import FormatError
from annota.core.formats import masks
from annota.core.formats.model import Item, LabelSpec, Shape, Tag
from annota.core.formats.registry import FormatRegistry
from tests.plugins.formats.helpers import dataset, export, items_by_name, load, make_image

W, H = 64, 48
LABELS = [LabelSpec(name="car", color="#ff0000"), LabelSpec(name="person"), LabelSpec(name="dog")]


def _bitmap(top: int, left: int, bottom: int, right: int) -> np.ndarray:
    bitmap = np.zeros((H, W), dtype=bool)
    bitmap[top:bottom, left:right] = True
    return bitmap


def _items() -> list[Item]:
    return [
        Item(
            name="a.jpg",
            frame=0,
            width=W,
            height=H,
            tags=[Tag(label="person")],
            shapes=[
                Shape(
                    type="rectangle",
                    label="car",
                    points=[1.5, 2, 11, 22.25],
                    occluded=True,
                    attributes={"color": "red", "truncated": "true", "pose": "Left"},
                ),
                Shape(type="rectangle", label="dog", points=[20, 20, 30, 40]),
                Shape(type="mask", label="car", points=masks.bitmap_to_cvat(_bitmap(10, 5, 20, 15))),
                Shape(type="polygon", label="person", points=[30, 5, 50, 5, 50, 25, 30, 25]),
                Shape(type="points", label="dog", points=[1, 1]),
            ],
        ),
        Item(name="dir/b.png", frame=1, width=W, height=H, subset="train", tags=[Tag(label="dog")]),
        Item(name="c.jpg", frame=2, width=W, height=H),
    ]


def test_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    items = _items()
    items[0].image = str(make_image(tmp_path / "src" / "a.jpg", W, H))
    out = export(formats, "PASCAL VOC 1.1", dataset(items, LABELS), tmp_path / "out.zip", save_images=True)
    back = load(formats, "voc", out, tmp_path / "work")
    assert [label.name for label in back.labels] == ["car", "person", "dog"]
    assert back.labels[0].color == "#ff0000"
    got = items_by_name(back)
    assert set(got) == {"a", "dir/b", "c"}
    a = got["a"]
    assert (a.name, a.subset, a.width, a.height) == ("a.jpg", "default", W, H)
    assert a.image is not None and Path(a.image).name == "a.jpg"
    assert [t.label for t in a.tags] == ["person"]
    assert (got["dir/b"].name, got["dir/b"].subset, [t.label for t in got["dir/b"].tags]) == (
        "dir/b.png",
        "train",
        ["dog"],
    )
    assert got["c"].tags == [] and got["c"].shapes == []
    boxes = [s for s in a.shapes if s.type == "rectangle"]
    assert [(b.label, b.points) for b in boxes] == [("car", [1.5, 2, 11, 22.25]), ("dog", [20, 20, 30, 40])]
    assert boxes[0].occluded and not boxes[1].occluded
    assert boxes[0].attributes == {"color": "red", "truncated": "true", "pose": "Left"}
    assert boxes[1].attributes == {}
    segments = {s.label: s for s in a.shapes if s.type == "mask"}
    assert set(segments) == {"car", "person"}
    assert np.array_equal(masks.cvat_to_bitmap(segments["car"].points, W, H), _bitmap(10, 5, 20, 15))
    person = masks.cvat_to_bitmap(segments["person"].points, W, H)
    assert np.array_equal(person, masks.polygons_to_bitmap([[30, 5, 50, 5, 50, 25, 30, 25]], W, H))


def test_written_layout(formats: FormatRegistry, tmp_path: Path) -> None:
    out = export(formats, "PASCAL VOC 1.1", dataset(_items(), LABELS), tmp_path / "out")
    assert (out / "labelmap.txt").read_text().splitlines() == [
        "# label:color_rgb:parts:actions",
        "background:0,0,0::",
        "car:255,0,0::",
        "person:128,0,0::",
        "dog:0,128,0::",
    ]
    assert (out / "ImageSets/Main/default.txt").read_text() == "a\nc\n"
    assert (out / "ImageSets/Main/train.txt").read_text() == "dir/b\n"
    assert (out / "ImageSets/Main/person_default.txt").read_text() == "a 1\nc -1\n"
    assert (out / "ImageSets/Main/dog_train.txt").read_text() == "dir/b 1\n"
    assert (out / "ImageSets/Segmentation/default.txt").read_text() == "a\n"
    xml = (out / "Annotations/a.xml").read_text()
    assert "<filename>a.jpg</filename>" in xml and "<segmented>1</segmented>" in xml
    assert "<xmin>1.5</xmin><ymin>2</ymin><xmax>11</xmax><ymax>22.25</ymax>" in xml
    assert "<attribute><name>color</name><value>red</value></attribute>" in xml
    classes = Image.open(out / "SegmentationClass/a.png")
    assert classes.mode == "P"
    indices = np.asarray(classes)
    assert set(np.unique(indices).tolist()) == {0, 1, 2}
    instances = np.asarray(Image.open(out / "SegmentationObject/a.png"))
    assert set(np.unique(instances).tolist()) == {0, 1, 2}
    assert not (out / "SegmentationClass/c.png").exists()


def test_rotated_box_is_written_as_its_bounds(formats: FormatRegistry, tmp_path: Path) -> None:
    item = Item(name="r.jpg", frame=0, width=W, height=H)
    item.shapes = [Shape(type="rectangle", label="car", points=[10, 10, 30, 20], rotation=90)]
    out = export(formats, "PASCAL VOC 1.1", dataset([item], LABELS), tmp_path / "out")
    (back,) = load(formats, "voc", out, tmp_path / "work").items()
    assert back.shapes[0].points == pytest.approx([15, 5, 25, 25])


def test_z_order_decides_overlaps_and_conv_mask_to_poly(formats: FormatRegistry, tmp_path: Path) -> None:
    low = Shape(type="mask", label="car", z_order=0, points=masks.bitmap_to_cvat(_bitmap(0, 0, 20, 20)))
    high = Shape(type="mask", label="dog", z_order=1, points=masks.bitmap_to_cvat(_bitmap(10, 10, 30, 30)))
    item = Item(name="z.jpg", frame=0, width=W, height=H, shapes=[high, low])
    out = export(formats, "PASCAL VOC 1.1", dataset([item], LABELS), tmp_path / "out")
    (back,) = load(formats, "voc", out, tmp_path / "w1").items()
    shapes = {s.label: masks.cvat_to_bitmap(s.points, W, H) for s in back.shapes}
    assert np.array_equal(shapes["dog"], _bitmap(10, 10, 30, 30))
    assert np.array_equal(shapes["car"], _bitmap(0, 0, 20, 20) & ~_bitmap(10, 10, 30, 30))

    (back,) = load(formats, "voc", out, tmp_path / "w2", conv_mask_to_poly=True).items()
    assert sorted((s.type, s.label) for s in back.shapes) == [("polygon", "car"), ("polygon", "dog")]
    dog = next(s for s in back.shapes if s.label == "dog")
    assert np.array_equal(masks.polygons_to_bitmap([dog.points], W, H), _bitmap(10, 10, 30, 30))


# --- bad input ---------------------------------------------------------------------------------


def _voc_dir(tmp_path: Path, xml: str) -> Path:
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    (root / "ImageSets/Main").mkdir(parents=True)
    (root / "ImageSets/Main/default.txt").write_text("x\n")
    (root / "labelmap.txt").write_text("background:0,0,0::\ncar:255,0,0::\n")
    (root / "Annotations/x.xml").write_text(xml)
    return root


def _object(name: str = "car", box: tuple[str, str, str, str] = ("1", "2", "3", "4")) -> str:
    xmin, ymin, xmax, ymax = box
    return (
        f"<object><name>{name}</name><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
        f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
    )


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (_object("bus"), "Annotations/x.xml: /annotation/object[2]/name: annotation 1: unknown label 'bus'"),
        (
            _object(box=("5", "2", "3", "4")),
            "/annotation/object[2]/bndbox: annotation 1: the box has a negative width",
        ),
        (_object(box=("1", "2", "3", "a")), "annotation 1: bndbox needs numeric xmin"),
        ("<object><name>car</name></object>", "annotation 1: the object has no bndbox"),
    ],
)
def test_bad_objects(formats: FormatRegistry, tmp_path: Path, objects: str, expected: str) -> None:
    root = _voc_dir(tmp_path, f"<annotation>{_object()}{objects}</annotation>")
    with pytest.raises(FormatError) as caught:
        list(load(formats, "voc", root, tmp_path / "work").items())
    assert expected in str(caught.value)


def test_zero_size_boxes_and_missing_flags_import(formats: FormatRegistry, tmp_path: Path) -> None:
    """A box with xmin == xmax or ymin == ymax, and objects without truncated, difficult, pose or
    occluded, are read as CVAT reads them: a flat box, and flags that are not set."""
    objects = _object(box=("3", "2", "3", "4")) + _object("car", ("1", "5", "6", "5"))
    root = _voc_dir(tmp_path, f"<annotation>{objects}</annotation>")
    (item,) = load(formats, "voc", root, tmp_path / "work").items()
    assert [(s.label, s.points, s.occluded, s.attributes) for s in item.shapes] == [
        ("car", [3, 2, 3, 4], False, {}),
        ("car", [1, 5, 6, 5], False, {}),
    ]


def test_malformed_xml_names_line_and_column(formats: FormatRegistry, tmp_path: Path) -> None:
    root = _voc_dir(tmp_path, "<annotation>\n  <object><name>car</nam></object>\n</annotation>")
    with pytest.raises(FormatError) as caught:
        list(load(formats, "voc", root, tmp_path / "work").items())
    assert caught.value.file == "Annotations/x.xml"
    assert (caught.value.line, caught.value.column) == (2, 22)
    assert str(caught.value) == "Annotations/x.xml:2:22: malformed XML: mismatched tag"


def test_xml_entities_are_refused(formats: FormatRegistry, tmp_path: Path) -> None:
    bomb = '<!DOCTYPE a [<!ENTITY e "xxxx">]><annotation>&e;</annotation>'
    root = _voc_dir(tmp_path, bomb)
    with pytest.raises(FormatError, match="Annotations/x.xml: forbidden XML construct"):
        list(load(formats, "voc", root, tmp_path / "work").items())


def test_bad_tag_list_and_labelmap(formats: FormatRegistry, tmp_path: Path) -> None:
    root = _voc_dir(tmp_path, "<annotation/>")
    (root / "ImageSets/Main/car_default.txt").write_text("x 1\ny 2\n")
    with pytest.raises(FormatError, match=r"^ImageSets/Main/car_default.txt:2: expected"):
        list(load(formats, "voc", root, tmp_path / "work").items())
    (root / "labelmap.txt").write_text("# comment\nbackground:0,0,0::\ncar:255,0::\n")
    with pytest.raises(FormatError, match=r"^labelmap.txt:3: bad colour"):
        load(formats, "voc", root, tmp_path / "work2")


def test_unknown_mask_colour(formats: FormatRegistry, tmp_path: Path) -> None:
    root = _voc_dir(tmp_path, "<annotation/>")
    (root / "SegmentationClass").mkdir()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(root / "SegmentationClass/x.png")
    with pytest.raises(
        FormatError, match=r"^SegmentationClass/x.png: the colour \(1, 2, 3\) is not a known class"
    ):
        list(load(formats, "voc", root, tmp_path / "work").items())


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    out = export(formats, "PASCAL VOC 1.1", dataset(_items(), LABELS), tmp_path / "out")
    voc = formats.get("PASCAL VOC 1.1", direction="import")
    assert voc.detect is not None
    assert voc.detect(out) == 1.0
    coco = tmp_path / "coco" / "annotations"
    coco.mkdir(parents=True)
    (coco / "instances_default.json").write_text("{}")
    assert voc.detect(tmp_path / "coco") == 0.0
    # a segmentation-only dataset is better read by "Segmentation mask"
    masks_only = export(formats, "Segmentation mask 1.1", dataset(_items(), LABELS), tmp_path / "seg")
    ranked = formats.detect(masks_only, [voc, formats.get("Segmentation mask 1.1", direction="import")])
    assert ranked[0][1].display_name == "Segmentation mask 1.1"


# --- Datumaro ----------------------------------------------------------------------------------


def test_datumaro_reads_the_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    out = export(formats, "PASCAL VOC 1.1", dataset(_items(), LABELS), tmp_path / "out")
    imported = dm.Dataset.import_from(str(out), "voc")
    names = [c.name for c in imported.categories()[dm.AnnotationType.label]]
    assert names[:4] == ["background", "car", "person", "dog"]
    assert len(imported) == 3
    item = imported.get("a", "default")
    by_type: dict[str, list[Any]] = {}
    for ann in item.annotations:
        by_type.setdefault(ann.type.name, []).append(ann)
    assert sorted((names[b.label], b.get_bbox()) for b in by_type["bbox"]) == [
        ("car", pytest.approx([1.5, 2, 9.5, 20.25], abs=1e-3)),
        ("dog", pytest.approx([20, 20, 10, 20], abs=1e-3)),
    ]
    assert sorted(names[m.label] for m in by_type["mask"]) == ["car", "person"]
    car = next(m for m in by_type["mask"] if names[m.label] == "car")
    assert np.array_equal(car.image, _bitmap(10, 5, 20, 15))
    assert [names[label.label] for label in by_type["label"]] == ["person"]
    assert [names[a.label] for a in imported.get("dir/b", "train").annotations] == ["dog"]


def test_datumaro_export_imports(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    mask = _bitmap(5, 20, 10, 30)
    source = dm.Dataset.from_iterable(
        [
            dm.DatasetItem(
                id="img1",
                subset="train",
                media=dm.Image.from_numpy(np.zeros((H, W, 3), dtype=np.uint8)),
                annotations=[
                    dm.Bbox(1, 2, 3, 4, label=0, id=1, attributes={"occluded": True, "color": "red"}),
                    dm.Mask(mask, label=1, id=2),
                    dm.Label(1, id=3),
                ],
            ),
            dm.DatasetItem(
                id="img2", subset="train", media=dm.Image.from_numpy(np.zeros((H, W, 3), dtype=np.uint8))
            ),
        ],
        categories=["car", "person"],
    )
    source.export(str(tmp_path / "dm"), "voc", save_media=True, label_map="source")
    back = load(formats, "PASCAL VOC 1.1", tmp_path / "dm", tmp_path / "work")
    assert [label.name for label in back.labels] == ["car", "person"]
    got = items_by_name(back)
    assert set(got) == {"img1", "img2"}
    img1 = got["img1"]
    assert img1.subset == "train" and img1.image is not None and img1.name == "img1.jpg"
    assert [t.label for t in img1.tags] == ["person"]
    (box,) = [s for s in img1.shapes if s.type == "rectangle"]
    assert box.label == "car" and box.points == pytest.approx([1, 2, 4, 6], abs=1e-3)
    assert box.occluded and box.attributes == {"color": "red"}
    (segment,) = [s for s in img1.shapes if s.type == "mask"]
    assert segment.label == "person" and np.array_equal(masks.cvat_to_bitmap(segment.points, W, H), mask)
    assert got["img2"].shapes == []
