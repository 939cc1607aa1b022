"""Tracks of a task across its jobs: cut into one piece per segment on write, joined back on read.

Tracks at task level: a track is cut into one piece per segment it is visible in, by
``slice_track``: a piece starts with the track's interpolated shape on the segment's first frame
(when visible there) and, when the track goes on past the segment, ends with an ``outside``
keyframe on the frame after the segment's last one. Skeleton elements are cut the same way.
Reading a task joins such pieces back into one track. A piece of job N+1 continues a piece of
job N (segments given by start and stop frames, overlapping or adjacent) when:

* both have the same label, group, source, track attributes and element labels;
* the earlier piece ends with an ``outside`` keyframe on the frame after job N's last frame, or
  with a visible keyframe (its shape stays to the end of job N);
* on the frames both jobs have, the two pieces show the same shapes (equal type, points,
  rotation, occluded, z order and attributes) or are both hidden, and on the frame after job N
  the later piece shows the shape the earlier piece's ``outside`` keyframe holds (or has that
  same ``outside`` keyframe, where the track ends inside the overlap).

The joined track takes each piece's keyframes on the frames its job owns, and the keyframe that
starts a later piece is dropped when it equals the interpolation of its neighbours. Every other
piece is read on its own, with the keyframes on its job's frames. A track hidden across a segment
boundary leaves nothing linking its pieces, so it reads back as two tracks (each showing the right
shape on every frame).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from annota.core.interpolation import Keyframe, shape_at, slice_track
from annota.core.schemas.annotations import AttributeVal, SubLabeledTrack, TrackedShape
from annota.core.services import annotation_store as store

#: whether a job owns a frame: ``owned(job_id, frame)``
Owned = Callable[[int, int], bool]


@dataclass
class JobSpan:
    job_id: int
    start: int
    stop: int
    frames: frozenset[int] | None

    def contains(self, frame: int) -> bool:
        return frame in self.frames if self.frames is not None else self.start <= frame <= self.stop


@dataclass
class Piece:
    """One job's piece of a track, as stored."""

    track: store.TrackOut
    span: JobSpan


_points_decoder = msgspec.json.Decoder(list[float])
_attribute_values_decoder = msgspec.json.Decoder(list[AttributeVal])
# geometry computed on write and stored as JSON compares within this (relative) tolerance
_SAME = 1e-9


def stored_keyframe(keyframe: store.KeyframeOut) -> Keyframe:
    attributes = _attribute_values_decoder.decode(keyframe.attributes)
    return Keyframe(
        frame=keyframe.frame,
        type=keyframe.type,
        points=_points_decoder.decode(keyframe.points),
        rotation=keyframe.rotation,
        occluded=keyframe.occluded,
        outside=keyframe.outside,
        z_order=keyframe.z_order,
        attributes=sorted((a.spec_id, a.value) for a in attributes),
    )


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= _SAME * max(1.0, abs(a), abs(b))


def _same_shape(a: Keyframe, b: Keyframe) -> bool:
    """Equal but for frame and ``outside``."""
    return (
        a.type == b.type
        and a.occluded == b.occluded
        and a.z_order == b.z_order
        and sorted(a.attributes) == sorted(b.attributes)
        and _close(a.rotation, b.rotation)
        and len(a.points) == len(b.points)
        and all(_close(x, y) for x, y in zip(a.points, b.points, strict=True))
    )


def continues(earlier: Piece, track: store.TrackOut, span: JobSpan) -> bool:
    """Whether ``track`` (of ``span``'s job) goes on from ``earlier`` (of the previous job): see the
    module notes."""
    before = earlier.span
    if (
        before.frames is not None
        or span.frames is not None
        or not before.start < span.start <= before.stop + 1
    ):
        return False
    head = earlier.track
    if (head.label_id, head.group, head.source, bytes(head.attributes)) != (
        track.label_id, track.group, track.source, bytes(track.attributes)
    ) or [e.label_id for e in head.elements] != [e.label_id for e in track.elements]:  # fmt: skip
        return False
    if not head.shapes or not track.shapes:
        return False
    last = head.shapes[-1]
    if last.outside and last.frame != before.stop + 1:
        return False
    earlier_keyframes = [stored_keyframe(k) for k in head.shapes]
    later_keyframes = [stored_keyframe(k) for k in track.shapes]
    for frame in range(span.start, before.stop + 1):
        there, here = shape_at(earlier_keyframes, frame), shape_at(later_keyframes, frame)
        if there is None or there.outside:
            if here is not None and not here.outside:
                return False
        elif here is None or here.outside or not _same_shape(there.as_keyframe(), here.as_keyframe()):
            return False
    # the later piece goes on with the shape the earlier one holds on the frame after job N (an
    # outside keyframe holds the shape the track would have had), or ends there too
    there = shape_at(earlier_keyframes, before.stop + 1)
    here = shape_at(later_keyframes, before.stop + 1)
    if there is None or here is None or not _same_shape(there.as_keyframe(), here.as_keyframe()):
        return False
    return not here.outside or there.outside


