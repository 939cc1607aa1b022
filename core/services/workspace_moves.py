"""Moving a project or a top-level task between the personal sandbox and organizations.

CVAT's UI moves a project or task with ``PATCH {"organization_id": N}`` (``null`` for the
sandbox). Everything that hangs off it (a project's tasks, their jobs, labels, annotations, issues,
guides) goes along; the people it was given to do not: the mover becomes its owner and the
assignees of it, of its tasks and of their jobs are cleared, since they may not belong to the new
workspace. A project's webhooks follow it. The rules and messages are those of CVAT's
``OrgTransferableMixin``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.access import OrganizationContext
from annota.core.db.tables import Job, Organization, Project, Task, Webhook
from annota.core.db.types import utcnow
from annota.core.errors import ValidationError

#: what a move may change besides the workspace
_MOVABLE_WITH = frozenset({"source_storage", "target_storage", "organization_id"})


def _refuse(message: str) -> ValidationError:
    return ValidationError({"non_field_errors": [message]})


def is_move(fields: Mapping[str, Any]) -> bool:
    """A body naming ``organization_id`` asks for a move (CVAT checks it as one even when the
    workspace is the current one)."""
    return "organization_id" in fields


def check_request(fields: Mapping[str, Any], task: Task | None = None) -> None:
    """CVAT's checks of a move request: a task moves alone and only from the top level, and a
    move changes nothing else but the storages."""
    if task is not None:
        if "project_id" in fields:
            raise _refuse("A task cannot be moved into a project and into an organization at the same time")
        if task.project_id is not None:
            raise _refuse("Only top-level resources can be moved between workspaces")
    others = sorted(set(fields) - _MOVABLE_WITH)
    if others:
        names = "{" + ", ".join(repr(name) for name in others) + "}"
        raise _refuse(f"Fields {names} cannot be updated when transferring to another workspace")


async def destination(
    session: AsyncSession, organization_id: int | None, memberships: Mapping[int, OrganizationContext]
) -> OrganizationContext | None:
    """The workspace a move goes to, with the mover's role there (``None``: the sandbox); a 400
    when no such organization exists."""
    if organization_id is None:
        return None
    membership = memberships.get(organization_id)
    if membership is not None:
        return membership
    row = (
        await session.execute(
            select(Organization.slug, Organization.owner_id).where(Organization.id == organization_id)
        )
    ).first()
    if row is None:
        raise ValidationError(["Invalid organization id"])
    return OrganizationContext(id=organization_id, slug=row.slug, owner_id=row.owner_id, role=None)


async def _clear_job_assignees(session: AsyncSession, tasks: Any) -> None:
    await session.execute(
        update(Job)
        .where(Job.task_id.in_(tasks), Job.assignee_id.is_not(None))
        .values(assignee_id=None, assignee_updated_date=utcnow())
        .execution_options(synchronize_session=False)
    )


def _hand_over(thing: Project | Task, organization_id: int | None, mover_id: int) -> None:
    now = utcnow()
    thing.owner_id = mover_id
    if thing.assignee_id is not None:
        thing.assignee_id = None
        thing.assignee_updated_date = now
    thing.organization_id = organization_id
    thing.updated_date = now


async def move_task(session: AsyncSession, task: Task, organization_id: int | None, mover_id: int) -> None:
    await _clear_job_assignees(session, [task.id])
    _hand_over(task, organization_id, mover_id)
    await session.flush()


async def move_project(
    session: AsyncSession, project: Project, organization_id: int | None, mover_id: int
) -> None:
    tasks = select(Task.id).where(Task.project_id == project.id)
    await _clear_job_assignees(session, tasks)
    now = utcnow()
    await session.execute(
        update(Task)
        .where(Task.project_id == project.id, Task.assignee_id.is_not(None))
        .values(assignee_id=None, assignee_updated_date=now)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Task)
        .where(Task.project_id == project.id)
        .values(organization_id=organization_id, owner_id=mover_id, updated_date=now)
        .execution_options(synchronize_session="fetch")
    )
    await session.execute(
        update(Webhook)
        .where(Webhook.project_id == project.id)
        .values(organization_id=organization_id)
        .execution_options(synchronize_session=False)
    )
    _hand_over(project, organization_id, mover_id)
    await session.flush()


__all__ = ["check_request", "destination", "is_move", "move_project", "move_task"]
