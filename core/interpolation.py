"""Tracks between keyframes: the shapes a track has on every frame, and a track cut to a segment.

Only keyframes are stored; exporters, the annotation API and job splitting all need the frames in
between, computed the same way. This module holds those rules, free of the database and of wire types:
callers adapt their rows to ``Keyframe`` and read ``InterpolatedShape`` back.

Rules of ``interpolate_track``:

- Nothing is produced before the first keyframe. Keyframes are produced as they are (``keyframe=True``).
- Between a visible keyframe A and the next keyframe B, each frame gets a shape with ``keyframe=False``
  whose geometry lies ``t = (frame - A.frame) / (B.frame - A.frame)`` of the way from A to B, even when B
  is ``outside`` (the object moves towards where it disappears). ``occluded``, ``z_order`` and the
  mutable attributes are A's; ``outside`` is false.
- Geometry: rectangle, ellipse, cuboid and points move every coordinate linearly; when the two keyframes
  have different coordinate counts (points) or types, A's geometry is repeated. Rotation follows the
  shorter arc (350 -> 10 passes through 0; between exactly opposite angles it decreases) and
  stays in [0, 360). Polygons (closed) and polylines (open) are matched by arc length after B's
  starting vertex and direction are chosen to lie closest to A (see ``_outline_interpolator``); the
  result carries every vertex of both keyframes, so it reproduces A's
  and B's outlines exactly at the ends and has between max(n, m) and n + m points. Masks and skeletons
  repeat A (a skeleton's geometry is in its elements, which are tracks of their own).
- An ``outside`` keyframe is produced (flagged ``outside``) and the track is absent from then until the
  next keyframe: nothing is produced for the frames in between.
- After the last keyframe, if it is visible, the track persists with its geometry until ``stop``
  (``keyframe=False``); if it is ``outside``, the track has ended.
- Only frames of the requested grid are produced: ``start..stop`` (inclusive) every ``step`` frames,
  and only those in ``included`` when given. Keyframes off the grid still shape the frames around them.

Rule of ``slice_track`` (a task track cut to the frames ``start..stop`` of one job):

- the keyframes inside the range are kept as they are;
- if the track is visible at ``start`` without a keyframe there (it began earlier), its shape at
  ``start`` becomes a keyframe;
- leading ``outside`` keyframes are dropped (they describe no visible frame of the range), so a track
  never visible in the range slices to an empty list;
- if the track is visible at ``stop`` and has keyframes after ``stop``, an ``outside`` keyframe with its
  shape at ``stop + 1`` ends it there; a track with no keyframe after ``stop`` needs none, as it
  persists past ``stop`` in the whole track too.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Container, Iterator, Sequence
from dataclasses import dataclass, field

__all__ = [
    "LINEAR_TYPES",
    "OUTLINE_TYPES",
    "InterpolatedShape",
    "Keyframe",
    "interpolate_track",
    "shape_at",
    "slice_track",
]

#: Shape types whose coordinates move linearly, one by one.
LINEAR_TYPES = frozenset({"rectangle", "ellipse", "cuboid", "points"})
#: Shape types matched by arc length: polygons are closed outlines, polylines open.
OUTLINE_TYPES = frozenset({"polygon", "polyline"})

# Position-matching tolerance on the normalised arc length [0, 1].
_SAME_POSITION = 1e-9
# Alignment compares outlines at this many points and tries at most this many starting vertices per
# orientation, which bounds its cost for outlines with thousands of points.
_ALIGN_SAMPLES = 64
_ALIGN_STARTS = 256


@dataclass(frozen=True, slots=True)
class Keyframe:
    """A stored shape of a track. ``points`` are kept as a tuple of floats, ``attributes`` as a tuple."""

    frame: int
    type: str
    points: Sequence[float]
    rotation: float = 0.0
    occluded: bool = False
    outside: bool = False
    z_order: int = 0
    #: mutable attribute values as ``(spec_id, value)``
    attributes: Sequence[tuple[int, str]] = field(default=())

    def __post_init__(self) -> None:
        # frozen: tuples make the keyframe truly immutable and hashable
        object.__setattr__(self, "points", tuple(float(value) for value in self.points))
        object.__setattr__(self, "attributes", tuple(self.attributes))


@dataclass(frozen=True, slots=True)
class InterpolatedShape:
    """The shape of a track on one frame; ``keyframe`` tells a stored shape from a computed one."""

    frame: int
    type: str
    points: tuple[float, ...]
    rotation: float
    occluded: bool
    outside: bool
    z_order: int
    attributes: tuple[tuple[int, str], ...]
    keyframe: bool

    def as_keyframe(self, *, outside: bool | None = None) -> Keyframe:
        """This shape stored as a keyframe (optionally with another ``outside``)."""
        return Keyframe(
            frame=self.frame,
            type=self.type,
            points=self.points,
            rotation=self.rotation,
            occluded=self.occluded,
            outside=self.outside if outside is None else outside,
            z_order=self.z_order,
            attributes=self.attributes,
        )


Geometry = Callable[[float], tuple[tuple[float, ...], float]]


def interpolate_track(
    keyframes: Sequence[Keyframe],
    start: int,
    stop: int,
    *,
    step: int = 1,
    included: Container[int] | None = None,
) -> Iterator[InterpolatedShape]:
    """The track's shapes on the frames ``start..stop`` (inclusive), in frame order, one at a time.

    ``step`` and ``included`` narrow the frames produced (see the module rules). Keyframes may come in
    any order; two keyframes on one frame are a ``ValueError``.
    """
    if step < 1:
        raise ValueError("step must be at least 1")
    ordered = _ordered(keyframes)
    if not ordered or stop < start:
        return

    def on_grid(frame: int) -> bool:
        return (
            start <= frame <= stop and (frame - start) % step == 0 and (included is None or frame in included)
        )

    def grid(low: int, high: int) -> Iterator[int]:
        # the first frame of start, start + step, ... that is not below low
        first = start + max(0, -(-(low - start) // step)) * step
        for frame in range(first, min(high, stop) + 1, step):
            if included is None or frame in included:
                yield frame

    for index, current in enumerate(ordered):
        if current.frame > stop:
            return
        if on_grid(current.frame):
            yield _keyframe_shape(current)
        if current.outside:
            continue
        following = ordered[index + 1] if index + 1 < len(ordered) else None
        last = stop if following is None else following.frame - 1
        geometry: Geometry | None = None
        for frame in grid(current.frame + 1, last):
            if geometry is None:
                # built on first use: pairs wholly outside the grid never pay for polygon alignment
                geometry = _repeat(current) if following is None else _geometry(current, following)
            yield _between(current, following, frame, geometry)


def shape_at(keyframes: Sequence[Keyframe], frame: int) -> InterpolatedShape | None:
    """The track's shape on ``frame`` by the rules of ``interpolate_track``, or None where it is absent.

    On an ``outside`` keyframe's own frame the keyframe is returned (flagged ``outside``).
    """
    ordered = _ordered(keyframes)
    index = bisect.bisect_right([k.frame for k in ordered], frame) - 1
    if index < 0:
        return None
    current = ordered[index]
    if current.frame == frame:
        return _keyframe_shape(current)
    if current.outside:
        return None
    following = ordered[index + 1] if index + 1 < len(ordered) else None
    geometry = _repeat(current) if following is None else _geometry(current, following)
    return _between(current, following, frame, geometry)


def slice_track(keyframes: Sequence[Keyframe], start: int, stop: int) -> list[Keyframe]:
    """The keyframes describing the track on ``start..stop`` alone (see the module rules)."""
    ordered = _ordered(keyframes)
    if stop < start:
        return []
    inside = [k for k in ordered if start <= k.frame <= stop]
    result: list[Keyframe] = []
    if not inside or inside[0].frame != start:
        at_start = shape_at(ordered, start)
        if at_start is not None and not at_start.outside:
            result.append(at_start.as_keyframe())
    result.extend(inside)
    first_visible = next((i for i, k in enumerate(result) if not k.outside), len(result))
    result = result[first_visible:]
    if not result:
        return []
    at_stop = shape_at(ordered, stop)
    if ordered[-1].frame > stop and at_stop is not None and not at_stop.outside:
        after = shape_at(ordered, stop + 1)
        # visible at stop means some shape exists on stop + 1 (interpolated, persisting or a keyframe)
        assert after is not None
        result.append(after.as_keyframe(outside=True))
    return result


def _ordered(keyframes: Sequence[Keyframe]) -> list[Keyframe]:
    ordered = sorted(keyframes, key=lambda k: k.frame)
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        if earlier.frame == later.frame:
            raise ValueError(f"two keyframes on frame {later.frame}")
    return ordered


def _keyframe_shape(k: Keyframe) -> InterpolatedShape:
    return InterpolatedShape(
        frame=k.frame,
        type=k.type,
        points=tuple(k.points),
        rotation=k.rotation,
        occluded=k.occluded,
        outside=k.outside,
        z_order=k.z_order,
        attributes=tuple(k.attributes),
        keyframe=True,
    )


def _between(
    current: Keyframe, following: Keyframe | None, frame: int, geometry: Geometry
) -> InterpolatedShape:
    offset = 0.0 if following is None else (frame - current.frame) / (following.frame - current.frame)
    points, rotation = geometry(offset)
    return InterpolatedShape(
        frame=frame,
        type=current.type,
        points=points,
        rotation=rotation,
        occluded=current.occluded,
        outside=False,
        z_order=current.z_order,
        attributes=tuple(current.attributes),
        keyframe=False,
    )


def _repeat(k: Keyframe) -> Geometry:
    points, rotation = tuple(k.points), k.rotation
    return lambda _offset: (points, rotation)


def _geometry(a: Keyframe, b: Keyframe) -> Geometry:
    """How the geometry goes from keyframe ``a`` (offset 0) to ``b`` (offset 1)."""
    # a track keeps its type; should two keyframes differ, nothing sensible lies in between
    points: Callable[[float], tuple[float, ...]] | None = None
    if a.type == b.type and a.type in LINEAR_TYPES and len(a.points) == len(b.points):
        points = _linear_interpolator(a.points, b.points)
    elif a.type == b.type and a.type in OUTLINE_TYPES:
        points = _outline_interpolator(a.points, b.points, closed=a.type == "polygon")
    if points is None:
        return _repeat(a)
    rotation = _rotation_interpolator(a.rotation, b.rotation)
    resolved = points
    return lambda offset: (resolved(offset), rotation(offset))


def _lerp(a: float, b: float, offset: float) -> float:
    # a + (b - a) * t (not a * (1 - t) + b * t): equal ends give the value back exactly
    return a + (b - a) * offset


def _linear_interpolator(a: Sequence[float], b: Sequence[float]) -> Callable[[float], tuple[float, ...]]:
    pairs = tuple(zip(a, b, strict=True))
    return lambda offset: tuple(_lerp(x, y, offset) for x, y in pairs)


def _rotation_interpolator(a: float, b: float) -> Callable[[float], float]:
    # signed turn in [-180, 180): the shorter way round
    turn = (b - a + 180.0) % 360.0 - 180.0

    def rotation(offset: float) -> float:
        angle = (a + turn * offset) % 360.0
        # a tiny negative angle modulo 360 rounds to 360.0 itself
        return 0.0 if angle >= 360.0 else angle

    return rotation


Point = tuple[float, float]


class _Outline:
    """A polygon or polyline parametrised by normalised arc length in [0, 1]."""

    def __init__(self, vertices: Sequence[Point], closed: bool) -> None:
        self.vertices = list(vertices)
        self.closed = closed
        count = len(self.vertices)
        edges = count if closed else count - 1
        self.cumulative = [0.0]
        for i in range(edges):
            (x0, y0), (x1, y1) = self.vertices[i], self.vertices[(i + 1) % count]
            self.cumulative.append(self.cumulative[-1] + math.hypot(x1 - x0, y1 - y0))
        self.length = self.cumulative[-1]

    def positions(self) -> list[float]:
        """Each vertex's position; a degenerate (zero-length) outline spaces them evenly."""
        count = len(self.vertices)
        if self.length == 0.0:
            return [i / (count if self.closed else count - 1) for i in range(count)]
        return [self.cumulative[i] / self.length for i in range(count)]

    def at(self, position: float) -> Point:
        """The point at a normalised position (wrapping around for closed outlines)."""
        if self.length == 0.0:
            return self.vertices[0]
        if self.closed:
            position %= 1.0
        distance = min(max(position, 0.0), 1.0) * self.length
        edge = min(bisect.bisect_right(self.cumulative, distance) - 1, len(self.cumulative) - 2)
        edge_length = self.cumulative[edge + 1] - self.cumulative[edge]
        fraction = 0.0 if edge_length == 0.0 else (distance - self.cumulative[edge]) / edge_length
        (x0, y0), (x1, y1) = self.vertices[edge], self.vertices[(edge + 1) % len(self.vertices)]
        return (_lerp(x0, x1, fraction), _lerp(y0, y1, fraction))

    def rolled(self, first: int, reverse: bool) -> _Outline:
        vertices = self.vertices[::-1] if reverse else self.vertices
        if reverse and self.closed:
            # reversed closed outlines keep their former first vertex first before rolling
            vertices = vertices[-1:] + vertices[:-1]
        return _Outline(vertices[first:] + vertices[:first], self.closed)


