"""Response headers that make browsers treat annota's answers safely, chosen by path.

Every answer gets ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and a
``Referrer-Policy``; its ``Content-Security-Policy`` comes from the policy with the longest prefix
of the path: the API's JSON needs nothing loaded, ``/api/docs`` only its own inline style sheet,
and the web UI served at ``/`` (CVAT's single-page app) its own scripts, inline styles, blob:
workers, data:/blob: images and WebSockets to the same host. API answers are not stored by
caches unless the endpoint chose its own ``Cache-Control`` (frames and chunks do): most answer
for one user, and the anonymous ones hand out credentials (login, registration). With an
``https`` ``public_url``, browsers are told to keep to HTTPS.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from annota.runtime.openapi import DOCS_STYLE


def content_security_policy(**directives: str) -> str:
    """``script_src="'self'"`` → ``script-src 'self'``, directives in the order given."""
    return "; ".join(f"{name.replace('_', '-')} {value}" for name, value in directives.items())


def style_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


#: JSON and files: nothing in them may load, run or be framed
API_CSP = content_security_policy(
    default_src="'none'", frame_ancestors="'none'", base_uri="'none'", form_action="'none'"
)
#: the API reference page: its one inline style sheet, no script at all
DOCS_CSP = content_security_policy(
    default_src="'none'",
    style_src=style_hash(DOCS_STYLE),
    frame_ancestors="'none'",
    base_uri="'none'",
    form_action="'none'",
)
#: a CVAT UI build: bundles from the same origin (OpenCV's WebAssembly included), styles injected
#: at run time, frame decoders in blob: workers, frames as blob:/data: images, WebSockets back;
#: its index.html links Google's web fonts
UI_CSP = content_security_policy(
    default_src="'self'",
    script_src="'self' 'wasm-unsafe-eval'",
    style_src="'self' 'unsafe-inline' https://fonts.googleapis.com",
    img_src="'self' data: blob:",
    font_src="'self' data: https://fonts.gstatic.com",
    media_src="'self' blob:",
    worker_src="'self' blob:",
    connect_src="'self' {websockets}",
    object_src="'none'",
    frame_ancestors="'none'",
    base_uri="'self'",
    form_action="'self'",
)
REFERRER_POLICY = "same-origin"
HSTS = "max-age=31536000"
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:\d+)?|\[[0-9A-Fa-f:.]+\](:\d+)?")


@dataclass(frozen=True)
class HeaderPolicy:
    """The ``Content-Security-Policy`` of every path under ``prefix`` (longest prefix wins)."""

    prefix: str
    content_security_policy: str


#: ``/`` is the web UI when one is served (``ui_dir``), else only 404s
POLICIES: tuple[HeaderPolicy, ...] = (
    HeaderPolicy("/", UI_CSP),
    HeaderPolicy("/api/", API_CSP),
    HeaderPolicy("/api/docs", DOCS_CSP),
)


def policy_for(path: str, policies: Sequence[HeaderPolicy] = POLICIES) -> HeaderPolicy:
    matching = [policy for policy in policies if path.startswith(policy.prefix)]
    return max(matching, key=lambda policy: len(policy.prefix), default=policies[0])


def _websockets(host: str) -> str:
    """``ws://host wss://host`` for the host the page came from ('self' covers WebSockets only in
    recent browsers); nothing for a ``Host`` that is not a plain host name."""
    return f"ws://{host} wss://{host}" if _HOST.fullmatch(host) else ""


class SecurityHeadersMiddleware:
    """Adds the headers to every HTTP answer, errors included."""

    def __init__(self, app: ASGIApp, *, https: bool = False) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        request_headers = Headers(scope=scope)
        policy = policy_for(path)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", REFERRER_POLICY)
                csp = policy.content_security_policy.replace(
                    "{websockets}", _websockets(request_headers.get("host", ""))
                )
                headers.setdefault("Content-Security-Policy", csp.replace(" ;", ";"))
                if path.startswith("/api/"):
                    headers.setdefault("Cache-Control", "no-store")
                if self.https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)
