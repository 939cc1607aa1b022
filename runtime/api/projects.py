"""``/api/projects``: CRUD (data, dataset and backup endpoints come with their features)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from annota.core.db.tables import Project
from annota.core.schemas.common import Paginated
from annota.core.schemas.projects import ProjectRead, ProjectUpdate, ProjectWrite
from annota.core.services import projects as service
from annota.core.services.storages import cloud_storage_ids as storage_refs
from annota.runtime import web
from annota.runtime.api import cloud_locations, request_body
from annota.runtime.api import labels as labels_api
from annota.runtime.api import workspace_moves as moves

TAGS = ["projects"]


async def _event(
    request: Request,
    session: AsyncSession,
    type: str,
    project: Project,
    data: ProjectRead,
    before: Any = None,
) -> None:
    await web.record_event(
        request, session, type, "project", data, resource_id=project.id, org_id=project.organization_id,
        project_id=project.id, before=before,
    )  # fmt: skip


@web.operation(
    "List projects",
    tags=TAGS,
    response=Paginated[ProjectRead],
    paginated=True,
    query={name: "equality filter" for name in service.LIST_SPEC.equality},
)
async def list_projects(request: Request) -> Response:
    query = select(Project).where(await web.visible(request, "projects", service.POLICY_FIELDS))
    base_url = web.base_url(request)
    return await web.list_response(
        request, query, service.LIST_SPEC, lambda session, rows: service.read_many(session, rows, base_url)
    )


@web.operation("Create a project", tags=TAGS, request=ProjectWrite, response=ProjectRead, status=201)
async def create_project(request: Request) -> Response:
    body = await request_body.read(request)
    await web.authorize(request, "create", service.resource(None))
    data = body.decode(ProjectWrite)
    async with web.transaction(request) as session:
        await cloud_locations.check_visible(
            request, session, storage_refs(data.source_storage, data.target_storage)
        )
        project = await service.create(session, web.identity(request), data)
        (result,) = await service.read_many(session, [project], web.base_url(request))
        await _event(request, session, "create:project", project, result)
        if data.labels:
            after = await labels_api.snapshot(session, project_id=project.id)
            await labels_api.record_changes(request, session, {}, after, project.organization_id)
    return web.json_response(result, status_code=201)


@web.operation("Get a project", tags=TAGS, response=ProjectRead)
async def retrieve_project(request: Request) -> Response:
    async with web.transaction(request) as session:
        project = await service.get(session, web.path_int(request))
        await web.authorize(request, "view", service.resource(project))
        (result,) = await service.read_many(session, [project], web.base_url(request))
    return web.json_response(result)


@web.operation("Update a project", tags=TAGS, request=ProjectUpdate, response=ProjectRead)
async def update_project(request: Request) -> Response:
    body = await request_body.read(request)
    async with web.transaction(request) as session:
        project = await service.get(session, web.path_int(request))
        for scope in service.update_scopes(body.fields):
            await web.authorize(request, scope, service.resource(project))
        await moves.authorize_destination(request, session, body, lambda _there: service.resource(None))
        data = body.decode(ProjectUpdate)
        moving = moves.check_request(body, ProjectUpdate)
        old_org = project.organization_id
        await cloud_locations.check_visible(
            request, session, storage_refs(data.source_storage, data.target_storage)
        )
        (before,) = await service.read_many(session, [project], web.base_url(request))
        labels_before = await labels_api.snapshot(session, project_id=project.id) if data.labels else {}
        project = await service.update(session, project, data, web.identity(request).user_id)
        (result,) = await service.read_many(session, [project], web.base_url(request))
        if moving and project.organization_id != old_org:
            await moves.record(request, session, "project", project.id, before, result, old_org=old_org,
                               new_org=project.organization_id, project_id=project.id)  # fmt: skip
        else:
            await _event(request, session, "update:project", project, result, before)
        if data.labels:
            after = await labels_api.snapshot(session, project_id=project.id)
            await labels_api.record_changes(request, session, labels_before, after, project.organization_id)
    return web.json_response(result)


@web.operation("Delete a project and its tasks", tags=TAGS, status=204)
async def delete_project(request: Request) -> Response:
    async with web.transaction(request) as session:
        project = await service.get(session, web.path_int(request))
        await web.authorize(request, "delete", service.resource(project))
        (snapshot,) = await service.read_many(session, [project], web.base_url(request))
        await _event(request, session, "delete:project", project, snapshot)
        leftovers = await service.remove(session, project)
    await web.remove_objects(request, leftovers)
    return Response(status_code=204)


routes = [
    ("/api/projects", list_projects, ["GET"]),
    ("/api/projects", create_project, ["POST"]),
    ("/api/projects/{id:int}", retrieve_project, ["GET"]),
    ("/api/projects/{id:int}", update_project, ["PATCH"]),
    ("/api/projects/{id:int}", delete_project, ["DELETE"]),
]
