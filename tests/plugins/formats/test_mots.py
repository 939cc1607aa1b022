"""MOTS PNG 1.0: tracks through instance maps, MOTS' own files, Datumaro cross-checks, bad input,
detection."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annota.core.errors import FormatError
from annota.core.formats import masks
from annota.core.formats.model import Item, LabelSpec, Shape, Track, TrackShape
from annota.core.formats.registry import FormatRegistry
from annota.core.formats.tracks import gather_tracks
from tests.plugins.formats.helpers import assert_detected, block, dataset, export, load, make_image

MOTS = "MOTS PNG 1.0"
LABELS = [LabelSpec(name="car"), LabelSpec(name="person")]


def _mask(left: int, top: int, right: int, bottom: int) -> list[float]:
    return masks.bitmap_to_cvat(block(left, top, right, bottom))


def _source(tmp_path: Path) -> tuple[list[Item], list[Track]]:
    items = [
        Item(name=f"{frame:06d}.png", frame=frame, width=20, height=10,
             image=str(make_image(tmp_path / "src" / f"{frame}.png", 20, 10, seed=frame)))
        for frame in range(4)
    ]  # fmt: skip
    items[1].shapes = [Shape(type="polygon", label="person", points=[10, 0, 14, 0, 14, 4, 10, 4])]
    tracks = [
        Track(
            id=3,
            label="car",
            shapes=[
                TrackShape(frame=0, type="mask", points=_mask(0, 0, 4, 4)),
                TrackShape(frame=1, type="mask", points=_mask(1, 1, 5, 5)),
                TrackShape(frame=2, type="mask", points=_mask(1, 1, 5, 5), outside=True),
                TrackShape(frame=3, type="mask", points=_mask(2, 2, 6, 6)),
            ],
        )
    ]
    return items, tracks


def test_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    items, tracks = _source(tmp_path)
    target = export(formats, MOTS, dataset(items, LABELS, tracks), tmp_path / "out.zip", save_images=True)
    archive = zipfile.ZipFile(target)
    assert set(archive.namelist()) == {
        "default/instances/labels.txt",
        "default/instances/000000.png",
        "default/instances/000001.png",
        "default/instances/000002.png",
        "default/instances/000003.png",
        *(f"default/images/{frame:06d}.png" for frame in range(4)),
    }
    assert archive.read("default/instances/labels.txt").decode() == "car\nperson\n"
    second = np.asarray(Image.open(io.BytesIO(archive.read("default/instances/000001.png"))))
    assert sorted(np.unique(second).tolist()) == [0, 1003, 2004]  # the plain polygon gets track 4

    result = load(formats, MOTS, target, tmp_path / "work")
    assert [label.name for label in result.labels] == ["car", "person", "ignored"]
    loaded = list(result.items(tracks=True))
    assert [(i.name, i.width) for i in loaded] == [(f"{frame:06d}.png", 20) for frame in range(4)]
    frames = [(frame, shape) for frame, item in enumerate(loaded) for shape in item.shapes]
    by_id = {track.id: track for track in gather_tracks(frames)}
    car = by_id[3]
    assert car.label == "car"
    assert [(s.frame, s.outside) for s in car.shapes] == [(0, False), (1, False), (2, True), (3, False)]
    assert masks.cvat_to_bitmap(car.shapes[1].points, 20, 10).tolist() == block(1, 1, 5, 5).tolist()
    person = by_id[4]
    assert [(s.frame, s.outside) for s in person.shapes] == [(1, False), (2, True)]
    assert masks.cvat_to_bitmap(person.shapes[0].points, 20, 10).sum() == 25


def test_reads_mots_files(formats: FormatRegistry, tmp_path: Path) -> None:
    """KITTI MOTS' own maps: no labels.txt (1 car, 2 pedestrian, 10 ignored), the same track id in two
    classes, subsets as directories, images missing (optional)."""
    root = tmp_path / "in" / "0002" / "instances"
    root.mkdir(parents=True)
    values = np.zeros((3, 4), dtype=np.uint16)
    values[0] = 1001
    values[1] = 2001
    values[2] = 10000
    Image.fromarray(values).save(root / "000000.png")
    # a sequence in a directory of its own: its track 1 is another track
    (root / "0005").mkdir()
    Image.fromarray(np.full((3, 4), 1001, dtype=np.uint16)).save(root / "0005" / "000000.png")
    fmt = formats.find(MOTS)
    assert fmt is not None and fmt.detect is not None and fmt.detect(tmp_path / "in") > 0.5
    result = load(formats, MOTS, tmp_path / "in", tmp_path / "work")
    assert [label.name for label in result.labels] == ["car", "pedestrian", "ignored"]
    item, other = list(result.items(tracks=True))
    assert (item.name, item.subset, item.width) == ("000000", "0002", 4)
    assert other.name == "0005/000000" and [s.track_id for s in other.shapes] == [1001]
    assert [(s.label, s.track_id, s.z_order) for s in item.shapes] == [
        ("car", 1, 0),
        ("pedestrian", 1000, 0),
        ("ignored", 0, 1),
    ]


def test_bad_files(formats: FormatRegistry, tmp_path: Path) -> None:
    root = tmp_path / "in" / "instances"
    root.mkdir(parents=True)
    (root / "labels.txt").write_text("car\n")
    Image.fromarray(np.full((2, 2), 3001, dtype=np.uint16)).save(root / "x.png")
    with pytest.raises(FormatError, match=r"instances/x.png: annotation 3001: class 3 \(pixel value 3001\)"):
        list(load(formats, MOTS, tmp_path / "in", tmp_path / "w1").items())
    Image.fromarray(np.zeros((2, 2, 3), dtype=np.uint8)).save(root / "x.png")
    with pytest.raises(FormatError, match=r"instances/x.png: the instance PNG is in RGB, a single channel"):
        list(load(formats, MOTS, tmp_path / "in", tmp_path / "w2").items())
    (root / "labels.txt").write_text("car\ncar\n")
    with pytest.raises(FormatError, match=r"instances/labels.txt: label 'car' is listed twice"):
        load(formats, MOTS, tmp_path / "in", tmp_path / "w3")


def test_refuses_too_many_tracks(formats: FormatRegistry, tmp_path: Path) -> None:
    shape = Shape(type="mask", label="car", points=_mask(0, 0, 2, 2), track_id=1000)
    with pytest.raises(
        FormatError, match=r"item 'a.png': annotation 0: track id 1000: MOTS holds at most 999"
    ):
        export(formats, MOTS, dataset([Item(name="a.png", shapes=[shape])], LABELS), tmp_path / "o")


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    items, tracks = _source(tmp_path)
    exported = export(formats, MOTS, dataset(items, LABELS, tracks), tmp_path / "out")
    assert_detected(formats, MOTS, exported, tmp_path / "src")


def test_datumaro_reads_the_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    items, tracks = _source(tmp_path)
    exported = export(formats, MOTS, dataset(items, LABELS, tracks), tmp_path / "out", save_images=True)
    imported = dm.Dataset.import_from(str(exported), "mots")
    names = [label.name for label in imported.categories()[dm.AnnotationType.label]]
    assert names == ["car", "person"]
    by_id = {i.id: i for i in imported}
    assert set(by_id) == {"000000", "000001", "000002", "000003"}
    second = by_id["000001"]
    assert second.media.data.shape[:2] == (10, 20)
    found = sorted((names[a.label], a.attributes["track_id"], int(a.image.sum())) for a in second.annotations)
    assert found == [("car", 3, 16), ("person", 4, 25)]
    assert by_id["000002"].annotations == []


def test_imports_datumaro_exports(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    image = dm.Image.from_numpy(data=np.zeros((10, 20, 3), dtype=np.uint8))
    source = dm.Dataset.from_iterable(
        [
            dm.DatasetItem(
                id=f"{frame:06d}",
                subset="train",
                media=image,
                annotations=[
                    dm.Mask(image=block(frame, 0, frame + 3, 3), label=1, attributes={"track_id": 2})
                ],
            )
            for frame in range(2)
        ],
        categories=["car", "person"],
    )
    source.export(str(tmp_path / "dm"), "mots_png", save_media=True)
    result = load(formats, MOTS, tmp_path / "dm", tmp_path / "work")
    assert [label.name for label in result.labels][:2] == ["car", "person"]
    loaded = list(result.items(tracks=True))
    assert [(i.subset, i.name, i.width) for i in loaded] == [
        ("train", "000000.jpg", 20),
        ("train", "000001.jpg", 20),
    ]
    shapes = [s for i in loaded for s in i.shapes]
    assert [(s.label, s.track_id) for s in shapes] == [("person", 2), ("person", 2)]
    assert masks.cvat_to_bitmap(shapes[1].points, 20, 10).tolist() == block(1, 0, 4, 3).tolist()
