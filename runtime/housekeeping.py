"""Periodic clean-up of what expires on its own: finished background requests past their expiry
date, expired sign-in sessions, media left by interrupted task creations, abandoned uploads,
expired exports, dispatched events past their retention and login throttles that have run out.

It runs hourly whichever queue backend is in use (an arq cron job in ``annota worker``, an asyncio
task in the in-process runner) and is also a registered job on the ``utils`` queue, so it can be
started as a request like any other.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from annota.core.queue import JobContext, JobRegistry, JobResult
from annota.core.services import attempt_budgets, dataset_jobs, task_data
from annota.core.services import events as event_service
from annota.core.services import requests as request_service
from annota.core.services import users as user_service
from annota.core.storage import StorageBackend
from annota.runtime.settings import Settings

logger = logging.getLogger(__name__)

#: seconds between two clean-ups
INTERVAL = 3600
JOB_NAME = "annota.housekeeping"


async def prune(
    sessionmaker: async_sessionmaker[AsyncSession], storage: StorageBackend, settings: Settings
) -> int:
    """Delete expired requests and sessions, old events (``event_retention_days``), leftover media
    and expired exports (``export_ttl``); returns how many requests were removed."""
    event_retention_days = settings.event_retention_days
    async with sessionmaker.begin() as session:
        removed = await request_service.prune_expired(session)
        await user_service.prune_sessions(session)
        events = await event_service.prune(session, dt.timedelta(days=event_retention_days))
    await attempt_budgets.prune(sessionmaker, time.time())
    if removed:
        logger.info("housekeeping removed %d expired requests", removed)
    if events:
        logger.info("housekeeping removed %d events older than %g days", events, event_retention_days)
    leftovers = await task_data.prune_leftovers(sessionmaker, storage)
    if leftovers:
        logger.info("housekeeping removed %d leftover media objects", leftovers)
    exports = await dataset_jobs.prune_exports(storage, dt.timedelta(seconds=settings.export_ttl))
    if exports:
        logger.info("housekeeping removed %d expired exports", exports)
    return removed


async def housekeeping_job(ctx: JobContext) -> JobResult:
    removed = await prune(ctx.sessionmaker, ctx.storage, ctx.settings)
    return JobResult(message=f"Removed {removed} expired requests.")


def register(registry: JobRegistry) -> None:
    """Add the clean-up to the jobs the server and workers know, next to the plugins' jobs."""
    registry.register("annota", JOB_NAME, housekeeping_job, queue="utils", timeout=600, max_tries=1)


async def run_periodically(
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: StorageBackend,
    settings: Settings,
    interval: float = INTERVAL,
) -> None:
    """Clean up now and then every ``interval`` seconds, until cancelled."""
    while True:
        try:
            await prune(sessionmaker, storage, settings)
        except Exception:
            # a database hiccup must not end the loop: the next round tries again
            logger.exception("housekeeping failed")
        await asyncio.sleep(interval)
