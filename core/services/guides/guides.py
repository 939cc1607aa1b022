"""Annotation guides: one per task or project, CVAT's rules on who reads and writes them, and the
ids the task, project and job reads show as ``guide_id``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.access import Resource
from annota.core.db.tables import AnnotationGuide, Job, Project, Task
from annota.core.db.types import utcnow
from annota.core.errors import Conflict, NotFound, ValidationError
from annota.core.schemas.guides import AnnotationGuideRead, AnnotationGuideWrite
from annota.core.services.guides.assets import guide_prefix

POLICY = "annotationguides"


async def target_of(session: AsyncSession, task_id: int | None, project_id: int | None) -> Task | Project:
    """The task or project a new guide is for: exactly one must be named, and exist."""
    if (task_id is None) == (project_id is None):
        raise ValidationError.for_field("task_id", "Name exactly one of task_id and project_id.")
    target = (
        await session.get(Task, task_id) if task_id is not None else await session.get(Project, project_id)
    )
    if target is None:
        field, value = ("task_id", task_id) if task_id is not None else ("project_id", project_id)
        raise ValidationError.for_field(field, f"The {field.removesuffix('_id')} #{value} does not exist.")
    return target


async def _is_job_staff(session: AsyncSession, target: Task | Project, user_id: int | None) -> bool:
    if user_id is None:
        return False
    tasks = [target.id] if isinstance(target, Task) else select(Task.id).where(Task.project_id == target.id)
    found = await session.scalar(select(exists().where(Job.task_id.in_(tasks), Job.assignee_id == user_id)))
    return bool(found)


async def resource(
    session: AsyncSession, target: Task | Project, user_id: int | None, guide_id: int | None = None
) -> Resource:
    """CVAT's ``input.resource`` for a guide of ``target`` (the owner and assignee are the task's or
    project's own; ``is_job_staff``: the caller is assigned a job there)."""
    document: dict[str, Any] = {
        "id": guide_id,
        "target": {
            "owner": {"id": target.owner_id},
            "assignee": {"id": target.assignee_id},
            "is_job_staff": await _is_job_staff(session, target, user_id),
        },
        "organization": {"id": target.organization_id},
    }
    return Resource(POLICY, document, guide_id)


async def get(session: AsyncSession, guide_id: int) -> tuple[AnnotationGuide, Task | Project]:
    guide = await session.get(AnnotationGuide, guide_id)
    if guide is None:
        raise NotFound(f"Annotation guide {guide_id} not found.")
    target = (
        await session.get(Task, guide.task_id) if guide.task_id is not None
        else await session.get(Project, guide.project_id)
    )  # fmt: skip
    if target is None:
        raise NotFound(f"Annotation guide {guide_id} not found.")
    return guide, target


async def create(
    session: AsyncSession, data: AnnotationGuideWrite, target: Task | Project
) -> AnnotationGuide:
    column = AnnotationGuide.task_id if isinstance(target, Task) else AnnotationGuide.project_id
    if await session.scalar(select(exists().where(column == target.id))):
        kind = "task" if isinstance(target, Task) else "project"
        raise Conflict(f"The {kind} #{target.id} already has an annotation guide.")
    guide = AnnotationGuide(task_id=data.task_id, project_id=data.project_id, markdown=data.markdown)
    session.add(guide)
    await session.flush()
    return guide


def touch(target: Task | Project) -> None:
    target.updated_date = utcnow()


def read(guide: AnnotationGuide) -> AnnotationGuideRead:
    return AnnotationGuideRead(
        id=guide.id, task_id=guide.task_id, project_id=guide.project_id, created_date=guide.created_date,
        updated_date=guide.updated_date, markdown=guide.markdown,
    )  # fmt: skip


async def ids_of_tasks(session: AsyncSession, task_ids: Sequence[int]) -> dict[int, int]:
    rows = await session.execute(
        select(AnnotationGuide.task_id, AnnotationGuide.id).where(AnnotationGuide.task_id.in_(list(task_ids)))
    )
    return {task_id: guide_id for task_id, guide_id in rows if task_id is not None}


async def ids_of_projects(session: AsyncSession, project_ids: Sequence[int]) -> dict[int, int]:
    rows = await session.execute(
        select(AnnotationGuide.project_id, AnnotationGuide.id).where(
            AnnotationGuide.project_id.in_(list(project_ids))
        )
    )
    return {project_id: guide_id for project_id, guide_id in rows if project_id is not None}


async def storage_prefixes(
    session: AsyncSession, task_ids: Sequence[int] = (), project_ids: Sequence[int] = ()
) -> list[str]:
    """Where the assets of these tasks' and projects' guides lie, to delete with them."""
    rows = await session.scalars(
        select(AnnotationGuide.id).where(
            AnnotationGuide.task_id.in_(list(task_ids)) | AnnotationGuide.project_id.in_(list(project_ids))
        )
    )
    return [guide_prefix(guide_id) for guide_id in rows]


__all__ = [
    "POLICY",
    "create",
    "get",
    "ids_of_projects",
    "ids_of_tasks",
    "read",
    "resource",
    "target_of",
    "touch",
]
