"""``/api/requests``: the status of background requests, and cancelling queued ones.

Request ids are CVAT-style (``action=create&target=task&target_id=1``) and arrive percent-encoded
in the path; Starlette decodes the path before routing, and the ``path`` converter keeps ids that
contain ``/`` whole.
"""

from __future__ import annotations

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from annota.core.db.tables import BackgroundRequest
from annota.core.schemas.common import Detail, Paginated
from annota.core.schemas.requests import RequestRead
from annota.core.services import requests as service
from annota.runtime import web

TAGS = ["requests"]


def _request_id(request: Request) -> str:
    # the path converter also takes the slash of ``/api/requests/<id>/``; ids never end with one
    rq_id: str = request.path_params["rq_id"]
    return rq_id.removesuffix("/")


@web.operation(
    "List background requests",
    tags=TAGS,
    response=Paginated[RequestRead],
    paginated=True,
    query={name: "equality filter" for name in service.LIST_SPEC.equality},
)
async def list_requests(request: Request) -> Response:
    query = select(BackgroundRequest).where(
        await web.visible(request, "requests", service.POLICY_FIELDS), BackgroundRequest.owner_id.is_not(None)
    )
    return await web.list_response(request, query, service.LIST_SPEC, service.read_many)


@web.operation("Get a background request", tags=TAGS, response=RequestRead)
async def retrieve_request(request: Request) -> Response:
    web.require_user(request)
    async with web.transaction(request) as session:
        row = await service.get(session, _request_id(request))
        await web.authorize(request, "view", service.resource(row))
        (result,) = await service.read_many(session, [row])
    return web.json_response(result)


@web.operation(
    "Cancel a queued background request",
    tags=TAGS,
    status=200,
    responses={200: None, 409: Detail},
)
async def cancel_request(request: Request) -> Response:
    web.require_user(request)
    rq_id = _request_id(request)
    async with web.transaction(request) as session:
        row = await service.get(session, rq_id)
        await web.authorize(request, "cancel", service.resource(row))
        queue, rq_id = row.queue, row.id
        await service.cancel(session, rq_id)
    await web.state(request).queue.cancel(rq_id, queue)
    return Response(status_code=200)


routes = [
    ("/api/requests", list_requests, ["GET"]),
    # before the GET route, whose ``path`` converter would also match ``<id>/cancel``
    ("/api/requests/{rq_id:path}/cancel", cancel_request, ["POST"]),
    ("/api/requests/{rq_id:path}", retrieve_request, ["GET"]),
]
