"""The ASGI application: ``create_app(settings)`` builds the Starlette app for one server process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from annota.core.plugins import PluginManager
from annota.runtime.api import CORE_ROUTES
from annota.runtime.errors import EXCEPTION_HANDLERS
from annota.runtime.metrics import MetricsMiddleware
from annota.runtime.middleware import AuthenticationMiddleware
from annota.runtime.queues import make_queue
from annota.runtime.settings import Settings
from annota.runtime.state import AppState, close_state, load_plugins, open_state


def _route_pair(path: str, endpoint: Any, methods: list[str], name: str | None = None) -> list[BaseRoute]:
    """Answer with and without the trailing slash, never redirecting (clients POST to both)."""
    bare = path.rstrip("/") or "/"
    routes: list[BaseRoute] = [Route(bare, endpoint, methods=methods, name=name)]
    if bare != "/":
        routes.append(Route(bare + "/", endpoint, methods=methods, include_in_schema=False))
    return routes


def build_routes(state: AppState) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for path, endpoint, methods in CORE_ROUTES:
        routes += _route_pair(path, endpoint, methods)
    for plugin_route in state.routes:
        routes += _route_pair(
            plugin_route.path, plugin_route.endpoint, plugin_route.methods, plugin_route.name
        )
    return routes


def create_app(
    settings: Settings,
    plugins: PluginManager | None = None,
    extra_plugins: Mapping[str, Any] | None = None,
    *,
    auto_migrate: bool | None = None,
) -> Starlette:
    """Build the app. Plugins are loaded now (so routes are known); the database, the queue and the
    ``startup`` hooks start with the ASGI lifespan."""
    plugins = plugins or load_plugins(settings, extra=extra_plugins)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state = await open_state(settings, plugins, auto_migrate=auto_migrate)
        app.state.annota = state
        app.router.routes[:] = build_routes(state)
        state.queue = make_queue(state)
        await state.queue.start()
        await plugins.call_all("startup", app=state)
        try:
            yield
        finally:
            await plugins.call_all("shutdown", app=state)
            await close_state(state)

    return Starlette(
        lifespan=lifespan,
        # metrics outermost: it times everything and answers /metrics before authentication
        middleware=[Middleware(MetricsMiddleware), Middleware(AuthenticationMiddleware)],
        exception_handlers=EXCEPTION_HANDLERS,
    )
