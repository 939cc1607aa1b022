"""Background jobs: the registry of job functions and how one background request runs.

The queue *backends* (in-process, arq on Redis) live in the runtime; both call ``run_request``,
so a job behaves the same wherever it runs. The request row in the database is the source of
truth for status and progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from annota.core import metrics, request_ids
from annota.core.errors import AnnotaError, ConfigError

logger = logging.getLogger(__name__)

#: CVAT's queues, each served by its own worker pool.
QUEUES = ("import", "export", "annotation", "webhooks", "chunks", "utils")

#: How long finished and failed requests stay listed unless configured otherwise (``request_ttl``).
DEFAULT_REQUEST_TTL = dt.timedelta(days=1)
#: How long a running request is held by its worker between two renewals (``request_lease``).
DEFAULT_LEASE = dt.timedelta(seconds=30)

JobFunction = Callable[..., Awaitable[Any]]
T = TypeVar("T")


@dataclass(frozen=True)
class JobDefinition:
    name: str
    function: JobFunction
    queue: str
    timeout: float
    max_tries: int
    plugin: str


@dataclass(frozen=True)
class PeriodicJob:
    """A job run every ``every`` seconds by whatever serves its queue (no request row)."""

    name: str
    function: JobFunction
    queue: str
    every: float
    plugin: str


class JobRegistry:
    """Job functions by name, filled through the ``register_jobs`` hook."""

    def __init__(self) -> None:
        self.jobs: dict[str, JobDefinition] = {}
        self.periodic: dict[str, PeriodicJob] = {}

    def register(
        self,
        plugin: str,
        name: str,
        function: JobFunction,
        queue: str = "utils",
        timeout: float = 3600,
        max_tries: int = 3,
        every: float | None = None,
    ) -> None:
        if queue not in QUEUES:
            raise ConfigError(f"plugin {plugin}: job {name!r} names unknown queue {queue!r}")
        if every is not None:
            if not every > 0:
                raise ConfigError(f"plugin {plugin}: periodic job {name!r} needs every > 0, got {every!r}")
            if name in self.periodic:
                raise ConfigError(f"plugin {plugin}: periodic job {name!r} is already registered")
            self.periodic[name] = PeriodicJob(name, function, queue, every, plugin)
            return
        if not timeout > 0:
            raise ConfigError(f"plugin {plugin}: job {name!r} needs a positive timeout, got {timeout!r}")
        if max_tries < 1:
            raise ConfigError(f"plugin {plugin}: job {name!r} needs max_tries >= 1, got {max_tries!r}")
        if name in self.jobs:
            raise ConfigError(
                f"plugin {plugin}: job {name!r} is already registered by plugin {self.jobs[name].plugin}"
            )
        self.jobs[name] = JobDefinition(name, function, queue, timeout, max_tries, plugin)

    def on_queue(self, queue: str) -> list[JobDefinition]:
        return [definition for definition in self.jobs.values() if definition.queue == queue]

    def periodic_on(self, queue: str) -> list[PeriodicJob]:
        return [job for job in self.periodic.values() if job.queue == queue]

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
    #: the server's storage backend (``annota.core.storage.StorageBackend``)
    storage: Any = None
    #: the dataset formats (``annota.core.formats.registry.FormatRegistry``)
    formats: Any = None
    #: the process's auto-annotation models (``annota.core.models.host.ModelHost``)
    models: Any = None
    #: the cloud storage providers (``annota.core.cloud.CloudProviderRegistry``)
    cloud_providers: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: set by ``finish_in``: the job recorded its request's success itself
    finished: bool = False

    async def finish_in(self, session: AsyncSession, result: JobResult | None = None) -> bool:
        """Record the request finished in the caller's transaction, so that what the job writes
        there and the end of its request commit together: a worker killed after the commit does
        not run the job again, one killed before leaves nothing behind. ``False`` when this attempt
        no longer holds the request (it was cancelled, or another worker took it up): the caller
        must then write nothing (raise to roll back)."""
        from annota.core.services import requests as request_service

        ttl_seconds = getattr(self.settings, "request_ttl", None)
        ttl = dt.timedelta(seconds=ttl_seconds) if ttl_seconds else DEFAULT_REQUEST_TTL
        recorded = await request_service.finish(
            session,
            self.request_id,
            failed=False,
            result=result or JobResult(),
            ttl=ttl,
            attempt=self.attempt,
        )
        if recorded:
            await request_service.take_leftovers(session, self.request_id, final=True)
            await _record_completion(session, self.request_id)
            self.finished = True
        return recorded

    async def set_progress(self, progress: float, message: str | None = None) -> None:
        """Report progress (0..1) on the request; clients polling ``/api/requests`` see it."""
        from annota.core.services import requests as request_service

        async with self.sessionmaker.begin() as session:
            await request_service.set_progress(session, self.request_id, progress, message, self.attempt)

    async def leave(self, kind: str, ref: str, *, until_end: bool = False) -> None:
        """Note that this attempt made ``ref`` (a ``kind`` of ``annota.core.leftovers``) before
        making it part of its result: should the attempt die, the retry or the end of the request
        removes it. ``until_end`` marks the job's input (an upload), which a retry still needs:
        only a request that fails for good removes it. A job that finishes or cleans up after
        itself need not take it back."""
        from annota.core.services import requests as request_service

        async with self.sessionmaker.begin() as session:
            await request_service.add_leftover(
                session, self.request_id, self.attempt, kind, ref, until_end=until_end
            )


class QueueBackend(Protocol):
    """How requests reach a worker: ``enqueue`` after the request row is committed."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def enqueue(self, request_id: str, queue: str) -> None: ...

    async def cancel(self, request_id: str, queue: str) -> None:
        """Forget a request whose (queued) row was just deleted; workers skip deleted rows anyway."""
        ...

    async def health(self) -> str:
        """``"ok"``, or what is wrong (shown by ``/api/server/health``)."""
        ...


