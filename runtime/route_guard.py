"""What every route checks before its endpoint runs: that the caller is authenticated (unless the
operation answers anyone), then that the query string and path hold only storable text.

Authentication comes first so that an anonymous caller learns nothing from the answer: neither
whether an object exists (401 for every id, never 404) nor which query values are valid.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from annota.core.access import ANONYMOUS, Identity
from annota.core.bounds import check_text
from annota.core.errors import AnnotaError, NotAuthenticated
from annota.runtime.errors import error_response
from annota.runtime.openapi import operation_of


class RouteGuard:
    """Wraps one route's ASGI app; ``public`` methods skip the authentication check."""

    def __init__(self, app: ASGIApp, public: frozenset[str]) -> None:
        self.app = app
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            self.check(scope)
        except AnnotaError as exc:
            await error_response(exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def check(self, scope: Scope) -> None:
        identity: Identity = scope.get("state", {}).get("identity", ANONYMOUS)
        if scope["method"] not in self.public and not identity.is_authenticated:
            raise NotAuthenticated()
        request = Request(scope)
        for name, value in request.query_params.multi_items():
            check_text(name, name if name.isprintable() else "query")
            check_text(value, name)
        for name, value in scope.get("path_params", {}).items():
            if isinstance(value, str):
                check_text(value, name)


def guard(route: BaseRoute) -> BaseRoute:
    """``route`` with its app wrapped in a ``RouteGuard`` (other kinds of routes are left alone)."""
    if isinstance(route, Route):
        methods = route.methods or {"GET"}
        public = frozenset(
            method
            for method in methods
            if (op := operation_of(route.endpoint, method)) is not None and op.anonymous
        )
        route.app = RouteGuard(route.app, public)
    return route
