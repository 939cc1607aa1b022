"""Issues: raising one on a job's frame (its message becomes the first comment), resolving,
reassigning and moving it, deleting it with its comments; and what the policy decides on.

An issue belongs to its job: it is seen by the people of the job, its task and project, by whoever
raised it and whoever it is assigned to, and by the organization's maintainers (CVAT's issues.rego).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.access import FilterFields, Identity, Resource
from annota.core.db.tables import Comment, Issue, Job, Project, Segment, Task, User
from annota.core.db.types import utcnow
from annota.core.errors import NotFound, ValidationError
from annota.core.schemas.common import UrlCount
from annota.core.schemas.review import IssueRead, IssueUpdate, IssueWrite
from annota.core.services import projects as project_service
from annota.core.services import tasks as task_service
from annota.core.services import users as user_service
from annota.core.services.frames import segment_frames
from annota.core.services.listing import ListSpec

_UNSET = msgspec.UNSET
_points = msgspec.json.Encoder()
_points_decoder = msgspec.json.Decoder(list[float])


@dataclass(frozen=True)
class JobContext:
    """The job an issue is on, with the task and project that decide who may see it."""

    job: Job
    task: Task
    project: Project | None

    @property
    def ids(self) -> dict[str, int | None]:
        """The scope of the job's events: organization, project, task and job."""
        return {
            "org_id": self.task.organization_id,
            "project_id": self.task.project_id,
            "task_id": self.task.id,
            "job_id": self.job.id,
        }


async def get(session: AsyncSession, issue_id: int) -> Issue:
    issue = await session.get(Issue, issue_id)
    if issue is None:
        raise NotFound(f"Issue {issue_id} not found.")
    return issue


async def job_context(session: AsyncSession, job: Job) -> JobContext:
    task = await task_service.get(session, job.task_id)
    return JobContext(job, task, await task_service.project_of(session, task))


async def context_of(session: AsyncSession, issue: Issue) -> JobContext:
    job = await session.get(Job, issue.job_id)
    assert job is not None  # the foreign key holds
    return await job_context(session, job)


async def job_for_issue(session: AsyncSession, job_id: int) -> Job:
    """The job a new issue names; one that does not exist is a 400 on ``job``."""
    job = await session.get(Job, job_id)
    if job is None:
        raise ValidationError.for_field("job", f'Invalid pk "{job_id}" - object does not exist.')
    return job


# --- policy documents -----------------------------------------------------------------------


def document(issue: Issue | None, where: JobContext) -> dict[str, Any]:
    """CVAT's ``input.resource`` for an issue (``None``: one about to be raised on the job)."""
    return {
        "id": issue.id if issue is not None else None,
        "owner": {"id": issue.owner_id if issue is not None else None},
        "assignee": {"id": issue.assignee_id if issue is not None else None},
        "job": {"id": where.job.id, "assignee": {"id": where.job.assignee_id}},
        "task": task_service.document(where.task, where.project),
        "project": project_service.document(where.project) if where.project is not None else None,
        "organization": {"id": where.task.organization_id},
    }


def resource(issue: Issue | None, where: JobContext) -> Resource:
    return Resource("issues", document(issue, where), issue.id if issue is not None else None)


# --- writing --------------------------------------------------------------------------------


def checked_position(position: list[float]) -> str:
    """The position as stored; it must be a flat list of finite ``x, y`` pairs, at least one point."""
    if not position or len(position) % 2:
        raise ValidationError.for_field(
            "position",
            f"Expected a flat list of x, y coordinates (an even number of values, at least 2), "
            f"got {len(position)} values.",
        )
    for index, value in enumerate(position):
        if not math.isfinite(value):
            raise ValidationError.for_field("position", f"Value {index} is not a finite number.")
    return _points.encode(position).decode()


async def check_frame(session: AsyncSession, job: Job, frame: int) -> None:
    """The frame must be one of the job's frames."""
    segment = await session.get(Segment, job.segment_id)
    assert segment is not None  # the foreign key holds
    frames = segment_frames(segment)
    if frame not in frames:
        span = f"{segment.start_frame}-{segment.stop_frame}"
        if segment.type == "specific_frames":
            span = ", ".join(map(str, frames))
        raise ValidationError.for_field("frame", f"Frame {frame} is not a frame of job {job.id} ({span}).")


async def create(session: AsyncSession, who: Identity, data: IssueWrite, job: Job) -> tuple[Issue, Comment]:
    """Raise an issue on ``job`` with its first comment (the caller's ``message``)."""
    position = checked_position(data.position)
    await check_frame(session, job, data.frame)
    now = utcnow()
    issue = Issue(
        job_id=job.id,
        frame=data.frame,
        position=position,
        owner_id=who.user_id,
        assignee_id=await project_service.existing_user(session, data.assignee, "assignee"),
        resolved=data.resolved,
        created_date=now,
        updated_date=now,
    )
    session.add(issue)
    await session.flush()
    comment = Comment(
        issue_id=issue.id, owner_id=who.user_id, message=data.message, created_date=now, updated_date=now
    )
    session.add(comment)
    await session.flush()
    return issue, comment


