"""The ``auth`` plugin: authentication (tokens, sessions, Basic, access tokens), the organization
context of each request, and authorization by the Rego policies in ``rules/`` (with every other
plugin's). Its hooks answer ``trylast``, so another plugin can take over either part."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request

from annota.core import hookimpl
from annota.core.access import Decision, Filter, Identity, Resource
from annota.plugins.auth import authentication, policy
from annota.plugins.auth.config import AuthConfig

RULES = Path(__file__).with_name("rules")


@hookimpl
def register_config(register: Any) -> None:
    register(AuthConfig)


@hookimpl
def register_policies(register: Any) -> None:
    register(RULES)


@hookimpl(trylast=True)
async def authenticate(request: Request) -> Identity | None:
    return await authentication.authenticate(request)


@hookimpl(trylast=True)
async def authorize(identity: Identity, scope: str, resource: Resource, app: Any) -> Decision:
    return await policy.decide(app, identity, scope, resource)


@hookimpl(trylast=True)
async def filter_query(identity: Identity, scope: str, resource_type: str, app: Any) -> Filter:
    return await policy.list_filter(app, identity, scope, resource_type)


@hookimpl
async def check_health(app: Any) -> dict[str, str]:
    return {"authorization": await policy.evaluator_for(app).health()}


@hookimpl
def startup(app: Any) -> None:
    # compile (or connect) now, so that a policy error stops the start rather than a request
    policy.evaluator_for(app)


@hookimpl
async def shutdown(app: Any) -> None:
    await policy.release(app)


@hookimpl
def register_routes(register: Any) -> None:
    from annota.plugins.auth import routes

    for path, endpoint, methods in routes.ROUTES:
        register(path, endpoint, methods=methods)
