"""Ground-truth jobs: a chosen subset of a task's frames, annotated apart as the reference.

CVAT's quality checks compare annotation jobs against one ``ground_truth`` job per task, made with
``POST /api/jobs``. Its frames are picked at random over the task (``random_uniform``), so many from
each annotation job (``random_per_job``), or listed (``manual``). Random picks use NumPy's MT19937
generator the way CVAT draws them, so a seed picks the same frames on annota as on CVAT.

The job's segment holds exactly those frames (``specific_frames``); frames, chunks, annotations
and issues of such a job already keep to them. Its annotations stay out of the task's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from numpy import random
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.db.tables import Data, Job, Segment, Task
from annota.core.db.types import utcnow
from annota.core.errors import ValidationError
from annota.core.media import layout
from annota.core.schemas.jobs import JobWrite
from annota.core.services import jobs as job_service
from annota.core.services import projects as project_service
from annota.core.services import tasks as task_service

GROUND_TRUTH = "ground_truth"
#: the ``mode`` of a task's validation layout while it has a ground-truth job
VALIDATION_MODE = "gt"

_UNSET = msgspec.UNSET
#: how many wrong frames a message names
_LISTED = 10
_frames = msgspec.json.Decoder(list[int])


def _refuse(message: str) -> ValidationError:
    # CVAT raises these from the serializer's create(): the body is a bare list of messages
    return ValidationError([message])


def _invalid_request(message: str) -> ValidationError:
    # ... and these from its validate(): they are the request's non-field errors
    return ValidationError({"non_field_errors": [message]})


def _one_of(data: JobWrite, names: Sequence[str]) -> None:
    given = [name for name in names if getattr(data, name) is not _UNSET]
    if len(given) == 1:
        return
    options = ", ".join(f'"{name}"' for name in names)
    if not given:
        raise _invalid_request(f"One of the fields {options} required")
    raise _invalid_request(f"Only 1 of the fields {options} can be used")


def check_request(data: JobWrite) -> None:
    """CVAT's checks of the body as a whole: each method with its own parameters."""
    method = data.frame_selection_method
    if method == "random_uniform":
        _one_of(data, ("frame_count", "frame_share"))
    elif method == "random_per_job":
        _one_of(data, ("frames_per_job_count", "frames_per_job_share"))
    elif method == "manual" and data.frames is _UNSET:
        raise _invalid_request('The "frames" field is required')
    if data.frames is not _UNSET and method != "manual":
        raise _invalid_request('"frames" can only be used when "frame_selection_method" is "manual"')


async def task_of_request(session: AsyncSession, task_id: int) -> Task:
    """The task a creation names; a 400 on ``task_id`` when there is none."""
    task = await session.get(Task, task_id)
    if task is None:
        raise ValidationError.for_field("task_id", f"Task {task_id} does not exist.")
    return task


def creation_resource(task: Task, project: Any) -> dict[str, Any]:
    """The policy's ``input.resource`` for a job that does not exist yet: its task's people."""
    return {
        "id": None,
        "assignee": {"id": None},
        "organization": {"id": task.organization_id},
        "task": task_service.document(task, project),
        "project": project_service.document(project) if project is not None else None,
    }


async def job_of(session: AsyncSession, task_id: int) -> Job | None:
    return await session.scalar(select(Job).where(Job.task_id == task_id, Job.type == GROUND_TRUTH).limit(1))


async def frames_of(session: AsyncSession, task_id: int) -> list[int] | None:
    """The task's validation frames (those of its ground-truth job), ``None`` without one."""
    raw = await session.scalar(
        select(Segment.frames)
        .join(Job, Job.segment_id == Segment.id)
        .where(Job.task_id == task_id, Job.type == GROUND_TRUTH)
        .limit(1)
    )
    return None if raw is None else sorted(_frames.decode(raw))


# --- frame selection ----------------------------------------------------------------------------


def _generator(seed: int | msgspec.UnsetType) -> random.Generator:
    # the generator is named, not left to NumPy's default, so that seeds keep their frame sets
    return random.Generator(random.MT19937(seed=None if seed is _UNSET else seed))


def _uniform(data: JobWrite, size: int, deleted: set[int]) -> list[int]:
    if data.frame_count is not _UNSET:
        count = data.frame_count
        if count > size:
            raise _refuse(
                f"The number of frames requested ({count}) must not be greater than "
                f"the number of the task frames ({size})"
            )
    else:
        assert data.frame_share is not _UNSET
        count = max(1, int(data.frame_share * size))
    valid = [frame for frame in range(size) if frame not in deleted]
    if count > len(valid):
        raise _refuse(
            f"The number of frames requested ({count}) is greater than the number of "
            f"the task frames that are not deleted ({len(valid)})"
        )
    picked = _generator(data.random_seed).choice(valid, size=count, shuffle=False, replace=False)
    return [int(frame) for frame in picked]


