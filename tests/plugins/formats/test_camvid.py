"""CamVid 1.0: round trip, CamVid's own files, Datumaro cross-checks, bad input, detection."""

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

CAMVID = "CamVid 1.0"
LABELS = [
    LabelSpec(name="car", color="#ff0000"),
    LabelSpec(name="road", color="#00ff00"),
    LabelSpec(name="sky"),
]


def _items(tmp_path: Path) -> list[Item]:
    road = Shape(type="mask", label="road", points=masks.bitmap_to_cvat(block(0, 6, 20, 10)))
    car = Shape(type="polygon", label="car", points=[2, 2, 6, 2, 6, 7, 2, 7], z_order=1)
    return [
        Item(
            name="0001TP_006690.png",
            width=20,
            height=10,
            image=str(make_image(tmp_path / "src" / "1.png", 20, 10)),
            shapes=[road, car, Shape(type="rectangle", label="car", points=[0, 0, 1, 1])],
        ),
        Item(name="dir/empty.jpg", subset="val", width=20, height=10),
    ]


def test_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    target = export(
        formats, CAMVID, dataset(_items(tmp_path), LABELS), tmp_path / "out.zip", save_images=True
    )
    archive = zipfile.ZipFile(target)
    assert set(archive.namelist()) == {
        "label_colors.txt",
        "default.txt",
        "val.txt",
        "defaultannot/0001TP_006690.png",
        "default/0001TP_006690.png",
    }
    assert (
        archive.read("default.txt").decode() == "/default/0001TP_006690.png defaultannot/0001TP_006690.png\n"
    )
    assert archive.read("val.txt").decode() == "/val/dir/empty.jpg\n"
    assert archive.read("label_colors.txt").decode().splitlines()[:3] == [
        "0 0 0 background",
        "255 0 0 car",
        "0 255 0 road",
    ]
    painted = np.asarray(
        Image.open(io.BytesIO(archive.read("defaultannot/0001TP_006690.png"))).convert("RGB")
    )
    assert painted[8, 3].tolist() == [0, 255, 0] and painted[3, 3].tolist() == [255, 0, 0]
    assert painted[0, 0].tolist() == [255, 0, 0] and painted[0, 5].tolist() == [0, 0, 0]

    result = load(formats, CAMVID, target, tmp_path / "work")
    assert [label.name for label in result.labels] == ["car", "road", "sky"]
    items = items_by_name(result)
    first = items["0001TP_006690"]
    assert (first.name, first.width, first.height, first.subset) == ("0001TP_006690.png", 20, 10, "default")
    found = {s.label: masks.cvat_to_bitmap(s.points, 20, 10) for s in first.shapes}
    assert set(found) == {"car", "road"}
    assert found["road"].tolist() == (block(0, 6, 20, 10) & ~block(2, 2, 7, 8)).tolist()
    assert found["car"].sum() == 5 * 6 + 2 * 2  # the polygon and the rectangle
    empty = items["dir/empty"]
    assert (empty.name, empty.subset, empty.shapes, empty.width) == ("dir/empty.jpg", "val", [], None)

    polygons = load(formats, CAMVID, target, tmp_path / "work2", conv_mask_to_poly=True)
    shapes = items_by_name(polygons)["0001TP_006690"].shapes
    assert sorted((s.type, s.label) for s in shapes) == [("polygon", "car"), ("polygon", "road")]