def effective_timeout(definition: JobDefinition, limit: float = 0) -> float:
    """A job's time limit: its own, lowered to ``limit`` when one is set (``limit > 0``)."""
    return min(definition.timeout, limit) if limit > 0 else definition.timeout


def _error_message(exc: BaseException) -> str:
    message = exc.detail if isinstance(exc, AnnotaError) and isinstance(exc.detail, str) else str(exc)
    return message or type(exc).__name__


async def _record_completion(session: AsyncSession, request_id: str) -> None:
    """``completed:request[<operation>]`` with the request as ``GET /api/requests/{id}`` shows it,
    in the transaction that finishes it (a request cancelled meanwhile has no row and no event)."""
    from annota.core.db.tables import BackgroundRequest
    from annota.core.events import request_event
    from annota.core.services import events as event_service
    from annota.core.services import requests as request_service

    row = await session.get(BackgroundRequest, request_id)
    if row is None or row.status not in ("finished", "failed"):
        return
    read = await request_service.read_many(session, [row])
    if not read:
        # the owner was deleted: nobody can see the request any more
        return
    await event_service.record(
        session, request_event(read[0].operation.type), "request", read[0], user_id=row.owner_id,
        org_id=row.org_id, project_id=row.project_id, task_id=row.task_id, job_id=row.job_id,
    )  # fmt: skip


