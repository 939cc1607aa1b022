"""Annotations on the wire: CVAT's ``LabeledData`` with tags, shapes and tracks.

Field names, defaults and enums are CVAT's, so the SDK's closed ``ShapeType`` enum reads every
answer. ``group`` may be sent as ``null`` (CVAT coerces it to 0); the services normalize it.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import msgspec

from annota.core.schemas.common import BigId, Id, Int32

ShapeType = Literal["rectangle", "polygon", "polyline", "points", "ellipse", "cuboid", "mask", "skeleton"]
Source = Literal["manual", "auto", "semi-auto", "file", "consensus"]
SHAPE_TYPES: tuple[str, ...] = get_args(ShapeType)
SOURCES: tuple[str, ...] = get_args(Source)


class AttributeVal(msgspec.Struct):
    spec_id: Id
    value: str


class LabeledImage(msgspec.Struct, kw_only=True):
    """A tag: a label on a whole frame."""

    id: BigId | None = None
    label_id: Id
    frame: Int32
    group: Int32 | None = 0
    source: Source = "manual"
    attributes: list[AttributeVal] = []


class SubLabeledShape(msgspec.Struct, kw_only=True):
    """An element of a skeleton shape (one per sublabel, of type ``points``)."""

    id: BigId | None = None
    type: ShapeType
    label_id: Id
    frame: Int32
    group: Int32 | None = 0
    source: Source = "manual"
    score: float = 1.0
    occluded: bool = False
    outside: bool = False
    z_order: Int32 = 0
    rotation: float = 0.0
    points: list[float] = []
    attributes: list[AttributeVal] = []


class LabeledShape(SubLabeledShape, kw_only=True):
    elements: list[SubLabeledShape] = []


class TrackedShape(msgspec.Struct, kw_only=True):
    """A keyframe of a track."""

    id: BigId | None = None
    type: ShapeType
    frame: Int32
    occluded: bool = False
    outside: bool = False
    z_order: Int32 = 0
    rotation: float = 0.0
    points: list[float] = []
    attributes: list[AttributeVal] = []


class SubLabeledTrack(msgspec.Struct, kw_only=True):
    id: BigId | None = None
    label_id: Id
    frame: Int32
    group: Int32 | None = 0
    source: Source = "manual"
    shapes: list[TrackedShape] = []
    attributes: list[AttributeVal] = []


class LabeledTrack(SubLabeledTrack, kw_only=True):
    elements: list[SubLabeledTrack] = []


class LabeledData(msgspec.Struct, kw_only=True):
    """The annotations of a job or task. ``version`` is the job's annotation version when read;
    sent back non-zero in a PUT it must still be current (409 otherwise). ``intervals`` (audio)
    is accepted and always read back empty: only image and video tasks exist here."""

    version: Int32 = 0
    tags: list[LabeledImage] = []
    shapes: list[LabeledShape] = []
    tracks: list[LabeledTrack] = []
    intervals: list[Any] = []
