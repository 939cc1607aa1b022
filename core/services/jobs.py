"""Jobs: reading, stage/state/assignee changes, listing, and the documents the policy decides on.

Jobs are made from a task's segments when its media is processed; here they are read and moved
through CVAT's workflow (stage annotation -> validation -> acceptance, each with a state).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.access import FilterFields, Resource
from annota.core.db.tables import Data, Job, Project, Segment, Task, User
from annota.core.db.types import utcnow
from annota.core.errors import NotFound
from annota.core.schemas.common import Url, UrlCount
from annota.core.schemas.jobs import JobRead, JobUpdate
from annota.core.services import projects as project_service
from annota.core.services import storages as storage_service
from annota.core.services import tasks as task_service
from annota.core.services import users as user_service
from annota.core.services.guides import guides
from annota.core.services.listing import ListSpec
from annota.core.services.review import issues as issue_service

_UNSET = msgspec.UNSET
_frames_decoder = msgspec.json.Decoder(list[int])


async def get(session: AsyncSession, job_id: int) -> Job:
    job = await session.get(Job, job_id)
    if job is None:
        raise NotFound(f"Job {job_id} not found.")
    return job


# --- policy documents -----------------------------------------------------------------------


def document(job: Job, task: Task, project: Project | None) -> dict[str, Any]:
    """CVAT's ``input.resource`` for a job: its assignee, and its task's and project's people."""
    return {
        "id": job.id,
        "assignee": {"id": job.assignee_id},
        "organization": {"id": task.organization_id},
        "task": task_service.document(task, project),
        "project": project_service.document(project) if project is not None else None,
    }


async def resource(session: AsyncSession, job: Job) -> Resource:
    task = await task_service.get(session, job.task_id)
    return Resource("jobs", document(job, task, await task_service.project_of(session, task)), job.id)


# --- writing --------------------------------------------------------------------------------


def update_scopes(fields: Mapping[str, Any]) -> list[str]:
    """CVAT's scopes for a PATCH: ``view`` (the answer shows the job) plus one per field sent."""
    scopes = ["view"]
    for name in ("stage", "state", "assignee"):
        if name in fields:
            scopes.append(f"update:{name}")
    return scopes


def derived_status(stage: str, state: str) -> str:
    """CVAT's deprecated ``status``, kept for old clients."""
    if stage == "annotation":
        return "annotation"
    if stage == "acceptance" and state == "completed":
        return "completed"
    return "validation"


async def _refresh_task_status(session: AsyncSession, task_id: int) -> None:
    """A task is in annotation while any of its annotation jobs is, else in validation while any
    job is, else completed (CVAT's job post-save handler)."""
    rows = await session.execute(select(Job.status).where(Job.task_id == task_id, Job.type == "annotation"))
    statuses = set(rows.scalars())
    status = "completed"
    if "annotation" in statuses:
        status = "annotation"
    elif "validation" in statuses:
        status = "validation"
    task = await task_service.get(session, task_id)
    if task.status != status:
        task.status = status
        task.updated_date = task_service.touch(task.updated_date)


async def update(session: AsyncSession, job: Job, data: JobUpdate) -> Job:
    """Apply a PATCH. As in CVAT, moving a job to another stage starts it over (state ``new``)
    unless the request also sets the state."""
    if data.assignee is not _UNSET and data.assignee != job.assignee_id:
        job.assignee_id = await project_service.existing_user(session, data.assignee, "assignee")
        job.assignee_updated_date = utcnow()
    workflow_changed = data.stage is not _UNSET or data.state is not _UNSET
    if workflow_changed:
        stage: str = job.stage if data.stage is _UNSET else data.stage
        state: str = data.state if data.state is not _UNSET else "new" if stage != job.stage else job.state
        job.stage, job.state, job.status = stage, state, derived_status(stage, state)
    job.updated_date = task_service.touch(job.updated_date)
    await session.flush()
    if workflow_changed:
        await _refresh_task_status(session, job.task_id)
        await session.flush()
    return job


# --- reading --------------------------------------------------------------------------------


async def _by_id(session: AsyncSession, model: Any, ids: set[int]) -> dict[int, Any]:
    if not ids:
        return {}
    rows = (await session.execute(select(model).where(model.id.in_(ids)))).scalars()
    return {row.id: row for row in rows}


def _frame_count(segment: Segment) -> int:
    if segment.type == "specific_frames":
        return len(_frames_decoder.decode(segment.frames or "[]"))
    return segment.stop_frame - segment.start_frame + 1


