"""The remote evaluator: decisions from an OPA server over its Data API
(``POST /v1/data/<package>/allow|filter``), which loads the same bundle from ``GET /api/auth/rules``.

An unreachable or failing server refuses the request with 503 (fail closed), never allows it. The
server's address goes to the log only: callers (and the anonymous health check) learn that the
authorization service failed, not where it runs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

from opa_client import AsyncOpaClient

from annota.core.access import Filter
from annota.core.errors import ConfigError, ServiceUnavailable
from annota.plugins.auth.config import AuthConfig
from annota.plugins.auth.evaluator import UNAVAILABLE, as_allow, as_filter

logger = logging.getLogger(__name__)


def _address(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"plugins.auth.opa_url: {url!r} is not an http(s) URL")
    secure = parts.scheme == "https"
    return parts.hostname, parts.port or (443 if secure else 80), secure


class RemoteEvaluator:
    def __init__(self, config: AuthConfig) -> None:
        self.url = config.opa_url.rstrip("/")
        self._host, self._port, self._ssl = _address(self.url)
        self._timeout = config.opa_timeout
        self._token = config.opa_token or None
        # aiohttp sessions belong to the event loop that made them
        self._clients: dict[asyncio.AbstractEventLoop, AsyncOpaClient] = {}

    async def _client(self) -> AsyncOpaClient:
        loop = asyncio.get_running_loop()
        # a loop that ended (an in-process test client runs a loop per request) took its
        # connections along; forget its client rather than keep the loop alive
        for stale in [known for known in self._clients if known.is_closed()]:
            del self._clients[stale]
        client = self._clients.get(loop)
        if client is None:
            client = AsyncOpaClient(
                host=self._host,
                port=self._port,
                ssl=self._ssl,
                token=self._token,
                retries=1,
                timeout=self._timeout,
            )
            await client._init_session()  # the public way is ``async with``, which would close it
            self._clients[loop] = client
        return client

    async def _query(self, package: str, rule: str, document: dict[str, Any]) -> Any:
        try:
            client = await self._client()
            answer = await client.query_rule(document, package, rule)
        except Exception as exc:
            logger.warning("OPA server %s did not answer %s/%s: %r", self.url, package, rule, exc)
            raise ServiceUnavailable(f"{UNAVAILABLE} ({exc.__class__.__name__})") from exc
        return answer.get("result") if isinstance(answer, dict) else None

    async def allow(self, package: str, document: dict[str, Any]) -> bool:
        return as_allow(await self._query(package, "allow", document))

    async def filter(self, package: str, document: dict[str, Any]) -> Filter:
        return as_filter(await self._query(package, "filter", document))

    async def health(self) -> str:
        try:
            client = await self._client()
            healthy = await client.check_health()
        except Exception as exc:
            logger.warning("OPA server %s: health check failed: %r", self.url, exc)
            return f"error: the OPA server is unreachable ({exc.__class__.__name__})"
        if not healthy:
            logger.warning("OPA server %s is unreachable or not healthy", self.url)
        return "ok" if healthy else "error: the OPA server is unreachable or not healthy"

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        for loop, client in clients.items():
            if loop is asyncio.get_running_loop():
                await client.close_connection()
