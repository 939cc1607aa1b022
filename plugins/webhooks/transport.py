"""One POST to a webhook's target: aiohttp sessions kept per event loop, connecting only to vetted
addresses, and every way the attempt can end as an ``Outcome``.

aiohttp rather than httpx here: a delivery costs about a third of the CPU time, which matters when
deliveries share the process (and the machine) with the API. Unless private targets are allowed,
the sessions resolve names through ``VettingResolver`` and connect to exactly the addresses it
vetted, so a second DNS answer cannot swap in an internal one; aiohttp does not resolve IP
literals, so those are checked before the request. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from annota.core.errors import MediaError
from annota.core.services.remote_files import check_address
from annota.plugins.webhooks import targets
from annota.plugins.webhooks.config import Config

#: responses are kept up to this many bytes
MAX_RESPONSE = 1024 * 1024
#: CVAT records a connection failure as 502 and a timeout as 504
CONNECTION_FAILED = 502
TIMED_OUT = 504
RETRIED_STATUSES = frozenset({408, 429})


@dataclass
class Outcome:
    status_code: int | None
    response: str
    duration_ms: int
    #: worth another attempt (5xx, 408, 429, transport errors)
    retry: bool


class VettingResolver(AbstractResolver):
    """Resolves a target's name, refusing it (``TargetRefused``) if any answer is not public."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        addresses = await targets.resolve(host, port, allow_private=False)
        if not addresses:
            raise OSError(f"{host} has no addresses")
        return [
            ResolveResult(
                hostname=host,
                host=str(ip),
                port=port,
                family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )  # fmt: skip
            for ip in addresses
        ]

    async def close(self) -> None:
        """Nothing to release: lookups go through the event loop's resolver."""


_sessions: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[bool, float, float], aiohttp.ClientSession]
] = weakref.WeakKeyDictionary()
#: the loops of servers and workers, which close their sessions when they shut down
_serving_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def keep_sessions() -> None:
    """Keep sessions open on the running loop until ``close_sessions`` (a server or worker
    starting). On any other loop (an embedding application's, a test client's) each request gets
    a session of its own, closed after it, so none is left behind when that loop goes away."""
    _serving_loops.add(asyncio.get_running_loop())


def _new_session(config: Config) -> aiohttp.ClientSession:
    resolver = None if config.allow_private_targets else VettingResolver()
    # each new connection asks the resolver again: no DNS cache of aiohttp's own in between
    connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False)
    timeout = aiohttp.ClientTimeout(total=None, connect=config.connect_timeout, sock_read=config.read_timeout)
    # trust_env=False: no proxy from the environment (the vetted address is what is connected
    # to) and no .netrc credentials sent to webhook targets
    return aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False)


def _kept_session(config: Config) -> aiohttp.ClientSession:
    """The running loop's session for ``config``: building one (its TLS context above all) costs
    far more than a delivery to a nearby receiver, and it keeps connections open."""
    sessions = _sessions.setdefault(asyncio.get_running_loop(), {})
    key = (config.allow_private_targets, config.connect_timeout, config.read_timeout)
    session = sessions.get(key)
    if session is None or session.closed:
        session = sessions[key] = _new_session(config)
    return session


async def close_sessions() -> None:
    """Close the sessions of the running loop (at shutdown)."""
    _serving_loops.discard(asyncio.get_running_loop())
    for session in _sessions.pop(asyncio.get_running_loop(), {}).values():
        await session.close()


def _refused_literal(url: str) -> str | None:
    """Why a target given as an IP address may not be reached, or ``None``."""
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    try:
        check_address(host, allow_private=False)
    except MediaError:
        return (
            f"{host} is not a public address; set the webhooks plugin's allow_private_targets to "
            "deliver to private networks."
        )
    return None


async def _read_limited(response: aiohttp.ClientResponse) -> str:
    data = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        data += chunk[: MAX_RESPONSE - len(data)]
        if len(data) >= MAX_RESPONSE:
            break
    return data.decode(response.charset or "utf-8", errors="replace")


async def post(url: str, body: bytes, headers: dict[str, str], verify: bool, config: Config) -> Outcome:
    """POST ``body`` to ``url`` (checking TLS certificates when ``verify``)."""
    started = time.monotonic()

    def outcome(status: int | None, text: str, retry: bool) -> Outcome:
        return Outcome(status, text, int((time.monotonic() - started) * 1000), retry)

    if not config.allow_private_targets and (reason := _refused_literal(url)) is not None:
        return outcome(None, f"Refused: {reason}", False)
    request: dict[str, Any] = {"data": body, "headers": headers, "allow_redirects": False}
    if not verify:
        request["ssl"] = False
    kept = asyncio.get_running_loop() in _serving_loops
    session = _kept_session(config) if kept else _new_session(config)
    try:
        async with session.post(url, **request) as response:
            status = response.status
            try:
                text = await _read_limited(response)
            except TimeoutError as exc:
                return outcome(TIMED_OUT, f"Timed out reading the response: {type(exc).__name__}", True)
            except aiohttp.ClientError as exc:
                text = f"The response could not be read: {type(exc).__name__}"
    except TimeoutError as exc:
        return outcome(TIMED_OUT, f"Timed out: {type(exc).__name__}", True)
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, targets.TargetRefused):
            return outcome(None, f"Refused: {exc.os_error}", False)
        return outcome(CONNECTION_FAILED, f"Connection failed: {exc}", True)
    except aiohttp.ClientError as exc:
        return outcome(CONNECTION_FAILED, f"Request failed: {type(exc).__name__}: {exc}", True)
    finally:
        if not kept:
            await session.close()
    return outcome(status, text, status >= 500 or status in RETRIED_STATUSES)


__all__ = ["Outcome", "VettingResolver", "close_sessions", "keep_sessions", "post"]