def _vertices(points: Sequence[float]) -> list[Point]:
    return [(points[i], points[i + 1]) for i in range(0, len(points) - 1, 2)]


def _outline_interpolator(
    a_points: Sequence[float], b_points: Sequence[float], *, closed: bool
) -> Callable[[float], tuple[float, ...]] | None:
    """Polygons/polylines: align ``b`` to ``a``, then move matched points of both outlines linearly.

    ``b``'s starting vertex (polygons: any vertex; polylines: either end) and orientation are chosen to
    minimise the summed distance between the outlines sampled at equal arc-length positions. Then every
    vertex of either outline is placed at its normalised arc-length position on the other outline, and
    these matched pairs move linearly. Returns None for outlines too short to interpolate.
    """
    minimum = 3 if closed else 2
    if len(a_points) % 2 or len(b_points) % 2 or min(len(a_points), len(b_points)) < 2 * minimum:
        return None
    a = _Outline(_vertices(a_points), closed)
    b = _align(a, _Outline(_vertices(b_points), closed))
    matched: list[tuple[float, int | None, int | None]] = []
    tagged = sorted(
        [(p, 0, i) for i, p in enumerate(a.positions())] + [(p, 1, i) for i, p in enumerate(b.positions())]
    )
    for position, source, index in tagged:
        last = matched[-1] if matched else None
        # a vertex of the other outline at (nearly) the same position shares the matched point
        if last is not None and position - last[0] < _SAME_POSITION and last[1 + source] is None:
            matched[-1] = (last[0], index, last[2]) if source == 0 else (last[0], last[1], index)
        else:
            matched.append((position, index, None) if source == 0 else (position, None, index))
    pairs = [
        (
            a.vertices[ai] if ai is not None else a.at(position),
            b.vertices[bi] if bi is not None else b.at(position),
        )
        for position, ai, bi in matched
    ]

    def points(offset: float) -> tuple[float, ...]:
        flat: list[float] = []
        for (ax, ay), (bx, by) in pairs:
            flat.append(_lerp(ax, bx, offset))
            flat.append(_lerp(ay, by, offset))
        return tuple(flat)

    return points