def is_connection_loss(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is the database connection going away: the job was
    interrupted, not wrong, and runs again."""
    from sqlalchemy.exc import DBAPIError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def _keep_lease(
    sessionmaker: async_sessionmaker[AsyncSession],
    request_id: str,
    attempt: int,
    lease: dt.timedelta,
    on_lost: Callable[[], None],
) -> None:
    """Renew the running attempt's lease three times per lease until cancelled; a renewal that
    fails (the database is away for a moment) is tried again at the next beat. Calls ``on_lost``
    when another worker has taken the request up (this one was too slow to renew)."""
    from annota.core.services import requests as request_service

    beat = lease.total_seconds() / 3
    while True:
        await asyncio.sleep(beat)
        try:
            async with sessionmaker.begin() as session:
                held = await request_service.renew_lease(session, request_id, attempt, lease)
        except Exception as exc:
            logger.warning("request %s: could not renew its lease: %s", request_id, exc)
            continue
        if not held:
            # another worker took it up after our lease lapsed: what this attempt does is not recorded
            logger.warning("request %s: attempt %d lost its lease", request_id, attempt)
            on_lost()
            return


async def _remove_leftovers(context: JobContext, final: bool) -> None:
    """Remove what earlier attempts of the request left (their worker died, or they failed); when
    the request failed for good (``final``), its input too."""
    from annota.core import leftovers
    from annota.core.services import requests as request_service

    async def take(session: AsyncSession) -> list[tuple[str, str]]:
        return await request_service.take_leftovers(session, context.request_id, final)

    for kind, ref in await _transaction(context.sessionmaker, take):
        try:
            await leftovers.remove(context, kind, ref)
        except Exception:
            logger.exception("request %s: could not remove leftover %s %s", context.request_id, kind, ref)
        else:
            logger.info("request %s: removed leftover %s %s", context.request_id, kind, ref)


#: how often a transaction that records a request's state is tried when the connection drops
RECORD_TRIES = 5


async def _transaction(
    sessionmaker: async_sessionmaker[AsyncSession], work: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    """Run ``work`` in a transaction, again on a fresh connection when the database connection was
    lost (the outcome of a job that ran must not be lost to a dropped connection)."""
    for tries in range(1, RECORD_TRIES + 1):
        try:
            async with sessionmaker.begin() as session:
                return await work(session)
        except Exception as exc:
            if tries == RECORD_TRIES or not is_connection_loss(exc):
                raise
            logger.warning("the database connection was lost; trying again (%d)", tries)
            await asyncio.sleep(0.1 * tries)
    raise AssertionError("unreachable")


class _LeaseLost(Exception):
    """Another worker took the request up: this attempt stops and records nothing."""


async def _run_leased(
    context: JobContext, function: JobFunction, kwargs: dict[str, Any], lease: dt.timedelta
) -> Any:
    """Run the job while keeping the attempt's lease; ``_LeaseLost`` when it could not."""
    job = asyncio.ensure_future(function(context, **kwargs))
    lost = False

    def stop_job() -> None:
        nonlocal lost
        lost = True
        job.cancel()

    keeper = asyncio.create_task(
        _keep_lease(context.sessionmaker, context.request_id, context.attempt, lease, stop_job)
    )
    try:
        return await job
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if lost and (current is None or not current.cancelling()):
            raise _LeaseLost from None
        raise
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)


async def _record_failure(context: JobContext, message: str, request_ttl: dt.timedelta) -> bool:
    """Record that the attempt failed with ``message`` and remove what it left, its input
    included; ``False`` if the attempt no longer held the request."""
    from annota.core.services import requests as request_service

    async def record(session: AsyncSession) -> bool:
        recorded = await request_service.finish(
            session,
            context.request_id,
            failed=True,
            message=message,
            ttl=request_ttl,
            attempt=context.attempt,
        )
        if recorded:
            await _record_completion(session, context.request_id)
        return recorded

    recorded = await _transaction(context.sessionmaker, record)
    if recorded:
        await _remove_leftovers(context, final=True)
    return recorded


async def _record_success(context: JobContext, outcome: Any, request_ttl: dt.timedelta) -> bool:
    from annota.core.services import requests as request_service

    result = outcome if isinstance(outcome, JobResult) else JobResult()

    async def record(session: AsyncSession) -> bool:
        recorded = await request_service.finish(
            session, context.request_id, failed=False, result=result, ttl=request_ttl, attempt=context.attempt
        )
        if recorded:
            # what the attempt noted down is now part of its result
            await request_service.take_leftovers(session, context.request_id, final=True)
            await _record_completion(session, context.request_id)
        return recorded

    return await _transaction(context.sessionmaker, record)


