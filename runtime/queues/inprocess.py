"""The embedded queue: job functions run as asyncio tasks inside the server process.

Requests live in the database, so after a restart the queued ones are run again and the ones that
were running are marked failed (never left ``started``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from annota.core.queue import QUEUES, run_request
from annota.core.services import requests as request_service

if TYPE_CHECKING:
    from annota.runtime.state import AppState

logger = logging.getLogger(__name__)


class InProcessQueue:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.queues: dict[str, asyncio.Queue[str]] = {}
        self.workers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        concurrency = max(1, self.state.settings.inprocess_concurrency)
        for name in QUEUES:
            queue: asyncio.Queue[str] = asyncio.Queue()
            self.queues[name] = queue
            self.workers += [
                asyncio.create_task(self._work(queue), name=f"annota-{name}-{i}") for i in range(concurrency)
            ]
        async with self.state.sessionmaker.begin() as session:
            failed, queued = await request_service.fail_interrupted(session)
        for request_id in failed:
            logger.warning("request %s was interrupted by a restart and is marked failed", request_id)
        for request_id, queue_name in queued:
            await self.enqueue(request_id, queue_name)

    async def close(self) -> None:
        for task in self.workers:
            task.cancel()
        await asyncio.gather(*self.workers, return_exceptions=True)
        self.workers.clear()

    async def enqueue(self, request_id: str, queue: str) -> None:
        await self.queues[queue].put(request_id)

    async def cancel(self, request_id: str) -> None:
        """Nothing to do: the runner skips requests whose row was deleted."""

    async def join(self) -> None:
        """Wait until every enqueued request has run (tests, graceful shutdown)."""
        await asyncio.gather(*(queue.join() for queue in self.queues.values()))

    async def _work(self, queue: asyncio.Queue[str]) -> None:
        while True:
            request_id = await queue.get()
            try:
                await run_request(request_id, self.state.jobs, self.state.job_context)
            except Exception:
                logger.exception("request %s crashed the in-process runner", request_id)
            finally:
                queue.task_done()
