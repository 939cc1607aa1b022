"""The ``webhooks`` plugin's hooks: configuration, routes, the delivery job, the fan-out of events
and the default policy for the ``webhooks`` resource kind.

``on_events`` queues one delivery per event and subscribed webhook in the database that recorded the
events (its ``sessionmaker``), in the ``webhook_jobs`` table the periodic ``webhooks.deliver`` job
sends from.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from annota.core import hookimpl, queue
from annota.core.events import Event
from annota.plugins.webhooks import delivery, fanout, orphans, transport
from annota.plugins.webhooks.config import Config

logger = logging.getLogger(__name__)

KIND = "webhooks"
#: the periodic job sending due deliveries
DELIVER = "webhooks.deliver"


@hookimpl
def register_config(register: Any) -> None:
    register(Config)


@hookimpl
def register_routes(register: Any) -> None:
    from annota.plugins.webhooks import routes

    for path, endpoint, methods in routes.ROUTES:
        register(path, endpoint, methods=methods)


@hookimpl
def register_jobs(register: Any) -> None:
    register(DELIVER, delivery.deliver_due, queue="webhooks", every=0.5)
    register("webhooks.prune_orphans", orphans.prune_orphans, queue="webhooks", every=60)


@hookimpl
def startup(app: Any) -> None:
    transport.keep_sessions()


@hookimpl
async def shutdown(app: Any) -> None:
    await transport.close_sessions()


@hookimpl
async def on_events(events: list[Event], sessionmaker: Any) -> None:
    async with sessionmaker.begin() as session:
        queued = await fanout.fan_out(session, events)
    if queued:
        logger.debug("%d events: %d webhook deliveries queued", len(events), queued)
        # a worker's delivery job on this loop sends them now rather than at its next tick
        queue.wake(DELIVER)


@hookimpl
def register_policies(register: Any) -> None:
    register(Path(__file__).with_name("rules"))
