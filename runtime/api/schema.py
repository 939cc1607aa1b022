"""``/api/schema`` (the OpenAPI document) and ``/api/docs`` (the same, as a page for people).

Both are built from the running app's route table on first use, so plugin routes are included.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from annota.runtime import web
from annota.runtime.openapi import openapi_document, render_docs

TAGS = ["schema"]


def _document(request: Request) -> dict[str, Any]:
    # routes are fixed once the app has started: build the document once per app
    cached: dict[str, Any] | None = getattr(request.app.state, "openapi_document", None)
    if cached is None:
        cached = openapi_document(request.app.routes)
        request.app.state.openapi_document = cached
    return cached


@web.operation(
    "The OpenAPI 3.0 description of this server's API", tags=TAGS, response=dict[str, Any], anonymous=True
)
async def schema(request: Request) -> Response:
    return web.json_response(_document(request))


@web.operation("The API reference as an HTML page", tags=TAGS, responses={200: "text/html"}, anonymous=True)
async def docs(request: Request) -> Response:
    schema_url = request.scope.get("root_path", "") + "/api/schema"
    return HTMLResponse(render_docs(_document(request), schema_url=schema_url))


routes = [
    ("/api/schema", schema, ["GET"]),
    ("/api/docs", docs, ["GET"]),
]
