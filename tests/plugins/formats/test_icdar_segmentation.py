"""ICDAR Segmentation 1.0: round trip, ICDAR's own files, Datumaro cross-checks, bad input, detection."""

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

SEGMENTATION = "ICDAR Segmentation 1.0"
LABELS = [LabelSpec(name="icdar")]


def _items(tmp_path: Path) -> list[Item]:
    def char(left: int, text: str, group: int, **attributes: str) -> Shape:
        points = masks.bitmap_to_cvat(block(left, 2, left + 3, 8))
        return Shape(
            type="mask", label="icdar", points=points, group=group, attributes={"text": text, **attributes}
        )

    return [
        Item(
            name="img_1.png",
            width=20,
            height=10,
            image=str(make_image(tmp_path / "src" / "1.png", 20, 10)),
            shapes=[
                char(0, "H", 1, color="10 20 30", center="1 5"),
                char(4, "i", 1),
                char(8, " ", 0),
                Shape(type="rectangle", label="icdar", points=[12, 2, 15, 8], attributes={"text": '"'}),
            ],
        ),
        Item(name="img_2.jpg", subset="test", width=20, height=10),
    ]


def test_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    target = export(
        formats, SEGMENTATION, dataset(_items(tmp_path), LABELS), tmp_path / "o.zip", save_images=True
    )
    archive = zipfile.ZipFile(target)
    assert set(archive.namelist()) == {
        "default/img_1_GT.txt",
        "default/img_1_GT.bmp",
        "default/images/img_1.png",
        "test/img_2_GT.txt",
    }
    lines = archive.read("default/img_1_GT.txt").decode().splitlines()
    assert lines[0] == '10 20 30 1 5 0 2 3 8 "H"'
    assert lines[1].endswith(' - - 4 2 7 8 "i"') and lines[2] == ""
    assert lines[3].startswith("#") and lines[3].endswith('8 2 11 8 " "') and lines[4] == ""
    assert lines[5].endswith('"""')
    painted = np.asarray(Image.open(io.BytesIO(archive.read("default/img_1_GT.bmp"))).convert("RGB"))
    assert painted[5, 1].tolist() == [10, 20, 30] and painted[0, 0].tolist() == [255, 255, 255]
    assert archive.read("test/img_2_GT.txt") == b""

    result = load(formats, SEGMENTATION, target, tmp_path / "work")
    assert [(a.name, a.input_type) for a in result.labels[0].attributes] == [
        ("index", "number"),
        ("color", "text"),
        ("center", "text"),
        ("text", "text"),
    ]
    items = items_by_name(result)
    first = items["img_1"]
    assert (first.name, first.width) == ("img_1.png", 20)
    shapes = first.shapes
    assert [s.attributes["text"] for s in shapes] == ["H", "i", " ", '"']
    assert [s.attributes["index"] for s in shapes] == ["0", "1", "2", "3"]
    assert shapes[0].attributes["color"] == "10 20 30" and shapes[0].attributes["center"] == "1 5"
    assert shapes[0].group == shapes[1].group != 0 and shapes[2].group == 0 and shapes[3].group == 0
    assert masks.cvat_to_bitmap(shapes[3].points, 20, 10).tolist() == block(12, 2, 16, 9).tolist()
    assert items["img_2"].shapes == [] and items["img_2"].subset == "test"

    polygons = items_by_name(load(formats, SEGMENTATION, target, tmp_path / "w2", conv_mask_to_poly=True))
    assert [s.type for s in polygons["img_1"].shapes] == ["polygon"] * 4


