"""``annota worker``: arq workers that run background requests from Redis.

One process serves any set of queues (one arq ``Worker`` per queue, all on one event loop); run as
many processes as the load needs. Request state lives in the database, so workers are
interchangeable: a worker holds the requests it runs under a lease it keeps renewing, and every
worker sweeps, at start-up and then every ``sweep_interval`` seconds, for requests whose lease
lapsed (their worker died) and for queued requests with no job in Redis (their enqueue was lost,
Redis lost its data), and queues them again. When Redis goes away a worker keeps running the jobs
it has, and reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from typing import Any

from arq.cron import cron
from arq.worker import Worker, func
from redis.exceptions import RedisError

from annota.core.errors import ServiceUnavailable
from annota.core.plugins import PluginManager
from annota.core.queue import QUEUES, effective_timeout, run_periodically
from annota.runtime import housekeeping
from annota.runtime.queues import execute
from annota.runtime.queues.arq import RUN_REQUEST, ArqQueue, queue_key, redis_settings
from annota.runtime.settings import Settings
from annota.runtime.state import AppState, close_state, open_state

logger = logging.getLogger(__name__)

#: arq's own time limit sits this far above the job's, so that a job running out of time is
#: recorded as failed by ``run_request`` before arq cancels it
TIMEOUT_GRACE = 2.0
#: the time limit on a queue no registered job uses (only unknown jobs can arrive there)
EMPTY_QUEUE_TIMEOUT = 60.0


#: first and longest wait before a worker that lost Redis tries again, in seconds
RECONNECT_DELAYS = (0.5, 10.0)


class ReconnectingWorker(Worker):
    """An arq worker that outlives Redis going away: jobs under way go on (their outcome is in the
    database), and it polls again, waiting longer after each failed try, until Redis is back."""

    async def main(self) -> None:
        first, longest = RECONNECT_DELAYS
        delay = first
        while True:
            try:
                await super().main()
                return
            except (RedisError, OSError) as exc:
                if self._healthy_since_failure:
                    delay = first
                self._healthy_since_failure = False
                logger.warning(
                    "worker for queue %s lost Redis (%s); trying again in %.1f s",
                    self.queue_name, exc, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)

    async def _poll_iteration(self) -> None:
        await super()._poll_iteration()
        if not self._healthy_since_failure:
            logger.info("worker for queue %s is connected to Redis", self.queue_name)
        self._healthy_since_failure = True

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        for job_id in job_ids:
            counter = self.job_counter
            try:
                await super().start_jobs([job_id])
            except BaseException:
                # arq takes a slot before asking Redis for the job: give it back, or lost
                # connections would use up the worker's slots one by one
                if self.job_counter > counter and job_id.decode() not in self.tasks:
                    self.job_counter -= 1
                    self.sem.release()
                raise

    _healthy_since_failure = True


async def _connect(queue: ArqQueue) -> None:
    """Connect to Redis, waiting for it (longer after each failed try) when it is away, so that a
    worker its supervisor starts during an outage serves once Redis is back."""
    first, longest = RECONNECT_DELAYS
    delay = first
    while True:
        try:
            await queue.start()
            return
        except ServiceUnavailable as exc:
            logger.warning("cannot reach Redis (%s); trying again in %.1f s", exc.__cause__ or exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, longest)


async def sweep_periodically(queue: ArqQueue, interval: float) -> None:
    """Queue again, now and every ``interval`` seconds, the requests no worker would otherwise run
    (``ArqQueue.sweep``); a sweep that fails (Redis or the database away) is tried at the next."""
    while True:
        try:
            await queue.sweep()
        except Exception as exc:
            logger.warning("the sweep for requests to queue again failed: %s", exc)
        await asyncio.sleep(interval)


def queue_limits(state: AppState, queue: str) -> tuple[float, int]:
    """arq's timeout and max_tries for ``queue``: the largest of its jobs', plus room for
    ``run_request`` to record a timeout, and one more try to record that a job gave up."""
    definitions = state.jobs.on_queue(queue)
    limit = state.settings.job_timeout
    timeout = max(
        (effective_timeout(definition, limit) for definition in definitions),
        default=limit or EMPTY_QUEUE_TIMEOUT,
    )
    max_tries = max((definition.max_tries for definition in definitions), default=1)
    return timeout + TIMEOUT_GRACE, max_tries + 1


def build_worker(
    state: AppState, queue: str, *, burst: bool = False, max_jobs: int = 10, shutdown_grace: int = 25
) -> Worker:
    """An arq worker for one queue; the ``utils`` one also runs the hourly housekeeping."""
    settings = state.settings
    timeout, max_tries = queue_limits(state, queue)

    async def run_request_job(ctx: dict[str, Any], request_id: str) -> str:
        return await execute(state, request_id)

    async def housekeeping_job(ctx: dict[str, Any]) -> int:
        return await housekeeping.prune(state.sessionmaker, state.storage, state.settings)

    cron_jobs = []
    if queue == "utils":
        cron_jobs.append(
            cron(
                housekeeping_job,
                # named per installation: arq runs one cron job per name and time across all workers
                name=f"{settings.queue_prefix}:housekeeping",
                minute=0,
                run_at_startup=True,
                # not above the queue's limit, which also sets how long a killed job stays leased
                timeout=timeout,
            )
        )
    return ReconnectingWorker(
        functions=[
            func(run_request_job, name=RUN_REQUEST, timeout=timeout, max_tries=max_tries, keep_result=0)
        ],
        queue_name=queue_key(settings, queue),
        cron_jobs=cron_jobs,
        redis_settings=redis_settings(settings),
        burst=burst,
        handle_signals=False,
        job_completion_wait=shutdown_grace,
        max_jobs=max_jobs,
        # request rows hold the outcome; nothing to keep in Redis
        keep_result=0,
        health_check_interval=60,
    )


def _handle_signals(workers: Sequence[Worker]) -> Callable[[], None]:
    """SIGTERM/SIGINT: stop taking jobs and give running ones the grace period; a second signal
    stops at once. Running jobs that are stopped are run again by another worker."""
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def on_signal(signum: signal.Signals) -> None:
        received.append(signum)
        for worker in workers:
            if len(received) == 1:
                worker.handle_sig_wait_for_completion(signum)
            else:
                worker.handle_sig(signum)

    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, on_signal, signum)

    def restore() -> None:
        for signum in signals:
            loop.remove_signal_handler(signum)

    return restore


async def run_worker(
    settings: Settings,
    queues: Sequence[str],
    burst: bool = False,
    *,
    max_jobs: int = 10,
    shutdown_grace: int = 25,
    handle_signals: bool = True,
    plugins: PluginManager | None = None,
) -> None:
    """Serve ``queues`` until a signal arrives (or, with ``burst``, until they are empty).

    The database must be migrated already (SQLite is migrated automatically). ``plugins`` replaces
    the ones installed (embedding applications, tests).
    """
    unknown = [queue for queue in queues if queue not in QUEUES]
    if unknown:
        raise ValueError(f"unknown queues {unknown}; the queues are {', '.join(QUEUES)}")
    state = await open_state(settings, plugins)
    try:
        # jobs may start further requests; they go to Redis like the API's
        queue_backend = ArqQueue(state)
        state.queue = queue_backend
        await _connect(queue_backend)
        workers = [
            build_worker(state, queue, burst=burst, max_jobs=max_jobs, shutdown_grace=shutdown_grace)
            for queue in dict.fromkeys(queues)
        ]
        await state.plugins.call_all("startup", app=state)
        loops = [
            asyncio.create_task(
                run_periodically(job, state.job_context, wakeable=True), name=f"annota-{job.name}"
            )
            for queue in dict.fromkeys(queues)
            for job in state.jobs.periodic_on(queue)
        ]
        loops.append(
            asyncio.create_task(
                sweep_periodically(queue_backend, settings.sweep_interval), name="annota-sweep"
            )
        )
        restore = _handle_signals(workers) if handle_signals else None
        logger.info("worker serving queues %s", ", ".join(worker.queue_name for worker in workers))
        try:
            await _run_all(workers)
        finally:
            if restore is not None:
                restore()
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await asyncio.gather(*(worker.close() for worker in workers), return_exceptions=True)
            await state.plugins.call_all("shutdown", app=state)
    finally:
        await close_state(state)


async def _run_all(workers: Sequence[Worker]) -> None:
    """Run the workers until all stop; when one fails (not for want of Redis, which they wait
    for), stop the others too, so the process exits and its supervisor can restart it."""
    tasks = [asyncio.create_task(worker.async_run()) for worker in workers]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            # running jobs are cancelled (and left to be run again) by ``Worker.close``
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for worker, task in zip(workers, tasks, strict=True):
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise ServiceUnavailable(
                f"The worker for queue {worker.queue_name} stopped: {error!r}"
            ) from error
