"""Dispatching committed events to every plugin's ``on_event``.

``install`` attaches a dispatcher to a sessionmaker: when one of its sessions commits a transaction
that recorded events (``services.events.record``), they are handed to the plugins in a background
task, then marked dispatched; a rollback forgets them. ``sweep`` (a periodic job) dispatches the
events a process committed but did not live to dispatch. One failing subscriber is logged and
neither stops the others nor touches the request that made the change.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from annota.core.events import Event
from annota.core.queue import JobContext
from annota.core.services import events as event_service

logger = logging.getLogger(__name__)

#: ``session.info`` key of the session's dispatcher
DISPATCHER = "annota.dispatcher"
#: committed events still undispatched after this long are taken to be abandoned
SWEEP_AGE = dt.timedelta(seconds=5)
#: how long the dispatcher lets commits accumulate before handing them over: a stream of changes
#: then costs one load, one round of subscribers and one update per batch rather than per change
BATCH_DELAY = 0.1
#: how often workers look for committed events to dispatch
POLL_INTERVAL = 0.1


async def _call(impl: Any, arguments: dict[str, Any], what: str) -> None:
    try:
        result = impl.function(**{arg: arguments[arg] for arg in impl.argnames})
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("plugin %s failed to handle %s", impl.plugin_name, what)


async def notify(
    plugins: Any, events: Sequence[Event], sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Hand ``events`` to every ``on_events`` implementation at once and to every ``on_event``
    implementation one by one; failures are logged, one by one."""
    if not events:
        return
    what = f"events {events[0].id}..{events[-1].id} ({len(events)})"
    for impl in reversed(plugins.pm.hook.on_events.get_hookimpls()):
        await _call(impl, {"events": list(events), "sessionmaker": sessionmaker}, what)
    for event in events:
        arguments = {"event": event, "sessionmaker": sessionmaker}
        for impl in reversed(plugins.pm.hook.on_event.get_hookimpls()):
            await _call(impl, arguments, f"event {event.id} ({event.type})")


async def dispatch(
    sessionmaker: async_sessionmaker[AsyncSession], plugins: Any, event_ids: Sequence[str]
) -> None:
    async with sessionmaker() as session:
        events = await event_service.load(session, event_ids)
    await notify(plugins, events, sessionmaker)
    async with sessionmaker.begin() as session:
        await event_service.mark_dispatched(session, [event.id for event in events])


async def dispatch_committed(
    sessionmaker: async_sessionmaker[AsyncSession], plugins: Any, older_than: dt.timedelta
) -> int:
    """Dispatch one batch of the events committed at least ``older_than`` ago and never
    dispatched; returns how many. On PostgreSQL the batch's rows stay locked until they are
    marked, so workers polling side by side take different events."""
    async with sessionmaker() as session:
        if session.get_bind().dialect.name != "postgresql":
            event_ids = await event_service.undispatched(session, older_than)
        else:
            async with session.begin():
                events = await event_service.claim_undispatched(session, older_than)
                await notify(plugins, events, sessionmaker)
                await event_service.mark_dispatched(session, [event.id for event in events])
            return len(events)
    # SQLite: a reading transaction cannot become a writing one once another connection has
    # written (the subscribers' own transactions): load, tell, then mark in separate transactions
    if event_ids:
        await dispatch(sessionmaker, plugins, event_ids)
    return len(event_ids)


class Dispatcher:
    """Dispatches each committed transaction's events, one transaction after the other in commit
    order, in a task of the server's loop (never in the request that made the change)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], plugins: Any) -> None:
        self.sessionmaker = sessionmaker
        self.plugins = plugins
        # the server's loop: a commit made on another loop (an embedding application's thread, a
        # test client) must not tie the dispatch to a loop that may close right after
        self.loop = asyncio.get_running_loop()
        self.pending: asyncio.Queue[list[str]] = asyncio.Queue()
        self.worker: asyncio.Task[None] | None = None

    def schedule(self, event_ids: list[str]) -> None:
        if asyncio.get_running_loop() is self.loop:
            self._put(event_ids)
        else:
            self.loop.call_soon_threadsafe(self._put, event_ids)

    def _put(self, event_ids: list[str]) -> None:
        self.pending.put_nowait(event_ids)
        if self.worker is None or self.worker.done():
            self.worker = self.loop.create_task(self._work(), name="annota-events")

    async def _work(self) -> None:
        while True:
            batches = [await self.pending.get()]
            await asyncio.sleep(BATCH_DELAY)
            # whatever else committed meanwhile goes along: one load and one update for all
            while not self.pending.empty():
                batches.append(self.pending.get_nowait())
            event_ids = [event_id for batch in batches for event_id in batch]
            try:
                await dispatch(self.sessionmaker, self.plugins, event_ids)
            except Exception:
                # the sweep dispatches them later
                logger.exception("dispatching events %s failed", event_ids)
            finally:
                for _ in batches:
                    self.pending.task_done()

    async def drain(self) -> None:
        """Wait until every event scheduled so far is dispatched (at shutdown, and in tests)."""
        await self.pending.join()

    async def close(self) -> None:
        await self.drain()
        if self.worker is not None:
            self.worker.cancel()
            await asyncio.gather(self.worker, return_exceptions=True)


@sa_event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    pending = session.info.pop(event_service.PENDING, None)
    dispatcher = session.info.get(DISPATCHER)
    if pending and dispatcher is not None:
        dispatcher.schedule(pending)


@sa_event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(event_service.PENDING, None)


def install(sessionmaker: async_sessionmaker[AsyncSession], plugins: Any) -> Dispatcher:
    """Dispatch the events of ``sessionmaker``'s sessions after each commit."""
    dispatcher = Dispatcher(sessionmaker, plugins)
    sessionmaker.configure(info={DISPATCHER: dispatcher})
    return dispatcher


async def sweep(ctx: JobContext) -> None:
    """Dispatch committed events that were never dispatched (their process died first)."""
    dispatched = await dispatch_committed(ctx.sessionmaker, ctx.plugins, SWEEP_AGE)
    if dispatched:
        logger.info("dispatched %d events left undispatched", dispatched)


async def dispatch_all(ctx: JobContext) -> None:
    """Dispatch every committed event, batch after batch (the workers' job when they run the
    background jobs: the servers then leave events to them)."""
    while (
        await dispatch_committed(ctx.sessionmaker, ctx.plugins, dt.timedelta(0)) >= event_service.BATCH_LIMIT
    ):
        pass


__all__ = ["Dispatcher", "dispatch", "dispatch_all", "dispatch_committed", "install", "notify", "sweep"]
