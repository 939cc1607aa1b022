"""``/api/jobs``: listing, reading and workflow changes (annotation endpoints come with their feature)."""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from annota.core.db.tables import Job
from annota.core.schemas.common import Paginated
from annota.core.schemas.jobs import JobRead, JobUpdate
from annota.core.services import jobs as service
from annota.runtime import web

TAGS = ["jobs"]


@web.operation("List jobs", tags=TAGS, response=Paginated[JobRead], paginated=True,
               query={name: "equality filter" for name in service.LIST_SPEC.equality})  # fmt: skip
async def list_jobs(request: Request) -> Response:
    query = select(Job).where(await web.visible(request, "jobs", service.POLICY_FIELDS))
    base_url = web.base_url(request)
    return await web.list_response(
        request, query, service.LIST_SPEC, lambda session, rows: service.read_many(session, rows, base_url)
    )


@web.operation("Get a job", tags=TAGS, response=JobRead)
async def retrieve_job(request: Request) -> Response:
    async with web.transaction(request) as session:
        job = await service.get(session, web.path_int(request))
        await web.authorize(request, "view", await service.resource(session, job))
        (result,) = await service.read_many(session, [job], web.base_url(request))
    return web.json_response(result)


@web.operation("Change a job's stage, state or assignee", tags=TAGS, request=JobUpdate, response=JobRead)
async def update_job(request: Request) -> Response:
    data = await web.read_json(request, JobUpdate)
    async with web.transaction(request) as session:
        job = await service.get(session, web.path_int(request))
        resource = await service.resource(session, job)
        for scope in service.update_scopes(data):
            await web.authorize(request, scope, resource)
        job = await service.update(session, job, data)
        (result,) = await service.read_many(session, [job], web.base_url(request))
    return web.json_response(result)


routes = [
    ("/api/jobs", list_jobs, ["GET"]),
    ("/api/jobs/{id:int}", retrieve_job, ["GET"]),
    ("/api/jobs/{id:int}", update_job, ["PATCH"]),
]
