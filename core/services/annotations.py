"""Annotations of jobs and tasks: read, replace, patch and clear (CVAT's ``/annotations``).

Concurrency: every writer first bumps the job's ``annotations_version`` with an ``UPDATE`` — a
row lock on PostgreSQL, the database write lock on SQLite — and holds it until commit. Writers of
one job therefore run one after the other, and a PATCH changes only the rows it names: two
clients patching the same job both keep their changes (row-wise merge). A PUT replaces
everything; when its body carries a non-zero ``version`` that is no longer current it is refused
with 409, so a client cannot silently overwrite changes it has not seen.

Tasks: a task's annotations are its annotation jobs'. A frame belongs to the first segment (by
start frame) that contains it. Reading a task merges its jobs, taking each object from the job
owning its frame, so objects in an overlap appear once. Writing a task gives each object to
every job whose segment contains its frame.

Tracks are cut per segment and joined back on read: see ``annotation_tracks``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.db.tables import AttributeSpec, Job, Label, Segment, Task
from annota.core.db.types import utcnow
from annota.core.errors import Conflict, ValidationError
from annota.core.schemas.annotations import (
    LabeledData,
    LabeledTrack,
    SubLabeledTrack,
)
from annota.core.services import annotation_store as store
from annota.core.services import annotation_tracks as track_pieces
from annota.core.services.annotation_tracks import JobSpan
from annota.core.services.annotation_validation import Context, LabelInfo, Spec, Validator
from annota.core.services.labels import task_labels_owner

PatchAction = Literal["create", "update", "delete"]
PATCH_ACTIONS: tuple[str, ...] = get_args(PatchAction)
#: Query parameters of CVAT's removed export API on ``GET /api/tasks/{id}/annotations``.
LEGACY_EXPORT_PARAMS = ("format", "filename", "action", "location", "cloud_storage_id")

_encoder = msgspec.json.Encoder()
_frames_decoder = msgspec.json.Decoder(list[int])
_values_decoder = msgspec.json.Decoder(list[str])


# --- context --------------------------------------------------------------------------------


async def _labels(session: AsyncSession, task: Task) -> dict[int, LabelInfo]:
    project_id, task_id = task_labels_owner(task)
    owner = Label.project_id == project_id if project_id is not None else Label.task_id == task_id
    top = select(Label.id).where(owner, Label.parent_id.is_(None))
    rows = await session.execute(
        select(Label.id, Label.type, Label.parent_id).where(
            owner | Label.parent_id.in_(top.scalar_subquery())
        )
    )
    labels = {row.id: LabelInfo(type=row.type, parent_id=row.parent_id) for row in rows}
    children: dict[int, set[int]] = {}
    for label_id, info in labels.items():
        if info.parent_id is not None:
            children.setdefault(info.parent_id, set()).add(label_id)
    for parent_id, sublabels in children.items():
        if parent_id in labels:
            labels[parent_id].sublabels = frozenset(sublabels)
    if labels:
        specs = await session.execute(
            select(
                AttributeSpec.id, AttributeSpec.label_id, AttributeSpec.input_type, AttributeSpec.values
            ).where(AttributeSpec.label_id.in_(list(labels)))
        )
        for spec in specs:
            labels[spec.label_id].specs[spec.id] = Spec(
                spec.input_type, tuple(_values_decoder.decode(spec.values))
            )
    return labels


async def _spans(session: AsyncSession, task_id: int) -> list[JobSpan]:
    """The task's annotation jobs in frame-ownership order."""
    rows = await session.execute(
        select(Job.id, Segment.start_frame, Segment.stop_frame, Segment.type, Segment.frames)
        .join(Segment, Segment.id == Job.segment_id)
        .where(Job.task_id == task_id, Job.type == "annotation")
        .order_by(Segment.start_frame, Segment.id)
    )
    return [
        JobSpan(
            row.id,
            row.start_frame,
            row.stop_frame,
            frozenset(_frames_decoder.decode(row.frames)) if row.type == "specific_frames" else None,
        )
        for row in rows
    ]


