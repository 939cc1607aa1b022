"""``/api/comments``: the conversation on review issues — adding, listing, editing, deleting."""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from annota.core.db.tables import Comment
from annota.core.schemas.common import Paginated
from annota.core.schemas.review import CommentRead, CommentUpdate, CommentWrite
from annota.core.services.review import comments as service
from annota.core.services.review import issues as issue_service
from annota.runtime import web
from annota.runtime.api.issues import record_event

TAGS = ["comments"]


@web.operation("List comments", tags=TAGS, response=Paginated[CommentRead], paginated=True,
               query={name: "equality filter" for name in service.LIST_SPEC.equality})  # fmt: skip
async def list_comments(request: Request) -> Response:
    query = select(Comment).where(await web.visible(request, "comments", service.POLICY_FIELDS))
    base_url = web.base_url(request)
    return await web.list_response(
        request, query, service.LIST_SPEC, lambda session, rows: service.read_many(session, rows, base_url)
    )


@web.operation("Comment on an issue", tags=TAGS, request=CommentWrite, response=CommentRead, status=201)
async def create_comment(request: Request) -> Response:
    data = await web.read_json(request, CommentWrite)
    async with web.transaction(request) as session:
        issue = await service.issue_for_comment(session, data.issue)
        where = await issue_service.context_of(session, issue)
        await web.authorize(request, "create@issue", service.resource(None, issue, where))
        comment = await service.create(session, web.identity(request), data, issue)
        (result,) = await service.read_many(session, [comment], web.base_url(request))
        await record_event(request, session, "create:comment", "comment", result, where, comment.id)
    return web.json_response(result, status_code=201)


@web.operation("Get a comment", tags=TAGS, response=CommentRead)
async def retrieve_comment(request: Request) -> Response:
    async with web.transaction(request) as session:
        comment = await service.get(session, web.path_int(request))
        issue = await issue_service.get(session, comment.issue_id)
        where = await issue_service.context_of(session, issue)
        await web.authorize(request, "view", service.resource(comment, issue, where))
        (result,) = await service.read_many(session, [comment], web.base_url(request))
    return web.json_response(result)


@web.operation("Edit a comment", tags=TAGS, request=CommentUpdate, response=CommentRead)
async def update_comment(request: Request) -> Response:
    data = await web.read_json(request, CommentUpdate)
    base_url = web.base_url(request)
    async with web.transaction(request) as session:
        comment = await service.get(session, web.path_int(request))
        issue = await issue_service.get(session, comment.issue_id)
        where = await issue_service.context_of(session, issue)
        await web.authorize(request, "update", service.resource(comment, issue, where))
        (before,) = await service.read_many(session, [comment], base_url)
        comment = await service.update(session, comment, data)
        (result,) = await service.read_many(session, [comment], base_url)
        await record_event(request, session, "update:comment", "comment", result, where, comment.id, before)
    return web.json_response(result)


@web.operation("Delete a comment", tags=TAGS, status=204)
async def delete_comment(request: Request) -> Response:
    async with web.transaction(request) as session:
        comment = await service.get(session, web.path_int(request))
        issue = await issue_service.get(session, comment.issue_id)
        where = await issue_service.context_of(session, issue)
        await web.authorize(request, "delete", service.resource(comment, issue, where))
        (snapshot,) = await service.read_many(session, [comment], web.base_url(request))
        await record_event(request, session, "delete:comment", "comment", snapshot, where, comment.id)
        await service.remove(session, comment)
    return Response(status_code=204)


routes = [
    ("/api/comments", list_comments, ["GET"]),
    ("/api/comments", create_comment, ["POST"]),
    ("/api/comments/{id:int}", retrieve_comment, ["GET"]),
    ("/api/comments/{id:int}", update_comment, ["PATCH"]),
    ("/api/comments/{id:int}", delete_comment, ["DELETE"]),
]
