"""The neutral dataset model: what exporters read and importers produce.

Labels and attributes are referred to by *name*, never by database id, so a format plugin needs to
know nothing about the server, and the same plugins serve ``annota convert`` offline. Geometry uses
CVAT's encodings (reference: ``LabeledShape.points``): rectangles ``[xtl, ytl, xbr, ybr]`` plus
``rotation`` in degrees around the centre, polygons/polylines/points flat ``[x0, y0, x1, y1, ...]``,
ellipses ``[cx, cy, cx + rx, cy - ry]``, cuboids 16 values, masks ``[run, run, ..., left, top, right,
bottom]`` (row-major runs over the inclusive crop, starting with background; see ``masks``), skeletons
``[]`` with one ``points`` element per sublabel.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any, Protocol

import msgspec

#: the value of ``Item.subset`` when a dataset has no subsets
DEFAULT_SUBSET = "default"


class AttributeSpec(msgspec.Struct, kw_only=True):
    """An attribute of a label: ``input_type`` is one of checkbox, radio, number, text, select."""

    name: str
    input_type: str = "text"
    mutable: bool = False
    values: list[str] = []
    default_value: str = ""


class LabelSpec(msgspec.Struct, kw_only=True):
    """A label; a skeleton has ``type="skeleton"`` and one ``points`` sublabel per keypoint."""

    name: str
    type: str = "any"
    color: str = ""
    attributes: list[AttributeSpec] = []
    sublabels: list[LabelSpec] = []
    svg: str = ""

    def attribute(self, name: str) -> AttributeSpec | None:
        for spec in self.attributes:
            if spec.name == name:
                return spec
        return None


class Tag(msgspec.Struct, kw_only=True):
    """A label on a whole frame."""

    label: str
    group: int = 0
    source: str = "manual"
    attributes: dict[str, str] = {}


class Shape(msgspec.Struct, kw_only=True):
    """A shape on one frame. ``track_id`` is set on the shapes of a track flattened into frames
    (``keyframe`` false where the shape was interpolated); ``elements`` only on skeletons."""

    type: str
    label: str
    points: list[float]
    occluded: bool = False
    outside: bool = False
    z_order: int = 0
    rotation: float = 0.0
    group: int = 0
    source: str = "manual"
    score: float = 1.0
    attributes: dict[str, str] = {}
    elements: list[Shape] = []
    track_id: int | None = None
    keyframe: bool = True


class TrackShape(msgspec.Struct, kw_only=True):
    """A keyframe of a track (or, when exported, any frame of it: ``keyframe`` tells which)."""

    frame: int
    type: str
    points: list[float]
    occluded: bool = False
    outside: bool = False
    z_order: int = 0
    rotation: float = 0.0
    attributes: dict[str, str] = {}
    keyframe: bool = True


class Track(msgspec.Struct, kw_only=True):
    """An object followed over frames; ``attributes`` are its immutable ones, the mutable ones
    live on its shapes. A skeleton track has one element track per sublabel."""

    id: int
    label: str
    shapes: list[TrackShape]
    group: int = 0
    source: str = "manual"
    attributes: dict[str, str] = {}
    elements: list[Track] = []


class Item(msgspec.Struct, kw_only=True):
    """One frame (image) with its annotations.

    ``name`` is the frame's file name as the task knows it (a relative path with ``/``, with its
    extension when known); ``frame`` is its index in the task, set on export and by importers of
    formats that record one. ``image`` is, on import, the path of the image file when the dataset
    contains it.
    """

    name: str
    frame: int | None = None
    subset: str = DEFAULT_SUBSET
    width: int | None = None
    height: int | None = None
    tags: list[Tag] = []
    shapes: list[Shape] = []
    image: str | None = None

    @property
    def id(self) -> str:
        """The name without its extension: how Datumaro-style formats name an item."""
        return item_id(self.name)


def item_id(name: str) -> str:
    path = PurePosixPath(name.replace("\\", "/"))
    return str(path.with_suffix("")) if path.suffix else str(path)


class Dataset(Protocol):
    """A dataset as a format reads it on export, and as an importer returns it.

    ``items`` yields frames in order, one at a time: implementations stream them from a database or
    from files and never hold the whole dataset. With ``tracks=False`` (what most formats want) the
    shapes of tracks are included in every frame where the track is visible, interpolated between
    keyframes and carrying ``track_id``; with ``tracks=True`` they are left out and ``tracks()``
    gives the tracks themselves (keyframes only).
    """

    @property
    def name(self) -> str:
        """The task or project name (also used in file names and metadata)."""
        ...

    @property
    def labels(self) -> Sequence[LabelSpec]: ...

    @property
    def size(self) -> int | None:
        """The number of items when known, for progress."""
        ...

    @property
    def meta(self) -> Mapping[str, Any]:
        """What the exporting server knows about the source: ``target`` (task, job, project), ``id``,
        ``name``, ``size``, ``mode``, ``overlap``, ``segment_size``, ``subset``, ``created``,
        ``updated``, ``owner``/``assignee`` (``{"username", "email"}``), ``segments``
        (``[{"id", "start", "stop"}]``) and, for projects, ``tasks`` (one such mapping per task).
        Empty for ``annota convert``."""
        ...

    def items(self, *, tracks: bool = False) -> Iterator[Item]: ...

    def tracks(self) -> Iterator[Track]: ...

    def image(self, item: Item) -> bytes | None:
        """The frame's image file (original quality) or ``None`` when it is not available."""
        ...

    def image_extension(self, item: Item) -> str:
        """The extension (``.jpg``) of ``image(item)``."""
        ...


def video_frame_name(real_frame: int) -> str:
    """The item name of a video's frame, as CVAT names it: its number in the video."""
    return f"frame_{real_frame:06d}"


__all__ = [
    "DEFAULT_SUBSET",
    "AttributeSpec",
    "Dataset",
    "Item",
    "LabelSpec",
    "Shape",
    "Tag",
    "Track",
    "TrackShape",
    "item_id",
    "video_frame_name",
]
