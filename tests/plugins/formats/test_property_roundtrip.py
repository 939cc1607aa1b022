"""Property-based round trips: random sets of boxes go out through every format that carries
rectangles and come back the same (same frames, labels and boxes within what the format's number
formatting keeps)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annota.core.formats.model import Item, LabelSpec, Shape
from annota.core.formats.registry import FormatRegistry
from tests.plugins.formats.helpers import dataset, export, load, make_image

WIDTH, HEIGHT = 64, 48
LABELS = [LabelSpec(name="car"), LabelSpec(name="person")]
#: (export format, import format, tolerance in pixels): the formats that carry rectangles both ways
FORMATS = [
    ("COCO 1.0", "COCO 1.0", 1e-3),
    ("CVAT for images 1.1", "CVAT 1.1", 5e-3),
    ("Datumaro 1.0", "Datumaro 1.0", 1e-3),
    ("PASCAL VOC 1.1", "PASCAL VOC 1.1", 1e-3),
    ("YOLO 1.1", "YOLO 1.1", 1e-3),
    ("Ultralytics YOLO Detection 1.0", "Ultralytics YOLO Detection 1.0", 1e-3),
    ("MOT 1.1", "MOT 1.1", 1e-3),
    ("LabelMe 3.0", "LabelMe 3.0", 1e-3),
]

coordinate = st.floats(min_value=0, max_value=30, allow_nan=False).map(lambda v: round(v, 2))
size = st.floats(min_value=1, max_value=15, allow_nan=False).map(lambda v: round(v, 2))
box = st.tuples(st.sampled_from(["car", "person"]), coordinate, coordinate, size, size)
frames = st.lists(st.lists(box, max_size=4), min_size=1, max_size=4)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    directory = tmp_path_factory.mktemp("images")
    return [make_image(directory / f"img{i}.jpg", WIDTH, HEIGHT, seed=i) for i in range(4)]


def _items(boxes: list[list[tuple[str, float, float, float, float]]], images: list[Path]) -> list[Item]:
    return [
        Item(
            name=f"img{frame}.jpg",
            frame=frame,
            width=WIDTH,
            height=HEIGHT,
            image=str(images[frame]),
            shapes=[
                Shape(type="rectangle", label=label, points=[x, y, x + w, y + h])
                for label, x, y, w, h in shapes
            ],
        )  # fmt: skip
        for frame, shapes in enumerate(boxes)
    ]


def _frame(item: Item) -> int:
    if item.frame is not None:
        return item.frame
    return int(item.id.rsplit("/", 1)[-1].removeprefix("img"))


def _boxes(items: list[Item]) -> dict[int, list[tuple[str, list[float]]]]:
    found: dict[int, list[tuple[str, list[float]]]] = {}
    for item in items:
        rectangles = [(s.label, s.points) for s in item.shapes if s.type == "rectangle" and not s.outside]
        if rectangles:
            found[_frame(item)] = rectangles
    return found


@pytest.mark.parametrize(("out_format", "in_format", "tolerance"), FORMATS, ids=[f[0] for f in FORMATS])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(boxes=frames)
def test_boxes_survive_every_format(
    formats: FormatRegistry,
    tmp_path_factory: pytest.TempPathFactory,
    images: list[Path],
    out_format: str,
    in_format: str,
    tolerance: float,
    boxes: list[list[tuple[str, float, float, float, float]]],
) -> None:
    work = tmp_path_factory.mktemp("roundtrip")
    items = _items(boxes, images)
    archive = export(formats, out_format, dataset(items, LABELS), work / "out.zip", save_images=True)
    back = list(load(formats, in_format, archive, work / "in", labels=LABELS).items())
    expected, actual = _boxes(items), _boxes(back)
    assert sorted(actual) == sorted(expected)
    for frame, shapes in expected.items():
        # boxes come back within the tolerance, in any order: match each to one that is left
        left = list(actual[frame])
        for label, want in shapes:
            match = next(
                (
                    i
                    for i, (other, got) in enumerate(left)
                    if other == label and got == pytest.approx(want, abs=tolerance)
                ),
                None,
            )
            assert match is not None, (frame, label, want, left)
            left.pop(match)
        assert not left, (frame, left)
