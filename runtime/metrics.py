"""``GET /metrics``: Prometheus text exposition of the server's metrics, and the middleware that
times every request by route template.

The endpoint answers outside the API (no authentication hook, not in the OpenAPI schema). It is
guarded by the ``metrics_token`` setting: when set, scrapers send ``Authorization: Bearer <token>``;
when empty, only clients on loopback or private addresses are answered. Queue depths come from the
request rows (the source of truth with or without Redis) and are cached a few seconds, so frequent
scrapes by several Prometheus servers cost one query.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import make_server

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from annota.core import metrics
from annota.core.db.tables import BackgroundRequest
from annota.core.queue import QUEUES

if TYPE_CHECKING:
    from annota.runtime.state import AppState

PATH = "/metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: the classic text format every Prometheus version reads (annota's names need no newer escaping)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: how long queue depths are reused between scrapes, in seconds
DEPTH_CACHE_SECONDS = 5.0
#: the route label of requests no route matched (raw paths would make unbounded series)
UNMATCHED = "<unmatched>"
CONVERTOR = re.compile(r"\{(\w+):[^}]+\}")

HTTP_DURATION = metrics.histogram(
    "annota_http_request_duration_seconds",
    "Time to answer HTTP requests, by method, route template and status code",
    ("method", "route", "status"),
)
POOL_SIZE = metrics.gauge("annota_db_pool_size", "Connections the database pool holds open")
POOL_CHECKED_OUT = metrics.gauge("annota_db_pool_checked_out", "Database connections in use")


def multiprocess_dir() -> str:
    return os.environ.get(MULTIPROC_ENV, "")


def clear_multiprocess_dir() -> None:
    """Forget the values of earlier runs (prometheus-client's files must not outlive a server run)."""
    directory = multiprocess_dir()
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for stale in Path(directory).glob("*.db"):
            stale.unlink(missing_ok=True)


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """Every metric of this process, or of all processes sharing ``PROMETHEUS_MULTIPROC_DIR``."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = CollectorRegistry()
        registry.register(_Default())
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)


class _Default(Collector):
    """The process-wide registry, re-exported beside per-scrape collectors."""

    def collect(self) -> Iterable[Any]:
        return REGISTRY.collect()


class QueueDepth(Collector):
    """``annota_queue_depth`` (queued requests) and ``annota_queue_running`` per queue, from the rows."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.read_at = -DEPTH_CACHE_SECONDS

    async def refresh(self, state: AppState) -> None:
        if time.monotonic() - self.read_at < DEPTH_CACHE_SECONDS:
            return
        query = (
            select(BackgroundRequest.queue, BackgroundRequest.status, func.count())
            .where(BackgroundRequest.status.in_(("queued", "started")))
            .group_by(BackgroundRequest.queue, BackgroundRequest.status)
        )
        async with state.sessionmaker() as session:
            rows = (await session.execute(query)).all()
        self.counts = {(queue, status): count for queue, status, count in rows}
        self.read_at = time.monotonic()

    def collect(self) -> Iterable[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "annota_queue_depth", "Background requests waiting for a worker, by queue", labels=["queue"]
        )
        running = GaugeMetricFamily(
            "annota_queue_running", "Background requests being run, by queue", labels=["queue"]
        )
        for queue in QUEUES:
            depth.add_metric([queue], self.counts.get((queue, "queued"), 0))
            running.add_metric([queue], self.counts.get((queue, "started"), 0))
        return [depth, running]


def record_pool(state: AppState) -> None:
    pool: Any = state.engine.pool
    if hasattr(pool, "size") and hasattr(pool, "checkedout"):
        POOL_SIZE.set(pool.size())
        POOL_CHECKED_OUT.set(pool.checkedout())


def allowed(client_host: str | None, authorization: str, token: str) -> bool:
    """A scraper holding the token, or (without a token) one on a loopback or private address."""
    if token:
        return hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode())
    if not client_host:
        return False
    try:
        address = ipaddress.ip_address(client_host)
    except ValueError:
        # a Unix socket peer or an in-process client: no address to vouch for it
        return False
    return address.is_loopback or address.is_private


def _scope_allowed(scope: Scope, token: str) -> bool:
    headers = dict(scope.get("headers") or [])
    client = scope.get("client")
    return allowed(client[0] if client else None, headers.get(b"authorization", b"").decode("latin-1"), token)


def serve_standalone(host: str, port: int, token: str) -> Callable[[], None]:
    """``/metrics`` of an ``annota worker`` process, on a thread, with the same access rule as the
    server's; returns what stops it."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if not allowed(environ.get("REMOTE_ADDR"), environ.get("HTTP_AUTHORIZATION", ""), token):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"Forbidden: /metrics needs the metrics token (or a loopback or private address)\n"]
        if environ.get("PATH_INFO") != PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Not Found: metrics are at /metrics\n"]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE)])
        return [exposition()]

    server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_SilentHandler)
    thread = threading.Thread(target=server.serve_forever, name="annota-metrics", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop


class MetricsMiddleware:
    """Answers ``/metrics`` and times every other request, labelled by its route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.depth = QueueDepth()
        self.routes_by_endpoint: dict[Any, list[Any]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: AppState = scope["app"].state.annota
        if scope["path"] == PATH:
            response = await self.scrape(state, scope)
            await response(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            HTTP_DURATION.labels(
                method=scope["method"], route=self.route_of(scope), status=str(status)
            ).observe(time.perf_counter() - started)
            record_pool(state)

    async def scrape(self, state: AppState, scope: Scope) -> Response:
        if not _scope_allowed(scope, state.settings.metrics_token):
            return PlainTextResponse(
                "Forbidden: /metrics needs the metrics token (or a loopback or private address)\n",
                status_code=403,
            )
        if scope["method"] not in ("GET", "HEAD"):
            return PlainTextResponse("Method Not Allowed\n", status_code=405, headers={"Allow": "GET"})
        record_pool(state)
        await self.depth.refresh(state)
        return Response(exposition([self.depth]), media_type=CONTENT_TYPE)

    def route_of(self, scope: Scope) -> str:
        """The template of the route that answered (``/api/tasks/{id}``), without a trailing slash."""
        endpoint = scope.get("endpoint")
        if endpoint is None:
            return UNMATCHED
        if self.routes_by_endpoint is None or endpoint not in self.routes_by_endpoint:
            # built on first use: the routes are only known once the lifespan has started
            self.routes_by_endpoint = {}
            for route in scope["app"].router.routes:
                self.routes_by_endpoint.setdefault(getattr(route, "endpoint", None), []).append(route)
        for route in self.routes_by_endpoint.get(endpoint, []):
            if route.matches(scope)[0] is Match.FULL:
                # the OpenAPI form: /api/tasks/{id:int} → /api/tasks/{id}
                return CONVERTOR.sub(r"{\1}", route.path.rstrip("/")) or "/"
        return UNMATCHED
