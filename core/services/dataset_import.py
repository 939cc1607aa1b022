"""Annotations read by a format plugin, bound to a task's frames, labels and attributes.

``bind`` turns a ``Dataset`` (names) into CVAT's ``LabeledData`` (ids) for one task or job: items
are matched to frames by name (the path without extension, then the file name alone), or by frame
index when the name matches nothing and the format gave one; labels, skeleton elements and
attributes are matched by name. Shapes carrying a ``track_id`` become tracks. Every problem is a
``FormatError`` naming the item and the annotation, and the whole import is refused: nothing is
written until everything is bound and validated (``write`` runs in one transaction).

Rules worth knowing: attributes the label does not have are ignored (formats add their own, like
``occluded``); annotations on frames outside the job being imported into are skipped, as in CVAT;
with ``conv_mask_to_poly`` masks become polygons (one per outer contour, sharing a group).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import cast

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import annota.core.services.annotations as annotation_service
from annota.core.db.tables import Data, Frame, Job, Segment, Task
from annota.core.errors import FormatError, ValidationError
from annota.core.formats import masks
from annota.core.formats.model import Dataset, Item, Shape, Tag, Track, video_frame_name
from annota.core.formats.tracks import gather_tracks
from annota.core.schemas.annotations import (
    SHAPE_TYPES,
    SOURCES,
    AttributeVal,
    LabeledData,
    LabeledImage,
    LabeledShape,
    LabeledTrack,
    Source,
    SubLabeledShape,
    SubLabeledTrack,
    TrackedShape,
)
from annota.core.services.dataset_labels import LabelCatalog, LabelEntry, load_catalog
from annota.core.services.frames import segment_frames
from annota.core.services.labels import task_labels_owner

MODES = ("replace", "append")
_PATH = re.compile(r"^(tags|shapes|tracks)\[(\d+)\]\.?(.*)$")
_frames_decoder = msgspec.json.Decoder(list[int])


@dataclass
class ImportTarget:
    task: Task
    job: Job | None
    labels: LabelCatalog
    #: the frames annotations may go to (the task's, or the job's)
    frames: frozenset[int]
    #: name keys -> frame: "dir/name", "name" (both without extension)
    by_name: dict[str, int]
    size: int

    @property
    def subject(self) -> str:
        return f"job {self.job.id}" if self.job is not None else f"task {self.task.id}"


def _keys(path: str) -> list[str]:
    pure = PurePosixPath(path.replace("\\", "/"))
    stem = str(pure.with_suffix("")) if pure.suffix else str(pure)
    return [stem, stem.rsplit("/", 1)[-1]]


async def plan_import(session: AsyncSession, task: Task, job: Job | None = None) -> ImportTarget:
    project_id, task_id = task_labels_owner(task)
    labels = await load_catalog(session, project_id=project_id, task_id=task_id)
    by_name: dict[str, int] = {}
    size = 0
    deleted: set[int] = set()
    if task.data_id is not None:
        data = await session.get(Data, task.data_id)
        assert data is not None
        size = data.size
        deleted = set(_frames_decoder.decode(data.deleted_frames))
        rows = await session.execute(
            select(Frame.frame, Frame.path, Frame.real_frame).where(Frame.data_id == task.data_id)
        )
        for number, path, real_frame in rows:
            # a video's frames all name the video: they are known as exports name them
            for key in [video_frame_name(real_frame)] if data.media_kind == "video" else _keys(path):
                by_name.setdefault(key, number)
    if job is not None:
        segment = await session.get(Segment, job.segment_id)
        assert segment is not None
        frames = frozenset(segment_frames(segment))
    else:
        frames = frozenset(range(size))
    return ImportTarget(task, job, labels, frames - deleted, by_name, size)


# --- binding names to ids ---------------------------------------------------------------------


@dataclass
class _Origin:
    item: str
    annotation: int


@dataclass
class Bound:
    """What ``bind`` produced: the annotations, and where each came from (for error messages)."""

    data: LabeledData
    tags: list[_Origin] = field(default_factory=list)
    shapes: list[_Origin] = field(default_factory=list)
    tracks: list[_Origin] = field(default_factory=list)
    skipped: int = 0

    def relocate(self, error: ValidationError) -> FormatError:
        """A validation error of ``data`` (``shapes[3].points: ...``) told in dataset terms."""
        detail = error.detail
        if isinstance(detail, dict) and detail:
            path, messages = next(iter(detail.items()))
            message = messages[0] if isinstance(messages, list) and messages else str(messages)
            match = _PATH.match(path)
            if match:
                table, index, rest = match.group(1), int(match.group(2)), match.group(3)
                origins = getattr(self, table)
                if index < len(origins):
                    origin = origins[index]
                    text = f"{rest}: {message}" if rest else str(message)
                    return FormatError(text, item=origin.item, annotation=origin.annotation)
            return FormatError(f"{path}: {message}")
        return FormatError(str(detail))


class _Binder:
    def __init__(self, target: ImportTarget, conv_mask_to_poly: bool) -> None:
        self.target = target
        self.conv_mask_to_poly = conv_mask_to_poly
        self.bound = Bound(LabeledData())
        self.track_shapes: list[tuple[int, Shape]] = []
        self.track_origins: dict[int, _Origin] = {}
        self.next_group = 1_000_000

    def frame_of(self, item: Item) -> int | None:
        target = self.target
        number = None
        for key in _keys(item.name):
            if key in target.by_name:
                number = target.by_name[key]
                break
        if number is None and item.frame is not None and 0 <= item.frame < target.size:
            number = item.frame
        if number is None:
            raise FormatError(
                f"matches no frame of {target.subject} (by name or frame number)", item=item.name
            )
        return number if number in target.frames else None

    def label(self, name: str, item: Item, index: int) -> LabelEntry:
        entry = self.target.labels.by_name.get(name)
        if entry is None:
            known = ", ".join(repr(n) for n in self.target.labels.by_name) or "none"
            raise FormatError(
                f"label {name!r} is not a label of {self.target.subject} (its labels: {known})",
                item=item.name,
                annotation=index,
            )
        return entry

    @staticmethod
    def attributes(entry: LabelEntry, values: dict[str, str]) -> list[AttributeVal]:
        return [
            AttributeVal(spec_id=entry.attributes[name].id, value=str(value))
            for name, value in values.items()
            if name in entry.attributes
        ]

    def add_item(self, item: Item) -> None:
        frame = self.frame_of(item)
        if frame is None:
            self.bound.skipped += len(item.tags) + len(item.shapes)
            return
        data = self.bound.data
        for index, tag in enumerate(item.tags):
            self.add_tag(tag, frame, item, index)
        for index, shape in enumerate(item.shapes, start=len(item.tags)):
            if shape.track_id is not None:
                self.track_shapes.append((frame, shape))
                self.track_origins.setdefault(shape.track_id, _Origin(item.name, index))
                continue
            for wire in self.shapes(shape, frame, item, index):
                data.shapes.append(wire)
                self.bound.shapes.append(_Origin(item.name, index))

    def add_tag(self, tag: Tag, frame: int, item: Item, index: int) -> None:
        entry = self.label(tag.label, item, index)
        self.bound.data.tags.append(
            LabeledImage(
                label_id=entry.id,
                frame=frame,
                group=tag.group,
                source=_source(tag.source),
                attributes=self.attributes(entry, tag.attributes),
            )
        )
        self.bound.tags.append(_Origin(item.name, index))

    def _check_type(self, shape_type: str, item: Item, index: int) -> None:
        if shape_type not in SHAPE_TYPES:
            raise FormatError(f"unknown shape type {shape_type!r}", item=item.name, annotation=index)

    def shapes(self, shape: Shape, frame: int, item: Item, index: int) -> list[LabeledShape]:
        if shape.type not in SHAPE_TYPES:
            self._check_type(shape.type, item, index)
        entry = self.target.labels.by_name.get(shape.label) or self.label(shape.label, item, index)
        source = _source(shape.source)
        attributes = self.attributes(entry, shape.attributes) if shape.attributes else []
        if shape.type == "mask" and self.conv_mask_to_poly:
            polygons = _mask_polygons(shape.points, item, index)
            group = shape.group
            if len(polygons) > 1 and not group:
                group = self.next_group
                self.next_group += 1
            return [
                LabeledShape(
                    type="polygon", label_id=entry.id, frame=frame, group=group, source=source,
                    score=shape.score, occluded=shape.occluded, outside=shape.outside, z_order=shape.z_order,
                    points=points, attributes=list(attributes),
                )
                for points in polygons
            ]  # fmt: skip
        return [
            LabeledShape(
                type=shape.type,  # type: ignore[arg-type]
                label_id=entry.id, frame=frame, group=shape.group, source=source, score=shape.score,
                occluded=shape.occluded, outside=shape.outside, z_order=shape.z_order,
                rotation=shape.rotation, points=list(shape.points), attributes=attributes,
                elements=self.elements(shape, entry, frame, source, item, index) if shape.elements else [],
            )
        ]  # fmt: skip

    def elements(
        self, shape: Shape, entry: LabelEntry, frame: int, source: Source, item: Item, index: int
    ) -> list[SubLabeledShape]:
        elements = []
        for element in shape.elements:
            sub = entry.sublabels.get(element.label)
            if sub is None:
                raise FormatError(
                    f"{element.label!r} is not an element of skeleton label {entry.name!r}",
                    item=item.name,
                    annotation=index,
                )
            elements.append(
                SubLabeledShape(
                    type="points",
                    label_id=sub.id,
                    frame=frame,
                    source=source,
                    occluded=element.occluded,
                    outside=element.outside,
                    points=list(element.points),
                    attributes=self.attributes(sub, element.attributes),
                )  # fmt: skip
            )
        return elements

    def add_track(self, track: Track, origin: _Origin) -> None:
        item = Item(name=origin.item)
        entry = self.label(track.label, item, origin.annotation)
        shapes = [
            TrackedShape(
                type=s.type,  # type: ignore[arg-type]
                frame=s.frame,
                occluded=s.occluded,
                outside=s.outside,
                z_order=s.z_order,
                rotation=s.rotation,
                points=list(s.points),
                attributes=self.attributes(entry, s.attributes),
            )  # fmt: skip
            for s in track.shapes
            if s.frame in self.target.frames
        ]
        if not shapes:
            self.bound.skipped += 1
            return
        for s in track.shapes:
            self._check_type(s.type, item, origin.annotation)
        elements = []
        for element in track.elements:
            sub = entry.sublabels.get(element.label)
            if sub is None:
                raise FormatError(
                    f"{element.label!r} is not an element of skeleton label {entry.name!r}",
                    item=origin.item,
                    annotation=origin.annotation,
                )
            elements.append(
                SubLabeledTrack(
                    label_id=sub.id,
                    frame=shapes[0].frame,
                    group=track.group,
                    source=_source(track.source),
                    attributes=self.attributes(sub, element.attributes),
                    shapes=[
                        TrackedShape(
                            type=s.type,  # type: ignore[arg-type]
                            frame=s.frame,
                            occluded=s.occluded,
                            outside=s.outside,
                            points=list(s.points),
                            attributes=self.attributes(sub, s.attributes),
                        )  # fmt: skip
                        for s in element.shapes
                        if s.frame in self.target.frames
                    ],
                )  # fmt: skip
            )
        self.bound.data.tracks.append(
            LabeledTrack(
                label_id=entry.id,
                frame=shapes[0].frame,
                group=track.group,
                source=_source(track.source),
                attributes=self.attributes(entry, track.attributes),
                shapes=shapes,
                elements=elements,
            )  # fmt: skip
        )
        self.bound.tracks.append(origin)


def _source(value: str) -> Source:
    return cast(Source, value) if value in SOURCES else "file"


def _mask_polygons(points: Sequence[float], item: Item, index: int) -> list[list[float]]:
    try:
        return masks.cvat_to_polygons(points)
    except ValueError as exc:
        raise FormatError(f"invalid mask: {exc}", item=item.name, annotation=index) from None


def bind(dataset: Dataset, target: ImportTarget, *, conv_mask_to_poly: bool = False) -> Bound:
    """The dataset's annotations as ``LabeledData`` of ``target`` (see the module rules)."""
    binder = _Binder(target, conv_mask_to_poly)
    for item in dataset.items(tracks=True):
        binder.add_item(item)
    for track in gather_tracks(binder.track_shapes):
        binder.add_track(track, binder.track_origins[track.id])
    for track in dataset.tracks():
        binder.add_track(track, _Origin(f"track {track.id}", 0))
    return binder.bound


async def write(session: AsyncSession, target: ImportTarget, bound: Bound, mode: str) -> None:
    """Store the bound annotations (``replace`` or ``append``); validation errors are told in
    dataset terms. The caller's transaction makes it all-or-nothing."""
    if mode not in MODES:
        raise ValidationError.for_field("import_mode", f"Must be one of {', '.join(MODES)}, got {mode!r}.")
    try:
        if target.job is not None:
            if mode == "replace":
                await annotation_service.store_job(session, target.job, bound.data)
            else:
                await annotation_service.patch_job(session, target.job, bound.data, "create")
        elif mode == "replace":
            await annotation_service.store_task(session, target.task, bound.data)
        else:
            await annotation_service.patch_task(session, target.task, bound.data, "create")
    except FormatError:
        raise
    except ValidationError as exc:
        raise bound.relocate(exc) from None


__all__ = ["MODES", "Bound", "ImportTarget", "bind", "plan_import", "write"]
