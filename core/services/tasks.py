"""Tasks: create, read, update, delete, and the documents the policy decides on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.access import FilterFields, Resource
from annota.core.db.tables import Job, Project, Task
from annota.core.errors import NotFound
from annota.core.services import projects as project_service


async def get(session: AsyncSession, task_id: int) -> Task:
    task = await session.get(Task, task_id)
    if task is None:
        raise NotFound(f"Task {task_id} not found.")
    return task


async def project_of(session: AsyncSession, task: Task) -> Project | None:
    return None if task.project_id is None else await session.get(Project, task.project_id)


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