def test_reads_icdar_files(formats: FormatRegistry, tmp_path: Path) -> None:
    """ICDAR 2013's own files: words separated by blank lines, no images (optional)."""
    root = tmp_path / "in" / "train"
    root.mkdir(parents=True)
    (root / "100_GT.txt").write_text(
        '0 0 255 2 2 0 0 4 4 "A"\n0 255 0 6 2 5 0 8 4 "b"\n\n255 0 0 2 8 0 6 4 9 "c"\n'
    )
    pixels = np.full((10, 10, 3), 255, dtype=np.uint8)
    pixels[0:4, 0:4] = (0, 0, 255)
    pixels[0:4, 5:8] = (0, 255, 0)
    pixels[6:9, 0:4] = (255, 0, 0)
    Image.fromarray(pixels).save(root / "100_GT.bmp")
    fmt = formats.find(SEGMENTATION)
    assert fmt is not None and fmt.detect is not None and fmt.detect(tmp_path / "in") > 0.5
    (item,) = list(load(formats, SEGMENTATION, tmp_path / "in", tmp_path / "work").items())
    assert (item.name, item.subset, item.width) == ("100", "train", 10)
    assert [(s.attributes["text"], s.group) for s in item.shapes] == [("A", 1), ("b", 1), ("c", 0)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('1 2 3 4 5 6 7 8 "a"\n', r"t/x_GT.txt:1: item 'x': annotation 0: expected 10 values"),
        (
            'a b c 4 5 6 7 8 9 "a"\n',
            r"t/x_GT.txt:1: item 'x': annotation 0: the colour must be three integers",
        ),
        (
            '9 9 9 - - 0 0 1 1 "a"\n',
            r"t/x_GT.bmp: item .x.: the colour \(0, 0, 0\) is not a known character colour \(the characters",
        ),
    ],
)
def test_bad_files(formats: FormatRegistry, tmp_path: Path, text: str, message: str) -> None:
    root = tmp_path / "in" / "t"
    root.mkdir(parents=True)
    (root / "x_GT.txt").write_text(text)
    Image.fromarray(np.zeros((2, 2, 3), dtype=np.uint8)).save(root / "x_GT.bmp")
    with pytest.raises(FormatError, match=message):
        list(load(formats, SEGMENTATION, tmp_path / "in", tmp_path / "work").items())


def test_refuses_what_it_cannot_write(formats: FormatRegistry, tmp_path: Path) -> None:
    shape = Shape(type="rectangle", label="icdar", points=[0, 0, 2, 2], attributes={"text": "a b"})
    with pytest.raises(FormatError, match=r"item 'a.png': annotation 0: the text 'a b' holds white space"):
        export(formats, SEGMENTATION, dataset([Item(name="a.png", shapes=[shape])], LABELS), tmp_path / "o1")
    shape = Shape(type="rectangle", label="icdar", points=[0, 0, 2, 2], attributes={"color": "1 2"})
    with pytest.raises(FormatError, match=r"item 'a.png': annotation 0: the color '1 2' is not 'R G B'"):
        export(formats, SEGMENTATION, dataset([Item(name="a.png", shapes=[shape])], LABELS), tmp_path / "o2")


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    exported = export(formats, SEGMENTATION, dataset(_items(tmp_path), LABELS), tmp_path / "out")
    assert_detected(formats, SEGMENTATION, exported, tmp_path / "src")


def test_datumaro_reads_the_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    exported = export(
        formats, SEGMENTATION, dataset(_items(tmp_path), LABELS), tmp_path / "out", save_images=True
    )
    imported = {(i.subset, i.id): i for i in dm.Dataset.import_from(str(exported), "icdar_text_segmentation")}
    assert set(imported) == {("default", "img_1"), ("test", "img_2")}
    anns = imported[("default", "img_1")].annotations
    assert [a.attributes["text"] for a in anns] == ["H", "i", " ", '"']
    assert [a.attributes["color"] for a in anns][0] == "10 20 30"
    assert anns[0].group == anns[1].group != 0 and anns[2].group == 0
    assert anns[0].image.tolist() == block(0, 2, 3, 8).tolist()
    assert imported[("default", "img_1")].media.data.shape[:2] == (10, 20)


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
                    dm.Mask(
                        image=block(0, 0, 5, 5),
                        group=1,
                        attributes={"index": 0, "color": "82 174 214", "text": "j", "center": "0 1"},
                    ),
                    dm.Mask(image=block(5, 0, 10, 5), group=1, attributes={"index": 1, "text": "u"}),
                    dm.Mask(image=block(12, 0, 15, 5), attributes={"index": 2, "text": " "}),
                ],  # fmt: skip
            ),
        ],
    )
    source.export(str(tmp_path / "dm"), "icdar_text_segmentation", save_media=True)
    items = items_by_name(load(formats, SEGMENTATION, tmp_path / "dm", tmp_path / "work"))
    a = items["a"]
    assert (a.subset, a.name, a.width) == ("train", "a.png", 20)
    assert [(s.attributes["text"], s.attributes["index"]) for s in a.shapes] == [
        ("j", "0"),
        ("u", "1"),
        (" ", "2"),
    ]
    assert a.shapes[0].attributes["color"] == "82 174 214" and a.shapes[0].attributes["center"] == "0 1"
    assert a.shapes[0].group == a.shapes[1].group != 0 and a.shapes[2].group == 0
    assert masks.cvat_to_bitmap(a.shapes[1].points, 20, 10).tolist() == block(5, 0, 10, 5).tolist()
