"""``/api/issues``: raising, listing, reading, resolving and deleting review issues.

Raising an issue records ``create:issue`` and ``create:comment`` (its message is the first
comment); deleting one records ``delete:comment`` for each of its comments, then ``delete:issue``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from annota.core.db.tables import Issue
from annota.core.schemas.common import Paginated
from annota.core.schemas.review import IssueRead, IssueUpdate, IssueWrite
from annota.core.services.review import comments as comment_service
from annota.core.services.review import issues as service
from annota.core.services.review.issues import JobContext
from annota.runtime import web

TAGS = ["issues"]


async def record_event(
    request: Request,
    session: AsyncSession,
    type: str,
    resource: str,
    data: Any,
    where: JobContext,
    resource_id: int,
    before: Any = None,
) -> None:
    """Record an event about an issue or comment, in the scope of the job it is on."""
    await web.record_event(
        request, session, type, resource, data, resource_id=resource_id, before=before, **where.ids
    )


@web.operation("List issues", tags=TAGS, response=Paginated[IssueRead], paginated=True,
               query={name: "equality filter" for name in service.LIST_SPEC.equality})  # fmt: skip
async def list_issues(request: Request) -> Response:
    query = select(Issue).where(await web.visible(request, "issues", service.POLICY_FIELDS))
    base_url = web.base_url(request)
    return await web.list_response(
        request, query, service.LIST_SPEC, lambda session, rows: service.read_many(session, rows, base_url)
    )


@web.operation(
    "Raise an issue on a job's frame", tags=TAGS, request=IssueWrite, response=IssueRead, status=201
)
async def create_issue(request: Request) -> Response:
    data = await web.read_json(request, IssueWrite)
    base_url = web.base_url(request)
    async with web.transaction(request) as session:
        job = await service.job_for_issue(session, data.job)
        where = await service.job_context(session, job)
        await web.authorize(request, "create@job", service.resource(None, where))
        issue, comment = await service.create(session, web.identity(request), data, job)
        (result,) = await service.read_many(session, [issue], base_url)
        await record_event(request, session, "create:issue", "issue", result, where, issue.id)
        (first,) = await comment_service.read_many(session, [comment], base_url)
        await record_event(request, session, "create:comment", "comment", first, where, comment.id)
    return web.json_response(result, status_code=201)


@web.operation("Get an issue", tags=TAGS, response=IssueRead)
async def retrieve_issue(request: Request) -> Response:
    async with web.transaction(request) as session:
        issue = await service.get(session, web.path_int(request))
        await web.authorize(
            request, "view", service.resource(issue, await service.context_of(session, issue))
        )
        (result,) = await service.read_many(session, [issue], web.base_url(request))
    return web.json_response(result)


@web.operation(
    "Move, reassign, resolve or reopen an issue", tags=TAGS, request=IssueUpdate, response=IssueRead
)
async def update_issue(request: Request) -> Response:
    data = await web.read_json(request, IssueUpdate)
    base_url = web.base_url(request)
    async with web.transaction(request) as session:
        issue = await service.get(session, web.path_int(request))
        where = await service.context_of(session, issue)
        await web.authorize(request, "update", service.resource(issue, where))
        (before,) = await service.read_many(session, [issue], base_url)
        issue = await service.update(session, issue, data)
        (result,) = await service.read_many(session, [issue], base_url)
        await record_event(request, session, "update:issue", "issue", result, where, issue.id, before)
    return web.json_response(result)


@web.operation("Delete an issue and its comments", tags=TAGS, status=204)
async def delete_issue(request: Request) -> Response:
    base_url = web.base_url(request)
    async with web.transaction(request) as session:
        issue = await service.get(session, web.path_int(request))
        where = await service.context_of(session, issue)
        await web.authorize(request, "delete", service.resource(issue, where))
        comments = await comment_service.of_issue(session, issue.id)
        said = await comment_service.read_many(session, comments, base_url)
        for comment, text in zip(comments, said, strict=True):
            await record_event(request, session, "delete:comment", "comment", text, where, comment.id)
        (snapshot,) = await service.read_many(session, [issue], base_url)
        await record_event(request, session, "delete:issue", "issue", snapshot, where, issue.id)
        await service.remove(session, issue)
    return Response(status_code=204)


routes = [
    ("/api/issues", list_issues, ["GET"]),
    ("/api/issues", create_issue, ["POST"]),
    ("/api/issues/{id:int}", retrieve_issue, ["GET"]),
    ("/api/issues/{id:int}", update_issue, ["PATCH"]),
    ("/api/issues/{id:int}", delete_issue, ["DELETE"]),
]
