"""The production queue: requests go to Redis with arq and ``annota worker`` processes run them.

Redis carries only "run request X"; the request row in the database holds everything else, so a
lost Redis job never loses a request's status and any worker can pick up any request.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import in_progress_key_prefix, job_key_prefix
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from annota.core.db.types import utcnow
from annota.core.errors import ConfigError, ServiceUnavailable
from annota.core.services import requests as request_service

if TYPE_CHECKING:
    from annota.runtime.settings import Settings
    from annota.runtime.state import AppState

#: the one arq function every worker serves: run the request whose id is its argument
RUN_REQUEST = "annota.run_request"
#: how long a health check waits for Redis
HEALTH_TIMEOUT = 2.0

T = TypeVar("T")

logger = logging.getLogger(__name__)


def redis_settings(settings: Settings) -> RedisSettings:
    try:
        parsed = RedisSettings.from_dsn(settings.redis_url)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"redis_url: {settings.redis_url!r} is not a redis:// URL ({exc})") from exc
    # a command on a connection Redis dropped (it restarted) is sent again on a new one, so the
    # first request after an outage is not refused
    parsed.retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), 2)
    parsed.retry_on_error = [RedisConnectionError, RedisTimeoutError]
    return parsed


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

    async def sweep(self) -> list[str]:
        """Queue again the requests no worker will otherwise run; returns their ids.

        Those are the requests whose worker died while running them (their lease lapsed) and the
        requests that have waited longer than ``requeue_after`` seconds with no job in Redis that a
        worker may still take: their enqueue was lost (Redis went away), Redis restarted without its
        data or was flushed, or a worker died between taking the job and starting the request. A
        request queued twice runs once, as ``run_request`` claims a request once.
        """
        return await self._on_own_loop(self._sweep())

    async def requeue_lost(self) -> list[str]:
        """Queue again only the waiting requests that have no job in Redis (see ``sweep``)."""
        return await self._on_own_loop(self._requeue_lost())

    async def _sweep(self) -> list[str]:
        async with self.state.sessionmaker.begin() as session:
            lapsed = await request_service.release_lapsed(session)
        requeued = []
        for request_id, queue in lapsed:
            logger.warning("request %s: its worker stopped renewing its lease; queueing it again", request_id)
            # should this fail, the request waits in the database for the next sweep
            await self.enqueue(request_id, queue)
            requeued.append(request_id)
        return requeued + await self._requeue_lost()

    async def _requeue_lost(self) -> list[str]:
        settings = self.state.settings
        cutoff = utcnow() - dt.timedelta(seconds=settings.requeue_after)
        async with self.state.sessionmaker() as session:
            waiting = await request_service.queued_before(session, cutoff)
        by_queue: dict[str, list[str]] = {}
        for request_id, queue in waiting:
            by_queue.setdefault(queue, []).append(request_id)
        requeued = []
        for queue, request_ids in by_queue.items():
            present = await self._requests_with_jobs(queue_key(settings, queue), set(request_ids))
            for request_id in request_ids:
                if request_id in present:
                    continue
                logger.warning("request %s has no job in Redis; queueing it again", request_id)
                await self.enqueue(request_id, queue)
                requeued.append(request_id)
        return requeued

    async def _requests_with_jobs(self, key: str, request_ids: set[str]) -> set[str]:
        """Which of ``request_ids`` have a job on the queue ``key`` that a worker may take: a member
        ``<request id>#…`` of its sorted set whose job data is still there and that no worker has
        taken (a taken job of a still queued request belongs to a worker that died before starting
        it, and arq would hold it until its time limit is over)."""
        job_ids = [
            job_id
            async for member, _score in self.pool.zscan_iter(key)
            if (job_id := member.decode()).rpartition("#")[0] in request_ids
        ]
        if not job_ids:
            return set()
        async with self.pool.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.exists(job_key_prefix + job_id)
                pipe.exists(in_progress_key_prefix + job_id)
            found = await pipe.execute()
        return {
            job_id.rpartition("#")[0]
            for job_id, exists, taken in zip(job_ids, found[::2], found[1::2], strict=True)
            if exists and not taken
        }

    async def health(self) -> str:
        try:
            await self._on_own_loop(asyncio.wait_for(self.pool.ping(), HEALTH_TIMEOUT))
        except Exception as exc:
            return f"error: {type(exc).__name__}"
        return "ok"