def test_reads_camvid_files(formats: FormatRegistry, tmp_path: Path) -> None:
    """CamVid's own lists (SegNet's paths; no label_colors.txt: its 32 classes, Void the background)."""
    root = tmp_path / "in"
    make_image(root / "train" / "a.png", 4, 3)
    pixels = np.zeros((3, 4, 3), dtype=np.uint8)
    pixels[0, :] = (128, 64, 128)  # Road
    pixels[1, :2] = (64, 0, 128)  # Car
    (root / "trainannot").mkdir()
    Image.fromarray(pixels).save(root / "trainannot" / "a.png")
    # SegNet's lists name the files from its own root
    (root / "train.txt").write_text("/SegNet/CamVid/train/a.png /SegNet/CamVid/trainannot/a.png\n")
    fmt = formats.find(CAMVID)
    assert fmt is not None and fmt.detect is not None and fmt.detect(root) > 0.5
    result = load(formats, CAMVID, root, tmp_path / "work")
    assert len(result.labels) == 31 and result.labels[0].name == "Animal"
    (item,) = list(result.items())
    assert (item.name, item.subset, item.width) == ("a.png", "train", 4)
    assert sorted((s.label, int(masks.cvat_to_bitmap(s.points, 4, 3).sum())) for s in item.shapes) == [
        ("Car", 2),
        ("Road", 4),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("/s/a.png /sannot/a.png extra\n", r"s.txt:1: expected '<image> \[<mask>\]', found 3 fields"),
        ('"/s/a b.png" /sannot/a.png\n', r"s.txt:1: expected \"<image>\" \"<mask>\" with both paths quoted"),
        (
            "/s/a.png /sannot/missing.png\n",
            r"s.txt:1: item 'a': the mask 'sannot/missing.png' does not exist",
        ),
        ("/s/a.png /sannot/odd.png\n", r"sannot/odd.png: the colour \(1, 2, 3\) is not a known class colour"),
        ("/s/a.png ../../etc/passwd\n", r"s.txt:1: item 'a': '../../etc/passwd' is outside the dataset"),
    ],
)
def test_bad_lines(formats: FormatRegistry, tmp_path: Path, line: str, message: str) -> None:
    root = tmp_path / "in"
    (root / "sannot").mkdir(parents=True)
    Image.fromarray(np.full((2, 2, 3), (1, 2, 3), dtype=np.uint8)).save(root / "sannot" / "odd.png")
    (root / "label_colors.txt").write_text("0 0 0 background\n255 0 0 car\n")
    (root / "s.txt").write_text(line)
    with pytest.raises(FormatError, match=message):
        list(load(formats, CAMVID, root, tmp_path / "work").items())


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    exported = export(formats, CAMVID, dataset(_items(tmp_path), LABELS), tmp_path / "out")
    assert_detected(formats, CAMVID, exported, tmp_path / "src")


def test_datumaro_reads_the_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    exported = export(formats, CAMVID, dataset(_items(tmp_path), LABELS), tmp_path / "out", save_images=True)
    imported = dm.Dataset.import_from(str(exported), "camvid")
    names = [label.name for label in imported.categories()[dm.AnnotationType.label]]
    assert names == ["background", "car", "road", "sky"]
    items = {(i.subset, i.id): i for i in imported}
    assert set(items) == {("default", "0001TP_006690"), ("val", "dir/empty")}
    first = items[("default", "0001TP_006690")]
    assert first.media.data.shape[:2] == (10, 20)
    found = {names[a.label]: a.image for a in first.annotations}
    assert found["car"].sum() == 34 and found["road"].sum() == 80 - 10
    assert items[("val", "dir/empty")].annotations == []


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
                    dm.Mask(image=block(0, 0, 5, 5), label=1),
                    dm.Mask(image=block(10, 5, 20, 10), label=0),
                ],
            ),
            dm.DatasetItem(id="b", subset="train", media=image),
        ],
        categories=["car", "road"],
    )
    source.export(str(tmp_path / "dm"), "camvid", save_media=True)
    result = load(formats, CAMVID, tmp_path / "dm", tmp_path / "work")
    assert [label.name for label in result.labels] == ["car", "road"]
    items = items_by_name(result)
    a = items["a"]
    assert (a.subset, a.name, a.width) == ("train", "a.jpg", 20)
    found = {s.label: masks.cvat_to_bitmap(s.points, 20, 10) for s in a.shapes}
    assert found["road"].tolist() == block(0, 0, 5, 5).tolist()
    assert found["car"].tolist() == block(10, 5, 20, 10).tolist()
    assert items["b"].shapes == []
