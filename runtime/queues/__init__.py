"""Queue backends: the in-process runner (embedded default) and arq on Redis (production)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from annota.core.queue import QueueBackend, run_request

if TYPE_CHECKING:
    from annota.runtime.state import AppState


def make_queue(state: AppState) -> QueueBackend:
    """arq when ``redis_url`` is set, otherwise the in-process runner."""
    if state.settings.redis_url:
        from annota.runtime.queues.arq import ArqQueue

        return ArqQueue(state)
    from annota.runtime.queues.inprocess import InProcessQueue

    return InProcessQueue(state)


async def execute(state: AppState, request_id: str) -> str:
    """Run one request with the configured limits; what every backend calls for a request."""

    async def requeue(request_id: str, queue: str) -> None:
        if state.queue is not None:
            await state.queue.enqueue(request_id, queue)

    return await run_request(
        request_id,
        state.jobs,
        state.job_context,
        request_ttl=dt.timedelta(seconds=state.settings.request_ttl),
        time_limit=state.settings.job_timeout,
        lease=dt.timedelta(seconds=state.settings.request_lease),
        requeue=requeue,
    )