async def _job_span(session: AsyncSession, job: Job) -> JobSpan:
    segment = await session.get(Segment, job.segment_id)
    assert segment is not None
    frames = frozenset(_frames_decoder.decode(segment.frames)) if segment.type == "specific_frames" else None
    return JobSpan(job.id, segment.start_frame, segment.stop_frame, frames)


async def _task(session: AsyncSession, task_id: int) -> Task:
    task = await session.get(Task, task_id)
    assert task is not None
    return task


async def _lock(session: AsyncSession, job_ids: Sequence[int], task_id: int) -> dict[int, int]:
    """Take the jobs' write locks (in id order, so writers never deadlock) by bumping their
    versions; answer the versions they had before."""
    now = utcnow()
    previous = {}
    for job_id in sorted(job_ids):
        version = await session.scalar(
            update(Job)
            .where(Job.id == job_id)
            .values(annotations_version=Job.annotations_version + 1, updated_date=now)
            .returning(Job.annotations_version)
        )
        previous[job_id] = int(version or 0) - 1
    await session.execute(update(Task).where(Task.id == task_id).values(updated_date=now))
    return previous


def _validate(data: LabeledData, labels: dict[int, LabelInfo], start: int, stop: int,
              frames: frozenset[int] | None = None) -> None:  # fmt: skip
    Validator(Context(labels, start, stop, frames)).check(data)


def _validate_job(data: LabeledData, labels: dict[int, LabelInfo], span: JobSpan) -> None:
    """Validate a job's annotations. A track (or skeleton element) may end with an ``outside``
    keyframe on the frame after the job's last one, as task-level writes cut tracks that go on
    past the job; nothing else may use that frame."""
    end = span.stop + 1
    pieces = [piece for track in data.tracks for piece in [track, *track.elements]]
    if span.frames is not None or not any(_ends_after(piece, end) for piece in pieces):
        _validate(data, labels, span.start, span.stop, span.frames)
        return
    _validate(data, labels, span.start, end)

    def refuse(path: str) -> None:
        raise ValidationError.for_field(
            f"{path}.frame", f"frame {end} is outside the job's frames {span.start}-{span.stop}"
        )

    for index, tag in enumerate(data.tags):
        if tag.frame == end:
            refuse(f"tags[{index}]")
    for index, shape in enumerate(data.shapes):
        if shape.frame == end:
            refuse(f"shapes[{index}]")
    for index, track in enumerate(data.tracks):
        if track.frame == end:
            refuse(f"tracks[{index}]")
        for number, piece in enumerate([track, *track.elements]):
            path = f"tracks[{index}]" if number == 0 else f"tracks[{index}].elements[{number - 1}]"
            allowed = piece.shapes[-1] if _ends_after(piece, end) else None
            for position, keyframe in enumerate(piece.shapes):
                if keyframe.frame == end and keyframe is not allowed:
                    refuse(f"{path}.shapes[{position}]")


def _ends_after(piece: SubLabeledTrack, end: int) -> bool:
    last = max(piece.shapes, key=lambda keyframe: keyframe.frame, default=None)
    return last is not None and last.frame == end and last.outside


def _clear_ids(data: LabeledData) -> None:
    """Created objects get server ids whatever the client sent (clients often send back what
    they read)."""
    for tag in data.tags:
        tag.id = None
    for shape in data.shapes:
        shape.id = None
    for track in data.tracks:
        track.id = None


# --- jobs -----------------------------------------------------------------------------------


async def read_job(session: AsyncSession, job: Job) -> bytes:
    rows = await store.read_job(session, job.id)
    return _encoder.encode(
        {
            "version": job.annotations_version,
            "tags": [tag.json for tag in rows.tags],
            "shapes": [shape.json for shape in rows.shapes],
            "tracks": rows.tracks,
            "intervals": [],
        }  # fmt: skip
    )


async def replace_job(session: AsyncSession, job: Job, data: LabeledData) -> bytes:
    """``PUT``: validate everything, then replace all of the job's annotations; answers them as stored."""
    await store_job(session, job, data)
    await session.refresh(job)
    return await read_job(session, job)


