"""``/api/server/*``: about, plugins, health and readiness."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response

from annota.core import CVAT_COMPATIBLE_VERSION, __version__
from annota.core.db import migrate
from annota.core.schemas.server import About, PluginsRead
from annota.runtime import web
from annota.runtime.ui import LOGO_PATH

if TYPE_CHECKING:
    from annota.runtime.state import AppState


@web.operation("Basic information about the server", tags=["server"], response=About, anonymous=True)
async def about(request: Request) -> Response:
    return web.json_response(
        About(
            name="annota",
            description="A pip-installable, CVAT-compatible annotation server built from plugins.",
            version=f"{CVAT_COMPATIBLE_VERSION}+annota.{__version__}",
            logo_url=web.base_url(request) + LOGO_PATH,
            subtitle=f"annota {__version__}",
        )
    )


@web.operation("Loaded plugins and CVAT feature flags", tags=["server"], response=PluginsRead, anonymous=True)
async def plugins(request: Request) -> Response:
    state = web.state(request)
    manager = state.plugins
    infos = [info.as_dict() for info in manager.infos.values()]
    active = {info.name for info in manager.active}
    return web.json_response(
        PluginsRead(analytics="analytics" in active, models=bool(state.models.registry), plugins=infos)
    )


async def _checks(state: AppState) -> dict[str, str]:
    """Database, storage, queue (Redis when configured) and what plugins report (the authorization
    plugin: its OPA server when one is configured)."""
    checks: dict[str, str] = {}
    try:
        async with state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        await state.storage.check()
        checks["storage"] = "ok"
    except Exception as exc:
        checks["storage"] = f"error: {exc.__class__.__name__}"
    queue_check = getattr(state.queue, "health", None)
    if queue_check is not None:
        checks["queue"] = await queue_check()
    for reported in await state.plugins.call_all("check_health", app=state):
        checks.update(reported or {})
    return checks


def _answer(checks: dict[str, str]) -> Response:
    healthy = all(value == "ok" for value in checks.values())
    return web.json_response(
        {"status": "ok" if healthy else "unavailable", "checks": checks}, status_code=200 if healthy else 503
    )


@web.operation(
    "Liveness and readiness (database, queue, storage and what plugins report)",
    tags=["server"],
    anonymous=True,
)
async def health(request: Request) -> Response:
    return _answer(await _checks(web.state(request)))


@web.operation(
    "Readiness for traffic: what health checks, plus a database schema this server was built for",
    tags=["server"],
    anonymous=True,
)
async def ready(request: Request) -> Response:
    state = web.state(request)
    checks = await _checks(state)
    if checks["database"] == "ok":
        # during a rolling upgrade, servers of the new version wait for `annota migrate`
        up_to_date = await migrate.is_up_to_date(state.engine)
        checks["schema"] = "ok" if up_to_date else "error: the database needs `annota migrate`"
    return _answer(checks)


routes = [
    ("/api/server/about", about, ["GET"]),
    ("/api/server/plugins", plugins, ["GET"]),
    ("/api/server/health", health, ["GET"]),
    ("/api/server/ready", ready, ["GET"]),
]
