"""Track interpolation and slicing: exact values for each shape type, the outside/persistence rules,
and properties that hold for any track."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annota.core.interpolation import (
    InterpolatedShape,
    Keyframe,
    interpolate_track,
    shape_at,
    slice_track,
)


def by_frame(shapes: Iterable[InterpolatedShape]) -> dict[int, InterpolatedShape]:
    return {s.frame: s for s in shapes}


def vertices(points: Sequence[float]) -> list[tuple[float, float]]:
    return [(points[i], points[i + 1]) for i in range(0, len(points), 2)]


def area(points: Sequence[float]) -> float:
    corners = vertices(points)
    twice = sum(
        x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1], strict=True)
    )
    return abs(twice) / 2


def segments_cross(
    p: tuple[float, float], q: tuple[float, float], r: tuple[float, float], s: tuple[float, float]
) -> bool:
    def side(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    return side(p, q, r) * side(p, q, s) < 0 and side(r, s, p) * side(r, s, q) < 0


def is_simple_polygon(points: Sequence[float]) -> bool:
    corners = vertices(points)
    edges = list(zip(corners, corners[1:] + corners[:1], strict=True))
    return not any(
        segments_cross(*edges[i], *edges[j]) for i in range(len(edges)) for j in range(i + 2, len(edges))
    )


def matches_keyframe(shape: InterpolatedShape, keyframe: Keyframe) -> bool:
    return shape.keyframe and bool(shape.as_keyframe() == keyframe)


# ---------------------------------------------------------------- linear types


def test_rectangle_between_keyframes_moves_linearly() -> None:
    track = [Keyframe(0, "rectangle", [0, 0, 10, 10]), Keyframe(4, "rectangle", [4, 8, 30, 50])]
    shapes = list(interpolate_track(track, 0, 4))
    assert [s.frame for s in shapes] == [0, 1, 2, 3, 4]
    assert [s.keyframe for s in shapes] == [True, False, False, False, True]
    assert shapes[1].points == (1.0, 2.0, 15.0, 20.0)
    assert shapes[2].points == (2.0, 4.0, 20.0, 30.0)
    assert shapes[3].points == (3.0, 6.0, 25.0, 40.0)
    assert matches_keyframe(shapes[0], track[0]) and matches_keyframe(shapes[4], track[1])


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (350.0, 10.0, [355.0, 0.0, 5.0]),  # clockwise through 0
        (10.0, 350.0, [5.0, 0.0, 355.0]),  # counter-clockwise through 0
        (30.0, 90.0, [45.0, 60.0, 75.0]),
        (0.0, 180.0, [315.0, 270.0, 225.0]),  # a half turn goes the decreasing way
        (90.0, 90.0, [90.0, 90.0, 90.0]),
    ],
)
def test_rotation_takes_the_shorter_arc(first: float, last: float, expected: list[float]) -> None:
    track = [
        Keyframe(0, "rectangle", [0, 0, 1, 1], rotation=first),
        Keyframe(4, "rectangle", [0, 0, 1, 1], rotation=last),
    ]
    middle = [s.rotation for s in interpolate_track(track, 1, 3)]
    assert middle == pytest.approx(expected)
    assert all(0.0 <= r < 360.0 for r in middle)


def test_rotation_just_below_zero_stays_in_range() -> None:
    # a turn of -1e-13 degrees: a tenth of it below 0, taken modulo 360, rounds to 360.0 itself
    track = [
        Keyframe(0, "rectangle", [0, 0, 1, 1], rotation=0.0),
        Keyframe(10, "rectangle", [0, 0, 1, 1], rotation=359.9999999999999),
    ]
    rotations = [s.rotation for s in interpolate_track(track, 1, 9)]
    assert all(0.0 <= r < 360.0 for r in rotations)
    assert rotations[0] == 0.0


def test_ellipse_centre_and_radii_move_linearly() -> None:
    # [cx, cy, cx + rx, cy - ry]: centre (10, 10) radii (5, 5) -> centre (20, 30) radii (15, 5)
    track = [Keyframe(0, "ellipse", [10, 10, 15, 5]), Keyframe(2, "ellipse", [20, 30, 35, 25])]
    (middle,) = interpolate_track(track, 1, 1)
    assert middle.points == (15.0, 20.0, 25.0, 15.0)


def test_cuboid_moves_all_sixteen_coordinates() -> None:
    first = [float(i) for i in range(16)]
    last = [float(i * 3 + 10) for i in range(16)]
    track = [Keyframe(0, "cuboid", first), Keyframe(2, "cuboid", last)]
    (middle,) = interpolate_track(track, 1, 1)
    assert middle.points == tuple((a + b) / 2 for a, b in zip(first, last, strict=True))


def test_points_move_pointwise() -> None:
    track = [Keyframe(0, "points", [0, 0, 10, 10, 20, 0]), Keyframe(5, "points", [5, 10, 10, 0, 30, 5])]
    shapes = by_frame(interpolate_track(track, 0, 5))
    assert shapes[2].points == (2.0, 4.0, 10.0, 6.0, 24.0, 2.0)


def test_points_with_a_different_count_repeat_the_previous_keyframe() -> None:
    track = [Keyframe(0, "points", [0, 0, 10, 10]), Keyframe(3, "points", [5, 5, 6, 6, 7, 7])]
    shapes = by_frame(interpolate_track(track, 0, 3))
    assert shapes[1].points == shapes[2].points == (0.0, 0.0, 10.0, 10.0)
    assert not shapes[1].keyframe
    assert shapes[3].points == (5.0, 5.0, 6.0, 6.0, 7.0, 7.0)


@pytest.mark.parametrize(
    ("kind", "first", "last"),
    [
        ("mask", [3, 4, 2, 0, 0, 2, 2], [1, 8, 0, 1, 1, 3, 3]),
        ("skeleton", [], []),
    ],
)
def test_masks_and_skeletons_repeat_the_previous_keyframe(
    kind: str, first: list[float], last: list[float]
) -> None:
    track = [Keyframe(0, kind, first), Keyframe(4, kind, last)]
    shapes = by_frame(interpolate_track(track, 0, 4))
    assert [shapes[f].points for f in (1, 2, 3)] == [tuple(float(v) for v in first)] * 3
    assert not any(shapes[f].keyframe for f in (1, 2, 3))


def test_state_between_keyframes_comes_from_the_previous_one() -> None:
    track = [
        Keyframe(0, "rectangle", [0, 0, 2, 2], occluded=True, z_order=3, attributes=[(7, "red")]),
        Keyframe(2, "rectangle", [2, 2, 4, 4], occluded=False, z_order=5, attributes=[(7, "blue")]),
    ]
    (middle,) = interpolate_track(track, 1, 1)
    assert (middle.occluded, middle.outside, middle.z_order, middle.attributes) == (
        True,
        False,
        3,
        ((7, "red"),),
    )
    assert middle.type == "rectangle"


# ---------------------------------------------------------------- outside and the end of a track


def test_outside_keyframe_opens_a_gap_until_the_next_visible_keyframe() -> None:
    track = [
        Keyframe(0, "rectangle", [0, 0, 10, 10]),
        Keyframe(4, "rectangle", [4, 4, 14, 14], outside=True),
        Keyframe(7, "rectangle", [20, 20, 30, 30]),
    ]
    shapes = by_frame(interpolate_track(track, 0, 9))
    assert sorted(shapes) == [0, 1, 2, 3, 4, 7, 8, 9]
    # the object moves towards where it disappears, and is visible until then
    assert shapes[2].points == (2.0, 2.0, 12.0, 12.0) and not shapes[2].outside
    assert shapes[4].outside and shapes[4].keyframe and shapes[4].points == (4.0, 4.0, 14.0, 14.0)
    assert shapes[9].points == (20.0, 20.0, 30.0, 30.0) and not shapes[9].keyframe


def test_track_persists_after_its_last_visible_keyframe_until_stop() -> None:
    track = [Keyframe(2, "polygon", [0, 0, 4, 0, 0, 3], rotation=15, occluded=True)]
    shapes = list(interpolate_track(track, 0, 6))
    assert [s.frame for s in shapes] == [2, 3, 4, 5, 6]
    assert all(s.points == (0.0, 0.0, 4.0, 0.0, 0.0, 3.0) and s.rotation == 15 and s.occluded for s in shapes)
    assert [s.keyframe for s in shapes] == [True, False, False, False, False]


def test_track_ends_at_an_outside_last_keyframe() -> None:
    track = [Keyframe(0, "rectangle", [0, 0, 1, 1]), Keyframe(2, "rectangle", [0, 0, 1, 1], outside=True)]
    assert [s.frame for s in interpolate_track(track, 0, 100)] == [0, 1, 2]


def test_range_cuts_but_keyframes_outside_it_still_shape_the_frames() -> None:
    track = [Keyframe(0, "rectangle", [0, 0, 10, 10]), Keyframe(10, "rectangle", [10, 10, 20, 20])]
    shapes = list(interpolate_track(track, 4, 6))
    assert [(s.frame, s.points[0], s.keyframe) for s in shapes] == [
        (4, 4.0, False),
        (5, 5.0, False),
        (6, 6.0, False),
    ]


def test_step_and_included_frames_narrow_the_output() -> None:
    track = [Keyframe(1, "rectangle", [0, 0, 10, 10]), Keyframe(5, "rectangle", [4, 4, 14, 14])]
    assert [s.frame for s in interpolate_track(track, 0, 9, step=3)] == [3, 6, 9]
    assert by_frame(interpolate_track(track, 0, 9, step=3))[3].points == (2.0, 2.0, 12.0, 12.0)
    included = {1, 2, 5, 8}
    assert [(s.frame, s.keyframe) for s in interpolate_track(track, 0, 9, included=included)] == [
        (1, True),
        (2, False),
        (5, True),
        (8, False),
    ]


def test_output_is_streamed() -> None:
    track = [Keyframe(0, "rectangle", [0, 0, 1, 1])]
    first = list(itertools.islice(interpolate_track(track, 0, 10**15), 3))
    assert [s.frame for s in first] == [0, 1, 2]


def test_keyframes_in_any_order_but_not_two_on_one_frame() -> None:
    a, b = Keyframe(0, "rectangle", [0, 0, 2, 2]), Keyframe(2, "rectangle", [2, 2, 4, 4])
    assert list(interpolate_track([b, a], 0, 2)) == list(interpolate_track([a, b], 0, 2))
    with pytest.raises(ValueError, match="frame 2"):
        list(interpolate_track([a, b, Keyframe(2, "rectangle", [0, 0, 1, 1])], 0, 3))
    with pytest.raises(ValueError, match="step"):
        list(interpolate_track([a], 0, 3, step=0))


def test_empty_track_or_range_gives_nothing() -> None:
    assert list(interpolate_track([], 0, 10)) == []
    assert list(interpolate_track([Keyframe(0, "rectangle", [0, 0, 1, 1])], 5, 4)) == []


def test_shape_at_follows_the_same_rules() -> None:
    track = [
        Keyframe(2, "rectangle", [0, 0, 10, 10]),
        Keyframe(6, "rectangle", [4, 4, 14, 14], outside=True),
        Keyframe(9, "rectangle", [1, 1, 2, 2]),
    ]
    assert shape_at(track, 1) is None
    assert shape_at(track, 7) is None
    at_four = shape_at(track, 4)
    assert at_four is not None and at_four.points == (2.0, 2.0, 12.0, 12.0) and not at_four.keyframe
    at_six = shape_at(track, 6)
    assert at_six is not None and at_six.outside and at_six.keyframe
    assert shape_at(track, 50) == by_frame(interpolate_track(track, 50, 50))[50]


# ---------------------------------------------------------------- polygons and polylines

SQUARE_10 = [0.0, 0.0, 10.0, 0.0, 10.0, 10.0, 0.0, 10.0]


def test_polygons_with_different_point_counts() -> None:
    # a 4-point square grows into an 8-point square twice its size
    big = [0.0, 0.0, 10.0, 0.0, 20.0, 0.0, 20.0, 10.0, 20.0, 20.0, 10.0, 20.0, 0.0, 20.0, 0.0, 10.0]
    track = [Keyframe(0, "polygon", SQUARE_10), Keyframe(2, "polygon", big)]
    shapes = list(interpolate_track(track, 0, 2))
    assert matches_keyframe(shapes[0], track[0]) and matches_keyframe(shapes[2], track[1])
    middle = shapes[1].points
    assert len(middle) % 2 == 0 and len(middle) >= 6 and is_simple_polygon(middle)
    assert len(middle) == len(big)  # every vertex of the small square matches one of the big square
    assert area(SQUARE_10) < area(middle) < area(big)
    assert area(middle) == pytest.approx(15.0 * 15.0)


def test_polygon_triangle_to_hexagon_is_continuous_at_both_ends() -> None:
    triangle = [0.0, 0.0, 30.0, 0.0, 15.0, 26.0]
    hexagon = [40.0, 0.0, 60.0, 0.0, 70.0, 17.0, 60.0, 34.0, 40.0, 34.0, 30.0, 17.0]
    track = [Keyframe(0, "polygon", triangle), Keyframe(1000, "polygon", hexagon)]
    shapes = by_frame(interpolate_track(track, 0, 1000))
    for frame in (1, 500, 999):
        assert is_simple_polygon(shapes[frame].points)
    # one frame away from a keyframe the outline is nearly that keyframe's
    assert area(shapes[1].points) == pytest.approx(area(triangle), rel=1e-2)
    assert area(shapes[999].points) == pytest.approx(area(hexagon), rel=1e-2)
    assert min(area(triangle), area(hexagon)) < area(shapes[500].points) < max(area(triangle), area(hexagon))
    # all of the triangle's and the hexagon's vertices are carried: between max(n, m) and n + m points
    assert 6 <= len(shapes[500].points) // 2 <= 9


@pytest.mark.parametrize("kind", ["polygon", "polyline"])
def test_an_unchanged_outline_stays_exactly_the_same(kind: str) -> None:
    # coordinates whose arc lengths are inexact: matched points must be the vertices, not recomputed
    outline = [0.1, 0.7, 3.3, 0.2, 7.9, 5.1, 2.2, 9.6, 0.3, 4.4]
    track = [Keyframe(0, kind, outline), Keyframe(7, kind, outline)]
    assert all(s.points == tuple(outline) for s in interpolate_track(track, 0, 7))


def test_polygon_start_and_orientation_are_aligned() -> None:
    # the same square listed from another corner, the other way round: nothing should move
    reordered = [10.0, 10.0, 10.0, 0.0, 0.0, 0.0, 0.0, 10.0]
    track = [Keyframe(0, "polygon", SQUARE_10), Keyframe(2, "polygon", reordered)]
    (middle,) = interpolate_track(track, 1, 1)
    assert sorted(vertices(middle.points)) == sorted(vertices(SQUARE_10))
    assert area(middle.points) == pytest.approx(100.0)


def test_polyline_orientation_is_aligned() -> None:
    # the second line is drawn right to left; matching end to end would collapse the middle into a point
    track = [Keyframe(0, "polyline", [0, 0, 10, 0]), Keyframe(2, "polyline", [10, 10, 0, 10])]
    (middle,) = interpolate_track(track, 1, 1)
    assert middle.points == (0.0, 5.0, 10.0, 5.0)


def test_polyline_with_different_point_counts_matches_by_arc_length() -> None:
    track = [Keyframe(0, "polyline", [0, 0, 20, 0]), Keyframe(2, "polyline", [0, 10, 10, 10, 20, 10])]
    (middle,) = interpolate_track(track, 1, 1)
    assert middle.points == (0.0, 5.0, 10.0, 5.0, 20.0, 5.0)


def test_too_short_outlines_repeat_the_previous_keyframe() -> None:
    track = [Keyframe(0, "polygon", [0, 0, 1, 0]), Keyframe(2, "polygon", SQUARE_10)]
    (middle,) = interpolate_track(track, 1, 1)
    assert middle.points == (0.0, 0.0, 1.0, 0.0)


def test_degenerate_outline_grows_from_a_point() -> None:
    track = [Keyframe(0, "polygon", [5, 5, 5, 5, 5, 5]), Keyframe(2, "polygon", SQUARE_10)]
    (middle,) = interpolate_track(track, 1, 1)
    assert all(math.isfinite(v) for v in middle.points)
    assert area(middle.points) == pytest.approx(25.0)


# ---------------------------------------------------------------- slicing


def test_slice_keeps_inside_keyframes_and_starts_with_the_shape_at_start() -> None:
    track = [
        Keyframe(0, "rectangle", [0, 0, 10, 10], occluded=True),
        Keyframe(10, "rectangle", [10, 10, 20, 20]),
        Keyframe(12, "rectangle", [12, 12, 22, 22]),
    ]
    sliced = slice_track(track, 5, 20)
    assert sliced == [Keyframe(5, "rectangle", [5, 5, 15, 15], occluded=True), track[1], track[2]]


def test_slice_needs_no_start_keyframe_when_one_is_there_or_the_track_is_absent() -> None:
    track = [
        Keyframe(0, "rectangle", [0, 0, 1, 1]),
        Keyframe(3, "rectangle", [0, 0, 1, 1], outside=True),
        Keyframe(7, "rectangle", [5, 5, 6, 6]),
    ]
    assert slice_track(track, 0, 20) == track
    assert slice_track(track, 5, 20) == [track[2]]
    assert slice_track(track, 7, 20) == [track[2]]


def test_slice_ends_a_continuing_track_after_the_range() -> None:
    track = [Keyframe(0, "rectangle", [0, 0, 10, 10]), Keyframe(10, "rectangle", [10, 10, 20, 20])]
    assert slice_track(track, 0, 4) == [track[0], Keyframe(5, "rectangle", [5, 5, 15, 15], outside=True)]
    # the next keyframe right after the range becomes the outside one
    assert slice_track(track, 0, 9)[-1] == Keyframe(10, "rectangle", [10, 10, 20, 20], outside=True)


def test_slice_adds_no_end_when_the_track_persists_or_has_ended() -> None:
    persisting = [Keyframe(0, "rectangle", [0, 0, 10, 10])]
    assert slice_track(persisting, 0, 4) == persisting
    ended = [
        Keyframe(0, "rectangle", [0, 0, 10, 10]),
        Keyframe(2, "rectangle", [0, 0, 10, 10], outside=True),
        Keyframe(9, "rectangle", [1, 1, 2, 2]),
    ]
    assert slice_track(ended, 0, 5) == ended[:2]


def test_slice_of_a_track_not_visible_in_the_range_is_empty() -> None:
    track = [
        Keyframe(0, "rectangle", [0, 0, 1, 1]),
        Keyframe(2, "rectangle", [0, 0, 1, 1], outside=True),
        Keyframe(4, "rectangle", [0, 0, 1, 1], outside=True),
        Keyframe(9, "rectangle", [1, 1, 2, 2]),
    ]
    assert slice_track(track, 3, 6) == []
    assert slice_track(track, 2, 6) == []
    assert slice_track(track, 20, 30) == [Keyframe(20, "rectangle", [1, 1, 2, 2])]
    assert slice_track([], 0, 5) == []
    assert slice_track(track, 6, 5) == []


# ---------------------------------------------------------------- properties

coordinate = st.floats(min_value=-1e5, max_value=1e5, allow_nan=False, allow_infinity=False)
angle = st.floats(min_value=0.0, max_value=360.0, exclude_max=True, allow_nan=False)


@st.composite
def rectangle_tracks(draw: st.DrawFn) -> list[Keyframe]:
    frames = sorted(draw(st.sets(st.integers(0, 60), min_size=1, max_size=6)))
    track = []
    for frame in frames:
        x0, x1 = sorted((draw(coordinate), draw(coordinate)))
        y0, y1 = sorted((draw(coordinate), draw(coordinate)))
        track.append(
            Keyframe(
                frame,
                "rectangle",
                [x0, y0, x1, y1],
                rotation=draw(angle),
                occluded=draw(st.booleans()),
                outside=draw(st.booleans()),
                z_order=draw(st.integers(-3, 3)),
            )
        )
    return draw(st.permutations(track))


@st.composite
def polygon_tracks(draw: st.DrawFn) -> list[Keyframe]:
    kind = draw(st.sampled_from(["polygon", "polyline"]))
    frames = sorted(draw(st.sets(st.integers(0, 40), min_size=1, max_size=4)))
    track = []
    for frame in frames:
        count = draw(st.integers(3, 9))
        points = draw(st.lists(coordinate, min_size=2 * count, max_size=2 * count))
        track.append(Keyframe(frame, kind, points, outside=draw(st.booleans())))
    return track


frame_ranges = st.tuples(st.integers(0, 70), st.integers(0, 70)).map(sorted)


def expected_frames(track: Sequence[Keyframe], start: int, stop: int) -> list[int]:
    """Independently of the implementation: frames on which the track has a shape."""
    ordered = sorted(track, key=lambda k: k.frame)
    frames = []
    for frame in range(start, stop + 1):
        earlier = [k for k in ordered if k.frame <= frame]
        if earlier and (earlier[-1].frame == frame or not earlier[-1].outside):
            frames.append(frame)
    return frames


@settings(max_examples=200, deadline=None)
@given(rectangle_tracks(), frame_ranges)
def test_rectangle_track_properties(track: list[Keyframe], frame_range: list[int]) -> None:
    start, stop = frame_range
    shapes = list(interpolate_track(track, start, stop))
    assert [s.frame for s in shapes] == expected_frames(track, start, stop)
    keyframes = {k.frame: k for k in track}
    ordered = sorted(keyframes)
    for shape in shapes:
        assert all(math.isfinite(v) for v in shape.points) and 0.0 <= shape.rotation < 360.0
        if shape.frame in keyframes:
            assert matches_keyframe(shape, keyframes[shape.frame])
            continue
        assert not shape.keyframe and not shape.outside
        previous = keyframes[max(f for f in ordered if f < shape.frame)]
        following = [keyframes[f] for f in ordered if f > shape.frame][:1] or [previous]
        for value, a, b in zip(shape.points, previous.points, following[0].points, strict=True):
            assert min(a, b) <= value <= max(a, b)
        assert (shape.occluded, shape.z_order) == (previous.occluded, previous.z_order)


@settings(max_examples=150, deadline=None)
@given(polygon_tracks(), frame_ranges)
def test_polygon_track_properties(track: list[Keyframe], frame_range: list[int]) -> None:
    start, stop = frame_range
    shapes = list(interpolate_track(track, start, stop))
    assert [s.frame for s in shapes] == expected_frames(track, start, stop)
    keyframes = {k.frame: k for k in track}
    minimum = 6 if track[0].type == "polygon" else 4
    for shape in shapes:
        assert all(math.isfinite(v) for v in shape.points)
        assert len(shape.points) % 2 == 0 and len(shape.points) >= minimum
        if shape.frame in keyframes:
            assert matches_keyframe(shape, keyframes[shape.frame])


def rotation_gap(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


@settings(max_examples=200, deadline=None)
@given(rectangle_tracks(), frame_ranges)
def test_a_slice_describes_the_track_on_its_range(track: list[Keyframe], frame_range: list[int]) -> None:
    start, stop = frame_range
    sliced = slice_track(track, start, stop)
    assert all(start <= k.frame <= stop for k in sliced[:-1])
    assert not sliced or not sliced[0].outside
    visible = [s for s in interpolate_track(track, start, stop) if not s.outside]
    from_slice = [s for s in interpolate_track(sliced, start, stop) if not s.outside]
    assert [s.frame for s in from_slice] == [s.frame for s in visible]
    for original, rebuilt in zip(visible, from_slice, strict=True):
        assert rebuilt.points == pytest.approx(original.points, abs=1e-6)
        assert rotation_gap(rebuilt.rotation, original.rotation) == pytest.approx(0.0, abs=1e-6)
        assert (rebuilt.occluded, rebuilt.z_order) == (original.occluded, original.z_order)