async def store_job(session: AsyncSession, job: Job, data: LabeledData) -> None:
    """Validate ``data``, then replace all of the job's annotations with it."""
    span = await _job_span(session, job)
    _validate_job(data, await _labels(session, await _task(session, job.task_id)), span)
    previous = (await _lock(session, [job.id], job.task_id))[job.id]
    if data.version and data.version != previous:
        raise Conflict(
            f"annotations changed since version {data.version} (now {previous}); read them again and retry."
        )
    _clear_ids(data)
    await store.clear_job(session, job.id)
    writer = store.Writer(job.id)
    writer.tags, writer.shapes, writer.tracks = data.tags, data.shapes, data.tracks
    await writer.write(session)


async def patch_job(session: AsyncSession, job: Job, data: LabeledData, action: str) -> LabeledData:
    """``PATCH ?action=``: create, update (by id; objects without one are created) or delete by id."""
    action = _check_action(action)
    span = await _job_span(session, job)
    if action != "delete":
        _validate_job(data, await _labels(session, await _task(session, job.task_id)), span)
    await _lock(session, [job.id], job.task_id)
    await _apply_patch(session, [job.id], data, action, {job.id: data})
    await session.refresh(job)
    data.version = job.annotations_version
    return data


async def clear_job(session: AsyncSession, job: Job) -> None:
    await _lock(session, [job.id], job.task_id)
    await store.clear_job(session, job.id)


def _check_action(action: str) -> PatchAction:
    if action not in PATCH_ACTIONS:
        raise ValidationError.for_field(
            "action", f"action must be one of {', '.join(PATCH_ACTIONS)}, got {action!r}"
        )
    return action  # type: ignore[return-value]


async def _existing(
    session: AsyncSession, job_ids: Sequence[int], data: LabeledData
) -> dict[str, dict[int, int]]:
    """``{table: {id: job_id}}`` for the ids the body names; an unknown id is a 400 naming it."""
    found: dict[str, dict[int, int]] = {}
    named: dict[str, list[int | None]] = {
        "tags": [tag.id for tag in data.tags],
        "shapes": [shape.id for shape in data.shapes],
        "tracks": [track.id for track in data.tracks],
    }
    for table, ids in named.items():
        found[table] = await store.existing_ids(session, table, job_ids, [i for i in ids if i is not None])
        for index, object_id in enumerate(ids):
            if object_id is not None and object_id not in found[table]:
                raise ValidationError.for_field(
                    f"{table}[{index}].id", f"{table[:-1]} {object_id} does not exist here"
                )
    return found


async def _apply_patch(
    session: AsyncSession,
    job_ids: Sequence[int],
    data: LabeledData,
    action: PatchAction,
    new_objects: dict[int, LabeledData],
) -> None:
    """Delete or replace the objects named by id, then write ``new_objects`` (per job)."""
    if action == "create":
        for part in new_objects.values():
            _clear_ids(part)
    else:
        found = await _existing(session, job_ids, data)
        if action == "delete":
            for table, ids in found.items():
                await store.delete_ids(session, table, ids)
            return
        for table, ids in found.items():
            await store.delete_ids(session, table, ids)
    for job_id, part in new_objects.items():
        writer = store.Writer(job_id)
        writer.tags, writer.shapes, writer.tracks = part.tags, part.shapes, part.tracks
        await writer.write(session)


# --- tasks ----------------------------------------------------------------------------------


def owner(spans: Sequence[JobSpan], frame: int) -> int | None:
    """The job owning a frame: the first segment containing it."""
    for span in spans:
        if span.contains(frame):
            return span.job_id
    return None


class _TrackChains:
    """Track pieces of consecutive jobs linked into chains, one chain per task-level track."""

    def __init__(self) -> None:
        self.chains: list[list[track_pieces.Piece]] = []
        # chains whose last piece came from the previous job: the ones a piece of this job may continue
        self.open: list[list[track_pieces.Piece]] = []

    def add(self, span: JobSpan, tracks: Sequence[store.TrackOut]) -> None:
        continuing: list[list[track_pieces.Piece]] = []
        for track in tracks:
            chain = next((c for c in self.open if track_pieces.continues(c[-1], track, span)), None)
            if chain is None:
                chain = []
                self.chains.append(chain)
            else:
                self.open.remove(chain)
            chain.append(track_pieces.Piece(track, span))
            continuing.append(chain)
        self.open = continuing

    def joined(self, owned: track_pieces.Owned) -> list[store.TrackOut]:
        return [joined for chain in self.chains if (joined := track_pieces.join(chain, owned)) is not None]


