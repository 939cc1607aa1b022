"""A stand-in for an OPA server on loopback, for tests and benchmarks of the remote evaluator.

It answers the part of OPA's REST API that annota and ``opa-python-client`` use, evaluating with
OPA's own Go engine (``annota.testing.opa_engine``, not the embedded evaluator's rego-cpp, so a
policy the two engines read differently shows), and gets its policies the way a production OPA does:
by downloading the bundle from annota's ``GET /api/auth/rules`` (or from a ``PolicyRegistry``, for
tests of the Rego alone)::

    from annota.testing.opa_server import OpaServer, serve

    with serve(registry=registry) as opa_url:          # a base URL such as http://127.0.0.1:40123
        settings.plugin_settings = {"auth": {"opa_url": opa_url}}

    opa = OpaServer(bundle_url="http://127.0.0.1:8080/api/auth/rules")
    with opa:                                           # started; opa.url is fixed for its lifetime
        opa.stop()                                      # now refuses connections ("OPA is down")
        opa.start()                                     # back on the same port

Endpoints: ``POST /v1/data/<package path>/<rule>`` with ``{"input": ...}`` answers ``{"result": value}``
(no ``result`` when the rule is undefined, as OPA answers; a 500 when OPA fails to evaluate it).
``GET /health`` (with
``?bundles``: 500 until the bundle is loaded) and ``GET /v1/policies/`` complete what the client checks.
A downloaded bundle is fetched on the first decision after each start, as a restarted OPA would; a
download that fails answers 500, which annota turns into a 503 (it fails closed).

``LoopbackServer`` is the threaded uvicorn runner underneath, usable for any ASGI app (annota itself,
when a test needs it on a real port).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, Self

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from annota.core.errors import ConfigError
from annota.core.policies import PolicyRegistry
from annota.plugins.auth import bundle as bundles
from annota.testing.opa_engine import OpaEvaluationError, OpaPolicies

START_TIMEOUT = 20.0
DOWNLOAD_TIMEOUT = 10.0


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


class LoopbackServer:
    """An ASGI app served by uvicorn in a thread on 127.0.0.1; ``start``/``stop`` any number of
    times, always on the same port (a random free one unless ``port`` is given)."""

    def __init__(self, app: Any, *, port: int = 0, lifespan: Literal["auto", "on", "off"] = "auto") -> None:
        self.app = app
        self._port = port
        self._lifespan = lifespan
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if not self._port:
            raise RuntimeError("the server has not been started yet")
        return f"http://127.0.0.1:{self._port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        """Listen (again) on the loopback port, once the app's startup finished."""
        if self._server is not None:
            return
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say so, and without it
        # every answer waits ~40 ms for the client's delayed ACK
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan=self._lifespan)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError(f"the server did not start on port {self._port}")
            time.sleep(0.01)
        self._server, self._thread = server, thread

    def stop(self) -> None:
        """Close the port: connections are refused until ``start``."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout=START_TIMEOUT)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class OpaServer(LoopbackServer):
    """The OPA stand-in: policies from annota's bundle URL or from a registry."""

    def __init__(
        self, *, bundle_url: str | None = None, registry: PolicyRegistry | None = None, port: int = 0
    ) -> None:
        if (bundle_url is None) == (registry is None):
            raise ValueError("give exactly one of bundle_url (annota's /api/auth/rules) or registry")
        app = Starlette(
            routes=[
                Route("/v1/data/{path:path}", self._data, methods=["POST"]),
                Route("/health", self._health, methods=["GET"]),
                Route("/v1/policies/", self._policies, methods=["GET"]),
            ]
        )
        super().__init__(app, port=port, lifespan="off")
        self.bundle_url = bundle_url
        self._registry = registry
        self._compiled: OpaPolicies | None = None
        #: the loaded bundle's revision (its manifest's, or the registry's digest), None until loaded
        self.revision: str | None = None
        #: how many times the bundle was downloaded
        self.downloads = 0
        self._load_lock = asyncio.Lock()

    # --- the policies -----------------------------------------------------------------------

    def _use(self, registry: PolicyRegistry, revision: str) -> None:
        previous, self._compiled = self._compiled, OpaPolicies(registry.modules)
        if previous is not None:
            previous.close()
        self._registry = registry
        self.revision = revision or registry.digest()

    async def _bundle(self) -> OpaPolicies:
        """The compiled policies, downloading the bundle first when there is none yet."""
        async with self._load_lock:
            if self._compiled is None:
                if self.bundle_url is None:
                    assert self._registry is not None  # __init__ requires one of the two
                    self._use(self._registry, "")
                else:
                    await self._download(self.bundle_url)
            assert self._compiled is not None
            return self._compiled

    async def _download(self, url: str) -> None:
        async with httpx.AsyncClient(timeout=DOWNLOAD_TIMEOUT) as client:
            response = await client.get(url)
        response.raise_for_status()
        manifest, registry = bundles.read(response.content)
        self.downloads += 1
        self._use(registry, str(manifest.get("revision") or ""))

    # --- the endpoints ----------------------------------------------------------------------

    async def _data(self, request: Request) -> Response:
        try:
            body = await request.json() if await request.body() else {}
        except ValueError as exc:
            return _error(400, "invalid_parameter", f"request body is not JSON: {exc}")
        if not isinstance(body, dict):
            return _error(400, "invalid_parameter", "request body must be an object with an 'input' key")
        try:
            policies = await self._bundle()
        except (httpx.HTTPError, ConfigError) as exc:
            return _error(500, "internal_error", f"bundle not loaded from {self.bundle_url}: {exc!r}")
        document = body.get("input", {})
        if not isinstance(document, dict):
            return _error(400, "invalid_parameter", "'input' must be an object")
        package, _, rule = request.path_params["path"].strip("/").rpartition("/")
        try:
            value = policies.query(package.replace("/", "."), rule, document)
        except OpaEvaluationError as exc:
            return _error(500, "internal_error", str(exc))
        return JSONResponse({} if value is None else {"result": value})

    async def _health(self, request: Request) -> Response:
        if "bundles" in request.query_params:
            try:
                await self._bundle()
            except (httpx.HTTPError, ConfigError) as exc:
                return JSONResponse({"error": f"bundle not activated: {exc!r}"}, status_code=500)
        return JSONResponse({})

    async def _policies(self, request: Request) -> Response:
        modules = self._registry.modules if self._compiled and self._registry else []
        return JSONResponse({"result": [{"id": module.name, "raw": module.source} for module in modules]})

    def start(self) -> None:
        """Listen (again); a downloaded bundle is fetched anew, as a restarted OPA does."""
        if self.running:
            return
        if self.bundle_url is not None and self._compiled is not None:
            self._compiled.close()
            self._compiled, self.revision = None, None
        # a fresh lock: the previous one may belong to the stopped server's event loop
        self._load_lock = asyncio.Lock()
        super().start()


@contextmanager
def serve(*, bundle_url: str | None = None, registry: PolicyRegistry | None = None) -> Iterator[str]:
    """An OPA server's base URL until the block ends (``OpaServer`` to stop and restart it)."""
    with OpaServer(bundle_url=bundle_url, registry=registry) as server:
        yield server.url
