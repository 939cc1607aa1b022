"""Projects: create, read, update, delete, and the documents the policy decides on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.access import FilterFields, Identity, Resource
from annota.core.db.tables import Data, Project, Task, User
from annota.core.db.types import utcnow
from annota.core.errors import NotFound, ValidationError
from annota.core.media import layout
from annota.core.schemas.common import Url, UrlCount
from annota.core.schemas.projects import ProjectRead, ProjectUpdate, ProjectWrite
from annota.core.services import labels as label_service
from annota.core.services import storages as storage_service
from annota.core.services import users as user_service
from annota.core.services import workspace_moves
from annota.core.services.guides import guides
from annota.core.services.listing import ListSpec


async def existing_user(session: AsyncSession, user_id: int | None, field: str) -> int | None:
    if user_id is not None and await session.get(User, user_id) is None:
        raise ValidationError.for_field(field, f'Invalid pk "{user_id}" - object does not exist.')
    return user_id


async def create(session: AsyncSession, who: Identity, data: ProjectWrite) -> Project:
    now = utcnow()
    project = Project(
        name=data.name,
        owner_id=await existing_user(session, data.owner_id, "owner_id") or who.user_id,
        assignee_id=await existing_user(session, data.assignee_id, "assignee_id"),
        assignee_updated_date=now if data.assignee_id else None,
        bug_tracker=data.bug_tracker,
        organization_id=who.organization.id if who.organization else None,
        source_storage_id=await storage_service.create(session, "source_storage", data.source_storage),
        target_storage_id=await storage_service.create(session, "target_storage", data.target_storage),
        created_date=now,
        updated_date=now,
    )
    session.add(project)
    await session.flush()
    await label_service.apply_changes(session, data.labels, project_id=project.id, creating=True)
    return project


async def get(session: AsyncSession, project_id: int) -> Project:
    project = await session.get(Project, project_id)
    if project is None:
        raise NotFound(f"Project {project_id} not found.")
    return project


def update_scopes(fields: Mapping[str, Any]) -> list[str]:
    """CVAT's per-field scopes for a PATCH (every field sent needs its own permission); judged on
    the body as sent, before it is validated."""
    scopes = []
    if "name" in fields or "bug_tracker" in fields or fields.get("labels"):
        scopes.append("update:desc")
    if "owner_id" in fields:
        scopes.append("update:owner")
    if "assignee_id" in fields:
        scopes.append("update:assignee")
    if "source_storage" in fields or "target_storage" in fields:
        scopes.append("update:associated_storage")
    if "organization_id" in fields:
        scopes.append("update:organization")
    return scopes or ["update:desc"]


async def update(
    session: AsyncSession, project: Project, data: ProjectUpdate, mover_id: int | None = None
) -> Project:
    """Apply a PATCH; a new ``organization_id`` moves the project (and its tasks) there, handed
    over to ``mover_id`` (``workspace_moves.check_request`` has kept other changes out)."""
    if data.organization_id is not msgspec.UNSET and data.organization_id != project.organization_id:
        assert mover_id is not None
        await workspace_moves.move_project(session, project, data.organization_id, mover_id)
    if data.name is not msgspec.UNSET:
        project.name = data.name
    if data.bug_tracker is not msgspec.UNSET:
        project.bug_tracker = data.bug_tracker
    if data.owner_id is not msgspec.UNSET:
        project.owner_id = await existing_user(session, data.owner_id, "owner_id")
    if data.assignee_id is not msgspec.UNSET and data.assignee_id != project.assignee_id:
        project.assignee_id = await existing_user(session, data.assignee_id, "assignee_id")
        project.assignee_updated_date = utcnow()
    if data.source_storage is not msgspec.UNSET:
        project.source_storage_id = await storage_service.update(
            session, "source_storage", project.source_storage_id, data.source_storage
        )
    if data.target_storage is not msgspec.UNSET:
        project.target_storage_id = await storage_service.update(
            session, "target_storage", project.target_storage_id, data.target_storage
        )
    if data.labels:
        await label_service.apply_changes(session, data.labels, project_id=project.id, creating=False)
    project.updated_date = utcnow()
    await session.flush()
    return project


async def remove(session: AsyncSession, project: Project) -> list[str]:
    """Delete the project; its tasks go with it, then their media records (tasks only point at them).
    Returns the storage prefixes of the tasks' media and uploads, to delete once this commits."""
    rows = (
        await session.execute(
            select(Task.id, Task.data_id, Task.source_storage_id, Task.target_storage_id).where(
                Task.project_id == project.id
            )
        )
    ).all()
    data_ids = [row.data_id for row in rows if row.data_id is not None]
    guide_prefixes = await guides.storage_prefixes(session, [row.id for row in rows], [project.id])
    await session.execute(delete(Project).where(Project.id == project.id))
    await storage_service.remove(
        session,
        [project.source_storage_id, project.target_storage_id]
        + [i for row in rows for i in (row.source_storage_id, row.target_storage_id)],
    )
    if data_ids:
        await session.execute(delete(Data).where(Data.id.in_(data_ids)))
    uploads = [layout.upload_prefix(row.id) for row in rows]
    return uploads + [layout.data_prefix(d) for d in data_ids] + guide_prefixes