def frame_owner(spans: Sequence[JobSpan]) -> track_pieces.Owned:
    """``owned(frame, job_id)``: whether the job owns the frame (memoised per frame)."""
    owners: dict[int, int | None] = {}

    def owned(frame: int, job_id: int) -> bool:
        if frame not in owners:
            owners[frame] = owner(spans, frame)
        return owners[frame] == job_id

    return owned


async def read_task_tracks(session: AsyncSession, spans: Sequence[JobSpan]) -> list[store.TrackOut]:
    """The tracks of a task's jobs (``spans``) joined across segments, without tags and shapes."""
    chains = _TrackChains()
    for span in spans:
        chains.add(span, await store.read_job_tracks(session, span.job_id))
    return chains.joined(frame_owner(spans))


async def task_spans(session: AsyncSession, task_id: int) -> list[JobSpan]:
    return await _spans(session, task_id)


async def job_span(session: AsyncSession, job: Job) -> JobSpan:
    return await _job_span(session, job)


async def read_task(session: AsyncSession, task: Task) -> bytes:
    spans = await _spans(session, task.id)
    tags: list[msgspec.Raw] = []
    shapes: list[msgspec.Raw] = []
    owned = frame_owner(spans)
    chains = _TrackChains()
    for span in spans:
        rows = await store.read_job(session, span.job_id)
        tags.extend(tag.json for tag in rows.tags if owned(tag.frame, span.job_id))
        shapes.extend(shape.json for shape in rows.shapes if owned(shape.frame, span.job_id))
        chains.add(span, rows.tracks)
    tracks = chains.joined(owned)
    return _encoder.encode({"version": 0, "tags": tags, "shapes": shapes, "tracks": tracks, "intervals": []})


def _split(data: LabeledData, spans: Sequence[JobSpan]) -> dict[int, LabeledData]:
    parts = {span.job_id: LabeledData() for span in spans}
    holders: dict[int, list[int]] = {}

    def jobs_of(frame: int) -> list[int]:
        if frame not in holders:
            holders[frame] = [span.job_id for span in spans if span.contains(frame)]
        return holders[frame]

    # an object written to several jobs (overlaps) gets its own struct in each: ids are set on them
    for tag in data.tags:
        for number, job_id in enumerate(jobs_of(tag.frame)):
            parts[job_id].tags.append(tag if number == 0 else msgspec.structs.replace(tag))
    for shape in data.shapes:
        for number, job_id in enumerate(jobs_of(shape.frame)):
            if number:
                shape = msgspec.structs.replace(
                    shape, elements=[msgspec.structs.replace(e) for e in shape.elements]
                )
            parts[job_id].shapes.append(shape)
    for span in spans:
        part = parts[span.job_id]
        for track in data.tracks:
            keyframes = track_pieces.split_track(track, span)
            if not keyframes:
                continue
            elements = [
                msgspec.structs.replace(
                    element, id=None, shapes=track_pieces.split_track(element, span), frame=keyframes[0].frame
                )  # fmt: skip
                for element in track.elements
            ]
            part.tracks.append(
                LabeledTrack(
                    id=track.id,
                    label_id=track.label_id,
                    frame=keyframes[0].frame,
                    group=track.group,
                    source=track.source,
                    shapes=keyframes,
                    attributes=track.attributes,
                    elements=elements,
                )  # fmt: skip
            )
    return {job_id: part for job_id, part in parts.items() if part.tags or part.shapes or part.tracks}


def _bounds(spans: Sequence[JobSpan]) -> tuple[int, int, frozenset[int] | None]:
    if not spans:
        return 0, -1, frozenset()
    if any(span.frames is not None for span in spans):
        frames: set[int] = set()
        for span in spans:
            frames.update(span.frames if span.frames is not None else range(span.start, span.stop + 1))
        return min(frames), max(frames), frozenset(frames)
    return min(span.start for span in spans), max(span.stop for span in spans), None


