"""Request bodies read before the permission check and validated after it.

As in CVAT (DRF checks permissions before a serializer sees the data), a caller without the right
gets 403 whatever the body holds, and learns what is wrong with it (400) only once allowed. The
checks that depend on the body (per-field scopes, the project a task goes into, a role) look at
its top-level fields as sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request

from annota.runtime import web

T = TypeVar("T")


@dataclass(frozen=True)
class Body:
    raw: bytes
    #: the top-level fields of a JSON object body (empty for anything else)
    fields: dict[str, Any]

    def decode(self, type_: type[T]) -> T:
        """The body validated as ``type_``: a 400 naming the field when it is not one."""
        return web.decode(self.raw, type_)

    def integer(self, name: str) -> int | None:
        value = self.fields.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def string(self, name: str) -> str | None:
        value = self.fields.get(name)
        return value if isinstance(value, str) else None


async def read(request: Request) -> Body:
    raw = await web.read_body(request)
    try:
        value = msgspec.json.decode(raw) if raw.strip() else {}
    except (msgspec.DecodeError, RecursionError):
        # ``decode`` answers what is wrong with it, once the caller may know
        value = None
    return Body(raw, value if isinstance(value, dict) else {})


__all__ = ["Body", "read"]
