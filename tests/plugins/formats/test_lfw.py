"""LFW 1.0: round trip, the dataset's own files, Datumaro cross-checks, bad input, detection."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from annota.core.errors import FormatError
from annota.core.formats.model import Item, LabelSpec, Shape, Tag
from annota.core.formats.registry import FormatRegistry
from tests.plugins.formats.helpers import assert_detected, dataset, export, items_by_name, load, make_image

LFW = "LFW 1.0"
LABELS = [LabelSpec(name="alice"), LabelSpec(name="bob"), LabelSpec(name="carol")]


def _items(tmp_path: Path) -> list[Item]:
    def image(name: str, seed: int) -> str:
        return str(make_image(tmp_path / "src" / name, 20, 16, seed=seed))

    landmarks = Shape(type="points", label="alice", points=[1, 2, 3.5, 4, 5, 6])
    return [
        Item(
            name="alice_0001.jpg",
            image=image("a1.jpg", 0),
            tags=[
                Tag(label="alice", attributes={"positive_pairs": "alice_0002", "negative_pairs": "bob_0001"})
            ],
            shapes=[landmarks, Shape(type="rectangle", label="alice", points=[0, 0, 1, 1])],
        ),
        Item(name="alice_0002.jpg", image=image("a2.jpg", 1), tags=[Tag(label="alice")]),
        Item(name="bob_0001.jpg", image=image("b1.jpg", 2), tags=[Tag(label="bob")]),
        Item(
            name="nobody.jpg",
            subset="test",
            image=image("n.jpg", 3),
            shapes=[Shape(type="points", label="carol", points=[7, 8])],
        ),
    ]


def test_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    source = dataset(_items(tmp_path), LABELS)
    target = export(formats, LFW, source, tmp_path / "out.zip", save_images=True)
    archive = zipfile.ZipFile(target)
    assert set(archive.namelist()) == {
        "default/annotations/pairs.txt",
        "default/annotations/people.txt",
        "default/annotations/landmarks.txt",
        "test/annotations/pairs.txt",
        "test/annotations/people.txt",
        "test/annotations/landmarks.txt",
        "default/images/alice/alice_0001.jpg",
        "default/images/alice/alice_0002.jpg",
        "default/images/bob/bob_0001.jpg",
        "test/images/nobody.jpg",
    }
    assert archive.read("default/annotations/pairs.txt").decode().splitlines() == [
        "alice\t1\t2",
        "alice\t1\tbob\t1",
        "alice/alice_0002",
        "bob/bob_0001",
    ]
    assert archive.read("default/annotations/people.txt").decode() == "alice\t2\nbob\t1\ncarol\t0\n"
    assert (
        archive.read("default/annotations/landmarks.txt").decode()
        == "alice/alice_0001.jpg\t1\t2\t3.5\t4\t5\t6\n"
    )
    result = load(formats, LFW, target, tmp_path / "work")
    assert [label.name for label in result.labels] == ["alice", "bob", "carol"]
    assert [a.name for a in result.labels[0].attributes] == ["positive_pairs", "negative_pairs"]
    items = items_by_name(result)
    assert list(items) == ["alice_0001", "alice_0002", "bob_0001", "nobody"]
    first = items["alice_0001"]
    assert (first.name, first.width, first.height) == ("alice_0001.jpg", 20, 16)
    assert [(t.label, t.attributes) for t in first.tags] == [
        ("alice", {"positive_pairs": "alice_0002", "negative_pairs": "bob_0001"})
    ]
    assert [(s.type, s.label, s.points) for s in first.shapes] == [("points", "alice", [1, 2, 3.5, 4, 5, 6])]
    assert [(t.label, t.attributes) for t in items["bob_0001"].tags] == [("bob", {})]
    assert archive.read("test/annotations/landmarks.txt").decode() == "carol/nobody.jpg\t7\t8\n"
    nobody = items["nobody"]
    assert (nobody.subset, nobody.tags, nobody.width) == ("test", [], 20)
    assert [(s.label, s.points) for s in nobody.shapes] == [("carol", [7, 8])]


def test_reads_the_lfw_files(formats: FormatRegistry, tmp_path: Path) -> None:
    """LFW's own lists: a header line, numbered pairs, a mismatched pair without a person, no
    people.txt or images (optional), and an archive with annotations/ at its top."""
    root = tmp_path / "in" / "annotations"
    root.mkdir(parents=True)
    (root / "pairs.txt").write_text("10\t300\nAbel_Pacheco\t1\t4\nAbel_Pacheco\t1\t-\tstranger\nloner\n")
    (root / "landmarks.txt").write_text("Abel_Pacheco/Abel_Pacheco_0004.jpg\t10\t11\t12\t13\n")
    fmt = formats.find(LFW)
    assert fmt is not None and fmt.detect is not None and fmt.detect(tmp_path / "in") > 0.5
    items = list(load(formats, LFW, tmp_path / "in", tmp_path / "work").items())
    assert [(i.name, i.subset, [(t.label, t.attributes) for t in i.tags]) for i in items] == [
        ("Abel_Pacheco_0001", "default", [("Abel_Pacheco", {"positive_pairs": "Abel_Pacheco_0004",
                                                           "negative_pairs": "stranger"})]),
        ("Abel_Pacheco_0004", "default", [("Abel_Pacheco", {})]),
        ("stranger", "default", []),
        ("loner", "default", []),
    ]  # fmt: skip
    assert [(s.label, s.points) for s in items[1].shapes] == [("Abel_Pacheco", [10, 11, 12, 13])]


@pytest.mark.parametrize(
    ("file", "text", "message"),
    [
        (
            "pairs.txt",
            "a\t1\tb\t2\t3\n",
            r"s/annotations/pairs.txt:1: expected 1, 3 or 4 tab-separated fields",
        ),
        ("landmarks.txt", "p/p_0001.jpg\t1\tx\n", r"landmarks.txt:1: item 'p_0001': landmark coordinates"),
        (
            "landmarks.txt",
            "p/p_0001.jpg\t1\t2\t3\n",
            r"landmarks.txt:1: item 'p_0001': annotation 0: expected x y",
        ),
        (
            "landmarks.txt",
            "lost.jpg\t1\t2\n",
            r"landmarks.txt:1: item 'lost': annotation 0: the landmarks name no",
        ),
        ("people.txt", "a\tb\tc\n", r"people.txt:1: expected '<person> <count>'"),
    ],
)
def test_bad_lines(formats: FormatRegistry, tmp_path: Path, file: str, text: str, message: str) -> None:
    root = tmp_path / "in" / "s" / "annotations"
    root.mkdir(parents=True)
    (root / "pairs.txt").write_text("p/p_0001\n")
    (root / file).write_text(text)
    with pytest.raises(FormatError, match=message):
        list(load(formats, LFW, tmp_path / "in", tmp_path / "work").items())


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    exported = export(formats, LFW, dataset(_items(tmp_path), LABELS), tmp_path / "out")
    assert_detected(formats, LFW, exported, tmp_path / "src")


def test_datumaro_reads_the_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    exported = export(formats, LFW, dataset(_items(tmp_path), LABELS), tmp_path / "out", save_images=True)
    imported = dm.Dataset.import_from(str(exported), "lfw")
    names = [label.name for label in imported.categories()[dm.AnnotationType.label]]
    items = {(i.subset, i.id): i for i in imported}
    assert set(items) == {("default", "alice_0001"), ("default", "alice_0002"), ("default", "bob_0001"),
                          ("test", "nobody")}  # fmt: skip
    first = items[("default", "alice_0001")]
    label = next(a for a in first.annotations if a.type == dm.AnnotationType.label)
    assert names[label.label] == "alice"
    assert label.attributes == {"positive_pairs": ["alice/alice_0002"], "negative_pairs": ["bob/bob_0001"]}
    points = next(a for a in first.annotations if a.type == dm.AnnotationType.points)
    assert points.points == [1, 2, 3.5, 4, 5, 6]
    assert first.media.data.shape == (16, 20, 3)
    (landmarks,) = items[("test", "nobody")].annotations
    assert (names[landmarks.label], landmarks.points) == ("carol", [7, 8])


def test_imports_datumaro_exports(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    image = dm.Image.from_numpy(data=np.zeros((8, 12, 3), dtype=np.uint8))
    source = dm.Dataset.from_iterable(
        [
            dm.DatasetItem(
                id="name0_0001",
                subset="train",
                media=image,
                annotations=[
                    dm.Label(0, attributes={"positive_pairs": ["name0/name0_0002"]}),
                    dm.Points([0, 4, 3, 2, 2, 1], label=0),
                ],
            ),
            dm.DatasetItem(id="name0_0002", subset="train", media=image, annotations=[dm.Label(0)]),
            dm.DatasetItem(
                id="name1_0001",
                subset="train",
                media=image,
                annotations=[dm.Label(1, attributes={"negative_pairs": ["name0/name0_0001"]})],
            ),
        ],
        categories=["name0", "name1"],
    )
    source.export(str(tmp_path / "dm"), "lfw", save_media=True)
    result = load(formats, LFW, tmp_path / "dm", tmp_path / "work")
    assert [label.name for label in result.labels] == ["name0", "name1"]
    items = items_by_name(result)
    assert set(items) == {"name0_0001", "name0_0002", "name1_0001"}
    first = items["name0_0001"]
    assert (first.subset, first.name, first.width) == ("train", "name0_0001.jpg", 12)
    assert [(t.label, t.attributes) for t in first.tags] == [("name0", {"positive_pairs": "name0_0002"})]
    assert [(s.type, s.points) for s in first.shapes] == [("points", [0, 4, 3, 2, 2, 1])]
    assert [t.attributes for t in items["name1_0001"].tags] == [{"negative_pairs": "name0_0001"}]