async def replace_task(session: AsyncSession, task: Task, data: LabeledData) -> bytes:
    """``PUT``: replace all of the task's annotations; answers them as stored."""
    await store_task(session, task, data)
    return await read_task(session, task)


async def store_task(session: AsyncSession, task: Task, data: LabeledData) -> None:
    """Validate ``data``, then replace all of the task's annotations with it (imports use this:
    they do not read the result back)."""
    spans = await _spans(session, task.id)
    start, stop, frames = _bounds(spans)
    _validate(data, await _labels(session, task), start, stop, frames)
    _clear_ids(data)
    await _lock(session, [span.job_id for span in spans], task.id)
    for span in spans:
        await store.clear_job(session, span.job_id)
    for job_id, part in _split(data, spans).items():
        writer = store.Writer(job_id)
        writer.tags, writer.shapes, writer.tracks = part.tags, part.shapes, part.tracks
        await writer.write(session)


async def patch_task(session: AsyncSession, task: Task, data: LabeledData, action: str) -> LabeledData:
    """Objects with an id change in the job holding them; new ones go to the jobs their frames
    belong to."""
    checked = _check_action(action)
    spans = await _spans(session, task.id)
    start, stop, frames = _bounds(spans)
    if checked != "delete":
        _validate(data, await _labels(session, task), start, stop, frames)
    job_ids = [span.job_id for span in spans]
    await _lock(session, job_ids, task.id)
    new_objects: dict[int, LabeledData] = {}
    if checked == "update":
        found = await _existing(session, job_ids, data)
        new_objects = _by_holder(data, found, spans)
    elif checked == "create":
        new_objects = _split(data, spans)
    await _apply_patch(session, job_ids, data, checked, new_objects)
    result = LabeledData()
    for part in new_objects.values():
        result.tags.extend(part.tags)
        result.shapes.extend(part.shapes)
        result.tracks.extend(part.tracks)
    return result if checked != "delete" else data


def _by_holder(
    data: LabeledData, found: dict[str, dict[int, int]], spans: Sequence[JobSpan]
) -> dict[int, LabeledData]:
    """Updated objects stay in the job that holds them; objects without an id are created."""
    fresh = LabeledData(
        tags=[tag for tag in data.tags if tag.id is None],
        shapes=[shape for shape in data.shapes if shape.id is None],
        tracks=[track for track in data.tracks if track.id is None],
    )
    parts = _split(fresh, spans)
    by_job = {span.job_id: span for span in spans}

    def holder(table: str, index: int, object_id: int, frames: list[int]) -> LabeledData:
        job_id = found[table][object_id]
        for frame in frames:
            if not by_job[job_id].contains(frame):
                raise ValidationError.for_field(
                    f"{table}[{index}].frame",
                    f"{table[:-1]} {object_id} belongs to job {job_id}, which does not have frame {frame}",
                )
        return parts.setdefault(job_id, LabeledData())

    for index, tag in enumerate(data.tags):
        if tag.id is not None:
            holder("tags", index, tag.id, [tag.frame]).tags.append(tag)
    for index, shape in enumerate(data.shapes):
        if shape.id is not None:
            holder("shapes", index, shape.id, [shape.frame]).shapes.append(shape)
    for index, track in enumerate(data.tracks):
        if track.id is not None:
            frames = [keyframe.frame for keyframe in track.shapes]
            holder("tracks", index, track.id, frames).tracks.append(track)
    return parts


async def clear_task(session: AsyncSession, task: Task) -> None:
    spans = await _spans(session, task.id)
    await _lock(session, [span.job_id for span in spans], task.id)
    for span in spans:
        await store.clear_job(session, span.job_id)


__all__ = [
    "LEGACY_EXPORT_PARAMS",
    "PATCH_ACTIONS",
    "clear_job",
    "clear_task",
    "owner",
    "patch_job",
    "patch_task",
    "read_job",
    "read_task",
    "replace_job",
    "replace_task",
]