async def _per_job(session: AsyncSession, task: Task, data: JobWrite, size: int) -> list[int]:
    rows = (
        await session.execute(
            select(Segment)
            .join(Job, Job.segment_id == Segment.id)
            .where(Job.task_id == task.id, Job.type == "annotation")
            .order_by(Segment.start_frame, Segment.id)
        )
    ).scalars()
    segments = [(segment.start_frame, job_frames(segment)) for segment in rows]
    segment_size = max((len(frames) for _, frames in segments), default=size)
    if data.frames_per_job_count is not _UNSET:
        count = data.frames_per_job_count
        if count > size:
            raise _refuse(
                f"The number of frames requested ({count}) must not be greater than "
                f"the segment size ({segment_size})"
            )
    else:
        assert data.frames_per_job_share is not _UNSET
        count = min(max(1, int(data.frames_per_job_share * segment_size)), size)
    generator = _generator(data.random_seed)
    picked: list[int] = []
    previous_stop = -1
    for start, frames in segments:
        # frames shared with the previous job (its overlap) were that job's to pick
        overlap = max(0, previous_stop - start + 1) if start != 0 else 0
        previous_stop = max(previous_stop, frames[-1] if frames else previous_stop)
        members = set(frames)
        chosen = members.intersection(picked)
        missing = min(len(members), count) - len(chosen)
        if missing <= 0:
            continue
        selectable = set(sorted(members)[overlap:]).difference(chosen)
        missing = min(missing, len(selectable))
        if missing:
            picked += [int(f) for f in generator.choice(tuple(selectable), size=missing, replace=False)]
    return picked


def _manual(data: JobWrite, size: int) -> list[int]:
    assert data.frames is not _UNSET
    frames = list(data.frames)
    if len(set(frames)) != len(frames):
        raise _refuse("Frames must not repeat")
    missing = sorted(set(frames).difference(range(size)))
    if missing:
        listed = ", ".join(str(frame) for frame in missing[:_LISTED])
        more = f" (and {len(missing) - _LISTED} more)" if len(missing) > _LISTED else ""
        raise _refuse(f"The following frames do not exist in the task: {listed}{more}")
    return frames


def job_frames(segment: Segment) -> list[int]:
    if segment.type == "specific_frames":
        return sorted(_frames.decode(segment.frames or "[]"))
    return list(range(segment.start_frame, segment.stop_frame + 1))


# --- creating and removing ----------------------------------------------------------------------


async def create(session: AsyncSession, task: Task, data: JobWrite) -> Job:
    """Make the task's ground-truth job, with CVAT's rules and messages."""
    if data.type != GROUND_TRUTH:
        raise _refuse(f"Unexpected job type '{data.type}'")
    media = await session.get(Data, task.data_id) if task.data_id is not None else None
    if media is None or not task.media_type:
        raise _refuse("This task has no data attached yet. Please set up task data and try again")
    if task.dimension != "2d":
        raise _refuse("Ground Truth jobs can only be added in 2d tasks")
    if await job_of(session, task.id) is not None:
        raise _refuse(f'Task with validation mode "{VALIDATION_MODE}" cannot have more than 1 GT job')
    size = media.size
    method = data.frame_selection_method
    if method == "random_uniform":
        frames = _uniform(data, size, set(_frames.decode(media.deleted_frames or "[]")))
    elif method == "random_per_job":
        frames = await _per_job(session, task, data, size)
    elif method == "manual":
        frames = _manual(data, size)
    else:
        raise _refuse(f"Unexpected frame selection method '{None if method is _UNSET else method}'")
    assignee_id = (
        await project_service.existing_user(session, data.assignee, "assignee")
        if data.assignee is not None
        else None
    )
    now = utcnow()
    segment = Segment(
        task_id=task.id,
        start_frame=0,
        stop_frame=size - 1,
        type="specific_frames",
        frames=msgspec.json.encode(sorted(frames)).decode(),
        chunks_updated_date=now,
    )
    session.add(segment)
    await session.flush()
    stage = "annotation" if data.stage is _UNSET else data.stage
    state = "new" if data.state is _UNSET else data.state
    job = Job(
        segment_id=segment.id,
        task_id=task.id,
        type=GROUND_TRUTH,
        assignee_id=assignee_id,
        assignee_updated_date=now if assignee_id is not None else None,
        stage=stage,
        state=state,
        status=job_service.derived_status(stage, state),
        created_date=now,
        updated_date=now,
    )
    session.add(job)
    task.updated_date = task_service.touch(task.updated_date)
    await session.flush()
    return job


async def remove(session: AsyncSession, job: Job) -> list[str]:
    """Delete a ground-truth job with its annotations and issues; answer the storage prefixes of
    the chunks and preview made for it. Other jobs are the task's own and are refused, as in CVAT."""
    if job.type != GROUND_TRUTH:
        raise _refuse("Only ground truth jobs can be removed")
    task = await task_service.get(session, job.task_id)
    prefixes = [layout.segment_prefix(task.data_id, job.segment_id)] if task.data_id is not None else []
    # the job's annotations and issues go with it (foreign keys), the job with its segment
    await session.execute(
        delete(Segment).where(Segment.id == job.segment_id), execution_options={"synchronize_session": False}
    )
    session.expunge(job)
    task.updated_date = task_service.touch(task.updated_date)
    await session.flush()
    return prefixes


__all__ = [
    "GROUND_TRUTH",
    "VALIDATION_MODE",
    "check_request",
    "create",
    "creation_resource",
    "frames_of",
    "job_frames",
    "job_of",
    "remove",
    "task_of_request",
]
