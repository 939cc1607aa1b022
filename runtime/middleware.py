"""ASGI middleware: a request id and an access log line for every request, and authentication of
every request through the ``authenticate`` hook."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from annota.core import request_ids
from annota.core.access import ANONYMOUS
from annota.core.errors import AnnotaError
from annota.runtime.errors import error_response

REQUEST_ID_HEADER = "X-Request-ID"
#: what an incoming id may look like (a proxy's UUID, a trace id); anything else is replaced, so
#: that no client can put newlines or megabytes into the logs
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}\Z")

access_log = logging.getLogger("annota.access")


class RequestIdMiddleware:
    """Binds the request's id (the caller's ``X-Request-ID`` when well-formed, else a new one) for
    everything the request does, returns it in ``X-Request-ID``, and logs the request when it ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with request_ids.bound(request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                duration_ms = round((time.perf_counter() - started) * 1000, 1)
                client = scope.get("client")
                access_log.info(
                    '%s "%s %s" %d %.1f ms',
                    client[0] if client else "-",
                    scope["method"],
                    scope["path"],
                    status,
                    duration_ms,
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": duration_ms,
                    },
                )


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
