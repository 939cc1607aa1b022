"""MOT 1.1: tracks through gt.txt, Datumaro cross-checks, bad input, detection."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from annota.core.errors import FormatError
from annota.core.formats.model import AttributeSpec, Item, LabelSpec, Shape, Track, TrackShape
from annota.core.formats.registry import FormatRegistry
from annota.core.formats.tracks import gather_tracks
from tests.plugins.formats.helpers import dataset, export, load, make_image

FORMAT = "MOT 1.1"
LABELS = [LabelSpec(name="car"), LabelSpec(name="person")]


def _source(tmp_path: Path, save_images: bool = False) -> tuple[list[Item], list[Track]]:
    items = []
    for frame in range(5):
        image = make_image(tmp_path / "src" / f"f{frame}.jpg", 64, 48, seed=frame) if save_images else None
        items.append(
            Item(name=f"f{frame}.jpg", frame=frame, width=64, height=48, image=str(image) if image else None)
        )
    items[1].shapes = [Shape(type="rectangle", label="person", points=[1, 2, 11, 22], occluded=True)]
    items[3].shapes = [Shape(type="rectangle", label="car", points=[5, 5, 9, 9])]
    tracks = [
        Track(
            id=1,
            label="car",
            shapes=[
                TrackShape(frame=0, type="rectangle", points=[0, 0, 10, 10]),
                TrackShape(frame=2, type="rectangle", points=[20, 20, 30, 30]),
                TrackShape(frame=3, type="rectangle", points=[20, 20, 30, 30], outside=True),
            ],
        ),
        Track(
            id=2,
            label="person",
            shapes=[
                TrackShape(frame=1, type="rectangle", points=[40, 10, 50, 40], occluded=True),
                TrackShape(frame=2, type="rectangle", points=[40, 10, 50, 40], outside=True),
                TrackShape(frame=4, type="rectangle", points=[40, 12, 50, 42]),
            ],
        ),
    ]
    return items, tracks


def test_export_layout_and_lines(formats: FormatRegistry, tmp_path: Path) -> None:
    items, tracks = _source(tmp_path, save_images=True)
    target = export(formats, FORMAT, dataset(items, LABELS, tracks), tmp_path / "out.zip", save_images=True)
    archive = zipfile.ZipFile(target)
    assert {"gt/gt.txt", "gt/labels.txt", "img1/000001.jpg", "img1/000005.jpg"} <= set(archive.namelist())
    assert archive.read("gt/labels.txt").decode() == "car\nperson\n"
    lines = archive.read("gt/gt.txt").decode().splitlines()
    assert lines[0] == "1,1,0,0,10,10,1,1,1"
    assert "2,2,40,10,10,30,1,2,0" in lines  # occluded: visibility 0
    plain = [line for line in lines if line.startswith(("2,", "4,")) and line.split(",")[1] not in ("1", "2")]
    assert len(plain) == 2 and len({line.split(",")[1] for line in plain}) == 2  # fresh, distinct ids
    assert not any(line.startswith("4,1,") for line in lines)  # track 1 is outside from frame 3


def test_round_trip_restores_tracks(formats: FormatRegistry, tmp_path: Path) -> None:
    items, tracks = _source(tmp_path, save_images=True)
    target = export(formats, FORMAT, dataset(items, LABELS, tracks), tmp_path / "out.zip", save_images=True)
    result = load(formats, FORMAT, target, tmp_path / "work")
    assert [label.name for label in result.labels] == ["car", "person"]
    loaded = list(result.items())
    assert [(item.frame, item.name, item.width) for item in loaded] == [
        (i, f"{i + 1:06d}.jpg", 64) for i in range(5)
    ]
    pairs = [(item.frame, shape) for item in loaded for shape in item.shapes]
    # plain boxes come back as one-frame tracks (closed by an outside shape), as in CVAT
    plain = [(frame, shape) for frame, shape in pairs if shape.track_id not in (1, 2)]
    assert [(frame, shape.outside) for frame, shape in plain] == [
        (1, False),
        (2, True),
        (3, False),
        (4, True),
    ]
    assert plain[0][1].occluded and plain[0][1].points == pytest.approx([1, 2, 11, 22])
    gathered = {track.id: track for track in gather_tracks((f, s) for f, s in pairs if s.track_id in (1, 2))}
    car = gathered[1]
    assert car.label == "car"
    assert [(s.frame, s.outside) for s in car.shapes] == [(0, False), (1, False), (2, False), (3, True)]
    assert car.shapes[1].points == pytest.approx([10, 10, 20, 20])  # interpolated frame exported as is
    person = gathered[2]
    # the gap between frame 1 and 4 is closed with an outside shape, as CVAT does
    assert [(s.frame, s.outside, s.occluded) for s in person.shapes] == [
        (1, False, True),
        (2, True, False),
        (4, False, False),
    ]


def test_import_without_images_binds_by_frame(formats: FormatRegistry, tmp_path: Path) -> None:
    root = tmp_path / "in"
    (root / "gt").mkdir(parents=True)
    (root / "gt" / "gt.txt").write_text("3,7,1.5,2,10,20,1,1,0.86\n1,7,0,0,10,20,0,1,1\n")
    labels = [
        LabelSpec(name="pedestrian", attributes=[AttributeSpec(name="visibility", input_type="number")])
    ]
    result = load(formats, FORMAT, root, tmp_path / "work", labels=labels)
    assert len(result.labels) == 12  # the MOT challenge classes without labels.txt
    loaded = list(result.items())
    assert [(item.frame, item.name) for item in loaded] == [(0, "000001"), (1, "000002"), (2, "000003")]
    assert loaded[0].shapes[0].attributes == {"visibility": "1"}
    assert loaded[1].shapes[0].outside  # the track skips frame 2
    last = loaded[2].shapes[0]
    assert last.points == pytest.approx([1.5, 2, 11.5, 22]) and last.attributes == {"visibility": "0.86"}
    assert last.track_id == 7 and not last.occluded


def test_extra_columns_blank_lines_and_crlf_import(formats: FormatRegistry, tmp_path: Path) -> None:
    """MOT files with world coordinates after the visibility (10 columns), spaces after the commas,
    CRLF ends, blank lines and zero-size boxes are read as CVAT reads them."""
    root = tmp_path / "in"
    (root / "gt").mkdir(parents=True)
    text = "\r\n1, 4, 1, 2, 3, 4, 1, 2, 0.5, -1\r\n\r\n1,5,6,6,0,0,1,1,1,-1,-1,-1\r\n  \r\n"
    (root / "gt" / "gt.txt").write_bytes(text.encode())
    (root / "gt" / "labels.txt").write_bytes(b"car\r\nperson\r\n")
    (item,) = load(formats, FORMAT, root, tmp_path / "work").items()
    assert [(s.label, s.points, s.track_id) for s in item.shapes] == [
        ("person", [1, 2, 4, 6], 4),
        ("car", [6, 6, 6, 6], 5),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,1,0,0,10,10,1,3,1\n", r"gt/gt.txt:1: class id 3"),
        ("1,1,0,0,10,10,1,1,1\n1,2,0,zero,10,10,1,1,1\n", r"gt/gt.txt:2: 'zero' is not a number"),
        ("1,1,0,0,-1,10,1,1,1\n", r"gt/gt.txt:1: .*negative size"),
        ("0,1,0,0,1,10,1,1,1\n", r"gt/gt.txt:1: frame id 0"),
        ("1,1,0,0,1\n", r"gt/gt.txt:1: expected frame"),
    ],
)
def test_bad_lines(formats: FormatRegistry, tmp_path: Path, text: str, message: str) -> None:
    root = tmp_path / "in"
    (root / "gt").mkdir(parents=True)
    (root / "gt" / "gt.txt").write_text(text)
    (root / "gt" / "labels.txt").write_text("car\nperson\n")
    with pytest.raises(FormatError, match=message):
        list(load(formats, FORMAT, root, tmp_path / "work").items())


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    items, tracks = _source(tmp_path)
    fmt = formats.find(FORMAT)
    assert fmt is not None and fmt.detect is not None
    assert fmt.detect(export(formats, FORMAT, dataset(items, LABELS, tracks), tmp_path / "mot")) > 0.9
    assert fmt.detect(export(formats, "YOLO 1.1", dataset(items, LABELS, tracks), tmp_path / "yolo")) == 0.0


def test_datumaro_reads_the_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    items, tracks = _source(tmp_path)
    target = export(formats, FORMAT, dataset(items, LABELS, tracks), tmp_path / "out")
    imported = dm.Dataset.import_from(str(target), "mot_seq")
    assert [label.name for label in imported.categories()[dm.AnnotationType.label]] == ["car", "person"]
    boxes = sorted(
        (int(item.id), ann.attributes["track_id"], ann.label, ann.x, ann.y, ann.w, ann.h)
        for item in imported
        for ann in item.annotations
    )
    assert len(boxes) == 7
    assert boxes[0] == (1, 1, 0, 0, 0, 10, 10)
    person = [box for box in boxes if box[1] == 2]
    assert [box[0] for box in person] == [2, 5] and person[1][3:] == pytest.approx((40, 12, 10, 30), abs=1e-3)


def test_imports_datumaro_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    source = dm.Dataset.from_iterable(
        [
            dm.DatasetItem(
                id="1", annotations=[dm.Bbox(1, 2, 3, 4, label=0, id=1, attributes={"track_id": 5})]
            ),
            dm.DatasetItem(
                id="2",
                annotations=[
                    dm.Bbox(2, 2, 3, 4, label=0, id=2, attributes={"track_id": 5}),
                    dm.Bbox(7, 8, 2, 2, label=1, id=3, attributes={"occluded": True}),
                ],
            ),
        ],
        categories=["car", "person"],
    )
    source.export(str(tmp_path / "dm"), "mot_seq_gt")
    loaded = list(load(formats, FORMAT, tmp_path / "dm", tmp_path / "work").items())
    assert [item.frame for item in loaded] == [0, 1]
    tracked = [s for item in loaded for s in item.shapes if s.label == "car"]
    assert len({s.track_id for s in tracked}) == 1
    assert [s.points for s in tracked] == [pytest.approx([1, 2, 4, 6]), pytest.approx([2, 2, 5, 6])]
    (person,) = [s for s in loaded[1].shapes if s.label == "person"]
    assert person.occluded and person.points == pytest.approx([7, 8, 9, 10])
