"""ICDAR Recognition 1.0 and ICDAR Localization 1.0: round trips, the datasets' own files, Datumaro
cross-checks, bad input, detection."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from annota.core.errors import FormatError
from annota.core.formats.model import Item, LabelSpec, Shape, Tag
from annota.core.formats.registry import FormatRegistry
from tests.plugins.formats.helpers import dataset, export, items_by_name, load, make_image

RECOGNITION = "ICDAR Recognition 1.0"
LOCALIZATION = "ICDAR Localization 1.0"
LABELS = [LabelSpec(name="icdar"), LabelSpec(name="word")]


def _text(text: str) -> Tag:
    return Tag(label="icdar", attributes={"text": text})


def _recognition_items(tmp_path: Path) -> list[Item]:
    def image(name: str, seed: int) -> str:
        return str(make_image(tmp_path / "src" / name, 30, 10, seed=seed))

    return [
        Item(name="a.png", image=image("a.png", 0), tags=[_text("Hello"), _text('say "hi", \\o/')]),
        Item(name="b.jpg", image=image("b.jpg", 1)),
        Item(
            name="c.png",
            subset="test",
            image=image("c.png", 2),
            shapes=[Shape(type="rectangle", label="word", points=[0, 0, 1, 1], attributes={"text": "box"})],
        ),
    ]


def test_recognition_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    source = dataset(_recognition_items(tmp_path), LABELS)
    target = export(formats, RECOGNITION, source, tmp_path / "out.zip", save_images=True)
    archive = zipfile.ZipFile(target)
    assert set(archive.namelist()) == {
        "default/gt.txt",
        "test/gt.txt",
        "default/images/a.png",
        "default/images/b.jpg",
        "test/images/c.png",
    }
    assert archive.read("default/gt.txt").decode().splitlines() == [
        'a.png, "Hello"',
        'a.png, "say \\"hi\\", \\\\o/"',
        "b.jpg,",
    ]
    assert archive.read("test/gt.txt").decode() == 'c.png, "box"\n'
    result = load(formats, RECOGNITION, target, tmp_path / "work")
    assert [label.name for label in result.labels] == ["icdar"]
    items = items_by_name(result)
    assert [t.attributes["text"] for t in items["a"].tags] == ["Hello", 'say "hi", \\o/']
    assert (items["a"].name, items["a"].width, items["a"].height) == ("a.png", 30, 10)
    assert items["b"].tags == [] and items["c"].subset == "test"
    assert [(t.label, t.attributes) for t in items["c"].tags] == [("icdar", {"text": "box"})]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a.png, Hello\n", r"train/gt.txt:1: the text 'Hello' is not between quotes"),
        (', "x"\n', r"train/gt.txt:1: the line has no image name"),
    ],
)
def test_recognition_bad_lines(formats: FormatRegistry, tmp_path: Path, text: str, message: str) -> None:
    root = tmp_path / "in"
    (root / "train").mkdir(parents=True)
    (root / "train" / "gt.txt").write_text(text)
    with pytest.raises(FormatError, match=message):
        list(load(formats, RECOGNITION, root, tmp_path / "work").items())


def _localization_items() -> list[Item]:
    return [
        Item(
            name="a.png",
            width=30,
            height=20,
            shapes=[
                Shape(type="rectangle", label="word", points=[1, 2, 11, 12.5], attributes={"text": "Exit"}),
                Shape(
                    type="polygon", label="icdar", points=[0, 0, 5, 0, 5, 5, 0, 5], attributes={"text": "a b"}
                ),
                Shape(type="rectangle", label="word", points=[3, 3, 4, 4]),
                Shape(type="points", label="word", points=[1, 1]),
            ],
        ),
        Item(name="dir/b.jpg", subset="test", width=30, height=20),
    ]


def test_localization_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    target = export(formats, LOCALIZATION, dataset(_localization_items(), LABELS), tmp_path / "out.zip")
    archive = zipfile.ZipFile(target)
    assert set(archive.namelist()) == {"default/gt_a.txt", "test/dir/gt_b.txt"}
    assert archive.read("default/gt_a.txt").decode().splitlines() == [
        '1 2 11 12.5 "Exit"',
        '0,0,5,0,5,5,0,5,"a b"',
        "3 3 4 4",
    ]
    assert archive.read("test/dir/gt_b.txt").decode() == ""
    result = load(formats, LOCALIZATION, target, tmp_path / "work")
    items = items_by_name(result)
    assert [(s.type, s.label, s.points, s.attributes) for s in items["a"].shapes] == [
        ("rectangle", "icdar", [1, 2, 11, 12.5], {"text": "Exit"}),
        ("polygon", "icdar", [0, 0, 5, 0, 5, 5, 0, 5], {"text": "a b"}),
        ("rectangle", "icdar", [3, 3, 4, 4], {}),
    ]
    assert items["dir/b"].subset == "test" and items["dir/b"].shapes == []


def test_localization_reads_the_icdar_files(formats: FormatRegistry, tmp_path: Path) -> None:
    root = tmp_path / "in"
    make_image(root / "train" / "images" / "img_1.jpg", 40, 20)
    (root / "train" / "gt_img_1.txt").write_text(
        "\ufeff377,117,463,117,465,130,378,130,Genaxis Theatre\n493,115,519,115,519,131,493,131,###\n"
    )
    (root / "train" / "gt_img_2.txt").write_text('38 43 920 215 "Tiredness"\n')
    fmt = formats.find(LOCALIZATION)
    assert fmt is not None and fmt.detect is not None and fmt.detect(root) > 0.5
    items = list(load(formats, LOCALIZATION, root, tmp_path / "work").items())
    assert [(i.name, i.width) for i in items] == [("img_1.jpg", 40), ("img_2", None)]
    assert [s.attributes["text"] for s in items[0].shapes] == ["Genaxis Theatre", "###"]
    assert items[0].shapes[0].points == [377, 117, 463, 117, 465, 130, 378, 130]
    assert [(s.type, s.points, s.attributes) for s in items[1].shapes] == [
        ("rectangle", [38, 43, 920, 215], {"text": "Tiredness"})
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 2 3\n", r"test/gt_x.txt:1: item 'x': annotation 0: expected 4 box coordinates or at least 8"),
        ('1 2 3 4 "a\n', r"test/gt_x.txt:1: item 'x': unbalanced quotes"),
        ("5 5 1 1\n", r"test/gt_x.txt:1: item 'x': the box's second corner"),
    ],
)
def test_localization_bad_lines(formats: FormatRegistry, tmp_path: Path, text: str, message: str) -> None:
    root = tmp_path / "in"
    (root / "test").mkdir(parents=True)
    (root / "test" / "gt_x.txt").write_text(text)
    with pytest.raises(FormatError, match=message):
        list(load(formats, LOCALIZATION, root, tmp_path / "work").items())


def test_localization_refuses_what_it_cannot_write(formats: FormatRegistry, tmp_path: Path) -> None:
    triangle = Shape(type="polygon", label="word", points=[0, 0, 1, 0, 1, 1])
    with pytest.raises(FormatError, match=r"item 'a.png': annotation 0: ICDAR polygons need at least four"):
        export(
            formats, LOCALIZATION, dataset([Item(name="a.png", shapes=[triangle])], LABELS), tmp_path / "o1"
        )
    quoted = Shape(type="rectangle", label="word", points=[0, 0, 1, 1], attributes={"text": 'a"b'})
    with pytest.raises(FormatError, match=r"annotation 0: the text 'a\"b' contains a quote"):
        export(formats, LOCALIZATION, dataset([Item(name="a.png", shapes=[quoted])], LABELS), tmp_path / "o2")


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    recognition, localization = formats.find(RECOGNITION), formats.find(LOCALIZATION)
    assert recognition is not None and recognition.detect is not None
    assert localization is not None and localization.detect is not None
    words = export(formats, RECOGNITION, dataset(_recognition_items(tmp_path), LABELS), tmp_path / "rec")
    boxes = export(formats, LOCALIZATION, dataset(_localization_items(), LABELS), tmp_path / "loc")
    assert recognition.detect(words) > 0.5 and localization.detect(words) == 0.0
    assert localization.detect(boxes) > 0.5 and recognition.detect(boxes) == 0.0
    assert formats.detect(words)[0][1] is recognition and formats.detect(boxes)[0][1] is localization


def test_datumaro_reads_the_exports(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    items = _recognition_items(tmp_path)
    items[0].tags = [_text("Hello"), _text("World")]
    words = export(formats, RECOGNITION, dataset(items, LABELS), tmp_path / "rec", save_images=True)
    imported = {(i.subset, i.id): i for i in dm.Dataset.import_from(str(words), "icdar_word_recognition")}
    assert set(imported) == {("default", "a"), ("default", "b"), ("test", "c")}
    assert [a.caption for a in imported[("default", "a")].annotations] == ["Hello", "World"]
    assert imported[("default", "b")].annotations == []
    assert imported[("test", "c")].media.data.shape == (10, 30, 3)

    boxes = export(formats, LOCALIZATION, dataset(_localization_items(), LABELS), tmp_path / "loc")
    imported = {(i.subset, i.id): i for i in dm.Dataset.import_from(str(boxes), "icdar_text_localization")}
    assert set(imported) == {("default", "a"), ("test", "dir/b")}
    anns = imported[("default", "a")].annotations
    assert [(a.type.name, a.points, a.attributes) for a in anns] == [
        ("bbox", [1.0, 2.0, 11.0, 12.5], {"text": "Exit"}),
        ("polygon", [0.0, 0.0, 5.0, 0.0, 5.0, 5.0, 0.0, 5.0], {"text": "a b"}),
        ("bbox", [3.0, 3.0, 4.0, 4.0], {}),
    ]


def test_imports_datumaro_exports(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    image = dm.Image.from_numpy(data=np.zeros((20, 30, 3), dtype=np.uint8))
    source = dm.Dataset.from_iterable(
        [
            dm.DatasetItem(id="w1", subset="train", media=image, annotations=[dm.Caption("Word")]),
            dm.DatasetItem(id="w2", subset="train", media=image),
        ]
    )
    source.export(str(tmp_path / "rec"), "icdar_word_recognition", save_media=True)
    items = items_by_name(load(formats, RECOGNITION, tmp_path / "rec", tmp_path / "w1"))
    assert [t.attributes for t in items["w1"].tags] == [{"text": "Word"}]
    assert (items["w1"].name, items["w1"].width, items["w2"].tags) == ("w1.png", 30, [])

    source = dm.Dataset.from_iterable(
        [
            dm.DatasetItem(
                id="p",
                subset="val",
                media=image,
                annotations=[
                    dm.Bbox(1, 2, 3, 4, attributes={"text": "Box"}),
                    dm.Polygon([0, 0, 4, 0, 4, 4, 0, 4], attributes={"text": "Quad"}),
                    dm.Bbox(5, 5, 1, 1),
                ],
            )
        ]
    )
    source.export(str(tmp_path / "loc"), "icdar_text_localization", save_media=True)
    items = items_by_name(load(formats, LOCALIZATION, tmp_path / "loc", tmp_path / "w2"))
    p = items["p"]
    assert (p.subset, p.name, p.width) == ("val", "p.png", 30)
    assert [(s.type, s.points, s.attributes) for s in p.shapes] == [
        ("rectangle", [1, 2, 4, 6], {"text": "Box"}),
        ("polygon", [0, 0, 4, 0, 4, 4, 0, 4], {"text": "Quad"}),
        ("rectangle", [5, 5, 6, 6], {}),
    ]
