"""ASGI middleware: authentication of every request through the ``authenticate`` hook."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from annota.core.access import ANONYMOUS
from annota.core.errors import AnnotaError
from annota.runtime.errors import error_response


class AuthenticationMiddleware:
    """Resolve the caller once per request and keep it in ``request.state.identity``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        plugins = scope["app"].state.annota.plugins
        try:
            identity = await plugins.first_result("authenticate", request=request)
        except AnnotaError as exc:
            await error_response(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})["identity"] = identity or ANONYMOUS
        await self.app(scope, receive, send)
