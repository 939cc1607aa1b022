"""The embedded queue: job functions run as asyncio tasks inside the server process.

Requests live in the database, so after a restart the queued ones are run again and the ones that
were running are marked failed (never left ``started``). The hourly housekeeping runs here too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TYPE_CHECKING

from annota.core.queue import QUEUES, run_periodically
from annota.core.services import requests as request_service
from annota.runtime import housekeeping
from annota.runtime.queues import execute

if TYPE_CHECKING:
    from annota.runtime.state import AppState

logger = logging.getLogger(__name__)


class InProcessQueue:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.queues: dict[str, asyncio.Queue[str]] = {}
        self.workers: list[asyncio.Task[None]] = []
        self.housekeeping: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        concurrency = max(1, self.state.settings.inprocess_concurrency)
        for name in QUEUES:
            queue: asyncio.Queue[str] = asyncio.Queue()
            self.queues[name] = queue
            self.workers += [
                asyncio.create_task(self._work(queue), name=f"annota-{name}-{i}") for i in range(concurrency)
            ]
        ttl = dt.timedelta(seconds=self.state.settings.request_ttl)
        async with self.state.sessionmaker.begin() as session:
            failed, queued = await request_service.fail_interrupted(session, ttl)
        for request_id in failed:
            logger.warning("request %s was interrupted by a restart and is marked failed", request_id)
        for request_id, queue_name in queued:
            await self.enqueue(request_id, queue_name)
        # the periodic jobs of every queue: this process serves them all
        self.workers += [
            asyncio.create_task(run_periodically(job, self.state.job_context), name=f"annota-{job.name}")
            for job in self.state.jobs.periodic.values()
        ]
        self.housekeeping = asyncio.create_task(
            housekeeping.run_periodically(self.state.sessionmaker, self.state.storage, self.state.settings),
            name="annota-housekeeping",
        )

    async def close(self) -> None:
        tasks = [*self.workers, *([self.housekeeping] if self.housekeeping else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.workers.clear()
        self.housekeeping = None

    async def enqueue(self, request_id: str, queue: str) -> None:
        target = self.queues[queue]
        if self.loop is None or asyncio.get_running_loop() is self.loop:
            target.put_nowait(request_id)
        else:
            # called from another event loop (an embedding application's thread, a test client):
            # asyncio queues only wake their consumers when touched from their own loop
            self.loop.call_soon_threadsafe(target.put_nowait, request_id)

    async def cancel(self, request_id: str, queue: str) -> None:
        """Nothing to do: the runner skips requests whose row was deleted."""

    async def health(self) -> str:
        if not self.workers or any(task.done() for task in self.workers):
            return "error: the in-process runner is not running"
        return "ok"

    async def join(self) -> None:
        """Wait until every enqueued request has run (tests, graceful shutdown)."""
        await asyncio.gather(*(queue.join() for queue in self.queues.values()))

    async def _work(self, queue: asyncio.Queue[str]) -> None:
        while True:
            request_id = await queue.get()
            try:
                await execute(self.state, request_id)
            except Exception:
                logger.exception("request %s crashed the in-process runner", request_id)
            finally:
                queue.task_done()
