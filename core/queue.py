"""Background jobs: the registry of job functions and how one background request runs.

The queue *backends* (in-process, arq on Redis) live in the runtime; both call ``run_request``,
so a job behaves the same wherever it runs. The request row in the database is the source of
truth for status and progress.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from annota.core.errors import AnnotaError, ConfigError

logger = logging.getLogger(__name__)

#: CVAT's queues, each served by its own worker pool.
QUEUES = ("import", "export", "annotation", "webhooks", "chunks", "utils")

JobFunction = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class JobDefinition:
    name: str
    function: JobFunction
    queue: str
    timeout: float
    max_tries: int
    plugin: str


class JobRegistry:
    """Job functions by name, filled through the ``register_jobs`` hook."""

    def __init__(self) -> None:
        self.jobs: dict[str, JobDefinition] = {}

    def register(
        self,
        plugin: str,
        name: str,
        function: JobFunction,
        queue: str = "utils",
        timeout: float = 3600,
        max_tries: int = 3,
    ) -> None:
        if queue not in QUEUES:
            raise ConfigError(f"plugin {plugin}: job {name!r} names unknown queue {queue!r}")
        if name in self.jobs:
            raise ConfigError(
                f"plugin {plugin}: job {name!r} is already registered by plugin {self.jobs[name].plugin}"
            )
        self.jobs[name] = JobDefinition(name, function, queue, timeout, max_tries, plugin)

    def get(self, name: str) -> JobDefinition:
        try:
            return self.jobs[name]
        except KeyError:
            raise ConfigError(f"no job function named {name!r} is registered") from None


@dataclass
class JobResult:
    """What a job function may return to fill in its request."""

    result_id: int | None = None
    result_url: str | None = None
    result_file: str | None = None
    message: str = ""


@dataclass
class JobContext:
    """Handed to every job function as its first argument."""

    request_id: str
    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Any
    plugins: Any
    attempt: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    async def set_progress(self, progress: float, message: str | None = None) -> None:
        """Report progress (0..1) on the request; clients polling ``/api/requests`` see it."""
        from annota.core.services import requests as request_service

        async with self.sessionmaker.begin() as session:
            await request_service.set_progress(session, self.request_id, progress, message)


class QueueBackend(Protocol):
    """How requests reach a worker: ``enqueue`` after the request row is committed."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def enqueue(self, request_id: str, queue: str) -> None: ...

    async def cancel(self, request_id: str) -> None: ...


async def run_request(
    request_id: str,
    registry: JobRegistry,
    make_context: Callable[[str, int], JobContext],
) -> str:
    """Run the job behind one request and record the outcome. Returns the final status.

    Safe to call again for the same request (a retried job): finished, failed or deleted
    (cancelled) requests are skipped; a request left ``started`` by a dead worker runs again.
    """
    from annota.core.services import requests as request_service

    context_probe = make_context(request_id, 0)
    async with context_probe.sessionmaker.begin() as session:
        row = await request_service.claim(session, request_id)
        if row is None:
            return "skipped"
        job_name, kwargs, attempt = row
    try:
        definition = registry.get(job_name)
        context = make_context(request_id, attempt)
        outcome = await definition.function(context, **kwargs)
    except Exception as exc:
        message = exc.detail if isinstance(exc, AnnotaError) and isinstance(exc.detail, str) else str(exc)
        message = message or type(exc).__name__
        if not isinstance(exc, AnnotaError):
            logger.exception("request %s failed", request_id)
        async with context_probe.sessionmaker.begin() as session:
            await request_service.finish(session, request_id, failed=True, message=message)
        return "failed"
    result = outcome if isinstance(outcome, JobResult) else JobResult()
    async with context_probe.sessionmaker.begin() as session:
        await request_service.finish(session, request_id, failed=False, result=result)
    return "finished"
