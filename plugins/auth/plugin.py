"""The ``auth`` plugin: authentication (tokens, sessions, Basic, access tokens) and the built-in
authorization policy. Both answer ``trylast``, so another plugin can take over either."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from annota.core import hookimpl
from annota.core.access import Filter, Identity, Resource
from annota.plugins.auth import authentication, policy


@hookimpl(trylast=True)
async def authenticate(request: Request) -> Identity | None:
    return await authentication.authenticate(request)


@hookimpl(trylast=True)
def authorize(identity: Identity, scope: str, resource: Resource) -> bool:
    return policy.allow(identity, scope, resource)


@hookimpl(trylast=True)
def filter_query(identity: Identity, scope: str, resource_type: str) -> Filter:
    return policy.list_filter(identity, resource_type)


@hookimpl
def register_routes(register: Any) -> None:
    from annota.plugins.auth import routes

    for path, endpoint, methods in routes.ROUTES:
        register(path, endpoint, methods=methods)
