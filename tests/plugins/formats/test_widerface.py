"""WiderFace 1.0: round trips, the benchmark's own files, Datumaro cross-checks, bad input, detection."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from annota.core.errors import FormatError
from annota.core.formats.model import AttributeSpec, Item, LabelSpec, Shape, Tag
from annota.core.formats.registry import FormatRegistry
from tests.plugins.formats.helpers import dataset, export, items_by_name, load, make_image

FORMAT = "WiderFace 1.0"
LABELS = [
    LabelSpec(
        name="face",
        attributes=[
            AttributeSpec(name="blur", input_type="number"),
            AttributeSpec(name="invalid", input_type="checkbox"),
        ],
    ),
    LabelSpec(name="parade"),
    LabelSpec(name="mask"),
]


def _items(tmp_path: Path) -> list[Item]:
    def image(name: str, seed: int) -> str:
        return str(make_image(tmp_path / "src" / name, 40, 30, seed=seed))

    return [
        Item(
            name="a.jpg",
            frame=0,
            width=40,
            height=30,
            image=image("a.jpg", 0),
            tags=[Tag(label="parade")],
            shapes=[
                Shape(
                    type="rectangle",
                    label="face",
                    points=[1, 2, 11, 22.5],
                    occluded=True,
                    attributes={"blur": "2", "invalid": "false"},
                ),
                Shape(type="rectangle", label="mask", points=[3, 4, 5, 6]),
                Shape(type="polygon", label="mask", points=[0, 0, 1, 1, 2, 0]),
                Shape(type="rectangle", label="face", points=[0, 0, 1, 1], outside=True),
            ],
        ),
        Item(name="b.png", frame=1, subset="val", width=40, height=30, image=image("b.png", 1)),
    ]


def test_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    target = export(
        formats, FORMAT, dataset(_items(tmp_path), LABELS), tmp_path / "out.zip", save_images=True
    )
    archive = zipfile.ZipFile(target)
    assert set(archive.namelist()) == {
        "labels.txt",
        "wider_face_split/wider_face_default_bbx_gt.txt",
        "wider_face_split/wider_face_val_bbx_gt.txt",
        "WIDER_default/images/1--parade/a.jpg",
        "WIDER_val/images/no_label/b.png",
    }
    assert archive.read("labels.txt").decode() == "face\nparade\nmask"
    assert archive.read("wider_face_split/wider_face_default_bbx_gt.txt").decode().splitlines() == [
        "1--parade/a.jpg",
        "2",
        "1 2 10 20.5 2.0 - - True - False",
        "3 4 2 2 - - - False - - mask",
    ]
    assert archive.read("wider_face_split/wider_face_val_bbx_gt.txt").decode() == "no_label/b.png\n"

    result = load(formats, FORMAT, target, tmp_path / "work")
    assert [label.name for label in result.labels] == ["face", "parade", "mask"]
    items = items_by_name(result)
    a, b = items["a"], items["b"]
    assert (a.name, a.subset, a.width, a.height, a.image is not None) == ("a.jpg", "default", 40, 30, True)
    assert [tag.label for tag in a.tags] == ["parade"]
    assert [(s.label, s.points, s.occluded, s.attributes) for s in a.shapes] == [
        ("face", [1, 2, 11, 22.5], True, {"blur": "2.0", "invalid": "false"}),
        ("mask", [3, 4, 5, 6], False, {}),
    ]
    assert (b.name, b.subset, b.tags, b.shapes) == ("b.png", "val", [], [])


def test_annotations_only(formats: FormatRegistry, tmp_path: Path) -> None:
    target = export(formats, FORMAT, dataset(_items(tmp_path), LABELS), tmp_path / "out")
    assert not (target / "WIDER_default").exists()
    items = items_by_name(load(formats, FORMAT, target, tmp_path / "work"))
    assert items["a"].image is None and len(items["a"].shapes) == 2


def test_reads_the_benchmark_files(formats: FormatRegistry, tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "wider_face_split").mkdir(parents=True)
    make_image(root / "WIDER_train" / "images" / "0--Parade" / "0_Parade_1.jpg", 20, 10)
    (root / "wider_face_split" / "wider_face_train_bbx_gt.txt").write_text(
        "0--Parade/0_Parade_1.jpg\n2\n1 2 3 4 2 0 0 0 0 1 \n5 6 7 8 0 0 0 1 0 0 \n"
        "0--Parade/0_Parade_2.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n"
        "0--Parade/0_Parade_3.jpg\n1\n1 1 1 1\n"
    )
    (root / "wider_face_split" / "wider_face_train_filelist.txt").write_text("1--Riot/x.jpg\n")
    fmt = formats.find(FORMAT)
    assert fmt is not None and fmt.detect is not None and fmt.detect(root) > 0.9
    result = load(formats, FORMAT, root, tmp_path / "work")
    assert [label.name for label in result.labels] == ["face", "Parade"]
    items = list(result.items())
    assert [(i.name, i.subset, [t.label for t in i.tags], len(i.shapes)) for i in items] == [
        ("0_Parade_1.jpg", "train", ["Parade"], 2),
        ("0_Parade_2.jpg", "train", ["Parade"], 0),
        ("0_Parade_3.jpg", "train", ["Parade"], 1),
        ("x.jpg", "train", [], 0),
    ]
    assert items[0].width == 20 and items[1].image is None
    first = items[0].shapes[0]
    assert (first.label, first.points, first.occluded) == ("face", [1, 2, 4, 6], False)
    assert first.attributes == {
        "blur": "2",
        "expression": "0",
        "illumination": "0",
        "pose": "0",
        "invalid": "1",
    }
    assert items[0].shapes[1].occluded


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("d/a.jpg\n1\n1 2 3\n", r"wider_face_default_bbx_gt.txt:3: item 'a.jpg': annotation 0: a box needs"),
        ("d/a.jpg\n1\n1 x 3 4\n", r"bbx_gt.txt:3: item 'a.jpg': annotation 0: 'x' is not a number"),
        ("d/a.jpg\n1\n1 2 3 4 cat\n", r"bbx_gt.txt:3: item 'a.jpg': annotation 0: label 'cat' is not among"),
        ("d/a.jpg\n2\n1 2 3 4\nd/b.jpg\n", r"bbx_gt.txt:4: item 'a.jpg': the image has 2 boxes, found 1"),
        ("d/a.jpg\n1\n1 2 -3 4\n", r"bbx_gt.txt:3: item 'a.jpg': annotation 0: the box has a negative size"),
        ("1 2 3 4\n", r"bbx_gt.txt:1: expected an image path"),
    ],
)
def test_bad_files(formats: FormatRegistry, tmp_path: Path, text: str, message: str) -> None:
    root = tmp_path / "in"
    (root / "wider_face_split").mkdir(parents=True)
    (root / "labels.txt").write_text("face\n")
    (root / "wider_face_split" / "wider_face_default_bbx_gt.txt").write_text(text)
    with pytest.raises(FormatError, match=message):
        list(load(formats, FORMAT, root, tmp_path / "work").items())


def test_refuses_whitespace_it_cannot_write(formats: FormatRegistry, tmp_path: Path) -> None:
    labels = [LabelSpec(name="face mask")]
    items = [Item(name="a.jpg", shapes=[Shape(type="rectangle", label="face mask", points=[0, 0, 1, 1])])]
    with pytest.raises(
        FormatError, match=r"item 'a.jpg': annotation 0: label 'face mask' contains whitespace"
    ):
        export(formats, FORMAT, dataset(items, labels), tmp_path / "out")


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    fmt = formats.find(FORMAT)
    assert fmt is not None and fmt.detect is not None
    source = dataset(_items(tmp_path), LABELS)
    assert fmt.detect(export(formats, FORMAT, source, tmp_path / "wider")) > 0.9
    assert fmt.detect(export(formats, "MOT 1.1", source, tmp_path / "mot")) == 0.0
    assert formats.detect(tmp_path / "wider")[0][1] is fmt


def test_datumaro_reads_the_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    target = export(formats, FORMAT, dataset(_items(tmp_path), LABELS), tmp_path / "out", save_images=True)
    imported = dm.Dataset.import_from(str(target), "wider_face")
    names = [label.name for label in imported.categories()[dm.AnnotationType.label]]
    assert names == ["face", "parade", "mask"]
    items = {(item.subset, item.id): item for item in imported}
    assert set(items) == {("default", "a"), ("val", "b")}
    a = items[("default", "a")]
    assert a.media.data.shape == (30, 40, 3)
    labels = [names[ann.label] for ann in a.annotations if ann.type == dm.AnnotationType.label]
    boxes = [ann for ann in a.annotations if ann.type == dm.AnnotationType.bbox]
    assert labels == ["parade"]
    assert [(names[b.label], b.get_bbox(), b.attributes) for b in boxes] == [
        ("face", [1.0, 2.0, 10.0, 20.5], {"blur": "2.0", "occluded": True, "invalid": False}),
        ("mask", [3.0, 4.0, 2.0, 2.0], {"occluded": False}),
    ]


def test_imports_datumaro_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    source = dm.Dataset.from_iterable(
        [
            dm.DatasetItem(
                id="x",
                subset="train",
                media=dm.Image.from_numpy(data=np.zeros((24, 32, 3), dtype=np.uint8)),
                annotations=[
                    dm.Label(1),
                    dm.Bbox(1, 2, 3, 4, label=0, attributes={"blur": "1", "occluded": True}),
                    dm.Bbox(5, 6, 7, 8, label=2),
                ],
            ),
            dm.DatasetItem(
                id="y",
                subset="test",
                media=dm.Image.from_numpy(data=np.zeros((24, 32, 3), dtype=np.uint8)),
            ),
        ],
        categories=["face", "crowd", "mask"],
    )
    source.export(str(tmp_path / "dm"), "wider_face", save_media=True)
    result = load(formats, FORMAT, tmp_path / "dm", tmp_path / "work")
    assert [label.name for label in result.labels] == ["face", "crowd", "mask"]
    items = items_by_name(result)
    x, y = items["x"], items["y"]
    assert (x.subset, x.width, x.height, [t.label for t in x.tags]) == ("train", 32, 24, ["crowd"])
    assert [(s.label, s.points, s.occluded, s.attributes) for s in x.shapes] == [
        ("face", [1, 2, 4, 6], True, {"blur": "1"}),
        ("mask", [5, 6, 12, 14], False, {}),
    ]
    assert (y.subset, y.tags, y.shapes, y.width) == ("test", [], [], 32)
