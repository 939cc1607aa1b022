"""Tracks as per-frame shapes, and per-frame shapes with track ids back into tracks.

Most formats have no tracks: on export every frame gets the shape each visible track has there
(interpolated between keyframes by ``core.interpolation``, ``keyframe=False`` where computed). The
``outside`` keyframe that ends a track is included, flagged ``outside``: formats that cannot say
"outside" skip such shapes. On import, shapes carrying a ``track_id`` (MOT, COCO's ``track_id``
attribute...) are gathered back into tracks whose keyframes are the imported shapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

import msgspec

from annota.core.formats.model import Item, Shape, Track, TrackShape
from annota.core.interpolation import InterpolatedShape, Keyframe, shape_at


def keyframes(track: Track) -> list[Keyframe]:
    """A track's shapes as ``core.interpolation`` keyframes, in frame order (attributes keep their names)."""
    return [
        Keyframe(
            frame=s.frame,
            type=s.type,
            points=s.points,
            rotation=s.rotation,
            occluded=s.occluded,
            outside=s.outside,
            z_order=s.z_order,
            # interpolation carries attribute keys through untouched: names here, not spec ids
            attributes=cast(Any, tuple(s.attributes.items())),
        )
        for s in sorted(track.shapes, key=lambda s: s.frame)
    ]


def _shape(track: Track, at: InterpolatedShape, elements: list[Shape]) -> Shape:
    return Shape(
        type=at.type,
        label=track.label,
        points=list(at.points),
        occluded=at.occluded,
        outside=at.outside,
        z_order=at.z_order,
        rotation=at.rotation,
        group=track.group,
        source=track.source,
        attributes={**track.attributes, **dict(cast(Any, at.attributes))},
        elements=elements,
        track_id=track.id,
        keyframe=at.keyframe,
    )


class _Cursor:
    def __init__(self, track: Track) -> None:
        self.track = track
        self.keyframes = keyframes(track)
        self.first = self.keyframes[0].frame if self.keyframes else 0
        self.elements = [_Cursor(element) for element in track.elements]

    def at(self, frame: int) -> Shape | None:
        if not self.keyframes or frame < self.first:
            return None
        found = shape_at(self.keyframes, frame)
        if found is None:
            return None
        elements: list[Shape] = []
        for element in self.elements:
            shape = element.at(frame)
            if shape is None:
                continue
            shape.track_id = None
            elements.append(shape)
        return _shape(self.track, found, elements)


class TrackFlattener:
    """The shapes tracks have on each frame, asked for frame by frame in increasing order."""

    def __init__(self, tracks: Iterable[Track]) -> None:
        self.cursors = sorted((_Cursor(track) for track in tracks), key=lambda c: c.first)

    def shapes_at(self, frame: int) -> list[Shape]:
        shapes = []
        for cursor in self.cursors:
            if cursor.first > frame:
                break
            shape = cursor.at(frame)
            if shape is not None:
                shapes.append(shape)
        return shapes


def with_track_shapes(items: Iterable[Item], tracks: Sequence[Track]) -> Iterator[Item]:
    """``items`` with the shapes of ``tracks`` added on each frame (items need ``frame`` set)."""
    if not tracks:
        yield from items
        return
    flattener = TrackFlattener(tracks)
    for item in items:
        if item.frame is not None:
            extra = flattener.shapes_at(item.frame)
            if extra:
                # a copy: the caller's item may be read again (an in-memory dataset)
                item = msgspec.structs.replace(item, shapes=[*item.shapes, *extra])
        yield item


def gather_tracks(frames: Iterable[tuple[int, Shape]]) -> list[Track]:
    """Tracks from ``(frame, shape)`` pairs whose shapes carry ``track_id``; keyframes in frame order.

    The track's label, group and source come from its first shape; attributes that never change
    along the track become the track's, the others stay on its shapes.
    """
    by_id: dict[int, list[tuple[int, Shape]]] = {}
    for frame, shape in frames:
        assert shape.track_id is not None
        by_id.setdefault(shape.track_id, []).append((frame, shape))
    tracks = []
    for track_id, pairs in by_id.items():
        pairs.sort(key=lambda pair: pair[0])
        first = pairs[0][1]
        constant = {
            name: value
            for name, value in first.attributes.items()
            if all(shape.attributes.get(name) == value for _, shape in pairs)
        }
        shapes = [
            TrackShape(
                frame=frame,
                type=shape.type,
                points=shape.points,
                occluded=shape.occluded,
                outside=shape.outside,
                z_order=shape.z_order,
                rotation=shape.rotation,
                attributes={k: v for k, v in shape.attributes.items() if k not in constant},
                keyframe=shape.keyframe,
            )
            for frame, shape in pairs
        ]
        tracks.append(
            Track(
                id=track_id,
                label=first.label,
                shapes=shapes,
                group=first.group,
                source=first.source,
                attributes=constant,
            )
        )
    return tracks


__all__ = ["TrackFlattener", "gather_tracks", "keyframes", "with_track_shapes"]
