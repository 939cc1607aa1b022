"""A task, job or project read from the database as a format plugin's ``Dataset``.

Format plugins are synchronous and run in a worker thread; the database and storage are async and
live on the event loop. ``DatabaseDataset`` bridges the two: each of its methods runs a coroutine on
the loop and waits for it. Annotations are read a window of frames at a time (one query per table
per window, ordered by frame), so an export of millions of shapes holds only one window in memory.
Tracks are read once per task (they are few and needed whole for interpolation).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import annota.core.services.annotations as annotation_service
from annota.core.db.tables import Data, Job, Project, Segment, Task, User
from annota.core.errors import ValidationError
from annota.core.formats.model import DEFAULT_SUBSET, Item, Shape, Tag, Track, TrackShape, video_frame_name
from annota.core.formats.tracks import TrackFlattener
from annota.core.schemas.annotations import AttributeVal
from annota.core.services import annotation_store as store
from annota.core.services.annotation_tracks import JobSpan
from annota.core.services.dataset_labels import LabelCatalog, load_catalog
from annota.core.services.frames import Media, frame, segment_frames
from annota.core.services.labels import task_labels_owner
from annota.core.storage import StorageBackend

T = TypeVar("T")

#: frames whose annotations are read in one go
WINDOW = 128

_attributes = msgspec.json.Decoder(list[AttributeVal])
_points = msgspec.json.Decoder(list[float])
_frames = msgspec.json.Decoder(list[int])


@dataclass
class ExportPart:
    """One task of the export (a job export is one part limited to the job's frames)."""

    task: Task
    data: Data | None
    spans: list[JobSpan]
    frames: list[int]
    subset: str


@dataclass
class ExportPlan:
    target: str
    target_id: int
    name: str
    parts: list[ExportPart]
    labels: LabelCatalog
    meta: dict[str, Any] = field(default_factory=dict)
    #: changes whenever anything the export shows changes: names cached results
    fingerprint: str = ""

    @property
    def size(self) -> int:
        return sum(len(part.frames) for part in self.parts)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def _user(session: AsyncSession, user_id: int | None) -> dict[str, str] | None:
    if user_id is None:
        return None
    user = await session.get(User, user_id)
    return {"username": user.username, "email": user.email} if user is not None else None


async def _part(session: AsyncSession, task: Task, job: Job | None = None) -> ExportPart:
    data = await session.get(Data, task.data_id) if task.data_id is not None else None
    deleted = set(_frames.decode(data.deleted_frames)) if data is not None else set()
    if job is not None:
        segment = await session.get(Segment, job.segment_id)
        assert segment is not None
        spans = [await annotation_service.job_span(session, job)]
        frames = segment_frames(segment)
    else:
        spans = await annotation_service.task_spans(session, task.id)
        frames = list(range(data.size)) if data is not None else []
    return ExportPart(
        task, data, spans, [f for f in frames if f not in deleted], task.subset or DEFAULT_SUBSET
    )


async def _task_meta(session: AsyncSession, task: Task, part: ExportPart) -> dict[str, Any]:
    data = part.data
    segments = []
    for span in part.spans:
        segments.append({"id": span.job_id, "start": span.start, "stop": span.stop})
    return {
        "id": task.id,
        "name": task.name,
        "size": len(part.frames),
        "mode": task.mode,
        "overlap": task.overlap or 0,
        "segment_size": task.segment_size,
        "bugtracker": task.bug_tracker,
        "subset": task.subset,
        "created": _iso(task.created_date),
        "updated": _iso(task.updated_date),
        "start_frame": data.start_frame if data else 0,
        "stop_frame": data.stop_frame if data else 0,
        "frame_filter": data.frame_filter if data else "",
        "owner": await _user(session, task.owner_id),
        "assignee": await _user(session, task.assignee_id),
        "segments": segments,
    }


def _fingerprint(*values: Any) -> str:
    return hashlib.sha256(repr(values).encode()).hexdigest()[:32]


async def plan_export(session: AsyncSession, target: str, target_id: int) -> ExportPlan:
    """What exporting ``target`` (``task``, ``job`` or ``project``) ``target_id`` reads."""
    if target == "project":
        project = await session.get(Project, target_id)
        assert project is not None
        tasks = (
            await session.execute(select(Task).where(Task.project_id == target_id).order_by(Task.id))
        ).scalars()
        parts = [await _part(session, task) for task in tasks]
        labels = await load_catalog(session, project_id=target_id)
        meta: dict[str, Any] = {
            "target": "project",
            "id": project.id,
            "name": project.name,
            "created": _iso(project.created_date),
            "updated": _iso(project.updated_date),
            "owner": await _user(session, project.owner_id),
            "assignee": await _user(session, project.assignee_id),
            "tasks": [await _task_meta(session, part.task, part) for part in parts],
        }
        stamps: list[Any] = [project.updated_date]
        plan = ExportPlan(target, target_id, project.name, parts, labels, meta)
    else:
        job = await session.get(Job, target_id) if target == "job" else None
        task = await session.get(Task, job.task_id if job is not None else target_id)
        assert task is not None
        part = await _part(session, task, job)
        project_id, task_id = task_labels_owner(task)
        labels = await load_catalog(session, project_id=project_id, task_id=task_id)
        meta = {"target": target, **await _task_meta(session, task, part)}
        if job is not None:
            meta["job_id"] = job.id
        stamps = [job.updated_date if job is not None else None]
        if project_id is not None:
            project = await session.get(Project, project_id)
            stamps.append(project.updated_date if project is not None else None)
        plan = ExportPlan(target, target_id, task.name, [part], labels, meta)
    for part in plan.parts:
        stamps += [
            part.task.updated_date,
            part.data.chunks_updated_date if part.data else None,
            len(part.frames),
        ]
    plan.fingerprint = _fingerprint(target, target_id, stamps)
    return plan


# --- reading one window of frames -------------------------------------------------------------


def _mark(session: AsyncSession) -> str:
    return "?" if session.get_bind().dialect.name == "sqlite" else "%s"


async def _rows(session: AsyncSession, sql: str, params: Sequence[Any]) -> Sequence[Any]:
    connection = await session.connection()
    return (await connection.exec_driver_sql(sql, tuple(params))).all()


class _Reader:
    """Turns stored rows into model objects (label and attribute ids into names)."""

    def __init__(self, labels: LabelCatalog) -> None:
        self.labels = labels

    def attributes(self, raw: str | bytes) -> dict[str, str]:
        names = self.labels.attribute_names
        return {names[a.spec_id]: a.value for a in _attributes.decode(raw) if a.spec_id in names}

    def label(self, label_id: int) -> str:
        return self.labels.names.get(label_id, f"label-{label_id}")


async def _read_window(
    session: AsyncSession,
    reader: _Reader,
    part: ExportPart,
    frames: Sequence[int],
    owned: Callable[[int, int], bool],
) -> list[Item]:
    low, high = frames[0], frames[-1]
    wanted = set(frames)
    items: dict[int, Item] = {}
    mark = _mark(session)
    if part.data is not None:
        video = part.data.media_kind == "video"
        for number, path, real_frame, width, height in await _rows(
            session,
            f"SELECT frame, path, real_frame, width, height FROM frames WHERE data_id = {mark} "
            f"AND frame >= {mark} AND frame <= {mark} ORDER BY frame",
            (part.data.id, low, high),
        ):
            if number in wanted:
                # every frame of a video names the video: as in CVAT, frames are named by their
                # number in the video (a frame step skips numbers)
                name = video_frame_name(real_frame) if video else path
                items[number] = Item(name=name, frame=number, subset=part.subset, width=width, height=height)
    for number in frames:
        items.setdefault(number, Item(name=f"frame_{number:06d}", frame=number, subset=part.subset))
    job_ids = [span.job_id for span in part.spans]
    if job_ids:
        jobs = ", ".join([mark] * len(job_ids))
        where = f"job_id IN ({jobs}) AND frame >= {mark} AND frame <= {mark}"
        params = (*job_ids, low, high)
        for job_id, number, label_id, group, source, raw in await _rows(
            session, f'SELECT job_id, frame, label_id, "group", source, attributes FROM tags WHERE {where} '
            "ORDER BY frame, id", params,
        ):  # fmt: skip
            if number in wanted and owned(number, job_id):
                items[number].tags.append(
                    Tag(
                        label=reader.label(label_id),
                        group=group,
                        source=source,
                        attributes=reader.attributes(raw),
                    )
                )
        shapes: dict[int, Shape] = {}
        elements: list[tuple[int, Shape]] = []
        for row in await _rows(
            session,
            'SELECT id, parent_id, job_id, frame, type, label_id, "group", source, score, occluded, outside, '
            f"z_order, rotation, points, attributes FROM shapes WHERE {where} ORDER BY frame, id",
            params,
        ):
            (id_, parent, job_id, number, type_, label_id, group, source, score, occluded, outside, z_order,
             rotation, points, raw) = row  # fmt: skip
            if number not in wanted or not owned(number, job_id):
                continue
            shape = Shape(
                type=type_, label=reader.label(label_id), points=_points.decode(points),
                occluded=bool(occluded), outside=bool(outside), z_order=z_order, rotation=rotation,
                group=group, source=source, score=score, attributes=reader.attributes(raw),
            )  # fmt: skip
            if parent is None:
                shapes[id_] = shape
                items[number].shapes.append(shape)
            else:
                elements.append((parent, shape))
        for parent, shape in elements:
            owner = shapes.get(parent)
            if owner is not None:
                owner.elements.append(shape)
    return [items[number] for number in frames]


def _track(reader: _Reader, track: store.SubTrackOut, track_id: int) -> Track:
    return Track(
        id=track_id,
        label=reader.label(track.label_id),
        group=track.group,
        source=track.source,
        attributes=reader.attributes(bytes(track.attributes)),
        shapes=[
            TrackShape(
                frame=k.frame,
                type=k.type,
                points=_points.decode(k.points),
                occluded=k.occluded,
                outside=k.outside,
                z_order=k.z_order,
                rotation=k.rotation,
                attributes=reader.attributes(bytes(k.attributes)),
            )
            for k in track.shapes
        ],  # fmt: skip
        elements=[_track(reader, element, track_id) for element in getattr(track, "elements", [])],
    )


async def read_tracks(
    session: AsyncSession, plan: ExportPlan, part: ExportPart, first_id: int
) -> list[Track]:
    """The part's tracks, numbered from ``first_id`` (formats show small, stable track ids)."""
    reader = _Reader(plan.labels)
    stored = await annotation_service.read_task_tracks(session, part.spans)
    return [_track(reader, track, first_id + index) for index, track in enumerate(stored)]


# --- the Dataset ------------------------------------------------------------------------------


class DatabaseDataset:
    """``plan`` as a ``Dataset``; its methods must be called from a thread other than ``loop``'s."""

    def __init__(
        self,
        plan: ExportPlan,
        session: AsyncSession,
        storage: StorageBackend,
        loop: asyncio.AbstractEventLoop,
        progress: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.plan = plan
        self.name = plan.name
        self.labels = plan.labels.specs
        self.size = plan.size
        self.meta = plan.meta
        self._session = session
        self._storage = storage
        self._loop = loop
        self._progress = progress
        self._reader = _Reader(plan.labels)
        self._tracks: dict[int, list[Track]] = {}
        #: the part the item last yielded belongs to: ``image()`` reads from its media
        self._current: ExportPart | None = None

    def _run(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()  # type: ignore[arg-type]

    def _part_tracks(self, index: int) -> list[Track]:
        if index not in self._tracks:
            first = sum(len(tracks) for tracks in self._tracks.values())
            self._tracks[index] = self._run(
                read_tracks(self._session, self.plan, self.plan.parts[index], first)
            )
        return self._tracks[index]

    def items(self, *, tracks: bool = False) -> Iterator[Item]:
        done = 0
        step = max(1, self.size // 50)
        for index, part in enumerate(self.plan.parts):
            owned = (
                annotation_service.frame_owner(part.spans)
                if len(part.spans) > 1
                else (lambda frame, job_id: True)
            )
            flattener = None if tracks else TrackFlattener(self._part_tracks(index))
            for start in range(0, len(part.frames), WINDOW):
                window = part.frames[start : start + WINDOW]
                for item in self._run(_read_window(self._session, self._reader, part, window, owned)):
                    if flattener is not None:
                        assert item.frame is not None
                        extra = flattener.shapes_at(item.frame)
                        if extra:
                            item.shapes.extend(extra)
                    self._current = part
                    yield item
                    done += 1
                    if self._progress is not None and done % step == 0:
                        self._run(self._progress(done / max(self.size, 1)))

    def tracks(self) -> Iterator[Track]:
        for index in range(len(self.plan.parts)):
            yield from self._part_tracks(index)

    def image(self, item: Item) -> bytes | None:
        part = self._current
        if part is None or part.data is None or item.frame is None:
            return None
        media = Media(part.data, range(part.data.size), None, f"task {part.task.id}")
        try:
            body = self._run(frame(self._storage, media, "original", item.frame))
        except ValidationError:
            return None
        return body.content

    def image_extension(self, item: Item) -> str:
        suffix = item.name.rsplit("/", 1)[-1]
        if "." in suffix:
            return "." + suffix.rsplit(".", 1)[-1].lower()
        return ".jpg"


__all__ = ["DatabaseDataset", "ExportPart", "ExportPlan", "plan_export", "read_tracks"]
