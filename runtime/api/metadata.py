"""``OPTIONS`` on every API route: DRF's metadata answer (``name``, ``description``, ``renders``,
``parses``), which CVAT's clients and tools may ask for before calling a route."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

RENDERS = ["application/json"]
PARSES = ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"]

_PARAMETER = re.compile(r"^\{.*\}$")


def _name(path: str) -> str:
    """A view name as DRF derives one: the resource words, ``Instance`` when the path names one."""
    parts = [part for part in path.strip("/").split("/") if part and part != "api"]
    words = [part.replace("_", " ").replace("-", " ").title() for part in parts if not _PARAMETER.match(part)]
    if parts and _PARAMETER.match(parts[-1]):
        words.append("Instance")
    elif len(parts) == 1:
        words.append("List")
    return " ".join(words) or "Api Root"


def endpoint(path: str, methods: Sequence[str], endpoints: Sequence[Any]) -> Callable[[Request], Any]:
    """The ``OPTIONS`` endpoint of ``path``, served by ``endpoints`` for ``methods``."""
    summaries = [
        operation.summary
        for function in endpoints
        if (operation := getattr(function, "__annota_operation__", None)) is not None
    ]
    allow = ", ".join(sorted({*methods, "OPTIONS"}))
    body = {
        "name": _name(path),
        "description": ". ".join(dict.fromkeys(summaries)) + ("." if summaries else ""),
        "renders": RENDERS,
        "parses": PARSES,
    }

    async def options(request: Request) -> Response:
        return JSONResponse(body, headers={"Allow": allow})

    return options


__all__ = ["PARSES", "RENDERS", "endpoint"]
