"""``/api/guides``: a task's or project's annotation guide, decided by the ``annotationguides``
policy (CVAT's rules: the task's or project's staff, its job assignees to read, organization staff)."""

from __future__ import annotations

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from annota.core.db.tables import AnnotationGuide, Project, Task
from annota.core.errors import NotAuthenticated, NotFound, PermissionDenied, ValidationError
from annota.core.schemas.guides import AnnotationGuideRead, AnnotationGuideUpdate, AnnotationGuideWrite
from annota.core.services.guides import assets, guides
from annota.runtime import web

TAGS = ["guides"]


async def authorize(
    request: Request, session: AsyncSession, target: Task | Project, scope: str, guide_id: int | None
) -> None:
    who = web.identity(request)
    await web.authorize(request, scope, await guides.resource(session, target, who.user_id, guide_id))


async def authorized(
    request: Request, session: AsyncSession, scope: str, guide_id: int
) -> tuple[AnnotationGuide, Task | Project]:
    guide, target = await guides.get(session, guide_id)
    await authorize(request, session, target, scope, guide.id)
    return guide, target


async def _sync_assets(request: Request, session: AsyncSession, guide: AnnotationGuide) -> list[str]:
    async def may_view(other_id: int) -> bool:
        try:
            await authorized(request, session, "view", other_id)
        except (PermissionDenied, NotAuthenticated, NotFound):
            return False
        return True

    storage = web.state(request).storage
    return await assets.sync_with_markdown(session, storage, guide, web.identity(request).user_id, may_view)


@web.operation(
    "Create an annotation guide",
    tags=TAGS,
    request=AnnotationGuideWrite,
    response=AnnotationGuideRead,
    status=201,
)
async def create_guide(request: Request) -> Response:
    data = await web.read_json(request, AnnotationGuideWrite)
    async with web.transaction(request) as session:
        target = await guides.target_of(session, data.task_id, data.project_id)
        await authorize(request, session, target, "create", None)
        guide = await guides.create(session, data, target)
        stale = await _sync_assets(request, session, guide)
        guides.touch(target)
        result = guides.read(guide)
    await web.remove_objects(request, stale)
    return web.json_response(result, status_code=201)


@web.operation("Get an annotation guide", tags=TAGS, response=AnnotationGuideRead)
async def retrieve_guide(request: Request) -> Response:
    async with web.transaction(request) as session:
        guide, _ = await authorized(request, session, "view", web.path_int(request))
        result = guides.read(guide)
    return web.json_response(result)


@web.operation(
    "Change an annotation guide", tags=TAGS, request=AnnotationGuideUpdate, response=AnnotationGuideRead
)
async def update_guide(request: Request) -> Response:
    change = await web.read_json(request, AnnotationGuideUpdate)
    async with web.transaction(request) as session:
        guide, target = await authorized(request, session, "update", web.path_int(request))
        for name in ("task_id", "project_id"):
            value = getattr(change, name)
            if value is not msgspec.UNSET and value != getattr(guide, name):
                raise ValidationError.for_field(name, "This field cannot be changed.")
        if isinstance(change.markdown, str):
            guide.markdown = change.markdown
        stale = await _sync_assets(request, session, guide)
        guides.touch(target)
        guide.updated_date = target.updated_date
        await session.flush()
        result = guides.read(guide)
    await web.remove_objects(request, stale)
    return web.json_response(result)


@web.operation("Delete an annotation guide and its assets", tags=TAGS, status=204)
async def delete_guide(request: Request) -> Response:
    async with web.transaction(request) as session:
        guide, target = await authorized(request, session, "delete", web.path_int(request))
        await session.delete(guide)
        guides.touch(target)
    await web.remove_objects(request, [assets.guide_prefix(guide.id)])
    return Response(status_code=204)


routes = [
    ("/api/guides", create_guide, ["POST"]),
    ("/api/guides/{id:int}", retrieve_guide, ["GET"]),
    ("/api/guides/{id:int}", update_guide, ["PATCH"]),
    ("/api/guides/{id:int}", delete_guide, ["DELETE"]),
]
