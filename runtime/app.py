"""The ASGI application: ``create_app(settings)`` builds the Starlette app for one server process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from annota.core.plugins import PluginManager
from annota.runtime.api import CORE_ROUTES, metadata
from annota.runtime.errors import EXCEPTION_HANDLERS
from annota.runtime.metrics import MetricsMiddleware
from annota.runtime.middleware import AuthenticationMiddleware, RequestIdMiddleware
from annota.runtime.queues import make_queue
from annota.runtime.route_guard import guard
from annota.runtime.security_headers import SecurityHeadersMiddleware
from annota.runtime.settings import Settings
from annota.runtime.state import AppState, close_state, load_plugins, open_state
from annota.runtime.ui import LOGO_PATH, SinglePageApp, logo


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
    routes += _options_routes(state)
    # every route authenticates its caller before it looks anything up
    routes = [guard(route) for route in routes]
    # the logo is a public static file: the login page shows it before anyone signs in
    routes.append(Route(LOGO_PATH, logo, methods=["GET", "HEAD"], include_in_schema=False))
    if state.settings.ui_dir:
        # the web UI's files are public: its login page is what an anonymous caller gets
        routes.append(_ui_route(SinglePageApp(state.settings.ui_dir)))
    return routes


def _options_routes(state: AppState) -> list[BaseRoute]:
    """``OPTIONS`` answers DRF's metadata on every API path that does not serve it itself."""
    served: dict[str, tuple[list[str], list[Any]]] = {}
    entries = [(p, e, m) for p, e, m in CORE_ROUTES] + [(r.path, r.endpoint, r.methods) for r in state.routes]
    for path, endpoint, methods in entries:
        methods_of, endpoints_of = served.setdefault(path, ([], []))
        methods_of.extend(methods)
        endpoints_of.append(endpoint)
    routes: list[BaseRoute] = []
    for path, (methods, endpoints) in served.items():
        if path.startswith("/api") and "OPTIONS" not in methods:
            options = metadata.endpoint(path, methods, endpoints)
            bare = path.rstrip("/")
            routes += [
                Route(bare, options, methods=["OPTIONS"], include_in_schema=False),
                Route(bare + "/", options, methods=["OPTIONS"], include_in_schema=False),
            ]
    return routes


def _ui_route(spa: SinglePageApp) -> BaseRoute:
    """The web UI answers every path no other route does, so it comes last."""

    async def web_ui(request: Request) -> Response:
        return await spa(request)

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    # every method: paths no route knows answer 404 as without a UI, never 405
    return Route("/{path:path}", web_ui, methods=methods, include_in_schema=False)


def create_app(
    settings: Settings,
    plugins: PluginManager | None = None,
    extra_plugins: Mapping[str, Any] | None = None,
    *,
    auto_migrate: bool | None = None,
) -> Starlette:
    """Build the app. Plugins are loaded now (so routes are known); the database, the queue and the
    ``startup`` hooks start with the ASGI lifespan."""
    if settings.ui_dir:
        SinglePageApp(settings.ui_dir)  # a wrong directory stops the start, naming it
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
        # the request id first: every log line of the request carries it; then metrics, which
        # times everything and answers /metrics before authentication
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(MetricsMiddleware),
            Middleware(SecurityHeadersMiddleware, https=settings.public_url.startswith("https://")),
            Middleware(AuthenticationMiddleware),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
    )