async def run_request(
    request_id: str,
    registry: JobRegistry,
    make_context: Callable[[str, int], JobContext],
    *,
    request_ttl: dt.timedelta = DEFAULT_REQUEST_TTL,
    time_limit: float = 0,
    lease: dt.timedelta = DEFAULT_LEASE,
    requeue: Callable[[str, str], Awaitable[None]] | None = None,
) -> str:
    """Run the job behind one request and record the outcome. Returns the final status
    (``finished``, ``failed``), ``skipped`` or ``requeued``.

    Safe to call again for the same request (a retried job): finished, failed, deleted (cancelled)
    requests and requests another worker holds are skipped. The request is leased while the job
    runs (renewed every third of ``lease``); a request whose worker died is taken up again once its
    lease lapsed, until the job's ``max_tries`` attempts are used up, and what the dead attempt
    left (``JobContext.leave``) is removed first. An attempt that lost its lease (its worker was
    too slow to renew it) stops and records nothing. A job interrupted by the loss of its database
    connection goes back to the queue through ``requeue(request_id, queue)``. A job runs at most its
    timeout (lowered to ``time_limit`` when set); finished requests are kept ``request_ttl``.
    """
    from annota.core.services import requests as request_service

    sessionmaker = make_context(request_id, 0).sessionmaker

    async def claim(session: AsyncSession) -> tuple[str, dict[str, Any], int, str | None] | None:
        return await request_service.claim(session, request_id, lease)

    claimed = await _transaction(sessionmaker, claim)
    if claimed is None:
        return "skipped"
    job_name, kwargs, attempt, origin_request_id = claimed
    # the job's log lines carry the id of the HTTP request that started it
    with request_ids.bound(origin_request_id):
        context = make_context(request_id, attempt)
        started = time.monotonic()
        timeout = 0.0
        deadline: asyncio.Timeout | None = None
        queue = registry.jobs[job_name].queue if job_name in registry.jobs else "unknown"
        try:
            await _remove_leftovers(context, final=False)
            definition = registry.get(job_name)
            if attempt > definition.max_tries:
                # only a worker that died while running the job gets here: a raising job is never retried
                raise AnnotaError(
                    f"The worker running this request stopped {attempt - 1} times; it is not tried again."
                )
            timeout = effective_timeout(definition, time_limit)
            logger.info("request %s: job %s started (attempt %d)", request_id, job_name, attempt)
            async with asyncio.timeout(timeout) as deadline:
                outcome = await _run_leased(context, definition.function, kwargs, lease)
        except _LeaseLost:
            logger.warning(
                "request %s: attempt %d stopped, another worker has taken it up", request_id, attempt
            )
            return "skipped"
        except Exception as exc:
            if is_connection_loss(exc) and requeue is not None:
                logger.warning("request %s: the database connection was lost; running it again", request_id)

                async def release(session: AsyncSession) -> str | None:
                    return await request_service.release(session, request_id, attempt)

                released_to = await _transaction(sessionmaker, release)
                if released_to is not None:
                    await requeue(request_id, released_to)
                return "requeued"
            if isinstance(exc, TimeoutError) and deadline is not None and deadline.expired():
                message = f"The request did not finish within its time limit of {timeout:g} seconds."
            else:
                message = _error_message(exc)
            if not isinstance(exc, AnnotaError | TimeoutError):
                logger.exception("request %s: job %s raised", request_id, job_name)
            metrics.count_storage_error(exc, getattr(context.settings, "storage", "unknown"), "job")
            logger.info(
                "request %s: failed after %.2f s: %s", request_id, time.monotonic() - started, message
            )
            await _record_failure(context, message, request_ttl)
            _observe(queue, job_name, "failed", time.monotonic() - started)
            return "failed"
        if context.finished:
            # the job ended its request in its own last transaction (``JobContext.finish_in``)
            logger.info("request %s: finished in %.2f s", request_id, time.monotonic() - started)
            _observe(queue, job_name, "finished", time.monotonic() - started)
            return "finished"
        if not await _record_success(context, outcome, request_ttl):
            logger.warning("request %s: attempt %d finished after losing its lease", request_id, attempt)
            return "skipped"
        logger.info("request %s: finished in %.2f s", request_id, time.monotonic() - started)
        _observe(queue, job_name, "finished", time.monotonic() - started)
        return "finished"


def _observe(queue: str, job_name: str, status: str, seconds: float) -> None:
    metrics.BACKGROUND_REQUESTS.labels(queue=queue, action=job_name, status=status).inc()
    metrics.JOB_DURATION.labels(queue=queue, status=status).observe(seconds)


#: per event loop, what wakes each periodic job running on it
_wake_ups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Event]] = (
    weakref.WeakKeyDictionary()
)


def wake(name: str) -> None:
    """Run the periodic job ``name`` now rather than at its next tick, if a worker runs it on this
    event loop (a run under way is followed by another); elsewhere it keeps to its schedule."""
    event = _wake_ups.get(asyncio.get_running_loop(), {}).get(name)
    if event is not None:
        event.set()


async def run_periodically(
    job: PeriodicJob, make_context: Callable[[str, int], JobContext], *, wakeable: bool = False
) -> None:
    """Run ``job`` every ``job.every`` seconds until cancelled; a failing run is logged. A
    ``wakeable`` job also runs when woken (``wake``): workers' jobs are, while a server running
    jobs beside its requests keeps them to their schedule, so that bursts of small runs do not
    take turns with the requests."""
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()
    if wakeable:
        _wake_ups.setdefault(loop, {})[job.name] = woken
    try:
        while True:
            woken.clear()
            try:
                await job.function(make_context(job.name, 1))
            except Exception:
                logger.exception("periodic job %s failed", job.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), job.every)
    finally:
        if wakeable:
            _wake_ups.get(loop, {}).pop(job.name, None)