def _align(a: _Outline, b: _Outline) -> _Outline:
    """``b`` started and oriented to lie closest to ``a`` once both are centred on the same point.

    The first candidate wins ties, so an outline already aligned stays as it is.
    """
    count = len(b.vertices)
    if a.closed:
        samples = [k / _ALIGN_SAMPLES for k in range(_ALIGN_SAMPLES)]
        starts = range(0, count, -(-count // _ALIGN_STARTS))
    else:
        samples = [k / (_ALIGN_SAMPLES - 1) for k in range(_ALIGN_SAMPLES)]
        starts = range(1)
    # compared with their centres together: the track's motion should not decide how shapes correspond
    reference = [a.at(s) for s in samples]
    a_centre, b_centre = _centre(reference), _centre([b.at(s) for s in samples])
    dx, dy = b_centre[0] - a_centre[0], b_centre[1] - a_centre[1]
    reference = [(x + dx, y + dy) for x, y in reference]
    best, best_cost = b, math.inf
    for reverse in (False, True):
        oriented = b.rolled(0, reverse)
        offsets = oriented.positions()
        for first in starts:
            cost = 0.0
            for (rx, ry), sample in zip(reference, samples, strict=True):
                x, y = oriented.at(offsets[first] + sample)
                cost += math.hypot(x - rx, y - ry)
            if cost < best_cost:
                best_cost = cost
                best = oriented.rolled(first, False) if first else oriented
    return best


def _centre(points: Sequence[Point]) -> Point:
    return (math.fsum(x for x, _ in points) / len(points), math.fsum(y for _, y in points) / len(points))
