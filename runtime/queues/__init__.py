"""Queue backends: the in-process runner (embedded default) and arq on Redis (production)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from annota.core.queue import QueueBackend

if TYPE_CHECKING:
    from annota.runtime.state import AppState


def make_queue(state: AppState) -> QueueBackend:
    """arq when ``redis_url`` is set, otherwise the in-process runner."""
    if state.settings.redis_url:
        from annota.runtime.queues.arq import ArqQueue

        return ArqQueue(state)
    from annota.runtime.queues.inprocess import InProcessQueue

    return InProcessQueue(state)