def resource(project: Project | None, project_id: int | None = None) -> Resource:
    """The policy input for one project (``None``: a create or list scope)."""
    if project is None:
        return Resource("projects", None, project_id)
    return Resource("projects", document(project), project.id)


def document(project: Project) -> dict[str, Any]:
    return {
        "id": project.id,
        "owner": {"id": project.owner_id},
        "assignee": {"id": project.assignee_id},
        "organization": {"id": project.organization_id},
    }


async def read_many(session: AsyncSession, projects: Sequence[Project], base_url: str) -> list[ProjectRead]:
    """Serialize projects with one query each for users, task counts and subsets."""
    ids = [p.id for p in projects]
    users = await user_service.users_by_id(
        session, {p.owner_id for p in projects} | {p.assignee_id for p in projects}
    )
    guide_ids = await guides.ids_of_projects(session, ids)
    counts: dict[int, int] = {}
    subsets: dict[int, set[str]] = {i: set() for i in ids}
    dimensions: dict[int, str] = {}
    storages = await storage_service.read_many(
        session, [i for p in projects for i in (p.source_storage_id, p.target_storage_id)]
    )
    if ids:
        rows = await session.execute(
            select(Task.project_id, Task.subset, Task.dimension, func.count())
            .where(Task.project_id.in_(ids))
            .group_by(Task.project_id, Task.subset, Task.dimension)
        )
        for project_id, subset, dimension, count in rows:
            if project_id is None:
                continue
            counts[project_id] = counts.get(project_id, 0) + count
            if subset:
                subsets[project_id].add(subset)
            dimensions.setdefault(project_id, dimension)
    return [
        ProjectRead(
            url=f"{base_url}/api/projects/{p.id}",
            id=p.id,
            name=p.name,
            owner=user_service.basic(users.get(p.owner_id) if p.owner_id else None, base_url),
            assignee=user_service.basic(users.get(p.assignee_id) if p.assignee_id else None, base_url),
            guide_id=guide_ids.get(p.id),
            bug_tracker=p.bug_tracker,
            task_subsets=sorted(subsets[p.id]),
            created_date=p.created_date,
            updated_date=p.updated_date,
            status=p.status,
            dimension=dimensions.get(p.id),
            organization=p.organization_id,
            organization_id=p.organization_id,
            target_storage=storages.get(p.target_storage_id) if p.target_storage_id else None,
            source_storage=storages.get(p.source_storage_id) if p.source_storage_id else None,
            tasks=UrlCount(url=f"{base_url}/api/tasks?project_id={p.id}", count=counts.get(p.id, 0)),
            labels=Url(url=f"{base_url}/api/labels?project_id={p.id}"),
            assignee_updated_date=p.assignee_updated_date,
        )
        for p in projects
    ]


#: Fields a policy filter may name for projects.
POLICY_FIELDS: FilterFields = {
    "id": lambda v: Project.id == v,
    "owner_id": lambda v: Project.owner_id == v,
    "assignee_id": lambda v: Project.assignee_id == v,
    "organization_id": lambda v: Project.organization_id == v,
}

_owner = select(User.username).where(User.id == Project.owner_id).scalar_subquery()
_assignee = select(User.username).where(User.id == Project.assignee_id).scalar_subquery()

LIST_SPEC = ListSpec(
    fields={
        "id": Project.id,
        "name": Project.name,
        "owner": _owner,
        "assignee": _assignee,
        "status": Project.status,
        "updated_date": Project.updated_date,
        "created_date": Project.created_date,
        "organization_id": Project.organization_id,
    },
    equality=("name", "owner", "assignee", "status", "id"),
    search=("name", "owner", "assignee", "status"),
    sortable=("id", "name", "owner", "assignee", "status", "updated_date", "created_date"),
    integer_fields=frozenset({"id", "organization_id"}),
)

__all__ = [
    "LIST_SPEC",
    "POLICY_FIELDS",
    "create",
    "get",
    "read_many",
    "remove",
    "resource",
    "update",
]
