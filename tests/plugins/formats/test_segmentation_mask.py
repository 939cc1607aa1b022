"""Segmentation mask 1.1: round trip, written layout, Datumaro cross-checks, bad input, detection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annota.core.errors import FormatError
from annota.core.formats import masks
from annota.core.formats.model import Item, LabelSpec, Shape, Tag
from annota.core.formats.registry import FormatRegistry
from tests.plugins.formats.helpers import dataset, export, items_by_name, load, make_image

W, H = 64, 48
LABELS = [
    LabelSpec(name="road", color="#804080"),
    LabelSpec(name="car", color="#804080"),
    LabelSpec(name="sky"),
]


def _bitmap(top: int, left: int, bottom: int, right: int) -> np.ndarray:
    bitmap = np.zeros((H, W), dtype=bool)
    bitmap[top:bottom, left:right] = True
    return bitmap


def _items() -> list[Item]:
    return [
        Item(
            name="a.png",
            frame=0,
            width=W,
            height=H,
            tags=[Tag(label="sky")],
            shapes=[
                Shape(type="mask", label="road", points=masks.bitmap_to_cvat(_bitmap(30, 0, 48, 64))),
                Shape(
                    type="mask", label="car", z_order=2, points=masks.bitmap_to_cvat(_bitmap(25, 10, 40, 20))
                ),
                Shape(
                    type="mask", label="car", z_order=2, points=masks.bitmap_to_cvat(_bitmap(25, 40, 40, 50))
                ),
                Shape(type="polygon", label="sky", points=[0, 0, 63, 0, 63, 10, 0, 10]),
                Shape(type="rectangle", label="car", points=[1, 1, 5, 5]),
            ],
        ),
        Item(name="b.png", frame=1, width=W, height=H, subset="val"),
    ]


def test_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    items = _items()
    items[0].image = str(make_image(tmp_path / "src" / "a.png", W, H))
    out = export(
        formats, "Segmentation mask 1.1", dataset(items, LABELS), tmp_path / "out.zip", save_images=True
    )
    back = load(formats, "segmentation_mask", out, tmp_path / "work")
    # the second label's colour was taken by the first one: it gets a free one
    assert [(label.name, label.color) for label in back.labels][0] == ("road", "#804080")
    assert [label.name for label in back.labels] == ["road", "car", "sky"]
    assert len({label.color for label in back.labels}) == 3
    got = items_by_name(back)
    assert set(got) == {"a", "b"}
    a = got["a"]
    assert (a.name, a.width, a.height, a.tags) == ("a.png", W, H, [])
    assert a.image is not None and Path(a.image).is_file()
    assert got["b"].subset == "val" and got["b"].shapes == []
    found = sorted(
        (s.label, tuple(int(v) for v in masks.cvat_bbox(s.points))) for s in a.shapes if s.type == "mask"
    )
    assert found == [
        ("car", (10, 25, 19, 39)),
        ("car", (40, 25, 49, 39)),
        ("road", (0, 30, 63, 47)),
        ("sky", (0, 0, 63, 10)),
    ]
    road = next(s for s in a.shapes if s.label == "road")
    expected = _bitmap(30, 0, 48, 64) & ~_bitmap(25, 10, 40, 20) & ~_bitmap(25, 40, 40, 50)
    assert np.array_equal(masks.cvat_to_bitmap(road.points, W, H), expected)


def test_written_layout(formats: FormatRegistry, tmp_path: Path) -> None:
    out = export(formats, "Segmentation mask 1.1", dataset(_items(), LABELS), tmp_path / "out")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "ImageSets/Segmentation/default.txt",
        "ImageSets/Segmentation/val.txt",
        "SegmentationClass/a.png",
        "SegmentationClass/b.png",
        "SegmentationObject/a.png",
        "SegmentationObject/b.png",
        "labelmap.txt",
    ]
    lines = (out / "labelmap.txt").read_text().splitlines()
    assert lines[:3] == ["# label:color_rgb:parts:actions", "background:0,0,0::", "road:128,64,128::"]
    classes = Image.open(out / "SegmentationClass/a.png")
    palette = classes.getpalette()
    assert classes.mode == "P" and palette is not None and palette[3:6] == [128, 64, 128]
    assert np.asarray(Image.open(out / "SegmentationClass/b.png")).max() == 0


def test_conv_mask_to_poly(formats: FormatRegistry, tmp_path: Path) -> None:
    out = export(formats, "Segmentation mask 1.1", dataset(_items(), LABELS), tmp_path / "out")
    (item, _) = load(formats, "Segmentation mask 1.1", out, tmp_path / "work", conv_mask_to_poly=True).items()
    assert {s.type for s in item.shapes} == {"polygon"}
    assert sorted(s.label for s in item.shapes) == ["car", "car", "road", "sky"]


def test_bad_input(formats: FormatRegistry, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match="no ImageSets/Segmentation"):
        load(formats, "Segmentation mask 1.1", tmp_path / "empty", tmp_path / "w0")
    out = export(formats, "Segmentation mask 1.1", dataset(_items(), LABELS), tmp_path / "out")
    (out / "SegmentationObject/a.png").write_bytes(b"not a png")
    with pytest.raises(FormatError, match=r"^SegmentationObject/a.png: cannot read the instance PNG"):
        list(load(formats, "Segmentation mask 1.1", out, tmp_path / "w1").items())
    # an instance whose pixels are all background in the class PNG
    Image.fromarray(np.full((H, W), 3, dtype=np.uint8), mode="L").save(out / "SegmentationObject/a.png")
    Image.new("RGB", (W, H)).save(out / "SegmentationClass/a.png")
    with pytest.raises(
        FormatError, match=r"^SegmentationObject/a.png: annotation 3: instance 3 has no class"
    ):
        list(load(formats, "Segmentation mask 1.1", out, tmp_path / "w2").items())
    (out / "labelmap.txt").write_text("background:0,0,0::\nroad::\n")
    with pytest.raises(FormatError, match=r"^labelmap.txt:2: expected 4 ':'-separated fields, found 3"):
        load(formats, "Segmentation mask 1.1", out, tmp_path / "w3")


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    fmt = formats.get("Segmentation mask 1.1", direction="import")
    assert fmt.detect is not None
    out = export(formats, "Segmentation mask 1.1", dataset(_items(), LABELS), tmp_path / "out")
    assert fmt.detect(out) == 0.9
    coco = tmp_path / "coco" / "annotations"
    coco.mkdir(parents=True)
    (coco / "instances_default.json").write_text("{}")
    assert fmt.detect(tmp_path / "coco") == 0.0


def test_datumaro_both_ways(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    out = export(formats, "Segmentation mask 1.1", dataset(_items(), LABELS), tmp_path / "out")
    imported = dm.Dataset.import_from(str(out), "voc_segmentation")
    names = [c.name for c in imported.categories()[dm.AnnotationType.label]]
    assert names[:4] == ["background", "road", "car", "sky"]
    assert len(imported) == 2
    item = imported.get("a", "default")
    found = sorted((names[a.label], tuple(round(v) for v in a.get_bbox())) for a in item.annotations)
    assert found == [
        ("car", (10, 25, 10, 15)),
        ("car", (40, 25, 10, 15)),
        ("road", (0, 30, 64, 18)),
        ("sky", (0, 0, 64, 11)),
    ]

    car = _bitmap(5, 20, 10, 30)
    source = dm.Dataset.from_iterable(
        [
            dm.DatasetItem(
                id="img1",
                media=dm.Image.from_numpy(np.zeros((H, W, 3), dtype=np.uint8)),
                annotations=[dm.Mask(car, label=0, id=1), dm.Mask(_bitmap(30, 0, 40, 10), label=1, id=2)],
            )
        ],
        categories=["car", "person"],
    )
    source.export(str(tmp_path / "dm"), "voc_segmentation", save_media=True, label_map="source")
    back = load(formats, "Segmentation mask 1.1", tmp_path / "dm", tmp_path / "work")
    assert [label.name for label in back.labels] == ["car", "person"]
    (item_back,) = back.items()
    assert item_back.name == "img1.jpg" and len(item_back.shapes) == 2
    shapes = {s.label: masks.cvat_to_bitmap(s.points, W, H) for s in item_back.shapes}
    assert np.array_equal(shapes["car"], car)
    assert np.array_equal(shapes["person"], _bitmap(30, 0, 40, 10))
