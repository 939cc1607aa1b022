"""``/api/organizations``: create (the creator owns it), list, read, edit and delete organizations."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from annota.core.db.tables import Organization
from annota.core.schemas.common import Paginated
from annota.core.schemas.organizations import OrganizationRead, OrganizationUpdate, OrganizationWrite
from annota.core.services import organizations as service
from annota.runtime import web
from annota.runtime.api import request_body

TAGS = ["organizations"]


async def _event(
    request: Request,
    session: AsyncSession,
    type: str,
    organization: Organization,
    data: OrganizationRead,
    before: Any = None,
) -> None:
    await web.record_event(
        request, session, type, "organization", data, resource_id=organization.id, org_id=organization.id,
        before=before,
    )  # fmt: skip


@web.operation(
    "List organizations",
    tags=TAGS,
    response=Paginated[OrganizationRead],
    paginated=True,
    query={name: "equality filter" for name in service.LIST_SPEC.equality},
)
async def list_organizations(request: Request) -> Response:
    query = select(Organization).where(await web.visible(request, "organizations", service.POLICY_FIELDS))
    base_url = web.base_url(request)
    return await web.list_response(
        request, query, service.LIST_SPEC, lambda session, rows: service.read_many(session, rows, base_url)
    )


@web.operation(
    "Create an organization", tags=TAGS, request=OrganizationWrite, response=OrganizationRead, status=201
)
async def create_organization(request: Request) -> Response:
    body = await request_body.read(request)
    who = web.require_user(request)
    await web.authorize(request, "create", service.resource(None, who))
    data = body.decode(OrganizationWrite)
    async with web.transaction(request) as session:
        organization = await service.create(session, who, data)
        (result,) = await service.read_many(session, [organization], web.base_url(request))
        await _event(request, session, "create:organization", organization, result)
    return web.json_response(result, status_code=201)


@web.operation("Get an organization", tags=TAGS, response=OrganizationRead)
async def retrieve_organization(request: Request) -> Response:
    async with web.transaction(request) as session:
        organization = await service.get(session, web.path_int(request))
        await web.authorize(request, "view", service.resource(organization, web.identity(request)))
        (result,) = await service.read_many(session, [organization], web.base_url(request))
    return web.json_response(result)


@web.operation("Update an organization", tags=TAGS, request=OrganizationUpdate, response=OrganizationRead)
async def update_organization(request: Request) -> Response:
    body = await request_body.read(request)
    async with web.transaction(request) as session:
        organization = await service.get(session, web.path_int(request))
        await web.authorize(request, "update", service.resource(organization, web.identity(request)))
        data = body.decode(OrganizationUpdate)
        (before,) = await service.read_many(session, [organization], web.base_url(request))
        organization = await service.update(session, organization, data)
        (result,) = await service.read_many(session, [organization], web.base_url(request))
        await _event(request, session, "update:organization", organization, result, before)
    return web.json_response(result)


@web.operation("Delete an organization and everything in it", tags=TAGS, status=204)
async def delete_organization(request: Request) -> Response:
    async with web.transaction(request) as session:
        organization = await service.get(session, web.path_int(request))
        await web.authorize(request, "delete", service.resource(organization, web.identity(request)))
        (snapshot,) = await service.read_many(session, [organization], web.base_url(request))
        await _event(request, session, "delete:organization", organization, snapshot)
        leftovers = await service.remove(session, organization)
    await web.remove_objects(request, leftovers)
    return Response(status_code=204)


routes = [
    ("/api/organizations", list_organizations, ["GET"]),
    ("/api/organizations", create_organization, ["POST"]),
    ("/api/organizations/{id:int}", retrieve_organization, ["GET"]),
    ("/api/organizations/{id:int}", update_organization, ["PATCH"]),
    ("/api/organizations/{id:int}", delete_organization, ["DELETE"]),
]
