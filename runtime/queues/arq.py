"""The production queue: requests go to Redis with arq and ``annota worker`` processes run them.

Redis carries only "run request X"; the request row in the database holds everything else, so a
lost Redis job never loses a request's status and any worker can pick up any request.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import job_key_prefix
from redis.exceptions import RedisError

from annota.core.errors import ConfigError, ServiceUnavailable

if TYPE_CHECKING:
    from annota.runtime.settings import Settings
    from annota.runtime.state import AppState

#: the one arq function every worker serves: run the request whose id is its argument
RUN_REQUEST = "annota.run_request"
#: how long a health check waits for Redis
HEALTH_TIMEOUT = 2.0

T = TypeVar("T")


def redis_settings(settings: Settings) -> RedisSettings:
    try:
        return RedisSettings.from_dsn(settings.redis_url)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"redis_url: {settings.redis_url!r} is not a redis:// URL ({exc})") from exc


def queue_key(settings: Settings, queue: str) -> str:
    """The Redis key of a queue: ``annota:import`` for queue ``import`` with the default prefix."""
    return f"{settings.queue_prefix}:{queue}"


def _glob_escape(text: str) -> str:
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


class ArqQueue:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self._pool: ArqRedis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def pool(self) -> ArqRedis:
        if self._pool is None:
            raise ServiceUnavailable("The job queue is not connected.")
        return self._pool

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            self._pool = await create_pool(redis_settings(self.state.settings))
        except (OSError, RedisError, TimeoutError) as exc:
            # arq has already retried a few times
            raise ServiceUnavailable(f"Cannot reach Redis at {self.state.settings.redis_url}: {exc}") from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    async def _on_own_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        if loop is None or loop is asyncio.get_running_loop():
            return await coroutine
        # called from another event loop (an embedding application's thread, a test client): the
        # Redis connections belong to the loop that opened them
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, loop))

    async def enqueue(self, request_id: str, queue: str) -> None:
        # a fresh arq job id per enqueue: arq refuses ids it still holds a job or result for, and a
        # request id comes back when a client starts the same operation again
        await self._on_own_loop(
            self.pool.enqueue_job(
                RUN_REQUEST,
                request_id,
                _queue_name=queue_key(self.state.settings, queue),
                _job_id=f"{request_id}#{uuid.uuid4().hex}",
            )
        )

    async def cancel(self, request_id: str, queue: str) -> None:
        """Take the request's jobs off the queue, so no worker wakes up for a deleted row."""
        await self._on_own_loop(self._cancel(request_id, queue))

    async def _cancel(self, request_id: str, queue: str) -> None:
        key = queue_key(self.state.settings, queue)
        async for member, _score in self.pool.zscan_iter(key, match=_glob_escape(request_id) + "#*"):
            job_id = member.decode()
            async with self.pool.pipeline(transaction=True) as pipe:
                pipe.zrem(key, job_id)
                pipe.delete(job_key_prefix + job_id)
                await pipe.execute()

    async def health(self) -> str:
        try:
            await self._on_own_loop(asyncio.wait_for(self.pool.ping(), HEALTH_TIMEOUT))
        except Exception as exc:
            return f"error: {type(exc).__name__}"
        return "ok"
