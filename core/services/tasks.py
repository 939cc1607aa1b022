"""Tasks: create, read, update, delete, list, and the documents the policy decides on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from sqlalchemy import String, and_, bindparam, case, cast, delete, exists, func, null, select
from sqlalchemy import update as update_rows
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from annota.core.access import FilterFields, Identity, Resource
from annota.core.bounds import check_int
from annota.core.db.tables import Data, Job, Project, Task, User
from annota.core.db.types import utcnow
from annota.core.errors import NotFound, ValidationError
from annota.core.media import layout
from annota.core.schemas.common import StorageRead, Url
from annota.core.schemas.tasks import JobsSummary, TaskRead, TaskUpdate, TaskWrite
from annota.core.services import labels as label_service
from annota.core.services import projects as project_service
from annota.core.services import storages as storage_service
from annota.core.services import task_moves, workspace_moves
from annota.core.services import users as user_service
from annota.core.services.guides import guides
from annota.core.services.listing import ListSpec

#: CVAT's default ``MAX_CONSENSUS_REPLICAS``
MAX_CONSENSUS_REPLICAS = 11

_UNSET = msgspec.UNSET


async def get(session: AsyncSession, task_id: int) -> Task:
    task = await session.get(Task, task_id)
    if task is None:
        raise NotFound(f"Task {task_id} not found.")
    return task


async def get_with_data(session: AsyncSession, task_id: int) -> tuple[Task, Data | None]:
    """The task and its media row, by one query: reading both (serving a frame, showing the task)
    costs one round trip to the database, not two. The session finds the row again by its id while
    the caller holds it (its identity map keeps only weak references)."""
    row = (
        await session.execute(
            select(Task, Data).outerjoin(Data, Data.id == Task.data_id).where(Task.id == task_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"Task {task_id} not found.")
    return row[0], row[1]


def _loaded_data(session: AsyncSession, data_ids: set[int]) -> dict[int, Data]:
    """The media rows among ``data_ids`` this session has already loaded."""
    loaded = {}
    for data_id in data_ids:
        found = session.identity_map.get(identity_key(Data, data_id))
        if isinstance(found, Data):
            loaded[data_id] = found
    return loaded


async def project_of(session: AsyncSession, task: Task) -> Project | None:
    return None if task.project_id is None else await session.get(Project, task.project_id)


async def target_project(session: AsyncSession, project_id: int | None) -> Project | None:
    """The project a task is created in or moved to; one that does not exist is a 400 on ``project_id``."""
    if project_id is None:
        return None
    # read from the body before it is validated: bounded here so the lookup is a 400, not a 500
    project = await session.get(Project, check_int(project_id, "project_id"))
    if project is None:
        raise ValidationError.for_field("project_id", f"The specified project #{project_id} does not exist.")
    return project


def touch(current: dt.datetime | None) -> dt.datetime:
    """A new ``updated_date``, strictly later than ``current``: clients compare it to drop caches."""
    now = utcnow()
    if current is not None and now <= current:
        return current + dt.timedelta(microseconds=1)
    return now


# --- policy documents -----------------------------------------------------------------------


def document(task: Task, project: Project | None) -> dict[str, Any]:
    """CVAT's ``input.resource`` for a task: its people, organization and project's people."""
    return {
        "id": task.id,
        "owner": {"id": task.owner_id},
        "assignee": {"id": task.assignee_id},
        "organization": {"id": task.organization_id},
        "project": project_service.document(project) if project is not None else None,
    }


async def resource(session: AsyncSession, task: Task) -> Resource:
    return Resource("tasks", document(task, await project_of(session, task)), task.id)


def creation_resource(who: Identity, project: Project | None, assignee_id: int | None = None) -> Resource:
    """The policy input for ``create`` and ``create@project``: the task about to exist."""
    return Resource(
        "tasks",
        {
            "id": None,
            "owner": {"id": who.user_id},
            "assignee": {"id": assignee_id},
            "organization": {"id": who.organization.id if who.organization else None},
            "project": project_service.document(project) if project is not None else None,
        },
    )


# --- writing --------------------------------------------------------------------------------


def _check_consensus_replicas(value: int) -> None:
    if value == 1 or value > MAX_CONSENSUS_REPLICAS:
        raise ValidationError.for_field(
            "consensus_replicas",
            f"Consensus replicas must be 0 or a number from 2 to {MAX_CONSENSUS_REPLICAS}, got {value}.",
        )


async def create(session: AsyncSession, who: Identity, data: TaskWrite) -> Task:
    """A task without media; its data, segments and jobs come with the upload."""
    project = await target_project(session, data.project_id)
    organization_id = who.organization.id if who.organization else None
    if project is not None:
        if data.labels:
            # CVAT's answer, from its serializer's create()
            raise ValidationError(["Task must have only one of Label set or project_id"])
        if project.organization_id != organization_id:
            raise ValidationError.for_field(
                "project_id", "The task and its project should be in the same organization."
            )
    _check_consensus_replicas(data.consensus_replicas)
    now = utcnow()
    task = Task(
        name=data.name,
        project_id=data.project_id,
        owner_id=await project_service.existing_user(session, data.owner_id, "owner_id") or who.user_id,
        assignee_id=await project_service.existing_user(session, data.assignee_id, "assignee_id"),
        assignee_updated_date=now if data.assignee_id else None,
        bug_tracker=data.bug_tracker,
        overlap=data.overlap,
        segment_size=data.segment_size,
        subset=data.subset,
        organization_id=organization_id,
        source_storage_id=await storage_service.create(session, "source_storage", data.source_storage),
        target_storage_id=await storage_service.create(session, "target_storage", data.target_storage),
        consensus_replicas=data.consensus_replicas,
        created_date=now,
        updated_date=now,
    )
    session.add(task)
    await session.flush()
    await label_service.apply_changes(session, data.labels, task_id=task.id, creating=True)
    return task


def project_move(task: Task, project_id: Any) -> int | None:
    """The project a PATCH's ``project_id`` moves the task into, if any (``null`` is ignored, as
    CVAT does)."""
    if isinstance(project_id, int) and not isinstance(project_id, bool) and project_id != task.project_id:
        return project_id
    return None


def update_scopes(task: Task, fields: Mapping[str, Any]) -> list[str]:
    """CVAT's scopes for a PATCH: ``view`` (the answer shows the task) plus one per changed field
    group; judged on the body as sent, before it is validated."""
    scopes = ["view"]
    if any(name in fields for name in ("name", "bug_tracker", "subset")) or fields.get("labels"):
        scopes.append("update:desc")
    if "owner_id" in fields:
        scopes.append("update:owner")
    if "assignee_id" in fields:
        scopes.append("update:assignee")
    if project_move(task, fields.get("project_id")) is not None:
        scopes.append("update:project")
    if "source_storage" in fields or "target_storage" in fields:
        scopes.append("update:associated_storage")
    if "organization_id" in fields:
        scopes.append("update:organization")
    return scopes


async def _update_people(session: AsyncSession, task: Task, data: TaskUpdate) -> None:
    if data.owner_id is not _UNSET:
        task.owner_id = await project_service.existing_user(session, data.owner_id, "owner_id")
    if data.assignee_id is not _UNSET and data.assignee_id != task.assignee_id:
        task.assignee_id = await project_service.existing_user(session, data.assignee_id, "assignee_id")
        task.assignee_updated_date = utcnow()


def _update_description(task: Task, data: TaskUpdate) -> None:
    if data.name is not _UNSET:
        task.name = data.name
    if data.bug_tracker is not _UNSET:
        task.bug_tracker = data.bug_tracker
    if data.subset is not _UNSET:
        task.subset = data.subset


async def update(session: AsyncSession, task: Task, data: TaskUpdate, mover_id: int | None = None) -> Task:
    """Apply a PATCH. Write-once fields (``overlap``, ``segment_size``, ``consensus_replicas``) are not
    part of ``TaskUpdate``, so like DRF's read-only fields they are ignored. A new ``organization_id``
    moves the task there (``workspace_moves.check_request`` has kept other changes out), handed
    over to ``mover_id``."""
    if data.organization_id is not _UNSET and data.organization_id != task.organization_id:
        assert mover_id is not None
        await workspace_moves.move_task(session, task, data.organization_id, mover_id)
    target = await target_project(session, project_move(task, data.project_id))
    if data.labels and (task.project_id is not None or target is not None):
        raise ValidationError.for_field("labels", "A task in a project uses the project's labels.")
    _update_description(task, data)
    if data.source_storage is not _UNSET:
        task.source_storage_id = await storage_service.update(
            session, "source_storage", task.source_storage_id, data.source_storage
        )
    if data.target_storage is not _UNSET:
        task.target_storage_id = await storage_service.update(
            session, "target_storage", task.target_storage_id, data.target_storage
        )
    await _update_people(session, task, data)
    if target is not None:
        await task_moves.move_to_project(session, task, target)
    task.updated_date = touch(task.updated_date)
    if data.labels:
        await label_service.apply_changes(session, data.labels, task_id=task.id, creating=False)
        # CVAT marks the jobs changed too: their annotations are read against the new labels
        await session.execute(
            update_rows(Job)
            .where(Job.task_id == task.id, Job.updated_date < task.updated_date)
            .values(updated_date=task.updated_date)
            .execution_options(synchronize_session=False)
        )
    await session.flush()
    return task


async def remove(session: AsyncSession, task: Task) -> list[str]:
    """Delete the task; segments, jobs, labels and annotations go with it, then its media record.
    Returns the storage prefixes of its media, uploads and guide assets, to delete once this commits."""
    prefixes = await guides.storage_prefixes(session, task_ids=[task.id])
    await session.execute(delete(Task).where(Task.id == task.id))
    await storage_service.remove(session, [task.source_storage_id, task.target_storage_id])
    prefixes.append(layout.upload_prefix(task.id))
    if task.data_id is not None:
        await session.execute(delete(Data).where(Data.id == task.data_id))
        prefixes.append(layout.data_prefix(task.data_id))
    return prefixes


# --- reading --------------------------------------------------------------------------------


# built once: building the CASE expressions took longer than running the query
_JOBS_SUMMARIES = (
    select(
        Job.task_id,
        func.count(),
        func.sum(case((and_(Job.stage == "acceptance", Job.state == "completed"), 1), else_=0)),
        func.sum(case((Job.stage == "validation", 1), else_=0)),
        func.sum(case((Job.type == "ground_truth", 1), else_=0)),
    )
    .where(Job.task_id.in_(bindparam("task_ids", expanding=True)))
    .group_by(Job.task_id)
)


async def _jobs_summaries(session: AsyncSession, task_ids: list[int]) -> dict[int, tuple[int, int, int, int]]:
    """Per task: (jobs, completed jobs, jobs in validation, ground-truth jobs), counted the way
    CVAT does."""
    if not task_ids:
        return {}
    rows = await session.execute(_JOBS_SUMMARIES, {"task_ids": task_ids})
    return {
        task_id: (count, int(done or 0), int(checking or 0), int(gt or 0))
        for task_id, count, done, checking, gt in rows
    }


async def read_many(session: AsyncSession, tasks: Sequence[Task], base_url: str) -> list[TaskRead]:
    """Serialize tasks with one query each for users, project names, job counts and media."""
    ids = [t.id for t in tasks]
    users = await user_service.users_by_id(
        session, {t.owner_id for t in tasks} | {t.assignee_id for t in tasks}
    )
    project_ids = {t.project_id for t in tasks if t.project_id is not None}
    project_names: dict[int, str] = {}
    if project_ids:
        rows = await session.execute(select(Project.id, Project.name).where(Project.id.in_(project_ids)))
        project_names = {project_id: name for project_id, name in rows}
    data_ids = {t.data_id for t in tasks if t.data_id is not None}
    media = _loaded_data(session, data_ids)
    if missing := data_ids - media.keys():
        found = await session.scalars(select(Data).where(Data.id.in_(missing)))
        media.update((d.id, d) for d in found)
    summaries = await _jobs_summaries(session, ids)
    storages = await storage_service.read_many(
        session, [i for t in tasks for i in (t.source_storage_id, t.target_storage_id)]
    )
    guide_ids = await guides.ids_of_tasks(session, ids)
    return [
        msgspec.structs.replace(
            _read(
                t,
                base_url,
                users,
                project_names,
                media.get(t.data_id) if t.data_id else None,
                summaries.get(t.id),
                storages,
            ),
            guide_id=guide_ids.get(t.id),
        )
        for t in tasks
    ]


def _read(
    task: Task,
    base_url: str,
    users: dict[int, User],
    project_names: dict[int, str],
    data: Data | None,
    summary: tuple[int, int, int, int] | None,
    storages: dict[int, StorageRead],
) -> TaskRead:
    count, completed, validation, ground_truth = summary or (0, 0, 0, 0)
    result = TaskRead(
        url=f"{base_url}/api/tasks/{task.id}",
        id=task.id,
        name=task.name,
        project_id=task.project_id,
        project_name=project_names.get(task.project_id) if task.project_id is not None else None,
        owner=user_service.basic(users.get(task.owner_id) if task.owner_id else None, base_url),
        assignee=user_service.basic(users.get(task.assignee_id) if task.assignee_id else None, base_url),
        guide_id=None,
        bug_tracker=task.bug_tracker,
        created_date=task.created_date,
        updated_date=task.updated_date,
        overlap=task.overlap,
        segment_size=task.segment_size,
        status=task.status,
        data_cloud_storage_id=data.cloud_storage_id if data is not None else None,
        size=data.size if data is not None else 0,
        data=task.data_id,
        dimension=task.dimension,
        mode=task.mode,
        media_type=task.media_type,
        subset=task.subset,
        organization=task.organization_id,
        organization_id=task.organization_id,
        target_storage=storages.get(task.target_storage_id) if task.target_storage_id else None,
        source_storage=storages.get(task.source_storage_id) if task.source_storage_id else None,
        jobs=JobsSummary(
            count=count,
            completed=completed,
            validation=validation,
            url=f"{base_url}/api/jobs?task_id={task.id}",
        ),
        labels=Url(url=f"{base_url}/api/labels?task_id={task.id}"),
        assignee_updated_date=task.assignee_updated_date,
        # a ground-truth job is CVAT's "gt" validation (annota makes no honeypots)
        validation_mode="gt" if ground_truth else None,
        consensus_enabled=task.consensus_replicas > 0,
    )
    # CVAT sends the chunk description only once media is attached
    if task.media_type and data is not None:
        result.image_quality = data.image_quality
        if data.chunk_size is not None:
            result.data_chunk_size = data.chunk_size
        result.data_compressed_chunk_type = data.compressed_chunk_type
        result.data_original_chunk_type = data.original_chunk_type
    return result


# --- listing --------------------------------------------------------------------------------


def _project_field(column: Any) -> Any:
    return lambda v: exists(select(Project.id).where(Project.id == Task.project_id, column == v))


#: Fields a policy filter may name for tasks.
POLICY_FIELDS: FilterFields = {
    "id": lambda v: Task.id == v,
    "owner_id": lambda v: Task.owner_id == v,
    "assignee_id": lambda v: Task.assignee_id == v,
    "organization_id": lambda v: Task.organization_id == v,
    "project_id": lambda v: Task.project_id == v,
    "project__owner_id": _project_field(Project.owner_id),
    "project__assignee_id": _project_field(Project.assignee_id),
    "job__assignee_id": lambda v: exists(select(Job.id).where(Job.task_id == Task.id, Job.assignee_id == v)),
}

_owner = select(User.username).where(User.id == Task.owner_id).scalar_subquery()
_assignee = select(User.username).where(User.id == Task.assignee_id).scalar_subquery()
_project_name = select(Project.name).where(Project.id == Task.project_id).scalar_subquery()

_FILTERS = (
    "name", "owner", "assignee", "project_id", "project_name", "status", "mode", "dimension", "media_type",
    "subset", "tracker_link", "validation_mode",
)  # fmt: skip

LIST_SPEC = ListSpec(
    fields={
        "id": Task.id,
        "name": Task.name,
        "owner": _owner,
        "assignee": _assignee,
        "project_id": Task.project_id,
        "project_name": _project_name,
        "status": Task.status,
        "mode": Task.mode,
        "dimension": Task.dimension,
        "media_type": Task.media_type,
        "subset": Task.subset,
        "tracker_link": Task.bug_tracker,
        "validation_mode": case(
            (exists(select(Job.id).where(Job.task_id == Task.id, Job.type == "ground_truth")), "gt"),
            else_=cast(null(), String),
        ),
        "updated_date": Task.updated_date,
        "created_date": Task.created_date,
        "organization_id": Task.organization_id,
    },
    equality=(*_FILTERS, "id"),
    search=("name", "owner", "assignee", "project_name", "status", "mode", "dimension", "subset"),
    sortable=("id", *_FILTERS, "updated_date", "created_date"),
    integer_fields=frozenset({"id", "project_id", "organization_id"}),
)

__all__ = [
    "LIST_SPEC",
    "MAX_CONSENSUS_REPLICAS",
    "POLICY_FIELDS",
    "create",
    "creation_resource",
    "document",
    "get",
    "project_move",
    "project_of",
    "read_many",
    "remove",
    "resource",
    "target_project",
    "touch",
    "update",
    "update_scopes",
]