async def read_many(session: AsyncSession, jobs: Sequence[Job], base_url: str) -> list[JobRead]:
    """Serialize jobs with one query each for tasks, segments, media, projects, assignees and issue
    counts."""
    tasks: dict[int, Task] = await _by_id(session, Task, {j.task_id for j in jobs})
    segments: dict[int, Segment] = await _by_id(session, Segment, {j.segment_id for j in jobs})
    media: dict[int, Data] = await _by_id(session, Data, {t.data_id for t in tasks.values() if t.data_id})
    projects: dict[int, Project] = await _by_id(
        session, Project, {t.project_id for t in tasks.values() if t.project_id is not None}
    )
    users = await user_service.users_by_id(session, {j.assignee_id for j in jobs})
    issue_counts = await issue_service.counts_by_job(session, [j.id for j in jobs])
    # CVAT: the project's guide for a task in a project, else the task's
    project_guides = await guides.ids_of_projects(session, list(projects))
    task_guides = await guides.ids_of_tasks(session, [t.id for t in tasks.values() if t.project_id is None])
    storages = await storage_service.read_many(
        session, [i for t in tasks.values() for i in (t.source_storage_id, t.target_storage_id)]
    )
    results = []
    for job in jobs:
        task = tasks[job.task_id]
        segment = segments[job.segment_id]
        project = projects.get(task.project_id) if task.project_id is not None else None
        data = media.get(task.data_id) if task.data_id is not None else None
        compressed = data.compressed_chunk_type if data is not None else None
        results.append(
            JobRead(
                url=f"{base_url}/api/jobs/{job.id}",
                id=job.id,
                task_id=task.id,
                task_name=task.name,
                project_id=task.project_id,
                project_name=project.name if project is not None else None,
                assignee=user_service.basic(
                    users.get(job.assignee_id) if job.assignee_id else None, base_url
                ),
                guide_id=project_guides.get(task.project_id)
                if task.project_id is not None
                else task_guides.get(task.id),
                dimension=task.dimension,
                mode=task.mode,
                media_type=task.media_type,
                # CVAT: the task's tracker, else the project's
                bug_tracker=task.bug_tracker or (project.bug_tracker if project is not None else None),
                status=job.status,
                stage=job.stage,
                state=job.state,
                frame_count=_frame_count(segment),
                start_frame=segment.start_frame,
                stop_frame=segment.stop_frame,
                data_chunk_size=data.chunk_size if data is not None else None,
                # frames picked one by one are always served as image sets
                data_compressed_chunk_type="imageset"
                if data is not None and segment.type == "specific_frames"
                else compressed,
                data_original_chunk_type=data.original_chunk_type if data is not None else None,
                created_date=job.created_date,
                updated_date=job.updated_date,
                issues=UrlCount(
                    url=f"{base_url}/api/issues?job_id={job.id}", count=issue_counts.get(job.id, 0)
                ),
                labels=Url(url=f"{base_url}/api/labels?job_id={job.id}"),
                type=job.type,
                organization=task.organization_id,
                organization_id=task.organization_id,
                target_storage=storages.get(task.target_storage_id) if task.target_storage_id else None,
                source_storage=storages.get(task.source_storage_id) if task.source_storage_id else None,
                assignee_updated_date=job.assignee_updated_date,
                parent_job_id=job.parent_job_id,
                consensus_replicas=task.consensus_replicas if job.type == "annotation" else 0,
            )
        )
    return results


# --- listing --------------------------------------------------------------------------------


def _tasks_where(*conditions: Any) -> Any:
    return Job.task_id.in_(select(Task.id).where(*conditions))


def _tasks_in_projects_where(condition: Any) -> Any:
    return Job.task_id.in_(select(Task.id).join(Project, Project.id == Task.project_id).where(condition))


#: Fields a policy filter may name for jobs.
POLICY_FIELDS: FilterFields = {
    "id": lambda v: Job.id == v,
    "assignee_id": lambda v: Job.assignee_id == v,
    "task_id": lambda v: Job.task_id == v,
    "organization_id": lambda v: _tasks_where(Task.organization_id == v),
    "task__owner_id": lambda v: _tasks_where(Task.owner_id == v),
    "task__assignee_id": lambda v: _tasks_where(Task.assignee_id == v),
    "task__project__owner_id": lambda v: _tasks_in_projects_where(Project.owner_id == v),
    "task__project__assignee_id": lambda v: _tasks_in_projects_where(Project.assignee_id == v),
}


def _task_column(column: Any) -> Any:
    return select(column).where(Task.id == Job.task_id).scalar_subquery()


_FILTERS = (
    "task_id", "project_id", "stage", "state", "assignee", "task_name", "project_name", "dimension", "type",
    "parent_job_id",
)  # fmt: skip

LIST_SPEC = ListSpec(
    fields={
        "id": Job.id,
        "task_id": Job.task_id,
        "project_id": _task_column(Task.project_id),
        "stage": Job.stage,
        "state": Job.state,
        "assignee": select(User.username).where(User.id == Job.assignee_id).scalar_subquery(),
        "task_name": _task_column(Task.name),
        "project_name": select(Project.name)
        .join(Task, Task.project_id == Project.id)
        .where(Task.id == Job.task_id)
        .scalar_subquery(),
        "dimension": _task_column(Task.dimension),
        "type": Job.type,
        "parent_job_id": Job.parent_job_id,
        "updated_date": Job.updated_date,
        "created_date": Job.created_date,
    },
    equality=(*_FILTERS, "id"),
    search=("task_name", "project_name", "assignee", "state", "stage"),
    sortable=("id", *_FILTERS, "updated_date", "created_date"),
    integer_fields=frozenset({"id", "task_id", "project_id", "parent_job_id"}),
)

__all__ = [
    "LIST_SPEC",
    "POLICY_FIELDS",
    "derived_status",
    "document",
    "get",
    "read_many",
    "resource",
    "update",
    "update_scopes",
]