def join(chain: list[Piece], owned: Owned) -> store.TrackOut | None:
    """One track from the pieces of a chain: each piece's keyframes on its job's frames (the first
    piece also keeps the ones before them, for ``own_track``), without the keyframes starting the
    later pieces that only repeat the interpolation."""
    head = chain[0].track
    end = chain[-1].span.stop + 1 if chain[-1].span.frames is None else None
    if len(chain) == 1:
        return head if own_track(head, lambda frame: owned(frame, chain[0].span.job_id), end) else None
    jobs = {piece.span.job_id for piece in chain}
    for index, joined in enumerate([head, *head.elements]):
        keyframes: list[store.KeyframeOut] = []
        starts: list[store.KeyframeOut] = []
        for number, piece in enumerate(chain):
            sub = piece.track if index == 0 else piece.track.elements[index - 1]
            job_id = piece.span.job_id
            mine = [k for k in sub.shapes if owned(k.frame, job_id)]
            if number == 0:
                first = mine[0].frame if mine else None
                keyframes.extend(k for k in sub.shapes if first is not None and k.frame < first)
            elif mine and mine[0].frame == piece.span.start:
                starts.append(mine[0])
            keyframes.extend(mine)
        for start in starts:
            rest = [k for k in keyframes if k is not start]
            if start.outside or not any(k.frame < start.frame for k in rest):
                continue
            there = shape_at([stored_keyframe(k) for k in rest], start.frame)
            if (
                there is not None
                and not there.outside
                and _same_shape(there.as_keyframe(), stored_keyframe(start))
            ):
                keyframes = rest
        joined.shapes = keyframes
    return head if own_track(head, lambda frame: any(owned(frame, job_id) for job_id in jobs), end) else None


def own_track(track: store.TrackOut, owned: Callable[[int], bool], end: int | None = None) -> bool:
    """Keep the keyframes on owned frames; a visible keyframe before them moves to the first owned
    frame, so the piece starts where its share of the frames does. An ``outside`` keyframe on
    ``end`` (the frame after the last job's segment) stays: it is where the track ends."""
    for piece in [track, *track.elements]:
        mine = [
            keyframe
            for keyframe in piece.shapes
            if owned(keyframe.frame) or (keyframe.frame == end and keyframe.outside)
        ]
        if mine:
            earlier = [k for k in piece.shapes if k.frame < mine[0].frame and not owned(k.frame)]
            if earlier and not earlier[-1].outside:
                first = next((f for f in range(earlier[-1].frame + 1, mine[0].frame) if owned(f)), None)
                if first is not None:
                    earlier[-1].frame = first
                    mine.insert(0, earlier[-1])
        piece.shapes = mine
    if not track.shapes:
        return False
    track.frame = track.shapes[0].frame
    for element in track.elements:
        element.frame = element.shapes[0].frame if element.shapes else track.frame
    return True


def split_track(track: SubLabeledTrack, span: JobSpan) -> list[TrackedShape]:
    """The keyframes of a track for one segment: ``slice_track`` over the segment's frames. A
    segment of specific frames keeps the keyframes on its frames, a visible earlier keyframe
    copied to its first frame."""
    if span.frames is None:
        sliced = slice_track([input_keyframe(k) for k in track.shapes], span.start, span.stop)
        return [tracked_shape(k) for k in sliced]
    inside = [keyframe for keyframe in track.shapes if span.contains(keyframe.frame)]
    before = [keyframe for keyframe in track.shapes if keyframe.frame < span.start]
    if before and not before[-1].outside and (not inside or inside[0].frame != span.start):
        first = min(span.frames, default=span.start)
        inside.insert(0, msgspec.structs.replace(before[-1], frame=first))
    # a keyframe may go to several jobs (overlaps); each copy gets its own id
    return [msgspec.structs.replace(keyframe, id=None) for keyframe in inside]


def input_keyframe(keyframe: TrackedShape) -> Keyframe:
    return Keyframe(
        frame=keyframe.frame,
        type=keyframe.type,
        points=keyframe.points,
        rotation=keyframe.rotation,
        occluded=keyframe.occluded,
        outside=keyframe.outside,
        z_order=keyframe.z_order,
        attributes=[(a.spec_id, a.value) for a in keyframe.attributes],
    )


def tracked_shape(keyframe: Keyframe) -> TrackedShape:
    return TrackedShape(
        type=keyframe.type,  # type: ignore[arg-type]
        frame=keyframe.frame,
        occluded=keyframe.occluded,
        outside=keyframe.outside,
        z_order=keyframe.z_order,
        rotation=keyframe.rotation,
        points=list(keyframe.points),
        attributes=[AttributeVal(spec_id=spec_id, value=value) for spec_id, value in keyframe.attributes],
    )
