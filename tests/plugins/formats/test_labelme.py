"""LabelMe 3.0: round trip, Datumaro cross-checks, bad input, detection."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from annota.core.errors import FormatError
from annota.core.formats.masks import bitmap_to_cvat, cvat_to_bitmap, polygons_to_bitmap
from annota.core.formats.model import Item, LabelSpec, Shape
from annota.core.formats.registry import FormatRegistry
from annota.plugins.formats.labelme import format_attributes, parse_attributes
from tests.plugins.formats.helpers import dataset, export, items_by_name, load, make_image

FORMAT = "LabelMe 3.0"
LABELS = [LabelSpec(name="cat"), LabelSpec(name="dog")]
MASK = polygons_to_bitmap([[10, 10, 30, 10, 30, 30, 10, 30]], 64, 48)


def _items(tmp_path: Path) -> list[Item]:
    image = make_image(tmp_path / "src" / "a.jpg", 64, 48)
    shapes = [
        Shape(
            type="rectangle",
            label="cat",
            points=[1.5, 2.25, 30, 40],
            occluded=True,
            attributes={"size": "10"},
        ),
        Shape(
            type="polygon",
            label="dog",
            points=[1, 1, 20, 1, 20, 20],
            group=3,
            attributes={"note": 'a=b, "c"'},
        ),
        Shape(type="rectangle", label="dog", points=[40, 10, 50, 30], rotation=90.0, group=3),
        Shape(type="mask", label="cat", points=bitmap_to_cvat(MASK)),
        Shape(type="ellipse", label="dog", points=[50, 30, 55, 25]),
        Shape(type="polyline", label="dog", points=[1, 1, 5, 5]),
    ]
    return [
        Item(name="a.jpg", frame=0, width=64, height=48, image=str(image), shapes=shapes),
        Item(name="b.jpg", frame=1, width=64, height=48, subset="val"),
    ]


def test_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    target = export(
        formats, FORMAT, dataset(_items(tmp_path), LABELS), tmp_path / "out.zip", save_images=True
    )
    names = set(zipfile.ZipFile(target).namelist())
    assert {"a.xml", "a.jpg", "val/b.xml", "Masks/a_mask_3.png", "Masks/a_mask_4.png"} <= names

    result = load(formats, FORMAT, target, tmp_path / "work")
    assert [label.name for label in result.labels] == ["cat", "dog"]
    items = items_by_name(result)
    assert set(items) == {"a", "b"} and items["b"].subset == "val" and items["b"].shapes == []
    item = items["a"]
    assert (item.name, item.width, item.height) == ("a.jpg", 64, 48) and item.image is not None
    box, polygon, rotated, mask, ellipse = item.shapes
    assert box.type == "rectangle" and box.points == pytest.approx([1.5, 2.25, 30, 40], abs=1e-2)
    assert box.occluded and box.attributes == {"size": "10"} and box.group == 0
    assert polygon.attributes == {"note": 'a=b, "c"'}
    assert polygon.group != 0 and rotated.group == polygon.group
    # a rotated box is kept as the polygon of its corners
    assert rotated.type == "polygon"
    corners = sorted(zip(rotated.points[0::2], rotated.points[1::2], strict=True))
    assert [v for corner in corners for v in corner] == pytest.approx(
        [35, 15, 35, 25, 55, 15, 55, 25], abs=1e-2
    )
    assert mask.type == "mask" and (cvat_to_bitmap(mask.points, 64, 48) == MASK).all()
    drawn = cvat_to_bitmap(ellipse.points, 64, 48)
    assert ellipse.type == "mask" and drawn[30, 50] and not drawn[30, 58] and not drawn[20, 50]


def test_masks_as_polygons(formats: FormatRegistry, tmp_path: Path) -> None:
    target = export(formats, FORMAT, dataset(_items(tmp_path), LABELS), tmp_path / "out.zip")
    items = items_by_name(load(formats, FORMAT, target, tmp_path / "work", conv_mask_to_poly=True))
    assert [s.type for s in items["a"].shapes].count("mask") == 0
    assert (polygons_to_bitmap([items["a"].shapes[3].points], 64, 48) == MASK).all()


def test_attribute_escaping() -> None:
    attributes = {"a": "1.5", "b=c": "x,y", "quote": '"q"', "slash": "a\\b", "flag": "true"}
    assert parse_attributes(format_attributes(attributes)) == attributes
    assert parse_attributes("occluded, kind=big") == {"occluded": "true", "kind": "big"}


def _xml(body: str, header: str = "<filename>a.jpg</filename><folder></folder>") -> str:
    return f"<annotation>{header}<imagesize><nrows>48</nrows><ncols>64</ncols></imagesize>{body}</annotation>"


def _object(inner: str, index: int = 0) -> str:
    return f"\n<object><name>cat</name><deleted>0</deleted><id>{index}</id>{inner}</object>"


def _pts(*points: tuple[str, str]) -> str:
    return "<polygon>" + "".join(f"<pt><x>{x}</x><y>{y}</y></pt>" for x, y in points) + "</polygon>"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<annotation><filename>a.jpg</filename>\n<object>\n</annotation>", r"a.xml:3:3: malformed XML"),
        (
            _xml(_object(_pts(("1", "1"), ("2", "2"), ("3", "3"))) + _object(_pts(("1", "x")), 1)),
            r"a.xml:3: annotation 1: .*number",
        ),
        (
            _xml(_object("<segm><mask>missing.png</mask></segm>")),
            r"a.xml:2: annotation 0: the mask file 'missing.png'",
        ),
        (_xml(_object("<parts/>")), r"a.xml:2: annotation 0: the object has neither"),
        ("<root/>", r"a.xml: the root element is <root>"),
        (_xml("", "<folder/>"), r"a.xml: <filename> is missing"),
        ('<!DOCTYPE x [<!ENTITY e "boom">]><annotation>&e;</annotation>', r"a.xml: refused XML"),
    ],
)
def test_bad_files(formats: FormatRegistry, tmp_path: Path, text: str, message: str) -> None:
    root = tmp_path / "in"
    root.mkdir()
    (root / "a.xml").write_text(text)
    with pytest.raises(FormatError, match=message):
        list(load(formats, FORMAT, root, tmp_path / "work").items())


def test_degenerate_polygons_are_skipped(formats: FormatRegistry, tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    degenerate = _object(_pts(("1", "1"), ("2", "2"))) + _object("<polygon></polygon>", 1)
    (root / "a.xml").write_text(_xml(degenerate + _object(_pts(("0", "0"), ("5", "0"), ("5", "5")), 2)))
    (item,) = load(formats, FORMAT, root, tmp_path / "work").items()
    assert [(s.type, s.points) for s in item.shapes] == [("polygon", [0, 0, 5, 0, 5, 5])]


def test_deleted_objects_are_skipped(formats: FormatRegistry, tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    deleted = "<object><name>dog</name><deleted>1</deleted><id>1</id>" + _pts(
        ("0", "0"), ("1", "0"), ("1", "1")
    )
    (root / "a.xml").write_text(
        _xml(_object(_pts(("0", "0"), ("5", "0"), ("5", "5"))) + deleted + "</object>")
    )
    (item,) = load(formats, FORMAT, root, tmp_path / "work").items()
    assert [s.label for s in item.shapes] == ["cat"]


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    fmt = formats.find(FORMAT)
    assert fmt is not None and fmt.detect is not None
    assert fmt.detect(export(formats, FORMAT, dataset(_items(tmp_path), LABELS), tmp_path / "lm")) > 0.5
    voc = tmp_path / "voc"
    voc.mkdir()
    (voc / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename><size><width>1</width></size></annotation>"
    )
    assert fmt.detect(voc) == 0.0
    assert fmt.detect(export(formats, "MOT 1.1", dataset(_items(tmp_path), LABELS), tmp_path / "mot")) == 0.0


def test_datumaro_reads_the_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    target = export(formats, FORMAT, dataset(_items(tmp_path), LABELS), tmp_path / "out", save_images=True)
    imported = dm.Dataset.import_from(str(target), "label_me")
    assert {label.name for label in imported.categories()[dm.AnnotationType.label]} == {"cat", "dog"}
    items = {item.id: item for item in imported}
    assert set(items) == {"a", "b"}
    annotations = items["a"].annotations
    assert len(annotations) == 5
    (box,) = [a for a in annotations if a.type == dm.AnnotationType.bbox]
    assert (box.x, box.y, box.x + box.w, box.y + box.h) == pytest.approx((1.5, 2.25, 30, 40), abs=1e-2)
    masks = [a for a in annotations if a.type == dm.AnnotationType.mask]
    assert len(masks) == 2 and (masks[0].image.astype(bool) == MASK).all()


def test_imports_datumaro_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    mask = np.zeros((40, 60), dtype=np.uint8)
    mask[5:10, 20:30] = 1
    source = dm.Dataset.from_iterable(
        [
            dm.DatasetItem(
                id="x",
                subset="default",
                media=dm.Image.from_numpy(data=np.zeros((40, 60, 3), dtype=np.uint8)),
                annotations=[
                    dm.Bbox(3, 4, 10, 20, label=1, id=1, attributes={"kind": "big", "occluded": True}),
                    dm.Polygon([1, 1, 9, 1, 9, 9], label=0, id=2),
                    dm.Mask(image=mask, label=0, id=3),
                ],
            )
        ],
        categories=["cat", "dog"],
    )
    source.export(str(tmp_path / "dm"), "label_me", save_media=True)
    (item,) = load(formats, FORMAT, tmp_path / "dm", tmp_path / "work").items()
    assert (item.name, item.width, item.height, item.image is not None) == ("x.jpg", 60, 40, True)
    box, polygon, from_mask = item.shapes
    assert box.label == "dog" and box.points == pytest.approx([3, 4, 13, 24], abs=1e-2) and box.occluded
    assert box.attributes == {"kind": "big"}
    assert polygon.points == pytest.approx([1, 1, 9, 1, 9, 9], abs=1e-2)
    assert (cvat_to_bitmap(from_mask.points, 60, 40) == mask.astype(bool)).all()


def test_names_outside_the_dataset_are_not_read(formats: FormatRegistry, tmp_path: Path) -> None:
    make_image(tmp_path / "secret.jpg", 10, 10)
    root = tmp_path / "in"
    root.mkdir()
    (root / "a.xml").write_text(_xml("", "<filename>../secret.jpg</filename><folder></folder>"))
    (item,) = load(formats, FORMAT, root, tmp_path / "work").items()
    assert item.image is None
    (root / "a.xml").write_text(_xml(_object("<segm><mask>../../secret.jpg</mask></segm>")))
    with pytest.raises(FormatError, match="mask file '../../secret.jpg' is missing"):
        list(load(formats, FORMAT, root, tmp_path / "work2").items())


def test_nested_names_keep_their_own_masks(formats: FormatRegistry, tmp_path: Path) -> None:
    other = polygons_to_bitmap([[40, 5, 60, 5, 60, 20]], 64, 48)
    items = [
        Item(
            name=name,
            width=64,
            height=48,
            shapes=[Shape(type="mask", label="cat", points=bitmap_to_cvat(bitmap))],
        )
        for name, bitmap in (("a.jpg", MASK), ("sub/a.jpg", other))
    ]
    target = export(formats, FORMAT, dataset(items, LABELS), tmp_path / "out.zip")
    assert {"a.xml", "sub/a.xml", "Masks/a_mask_0.png", "Masks/sub/a_mask_0.png"} <= set(
        zipfile.ZipFile(target).namelist()
    )
    loaded = {item.name: item for item in load(formats, FORMAT, target, tmp_path / "work").items()}
    assert set(loaded) == {"a.jpg", "sub/a.jpg"}
    assert (cvat_to_bitmap(loaded["a.jpg"].shapes[0].points, 64, 48) == MASK).all()
    assert (cvat_to_bitmap(loaded["sub/a.jpg"].shapes[0].points, 64, 48) == other).all()