async def update(session: AsyncSession, issue: Issue, data: IssueUpdate) -> Issue:
    if data.position is not _UNSET:
        issue.position = checked_position(data.position)
    if data.assignee is not _UNSET:
        issue.assignee_id = await project_service.existing_user(session, data.assignee, "assignee")
    if data.resolved is not _UNSET:
        issue.resolved = data.resolved
    issue.updated_date = task_service.touch(issue.updated_date)
    await session.flush()
    return issue


async def remove(session: AsyncSession, issue: Issue) -> None:
    """Delete the issue; its comments go with it (the foreign key cascades)."""
    await session.delete(issue)
    await session.flush()


# --- reading --------------------------------------------------------------------------------


async def comment_counts(session: AsyncSession, issue_ids: Sequence[int]) -> dict[int, int]:
    if not issue_ids:
        return {}
    rows = await session.execute(
        select(Comment.issue_id, func.count())
        .where(Comment.issue_id.in_(issue_ids))
        .group_by(Comment.issue_id)
    )
    return {issue_id: count for issue_id, count in rows.all()}


async def counts_by_job(session: AsyncSession, job_ids: Sequence[int]) -> dict[int, int]:
    """How many issues each job has (jobs with none are left out)."""
    if not job_ids:
        return {}
    rows = await session.execute(
        select(Issue.job_id, func.count()).where(Issue.job_id.in_(job_ids)).group_by(Issue.job_id)
    )
    return {job_id: count for job_id, count in rows.all()}


async def read_many(session: AsyncSession, issues: Sequence[Issue], base_url: str) -> list[IssueRead]:
    """Serialize issues with one query for their people and one for their comment counts."""
    users = await user_service.users_by_id(
        session, {i.owner_id for i in issues} | {i.assignee_id for i in issues}
    )
    counts = await comment_counts(session, [i.id for i in issues])
    return [
        IssueRead(
            id=issue.id,
            frame=issue.frame,
            position=_points_decoder.decode(issue.position),
            job=issue.job_id,
            owner=user_service.basic(users.get(issue.owner_id) if issue.owner_id else None, base_url),
            assignee=user_service.basic(
                users.get(issue.assignee_id) if issue.assignee_id else None, base_url
            ),
            created_date=issue.created_date,
            updated_date=issue.updated_date,
            resolved=issue.resolved,
            comments=UrlCount(
                url=f"{base_url}/api/comments?issue_id={issue.id}", count=counts.get(issue.id, 0)
            ),
        )
        for issue in issues
    ]


# --- listing --------------------------------------------------------------------------------


def _jobs_where(*conditions: Any) -> Any:
    return Issue.job_id.in_(select(Job.id).join(Task, Task.id == Job.task_id).where(*conditions))


def _jobs_in_projects_where(condition: Any) -> Any:
    return Issue.job_id.in_(
        select(Job.id)
        .join(Task, Task.id == Job.task_id)
        .join(Project, Project.id == Task.project_id)
        .where(condition)
    )


#: Fields a policy filter may name for issues.
POLICY_FIELDS: FilterFields = {
    "id": lambda v: Issue.id == v,
    "owner_id": lambda v: Issue.owner_id == v,
    "assignee_id": lambda v: Issue.assignee_id == v,
    "job__assignee_id": lambda v: Issue.job_id.in_(select(Job.id).where(Job.assignee_id == v)),
    "job__task__owner_id": lambda v: _jobs_where(Task.owner_id == v),
    "job__task__assignee_id": lambda v: _jobs_where(Task.assignee_id == v),
    "job__task__project__owner_id": lambda v: _jobs_in_projects_where(Project.owner_id == v),
    "job__task__project__assignee_id": lambda v: _jobs_in_projects_where(Project.assignee_id == v),
    "organization_id": lambda v: _jobs_where(Task.organization_id == v),
}


def _username(column: Any) -> Any:
    return select(User.username).where(User.id == column).scalar_subquery()


_FILTERS = ("owner", "assignee", "job_id", "task_id", "resolved", "frame_id")

LIST_SPEC = ListSpec(
    fields={
        "id": Issue.id,
        "owner": _username(Issue.owner_id),
        "assignee": _username(Issue.assignee_id),
        "job_id": Issue.job_id,
        "task_id": select(Job.task_id).where(Job.id == Issue.job_id).scalar_subquery(),
        "resolved": Issue.resolved,
        "frame_id": Issue.frame,
    },
    equality=_FILTERS,
    search=("owner", "assignee"),
    sortable=("id", *_FILTERS),
    integer_fields=frozenset({"id", "job_id", "task_id", "frame_id"}),
    boolean_fields=frozenset({"resolved"}),
)

__all__ = [
    "LIST_SPEC",
    "POLICY_FIELDS",
    "JobContext",
    "check_frame",
    "checked_position",
    "context_of",
    "counts_by_job",
    "create",
    "document",
    "get",
    "job_context",
    "job_for_issue",
    "read_many",
    "remove",
    "resource",
    "update",
]
