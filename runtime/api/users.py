"""``/api/users``: look people up, read and edit your own account, and (administrators) manage others.

As in CVAT, callers see the full record (e-mail, groups, status) of their own account, and
administrators of every account; everyone else gets the basic public fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from annota.core.access import Identity
from annota.core.db.tables import User
from annota.core.schemas.common import BasicUser, Paginated
from annota.core.schemas.users import UserRead, UserUpdate
from annota.core.services import users as service
from annota.runtime import web
from annota.runtime.api import request_body

TAGS = ["users"]


def _visible(who: Identity, users: Sequence[User], base_url: str) -> list[UserRead | BasicUser]:
    results: list[UserRead | BasicUser] = []
    for user in users:
        if who.is_admin or user.id == who.user_id:
            results.append(service.read(user, base_url))
        else:
            basic = service.basic(user, base_url)
            assert basic is not None
            results.append(basic)
    return results


@web.operation(
    "List users",
    tags=TAGS,
    response=Paginated[UserRead],
    paginated=True,
    query={name: "equality filter" for name in service.LIST_SPEC.equality},
)
async def list_users(request: Request) -> Response:
    query = select(User).where(await web.visible(request, "users", service.POLICY_FIELDS))
    who, base_url = web.identity(request), web.base_url(request)

    async def serialize(_session: AsyncSession, rows: list[Any]) -> list[Any]:
        return _visible(who, rows, base_url)

    return await web.list_response(request, query, service.LIST_SPEC, serialize)


@web.operation("The account of the caller", tags=TAGS, response=UserRead)
async def retrieve_self(request: Request) -> Response:
    who = web.require_user(request)
    assert who.user_id is not None  # require_user refused anonymous callers
    async with web.transaction(request) as session:
        user = await service.get(session, who.user_id)
    return web.json_response(service.read(user, web.base_url(request)))


@web.operation("Get a user", tags=TAGS, response=UserRead)
async def retrieve_user(request: Request) -> Response:
    web.require_user(request)  # anonymous callers learn nothing, not even which ids exist
    async with web.transaction(request) as session:
        user = await service.get(session, web.path_int(request))
        await web.authorize(request, "view", await service.resource(session, user))
    (result,) = _visible(web.identity(request), [user], web.base_url(request))
    return web.json_response(result)


@web.operation(
    "Update names (own account) or activate/deactivate an account (administrators)",
    tags=TAGS,
    request=UserUpdate,
    response=UserRead,
)
async def update_user(request: Request) -> Response:
    web.require_user(request)
    body = await request_body.read(request)
    async with web.transaction(request) as session:
        user = await service.get(session, web.path_int(request))
        for scope in service.update_scopes(body.fields):
            await web.authorize(request, scope, await service.resource(session, user))
        data = body.decode(UserUpdate)
        user = await service.update(session, user, data)
    return web.json_response(service.read(user, web.base_url(request)))


@web.operation("Delete an account (administrators)", tags=TAGS, status=204)
async def delete_user(request: Request) -> Response:
    web.require_user(request)
    async with web.transaction(request) as session:
        user = await service.get(session, web.path_int(request))
        await web.authorize(request, "delete", await service.resource(session, user))
        await service.remove(session, user)
    return Response(status_code=204)


routes = [
    ("/api/users", list_users, ["GET"]),
    ("/api/users/self", retrieve_self, ["GET"]),
    ("/api/users/{id:int}", retrieve_user, ["GET"]),
    ("/api/users/{id:int}", update_user, ["PATCH"]),
    ("/api/users/{id:int}", delete_user, ["DELETE"]),
]
