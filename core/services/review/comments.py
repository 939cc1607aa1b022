"""Comments: the conversation on an issue — adding, editing and deleting messages, and what the
policy decides on.

Whoever may see an issue may see and join its conversation; a comment's author and the issue's
people may edit or delete it (CVAT's comments.rego).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.access import FilterFields, Identity, Resource
from annota.core.db.tables import Comment, Issue, User
from annota.core.db.types import utcnow
from annota.core.errors import NotFound, ValidationError
from annota.core.schemas.review import CommentRead, CommentUpdate, CommentWrite
from annota.core.services import tasks as task_service
from annota.core.services import users as user_service
from annota.core.services.listing import ListSpec
from annota.core.services.review import issues as issue_service
from annota.core.services.review.issues import JobContext


async def get(session: AsyncSession, comment_id: int) -> Comment:
    comment = await session.get(Comment, comment_id)
    if comment is None:
        raise NotFound(f"Comment {comment_id} not found.")
    return comment


async def issue_for_comment(session: AsyncSession, issue_id: int) -> Issue:
    """The issue a new comment names; one that does not exist is a 400 on ``issue``."""
    issue = await session.get(Issue, issue_id)
    if issue is None:
        raise ValidationError.for_field("issue", f'Invalid pk "{issue_id}" - object does not exist.')
    return issue


# --- policy documents -----------------------------------------------------------------------


def document(comment: Comment | None, issue: Issue, where: JobContext) -> dict[str, Any]:
    """CVAT's ``input.resource`` for a comment (``None``: one about to be added to ``issue``)."""
    on_issue = issue_service.document(issue, where)
    return {
        "id": comment.id if comment is not None else None,
        "owner": {"id": comment.owner_id if comment is not None else None},
        "issue": {"id": issue.id, "owner": on_issue["owner"], "assignee": on_issue["assignee"]},
        "job": on_issue["job"],
        "task": on_issue["task"],
        "project": on_issue["project"],
        "organization": on_issue["organization"],
    }


def resource(comment: Comment | None, issue: Issue, where: JobContext) -> Resource:
    return Resource("comments", document(comment, issue, where), comment.id if comment is not None else None)


# --- writing --------------------------------------------------------------------------------


async def create(session: AsyncSession, who: Identity, data: CommentWrite, issue: Issue) -> Comment:
    now = utcnow()
    comment = Comment(
        issue_id=issue.id, owner_id=who.user_id, message=data.message, created_date=now, updated_date=now
    )
    session.add(comment)
    await session.flush()
    return comment


async def update(session: AsyncSession, comment: Comment, data: CommentUpdate) -> Comment:
    if data.message is not msgspec.UNSET:
        comment.message = data.message
    comment.updated_date = task_service.touch(comment.updated_date)
    await session.flush()
    return comment


async def remove(session: AsyncSession, comment: Comment) -> None:
    await session.delete(comment)
    await session.flush()


async def of_issue(session: AsyncSession, issue_id: int) -> list[Comment]:
    rows = await session.execute(select(Comment).where(Comment.issue_id == issue_id).order_by(Comment.id))
    return list(rows.scalars())


# --- reading --------------------------------------------------------------------------------


async def read_many(session: AsyncSession, comments: Sequence[Comment], base_url: str) -> list[CommentRead]:
    users = await user_service.users_by_id(session, {c.owner_id for c in comments})
    return [
        CommentRead(
            id=comment.id,
            issue=comment.issue_id,
            owner=user_service.basic(users.get(comment.owner_id) if comment.owner_id else None, base_url),
            message=comment.message,
            created_date=comment.created_date,
            updated_date=comment.updated_date,
        )
        for comment in comments
    ]


# --- listing --------------------------------------------------------------------------------


def _on_issues(issue_field: str) -> Any:
    condition = issue_service.POLICY_FIELDS[issue_field]
    return lambda v: Comment.issue_id.in_(select(Issue.id).where(condition(v)))


#: Fields a policy filter may name for comments: their own, and their issue's as ``issue__*``.
POLICY_FIELDS: FilterFields = {
    "id": lambda v: Comment.id == v,
    "owner_id": lambda v: Comment.owner_id == v,
    **{
        f"issue__{name}": _on_issues(name)
        for name in issue_service.POLICY_FIELDS
        if name != "organization_id"
    },
    "organization_id": _on_issues("organization_id"),
}


def _issue_column(column: Any) -> Any:
    return select(column).where(Issue.id == Comment.issue_id).scalar_subquery()


_FILTERS = ("owner", "issue_id", "frame_id", "job_id")

LIST_SPEC = ListSpec(
    fields={
        "id": Comment.id,
        "owner": select(User.username).where(User.id == Comment.owner_id).scalar_subquery(),
        "issue_id": Comment.issue_id,
        "frame_id": _issue_column(Issue.frame),
        "job_id": _issue_column(Issue.job_id),
    },
    equality=_FILTERS,
    search=("owner",),
    sortable=("id", *_FILTERS),
    integer_fields=frozenset({"id", "issue_id", "frame_id", "job_id"}),
)

__all__ = [
    "LIST_SPEC",
    "POLICY_FIELDS",
    "create",
    "document",
    "get",
    "issue_for_comment",
    "of_issue",
    "read_many",
    "remove",
    "resource",
    "update",
]
