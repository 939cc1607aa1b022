"""CVAT for images / CVAT for video 1.1 export and CVAT 1.1 import: round trips of both layouts,
Datumaro cross-checks, hostile and broken XML."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from annota.core.errors import FormatError
from annota.core.formats import masks
from annota.core.formats.model import AttributeSpec, Item, LabelSpec, Shape, Tag, Track, TrackShape
from annota.core.formats.registry import FormatRegistry
from tests.plugins.formats.helpers import dataset, export, items_by_name, load, make_image

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

W, H = 64, 48
SVG = (
    '<line x1="1" y1="1" x2="2" y2="2" data-type="edge" data-node-from="1" data-node-to="2"/>'
    '<circle r="1" cx="1" cy="1" data-type="element node" data-node-id="1" data-label-name="head"/>'
    '<circle r="1" cx="2" cy="2" data-type="element node" data-node-id="2" data-label-name="foot"/>'
)
LABELS = [
    LabelSpec(
        name="car",
        type="rectangle",
        color="#ff0000",
        attributes=[
            AttributeSpec(name="color", input_type="select", values=["red", "blue"], default_value="red"),
            AttributeSpec(name="speed", input_type="number", mutable=True, values=["0", "100", "1"]),
            AttributeSpec(name="parked", input_type="checkbox", default_value="false"),
        ],
    ),
    LabelSpec(name="person & co"),
    LabelSpec(
        name="body",
        type="skeleton",
        svg=SVG,
        sublabels=[
            LabelSpec(name="head", type="points", attributes=[AttributeSpec(name="seen", input_type="text")]),
            LabelSpec(name="foot", type="points"),
        ],
    ),
]


def _bitmap() -> np.ndarray:
    bitmap = np.zeros((H, W), dtype=bool)
    bitmap[10:20, 5:15] = True
    bitmap[12:14, 30:33] = True
    return bitmap


def _items() -> list[Item]:
    cuboid = [1, 2, 1, 12, 11, 2, 11, 12, 5, 0, 5, 10, 15, 0, 15, 10]
    return [
        Item(
            name="a.jpg",
            frame=0,
            width=W,
            height=H,
            tags=[Tag(label="car", group=3, source="auto", attributes={"color": "blue"})],
            shapes=[
                Shape(
                    type="rectangle",
                    label="car",
                    points=[1.5, 2.25, 11, 22],
                    rotation=30,
                    occluded=True,
                    z_order=2,
                    group=3,
                    source="semi-auto",
                    attributes={"color": "red", "speed": "5", "parked": "true"},
                ),
                Shape(type="polygon", label="person & co", points=[1, 1, 30, 1, 30, 25, 1, 20]),
                Shape(type="polyline", label="car", points=[0, 0, 5, 5.5]),
                Shape(type="points", label="car", points=[3, 4, 5, 6]),
                Shape(type="ellipse", label="car", points=[20, 20, 30, 15], rotation=10),
                Shape(type="cuboid", label="car", points=cuboid),
                Shape(type="mask", label="car", points=masks.bitmap_to_cvat(_bitmap()), z_order=1),
                Shape(
                    type="skeleton",
                    label="body",
                    points=[],
                    group=4,
                    elements=[
                        Shape(type="points", label="head", points=[10, 10], attributes={"seen": "<yes>"}),
                        Shape(type="points", label="foot", points=[12, 30], outside=True, occluded=True),
                    ],
                ),
            ],
        ),
        Item(name="dir/b.png", frame=1, width=W, height=H, subset="train"),
        Item(name="c.jpg", frame=2, width=W, height=H),
        Item(name="d.jpg", frame=3, width=W, height=H),
    ]


def _tracks() -> list[Track]:
    return [
        Track(
            id=5,
            label="car",
            group=7,
            source="auto",
            attributes={"color": "blue"},
            shapes=[
                TrackShape(frame=1, type="rectangle", points=[0, 0, 10, 10], attributes={"speed": "1"}),
                TrackShape(frame=3, type="rectangle", points=[10, 20, 20, 30], attributes={"speed": "3"}),
            ],
        ),
        Track(
            id=6,
            label="body",
            shapes=[
                TrackShape(frame=0, type="skeleton", points=[]),
                TrackShape(frame=2, type="skeleton", points=[], outside=True),
            ],
            elements=[
                Track(
                    id=0,
                    label="head",
                    shapes=[
                        TrackShape(frame=0, type="points", points=[1, 1]),
                        TrackShape(frame=2, type="points", points=[3, 3], outside=True),
                    ],
                ),
                Track(
                    id=1,
                    label="foot",
                    shapes=[
                        TrackShape(frame=0, type="points", points=[5, 5]),
                        TrackShape(frame=2, type="points", points=[5, 5], outside=True),
                    ],
                ),
            ],
        ),
    ]


def _source() -> object:
    # fresh objects each time: flattening tracks adds shapes to the items it yields
    return dataset(_items(), LABELS, _tracks(), name="my task")


def _plain(shapes: list[Shape]) -> list[Shape]:
    return [shape for shape in shapes if shape.track_id is None]


def _assert_same_shapes(got: list[Shape], expected: list[Shape]) -> None:
    assert [s.type for s in got] == [s.type for s in expected]
    for a, b in zip(got, expected, strict=True):
        assert a.label == b.label
        assert a.points == pytest.approx(b.points, abs=1e-3)
        assert (a.occluded, a.z_order, a.group, a.source, a.attributes) == (
            b.occluded,
            b.z_order,
            b.group,
            b.source,
            b.attributes,
        )
        assert a.rotation == pytest.approx(b.rotation, abs=1e-3)
        assert [(e.label, e.points, e.outside, e.occluded, e.attributes) for e in a.elements] == [
            (e.label, pytest.approx(e.points), e.outside, e.occluded, e.attributes) for e in b.elements
        ]


def _xml(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        return archive.read("annotations.xml").decode()


def test_images_layout_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    archive = export(formats, "CVAT for images 1.1", _source(), tmp_path / "out.zip")
    imported = load(formats, "CVAT 1.1", archive, tmp_path / "work")

    assert imported.name == "my task"
    assert [label.name for label in imported.labels] == ["car", "person & co", "body"]
    car = imported.labels[0]
    assert car.type == "rectangle" and car.color == "#ff0000"
    assert car.attributes == LABELS[0].attributes
    body = imported.labels[2]
    assert body.type == "skeleton" and body.svg == SVG
    assert [(s.name, s.type, s.attributes) for s in body.sublabels] == [
        (s.name, s.type, s.attributes) for s in LABELS[2].sublabels
    ]

    items = list(imported.items(tracks=True))
    assert [(i.name, i.frame, i.subset, i.width, i.height) for i in items] == [
        ("a.jpg", 0, "default", W, H),
        ("dir/b.png", 1, "train", W, H),
        ("c.jpg", 2, "default", W, H),
        ("d.jpg", 3, "default", W, H),
    ]
    first = items[0]
    assert first.tags == _items()[0].tags
    _assert_same_shapes(_plain(first.shapes), _items()[0].shapes)
    mask = next(s for s in first.shapes if s.type == "mask")
    assert np.array_equal(masks.cvat_to_bitmap(mask.points, W, H), _bitmap())


def test_images_layout_writes_every_frame_of_tracks(formats: FormatRegistry, tmp_path: Path) -> None:
    archive = export(formats, "CVAT for images 1.1", _source(), tmp_path / "out.zip")
    imported = load(formats, "CVAT 1.1", archive, tmp_path / "work")

    by_frame = {item.frame: [s for s in item.shapes if s.track_id is not None] for item in imported.items()}
    car = {frame: next((s for s in shapes if s.label == "car"), None) for frame, shapes in by_frame.items()}
    assert car[0] is None
    assert car[1] is not None and car[1].keyframe and car[1].points == [0, 0, 10, 10]
    # interpolated frame: half way, flagged as computed
    assert car[2] is not None and not car[2].keyframe and car[2].points == pytest.approx([5, 10, 15, 20])
    assert car[3] is not None and car[3].keyframe and car[3].attributes == {"color": "blue", "speed": "3"}
    assert {s.track_id for s in by_frame[1]} == {5, 6}
    assert car[1].group == 7 and car[1].source == "auto"
    # the skeleton track ends with an outside shape, written too
    body = [s for s in by_frame[2] if s.label == "body"]
    assert len(body) == 1 and body[0].outside
    assert [e.label for e in body[0].elements] == ["head", "foot"]
    xml = _xml(archive)
    assert 'track_id="5" keyframe="0" outside="0"' in xml


def test_images_layout_xml_matches_cvat(formats: FormatRegistry, tmp_path: Path) -> None:
    archive = export(formats, "CVAT for images 1.1", _source(), tmp_path / "out.zip")
    xml = _xml(archive)
    assert xml.startswith('<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>')
    assert "<name>person &amp; co</name>" in xml
    assert "<values>0\n100\n1</values>" in xml
    assert "<parent>body</parent>" in xml
    assert '<image id="1" name="dir/b.png" subset="train" width="64" height="48">' in xml
    assert (
        '<box label="car" source="semi-auto" occluded="1" xtl="1.50" ytl="2.25" xbr="11.00" ybr="22.00" '
        'rotation="30.00" z_order="2" group_id="3">' in xml
    )
    assert 'points="1.00,1.00;30.00,1.00;30.00,25.00;1.00,20.00"' in xml
    assert 'cx="20.00" cy="20.00" rx="10.00" ry="5.00" rotation="10.00"' in xml
    assert '<attribute name="seen">&lt;yes&gt;</attribute>' in xml
    # the mask's runs exclude its box; the box is given as left/top/width/height
    runs = masks.bitmap_to_cvat(_bitmap())[:-4]
    assert runs[:4] == [0, 10, 18, 10]
    assert f'rle="{", ".join(str(int(run)) for run in runs)}"' in xml
    assert 'left="5" top="10" width="28" height="10"' in xml
    assert "group_id" not in xml.split("<polygon")[1].split(">")[0]


def test_video_layout_round_trip(formats: FormatRegistry, tmp_path: Path) -> None:
    archive = export(formats, "CVAT for video 1.1", _source(), tmp_path / "out.zip")
    xml = _xml(archive)
    assert "<tag" not in xml and "<image" not in xml
    assert '<box frame="2" keyframe="0" outside="0"' in xml

    imported = load(formats, "CVAT 1.1", archive, tmp_path / "work")
    assert [(i.name, i.frame) for i in imported.items(tracks=True)] == [
        ("frame_000000", 0),
        ("frame_000001", 1),
        ("frame_000002", 2),
        ("frame_000003", 3),
    ]
    tracks = list(imported.tracks())
    real = [t for t in tracks if t.label == "car" and t.group == 7]
    assert len(real) == 1
    car = real[0]
    assert car.source == "auto" and car.attributes == {"color": "blue"}
    # the interpolated frame 2 is dropped; frame 3 persists to the end without an outside keyframe
    assert [(s.frame, s.points, s.outside, s.attributes) for s in car.shapes] == [
        (1, [0, 0, 10, 10], False, {"speed": "1"}),
        (3, [10, 20, 20, 30], False, {"speed": "3"}),
    ]
    body = next(t for t in tracks if t.label == "body" and t.shapes[-1].frame == 2)
    assert [(s.frame, s.outside) for s in body.shapes if s.type == "skeleton"] == [(0, False), (2, True)]
    heads = next(e for e in body.elements if e.label == "head")
    assert [(s.frame, s.points, s.outside) for s in heads.shapes] == [(0, [1, 1], False), (2, [3, 3], True)]


def test_video_layout_turns_shapes_into_one_frame_tracks(formats: FormatRegistry, tmp_path: Path) -> None:
    items = [
        Item(
            name="a.jpg",
            frame=0,
            width=W,
            height=H,
            shapes=[Shape(type="rectangle", label="car", points=[1, 2, 3, 4])],
        ),
        Item(
            name="b.jpg",
            frame=2,
            width=W,
            height=H,
            tags=[Tag(label="car")],
            shapes=[Shape(type="polygon", label="car", points=[1, 1, 5, 1, 5, 5], group=2)],
        ),
    ]
    archive = export(formats, "CVAT for video 1.1", dataset(items, LABELS), tmp_path / "out.zip")
    tracks = list(load(formats, "CVAT 1.1", archive, tmp_path / "work").tracks())
    # the shape, then an outside copy on the next frame of the task (none after the last one)
    assert [(t.label, t.group, [(s.frame, s.type, s.outside) for s in t.shapes]) for t in tracks] == [
        ("car", 0, [(0, "rectangle", False), (2, "rectangle", True)]),
        ("car", 2, [(2, "polygon", False)]),
    ]


def test_images_are_saved_and_found(formats: FormatRegistry, tmp_path: Path) -> None:
    images = {
        name: make_image(tmp_path / "src" / name, W, H, seed=i)
        for i, name in enumerate(["a.jpg", "dir/b.png"])
    }
    items = [
        Item(name="a.jpg", frame=0, width=W, height=H, image=str(images["a.jpg"])),
        Item(name="dir/b.png", frame=1, width=W, height=H, image=str(images["dir/b.png"])),
    ]
    archive = export(
        formats, "CVAT for images 1.1", dataset(items, LABELS), tmp_path / "out.zip", save_images=True
    )
    with zipfile.ZipFile(archive) as zipped:
        assert sorted(zipped.namelist()) == ["annotations.xml", "images/a.jpg", "images/dir/b.png"]
    imported = load(formats, "CVAT 1.1", archive, tmp_path / "work")
    for item in imported.items():
        assert item.image is not None
        assert Path(item.image).read_bytes() == images[item.name].read_bytes()


def test_plain_xml_upload_and_labels_from_annotations(formats: FormatRegistry, tmp_path: Path) -> None:
    xml = tmp_path / "task.xml"
    xml.write_text(
        '<?xml version="1.0"?>\n<annotations><version>1.1</version>\n'
        '<image id="4" name="x.jpg" width="10" height="10">'
        '<box label="dog" xtl="1" ytl="1" xbr="2" ybr="2" occluded="0"/>'
        '<skeleton label="pose"><points label="nose" points="1,1"/></skeleton>'
        "</image></annotations>"
    )
    imported = load(formats, "CVAT 1.1", xml, tmp_path / "work")
    assert [(label.name, [s.name for s in label.sublabels]) for label in imported.labels] == [
        ("dog", []),
        ("pose", ["nose"]),
    ]
    (item,) = imported.items()
    assert (item.name, item.frame) == ("x.jpg", 4)
    assert [s.type for s in item.shapes] == ["rectangle", "skeleton"]


def _write(tmp_path: Path, body: str, labels: str = "<label><name>car</name></label>") -> Path:
    path = tmp_path / "annotations.xml"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n<version>1.1</version>\n'
        f"<meta><task><name>t</name><labels>{labels}</labels></task></meta>\n{body}\n</annotations>\n"
    )
    return path


def _load_all(formats: FormatRegistry, path: Path, work: Path) -> None:
    imported = load(formats, "CVAT 1.1", path, work)
    list(imported.items())
    list(imported.tracks())


def test_malformed_xml_names_line_and_column(formats: FormatRegistry, tmp_path: Path) -> None:
    path = _write(tmp_path, '<image id="0" name="a.jpg">\n  <box label="car" xtl="1" <oops/>\n</image>')
    with pytest.raises(FormatError) as error:
        _load_all(formats, path, tmp_path / "work")
    assert error.value.file == "annotations.xml"
    assert (error.value.line, error.value.column) == (6, 28)
    assert "annotations.xml:6:28: malformed XML" in str(error.value)


@pytest.mark.parametrize(
    "preamble",
    [
        '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>',
        '<!DOCTYPE x [<!ENTITY ext SYSTEM "file:///etc/passwd">]>',
    ],
)
def test_entities_and_dtds_are_refused(formats: FormatRegistry, tmp_path: Path, preamble: str) -> None:
    path = tmp_path / "annotations.xml"
    path.write_text(
        f'<?xml version="1.0"?>\n{preamble}\n<annotations><version>&lol2;</version></annotations>'
    )
    with pytest.raises(FormatError, match="annotations.xml: the XML declares a DTD or entities"):
        _load_all(formats, path, tmp_path / "work")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '<image id="0" name="a.jpg"><tag label="car"/>'
            '<box label="cat" xtl="0" ytl="0" xbr="1" ybr="1"/></image>',
            "item 'a.jpg': annotation 1: unknown label 'cat'",
        ),
        (
            '<image id="0" name="a.jpg"><box label="car" xtl="5" ytl="0" xbr="1" ybr="1"/></image>',
            "item 'a.jpg': annotation 0: the box has a negative size (-4 x 1)",
        ),
        (
            '<image id="0" name="a.jpg"><polygon label="car" points=""/></image>',
            "annotation 0: a polygon needs at least 3 points, it has 0",
        ),
        (
            '<image id="0" name="a.jpg"><polygon label="car" points="0,0;x,1"/></image>',
            "annotation 0: <polygon> has bad points '0,0;x,1'",
        ),
        (
            '<track id="3" label="car"><polygon frame="0" points="0,0;1,1"/></track>',
            "item 'track 3': annotation 0: a polygon needs at least 3 points, it has 2",
        ),
        (
            '<image id="0" name="a.jpg"><box label="car" xtl="x" ytl="0" xbr="1" ybr="1"/></image>',
            "annotation 0: <box> has a bad 'xtl': 'x'",
        ),
        (
            '<image id="0" name="a.jpg">'
            '<box label="car" xtl="0" ytl="0" xbr="1" ybr="1" rotation="r"/></image>',
            "annotation 0: <box> has a bad 'rotation': 'r'",
        ),
        (
            '<image id="0" name="a.jpg">'
            '<mask label="car" rle="1, 2" left="0" top="0" width="2" height="2"/></image>',
            "annotation 0: the mask's runs cover 3 pixels, its 2 x 2 crop has 4",
        ),
        (
            '<track id="3" label="car"><box frame="0" xtl="0" ytl="0" xbr="1" ybr="1"/>'
            '<ellipse frame="1" cx="1" cy="1" rx="-1" ry="1"/></track>',
            "item 'track 3': annotation 1: the ellipse has a negative radius",
        ),
    ],
)
def test_bad_annotations(formats: FormatRegistry, tmp_path: Path, body: str, expected: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(FormatError) as error:
        _load_all(formats, path, tmp_path / "work")
    assert str(error.value).startswith("annotations.xml: ")
    assert expected in str(error.value)


def test_outlines_with_too_few_points_are_left_out(formats: FormatRegistry, tmp_path: Path) -> None:
    """CVAT's importer takes a polygon of 1 or 2 points or a polyline of 1 without a word; they draw
    nothing and are left out, the rest of the image is read."""
    body = (
        '<image id="0" name="a.jpg"><polygon label="car" points="0,0;1,1"/>'
        '<polyline label="car" points="3,3"/><polygon label="car" points="4,4"/>'
        '<polyline label="car" points="0,0;2,2"/><polygon label="car" points="0,0;5,0;5,5"/></image>'
    )
    (item,) = load(formats, "CVAT 1.1", _write(tmp_path, body), tmp_path / "work").items()
    assert [(s.type, s.points) for s in item.shapes] == [
        ("polyline", [0, 0, 2, 2]),
        ("polygon", [0, 0, 5, 0, 5, 5]),
    ]


def test_unknown_skeleton_point_is_refused(formats: FormatRegistry, tmp_path: Path) -> None:
    labels = (
        "<label><name>pose</name><type>skeleton</type></label>"
        "<label><name>nose</name><parent>pose</parent></label>"
    )
    body = (
        '<image id="0" name="a.jpg">'
        '<skeleton label="pose"><points label="tail" points="1,1"/></skeleton></image>'
    )
    with pytest.raises(FormatError, match="annotation 0: unknown label 'tail' in skeleton 'pose'"):
        _load_all(formats, _write(tmp_path, body, labels), tmp_path / "work")


def test_detect(formats: FormatRegistry, tmp_path: Path) -> None:
    fmt = formats.get("CVAT 1.1", direction="import")
    assert fmt.detect is not None
    archive = export(formats, "CVAT for images 1.1", _source(), tmp_path / "out")
    assert fmt.detect(archive) == 1.0
    voc = tmp_path / "voc" / "Annotations"
    voc.mkdir(parents=True)
    (voc / "a.xml").write_text("<annotation><filename>a.jpg</filename></annotation>")
    assert fmt.detect(tmp_path / "voc") == 0.0
    other = tmp_path / "json"
    other.mkdir()
    (other / "instances.json").write_text("{}")
    assert fmt.detect(other) == 0.0
    assert [f.display_name for _, f in formats.detect(archive)][0] == "CVAT 1.1"


def test_aliases(formats: FormatRegistry) -> None:
    assert formats.get("cvat_images", direction="export").display_name == "CVAT for images 1.1"
    assert formats.get("cvat_video", direction="export").display_name == "CVAT for video 1.1"
    assert formats.get("cvat", direction="import").display_name == "CVAT 1.1"


# --- Datumaro cross-checks -----------------------------------------------------------------------


def _boxes_dataset(tmp_path: Path) -> tuple[object, list[Item]]:
    items = []
    for index, name in enumerate(["a.jpg", "b.jpg"]):
        image = make_image(tmp_path / "src" / name, W, H, seed=index)
        items.append(
            Item(
                name=name,
                frame=index,
                width=W,
                height=H,
                image=str(image),
                tags=[Tag(label="person & co")] if index == 0 else [],
                shapes=[
                    Shape(type="rectangle", label="car", points=[1.25, 2.5, 11, 22 + index], group=index),
                    Shape(type="polygon", label="person & co", points=[1, 1, 30, 1, 30, 25]),
                    Shape(type="mask", label="car", points=masks.bitmap_to_cvat(_bitmap())),
                ],
            )
        )
    return dataset(items, LABELS[:2]), items


def test_datumaro_reads_the_export(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    source, items = _boxes_dataset(tmp_path)
    target = export(formats, "CVAT for images 1.1", source, tmp_path / "out", save_images=True)
    imported = dm.Dataset.import_from(str(target), "cvat")
    label_names = [label.name for label in imported.categories()[dm.AnnotationType.label]]
    assert label_names == ["car", "person & co", "body", "head", "foot"][: len(label_names)]
    assert {"car", "person & co"} <= set(label_names)
    assert len(imported) == 2
    by_id = {item.id: item for item in imported}
    for item in items:
        got = by_id[Path(item.name).stem]
        assert len(got.annotations) == len(item.tags) + len(item.shapes)
        boxes = [a for a in got.annotations if a.type == dm.AnnotationType.bbox]
        expected = item.shapes[0].points
        assert len(boxes) == 1
        assert [boxes[0].x, boxes[0].y, boxes[0].x + boxes[0].w, boxes[0].y + boxes[0].h] == pytest.approx(
            expected, abs=1e-3
        )
        (mask,) = [a for a in got.annotations if a.type == dm.AnnotationType.mask]
        assert np.array_equal(mask.image.astype(bool), _bitmap())


def test_datumaro_export_imports(formats: FormatRegistry, tmp_path: Path) -> None:
    dm = pytest.importorskip("datumaro")
    from datumaro.components.media import Image

    bitmap = _bitmap()
    source = dm.Dataset.from_iterable(
        [
            dm.DatasetItem(
                id="a",
                media=Image.from_numpy(np.zeros((H, W, 3), dtype=np.uint8)),
                annotations=[
                    dm.Bbox(1.5, 2, 10, 20, label=0, id=1, group=2, attributes={"occluded": True}),
                    dm.Polygon([1, 1, 30, 1, 30, 25], label=1, id=2),
                    dm.Mask(bitmap.astype(np.uint8), label=0, id=3),
                    dm.Label(1, id=4),
                ],
            ),
            dm.DatasetItem(
                id="b",
                media=Image.from_numpy(np.zeros((H, W, 3), dtype=np.uint8)),
                annotations=[dm.Bbox(0, 0, 5, 5, label=1, id=5)],
            ),
        ],
        categories=["car", "person"],
        media_type=Image,
    )
    source.export(str(tmp_path / "dm"), "cvat", save_media=True)
    imported = load(formats, "CVAT 1.1", tmp_path / "dm", tmp_path / "work")
    assert [label.name for label in imported.labels] == ["car", "person"]
    items = items_by_name(imported)
    assert sorted(items) == ["a", "b"]
    first = items["a"]
    assert len(first.tags) + len(first.shapes) == 4
    box = next(s for s in first.shapes if s.type == "rectangle")
    assert box.points == pytest.approx([1.5, 2, 11.5, 22], abs=1e-3)
    assert box.occluded and box.group == 2
    mask = next(s for s in first.shapes if s.type == "mask")
    assert np.array_equal(masks.cvat_to_bitmap(mask.points, W, H), bitmap)
    assert first.image is not None and Path(first.image).is_file()
    assert items["b"].shapes[0].points == pytest.approx([0, 0, 5, 5])


def test_conv_mask_to_poly(formats: FormatRegistry, tmp_path: Path) -> None:
    mask = Shape(type="mask", label="car", points=masks.bitmap_to_cvat(_bitmap()), group=2, z_order=1)
    items = [Item(name="a.jpg", frame=0, width=W, height=H, shapes=[mask])]
    archive = export(formats, "CVAT for images 1.1", dataset(items, LABELS), tmp_path / "out.zip")
    (item,) = load(formats, "CVAT 1.1", archive, tmp_path / "work", conv_mask_to_poly=True).items()
    assert [(s.type, s.group, s.z_order) for s in item.shapes] == [("polygon", 2, 1), ("polygon", 2, 1)]
    assert np.array_equal(masks.polygons_to_bitmap([s.points for s in item.shapes], W, H), _bitmap())


def test_other_xml_is_not_cvat(formats: FormatRegistry, tmp_path: Path) -> None:
    path = tmp_path / "a.xml"
    path.write_text("<annotation><filename>a.jpg</filename></annotation>")
    with pytest.raises(FormatError, match=r"a.xml: not a CVAT XML file: the root element is <annotation>"):
        load(formats, "CVAT 1.1", path, tmp_path / "work")


def test_video_layout_binds_saved_images(formats: FormatRegistry, tmp_path: Path) -> None:
    names = ["x2.jpg", "x9.jpg", "x10.jpg"]
    images = [make_image(tmp_path / "src" / name, W, H, seed=i) for i, name in enumerate(names)]
    # frames of an image task keep their names; the source cannot count its items up front
    items = [
        Item(name=name, frame=i, width=W, height=H, image=str(images[i])) for i, name in enumerate(names)
    ]
    items[2].shapes = [Shape(type="rectangle", label="car", points=[1, 2, 3, 4])]
    source = dataset(items, LABELS)
    source.size = None
    archive = export(formats, "CVAT for video 1.1", source, tmp_path / "out.zip", save_images=True)
    assert "<size>" not in _xml(archive)
    imported = load(formats, "CVAT 1.1", archive, tmp_path / "work")
    got = list(imported.items())
    # one file per frame: bound in natural name order (x10 after x9)
    assert [(i.frame, i.name) for i in got] == [(0, "x2.jpg"), (1, "x9.jpg"), (2, "x10.jpg")]
    assert got[2].image is not None and Path(got[2].image).read_bytes() == images[2].read_bytes()
    assert [s.points for s in got[2].shapes] == [[1, 2, 3, 4]]
