"""HTTP endpoints of the core API; each module lists its ``routes`` as (path, endpoint, methods)."""

from __future__ import annotations

from typing import Any

from annota.runtime.api import projects, server

CORE_ROUTES: list[tuple[str, Any, list[str]]] = [
    *server.routes,
    *projects.routes,
]
