"""``/api/jobs``: listing, reading and workflow changes (annotation endpoints come with their feature)."""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from annota.core.access import filter_to_sql
from annota.core.db.tables import Job
from annota.core.schemas.common import Paginated
from annota.core.schemas.jobs import JobRead, JobUpdate
from annota.core.services import jobs as service
from annota.core.services import listing
from annota.runtime import web

TAGS = ["jobs"]


@web.operation("List jobs", tags=TAGS, response=Paginated[JobRead], paginated=True,
               query={name: "equality filter" for name in service.LIST_SPEC.equality})  # fmt: skip
async def list_jobs(request: Request) -> Response:
    scope = await web.list_filter(request, "jobs")
    page_number, page_size = listing.parse_page(request.query_params)
    query = select(Job).where(filter_to_sql(scope, service.POLICY_FIELDS))
    query = listing.apply_query_params(service.LIST_SPEC, query, request.query_params)
    async with web.transaction(request) as session:
        page = await listing.fetch_page(session, query, page_number, page_size)
        results = await service.read_many(session, page.rows, web.base_url(request))
    return web.page_response(request, page, results)


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
