"""VGGFace2 1.0: round trips, the dataset's own files, Datumaro cross-checks, bad input, detection."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from annota.core.errors import FormatError
from annota.core.formats.model import Item, LabelSpec, Shape, Tag
from annota.core.formats.registry import FormatRegistry
from tests.plugins.formats.helpers import dataset, export, items_by_name, load, make_image

FORMAT = "VGGFace2 1.0"
LABELS = [LabelSpec(name="n001"), LabelSpec(name="n002")]
LANDMARKS = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.5]


def _items(tmp_path: Path) -> list[Item]:
    def image(name: str, seed: int) -> str:
        return str(make_image(tmp_path / "src" / name, 40, 30, seed=seed))

    return [
        Item(
            name="a.jpg",
            width=40,
            height=30,
            image=image("a.jpg", 0),
            shapes=[
                Shape(type="rectangle", label="n001", points=[1, 2, 11, 22.5]),
                Shape(type="points", label="n001", points=LANDMARKS),
                Shape(type="polygon", label="n002", points=[0, 0, 1, 1, 2, 0]),
            ],
        ),
        Item(name="b.png", width=40, height=30, image=image("b.png", 1), tags=[Tag(label="n002")]),
        Item(name="c.jpg", subset="test", width=40, height=30, image=image("c.jpg", 2)),
    ]


def test_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    target = export(
        formats, FORMAT, dataset(_items(tmp_path), LABELS), tmp_path / "out.zip", save_images=True
    )
    archive = zipfile.ZipFile(target)
    assert set(archive.namelist()) == {
        "labels.txt",
        "bb_landmark/loose_landmark_default.csv",
        "bb_landmark/loose_bb_default.csv",
        "bb_landmark/loose_landmark_test.csv",
        "default/n001/a.jpg",
        "default/n002/b.png",
        "test/no_label/c.jpg",
    }
    assert archive.read("labels.txt").decode() == "n001\nn002\n"
    assert archive.read("bb_landmark/loose_landmark_default.csv").decode().splitlines() == [
        "NAME_ID,P1X,P1Y,P2X,P2Y,P3X,P3Y,P4X,P4Y,P5X,P5Y",
        "n001/a,1,2,3,4,5,6,7,8,9,10.5",
        "n002/b,,,,,,,,,,",
    ]
    assert archive.read("bb_landmark/loose_bb_default.csv").decode().splitlines() == [
        "NAME_ID,X,Y,W,H",
        "n001/a,1,2,10,20.5",
    ]
    result = load(formats, FORMAT, target, tmp_path / "work")
    assert [label.name for label in result.labels] == ["n001", "n002"]
    items = items_by_name(result)
    a, b, c = items["a"], items["b"], items["c"]
    assert (a.name, a.subset, a.width, a.height) == ("a.jpg", "default", 40, 30)
    assert [(s.type, s.label, s.points) for s in a.shapes] == [
        ("points", "n001", LANDMARKS),
        ("rectangle", "n001", [1, 2, 11, 22.5]),
    ]
    assert ([t.label for t in b.tags], b.shapes, b.name) == (["n002"], [], "b.png")
    assert (c.subset, c.tags, c.shapes, c.name) == ("test", [], [], "c.jpg")


def test_annotations_only(formats: FormatRegistry, tmp_path: Path) -> None:
    target = export(formats, FORMAT, dataset(_items(tmp_path), LABELS), tmp_path / "out")
    assert not (target / "default").exists()
    items = items_by_name(load(formats, FORMAT, target, tmp_path / "work"))
    assert items["a"].image is None and items["a"].name == "a" and len(items["a"].shapes) == 2


def test_reads_files_in_different_orders(formats: FormatRegistry, tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "bb_landmark").mkdir(parents=True)
    make_image(root / "train" / "n000001" / "0001_01.jpg", 20, 10)
    (root / "bb_landmark" / "loose_landmark_train.csv").write_text(
        "NAME_ID,P1X,P1Y,P2X,P2Y,P3X,P3Y,P4X,P4Y,P5X,P5Y,EXTRA\n"
        "n000001/0001_01,1,2,3,4,5,6,7,8,9,10,x\n"
        "n000002/0002_01,1,2,3,4,5,6,7,8,9,10,y\n"
    )
    (root / "bb_landmark" / "loose_bb_train.csv").write_text(
        "NAME_ID,X,Y,W,H\nn000002/0002_01,1,1,2,2\nn000003/0003_01,0,0,5,5\nn000001/0001_01,2,2,4,4\n"
    )
    fmt = formats.find(FORMAT)
    assert fmt is not None and fmt.detect is not None and fmt.detect(root) > 0.9
    result = load(formats, FORMAT, root, tmp_path / "work")
    assert [label.name for label in result.labels] == ["n000001"]
    with pytest.raises(
        FormatError, match=r"loose_landmark_train.csv:3: item 'n000002/0002_01': label 'n000002'"
    ):
        list(result.items())
    (root / "labels.txt").write_text("n000001 class\nn000002\nn000003\n")
    result = load(formats, FORMAT, root, tmp_path / "work2")
    items = list(result.items())
    assert [(i.name, i.width, [s.type for s in i.shapes]) for i in items] == [
        ("0001_01.jpg", 20, ["points", "rectangle"]),
        ("0002_01", None, ["points", "rectangle"]),
        ("0003_01", None, ["rectangle"]),
    ]
    assert items[0].shapes[1].points == [2, 2, 6, 6]


@pytest.mark.parametrize(
    ("landmarks", "boxes", "message"),
    [
        ("NAME_ID,P1X\nn1/a,x\n", "", None),
        ("", "NAME_ID,X,Y,W,H\nn1/a,1,y,2,2\n", r"loose_bb_default.csv:2: item 'n1/a': 'y' is not a number"),
        ("", "NAME_ID,X,Y,W,H\nn1/a,1,1,2,2\nn1/a,1,1,2,2\n", r"loose_bb_default.csv:3: .* only one box"),
        ("", "NAME_ID,X,Y,W,H\nno_label/a,1,1,2,2\n", r"loose_bb_default.csv:2: .* a box needs a label"),
        ("", "NAME_ID,X,Y,W,H\nn1/a,1,1,-2,2\n", r"loose_bb_default.csv:2: .* negative size"),
        ("ID,P1X\nn1/a,1\n", "", r"loose_landmark_default.csv:1: the header has no NAME_ID column"),
        (
            "NAME_ID\nn1/a\nn1/b\nn1/a\n",
            "",
            r"loose_landmark_default.csv:4: item 'n1/a': the rows of an image must be next to each other",
        ),
    ],
)
def test_bad_files(
    formats: FormatRegistry, tmp_path: Path, landmarks: str, boxes: str, message: str | None
) -> None:
    root = tmp_path / "in"
    (root / "bb_landmark").mkdir(parents=True)
    (root / "labels.txt").write_text("n1\n")
    if landmarks:
        (root / "bb_landmark" / "loose_landmark_default.csv").write_text(landmarks)
    if boxes:
        (root / "bb_landmark" / "loose_bb_default.csv").write_text(boxes)
    result = load(formats, FORMAT, root, tmp_path / "work")
    if message is None:  # an incomplete landmark row is a label, as CVAT reads it
        assert [[t.label for t in i.tags] for i in result.items()] == [["n1"]]
        return
    with pytest.raises(FormatError, match=message):
        list(result.items())


def test_refuses_two_boxes(formats: FormatRegistry, tmp_path: Path) -> None:
    box = Shape(type="rectangle", label="n001", points=[0, 0, 1, 1])
    items = [Item(name="a.jpg", shapes=[box, box])]
    with pytest.raises(FormatError, match=r"item 'a.jpg': VGGFace2 holds one box per image, found 2"):
        export(formats, FORMAT, dataset(items, LABELS), tmp_path / "out")


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    fmt = formats.find(FORMAT)
    assert fmt is not None and fmt.detect is not None
    source = dataset(_items(tmp_path), LABELS)
    assert fmt.detect(export(formats, FORMAT, source, tmp_path / "vgg")) > 0.9
    assert fmt.detect(export(formats, "WiderFace 1.0", source, tmp_path / "wider")) == 0.0
    assert formats.detect(tmp_path / "vgg")[0][1] is fmt


def test_datumaro_reads_the_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    target = export(formats, FORMAT, dataset(_items(tmp_path), LABELS), tmp_path / "out", save_images=True)
    imported = dm.Dataset.import_from(str(target), "vgg_face2")
    names = [label.name for label in imported.categories()[dm.AnnotationType.label]]
    assert names == ["n001", "n002"]
    items = {(item.subset, item.id): item for item in imported}
    assert set(items) == {("default", "n001/a"), ("default", "n002/b"), ("test", "no_label/c")}
    a = items[("default", "n001/a")]
    assert a.media.data.shape == (30, 40, 3)
    assert sorted(
        (ann.type.name, names[ann.label], ann.points if ann.type.name == "points" else ann.get_bbox())
        for ann in a.annotations
    ) == [
        ("bbox", "n001", [1.0, 2.0, 10.0, 20.5]),
        ("points", "n001", LANDMARKS),
    ]
    assert [(ann.type.name, names[ann.label]) for ann in items[("default", "n002/b")].annotations] == [
        ("label", "n002")
    ]
    assert items[("test", "no_label/c")].annotations == []


def test_imports_datumaro_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    image = dm.Image.from_numpy(data=np.zeros((24, 32, 3), dtype=np.uint8))
    source = dm.Dataset.from_iterable(
        [
            dm.DatasetItem(
                id="x",
                subset="train",
                media=image,
                annotations=[dm.Bbox(1, 2, 3, 4, label=0), dm.Points(LANDMARKS, label=0)],
            ),
            dm.DatasetItem(id="y", subset="train", media=image, annotations=[dm.Label(1)]),
            dm.DatasetItem(id="z", subset="val", media=image),
        ],
        categories=["p1", "p2"],
    )
    source.export(str(tmp_path / "dm"), "vgg_face2", save_media=True)
    result = load(formats, FORMAT, tmp_path / "dm", tmp_path / "work")
    assert [label.name for label in result.labels] == ["p1", "p2"]
    items = items_by_name(result)
    x, y, z = items["x"], items["y"], items["z"]
    assert (x.subset, x.name, x.width, x.height) == ("train", "x.jpg", 32, 24)
    assert [(s.type, s.label, s.points) for s in x.shapes] == [
        ("points", "p1", LANDMARKS),
        ("rectangle", "p1", [1, 2, 4, 6]),
    ]
    assert ([t.label for t in y.tags], y.shapes) == (["p2"], [])
    assert (z.subset, z.tags, z.shapes, z.width) == ("val", [], [], 32)
