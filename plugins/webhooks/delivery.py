"""Sending deliveries: the periodic job that works through ``webhook_jobs``, and one attempt.

A run claims the due rows for a lease (``claimed_until``), sends them concurrently and, per attempt,
writes a ``webhook_deliveries`` row and either forgets the job (delivered, refused for good, or out
of retries) or pushes its ``due_date`` along the retry schedule. A worker that dies mid-delivery
leaves its claim to expire, and the next run sends the delivery again: receivers de-duplicate on
``X-Webhook-Delivery-Id``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
import time
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from annota.core import metrics
from annota.core.db.tables import Webhook, WebhookDelivery, WebhookJob
from annota.core.db.types import utcnow
from annota.core.queue import JobContext
from annota.plugins.webhooks import store, transport
from annota.plugins.webhooks.config import Config
from annota.plugins.webhooks.transport import Outcome

logger = logging.getLogger(__name__)

DELIVERIES = metrics.counter(
    "annota_webhook_deliveries",
    "Webhook delivery attempts, by event and outcome (delivered: a 2xx answer; failed: anything else)",
    ("event", "outcome"),
)
ABANDONED = metrics.counter(
    "annota_webhook_deliveries_abandoned",
    "Webhook deliveries given up on after their last retry, by event",
    ("event",),
)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(payload: dict[str, Any], webhook_id: int) -> bytes:
    """The request body. Python's default separators: the bytes CVAT's receivers are used to
    verifying. Pings name the webhook in ``webhook`` and carry no ``webhook_id``, as in CVAT."""
    if payload.get("event") == "ping":
        return json.dumps(payload).encode()
    return json.dumps({**payload, "webhook_id": webhook_id}).encode()


def request_headers(
    webhook: Webhook, body: bytes, delivery_uuid: str, event_uuid: str | None
) -> dict[str, str]:
    headers = dict(store.stored_headers(webhook))
    headers["Content-Type"] = "application/json"
    headers["X-Webhook-Delivery-Id"] = delivery_uuid
    if event_uuid:
        headers["X-Webhook-Event-Id"] = event_uuid
    if webhook.secret:
        headers["X-Signature-256"] = signature(webhook.secret, body)
    return headers


async def send(webhook: Webhook, body: bytes, headers: dict[str, str], config: Config) -> Outcome:
    """One POST of ``body`` to the webhook's target, behind the SSRF guard."""
    return await transport.post(webhook.target_url, body, headers, webhook.enable_ssl, config)


def delivery_row(
    webhook_id: int, event: str, body: bytes, result: Outcome, *, attempt: int, redelivery: bool,
    changed_fields: str, delivery_uuid: str, event_uuid: str | None,
) -> WebhookDelivery:  # fmt: skip
    return WebhookDelivery(
        webhook_id=webhook_id, event=event, event_uuid=event_uuid, delivery_uuid=delivery_uuid,
        status_code=result.status_code, redelivery=redelivery, attempt=attempt,
        request_duration=result.duration_ms, changed_fields=changed_fields, request=body.decode(),
        response=result.response,
    )  # fmt: skip


# --- the queue ----------------------------------------------------------------------------------


async def claim(
    sessionmaker: async_sessionmaker[AsyncSession], config: Config, now: dt.datetime | None = None
) -> list[WebhookJob]:
    """Take the due, unclaimed jobs for ``config.lease`` seconds; several workers share the work."""
    now = now or utcnow()
    free = or_(WebhookJob.claimed_until.is_(None), WebhookJob.claimed_until < now)
    async with sessionmaker.begin() as session:
        candidates = (
            select(WebhookJob.id)
            .where(WebhookJob.due_date <= now, free)
            .order_by(WebhookJob.due_date, WebhookJob.id)
            .limit(config.batch_size)
        )
        if session.get_bind().dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        ids = list((await session.execute(candidates)).scalars())
        if not ids:
            return []
        # the condition is repeated: on SQLite another worker may have claimed a row since
        claimed = await session.execute(
            update(WebhookJob)
            .where(WebhookJob.id.in_(ids), free)
            .values(claimed_until=now + dt.timedelta(seconds=config.lease))
            .returning(WebhookJob)
            .execution_options(synchronize_session=False)
        )
        jobs = list(claimed.scalars())
        session.expunge_all()
        return jobs


async def _send_job(webhook: Webhook | None, job: WebhookJob, config: Config) -> tuple[bytes, Outcome] | None:
    """Send one claimed job (``None`` when its webhook is gone or inactive: nothing to send)."""
    if webhook is None or not webhook.is_active:
        return None
    body = body_of(json.loads(job.payload), webhook.id)
    headers = request_headers(webhook, body, job.delivery_uuid, job.event_uuid)
    return body, await send(webhook, body, headers, config)


def _settle(
    job: WebhookJob, sent: tuple[bytes, Outcome] | None, config: Config
) -> tuple[WebhookDelivery | None, dt.datetime | None]:
    """What one attempt leaves behind: its log row (none when nothing was sent) and, when the job
    is to be tried again, when (``None``: the job is done)."""
    if sent is None:
        # deleted webhooks took their jobs with them; a deactivated one gets nothing
        return None, None
    body, result = sent
    row = delivery_row(
        job.webhook_id, job.event, body, result, attempt=job.attempt, redelivery=job.redelivery,
        changed_fields=job.changed_fields, delivery_uuid=job.delivery_uuid, event_uuid=job.event_uuid,
    )  # fmt: skip
    delivered = result.status_code is not None and 200 <= result.status_code < 300
    DELIVERIES.labels(event=job.event, outcome="delivered" if delivered else "failed").inc()
    schedule = config.retry_schedule
    if result.retry and job.attempt <= len(schedule):
        return row, utcnow() + dt.timedelta(seconds=schedule[job.attempt - 1])
    if result.retry:
        ABANDONED.labels(event=job.event).inc()
        logger.warning(
            "webhook %s: giving up on delivery %s after %d attempts",
            job.webhook_id,
            job.delivery_uuid,
            job.attempt,
        )
    return row, None


async def deliver(
    sessionmaker: async_sessionmaker[AsyncSession], jobs: list[WebhookJob], config: Config
) -> None:
    """Send claimed jobs concurrently, then record every attempt in one transaction: the log rows
    in one insert, the finished jobs in one delete, a retry's new due date per job."""
    async with sessionmaker() as session:
        ids = {job.webhook_id for job in jobs}
        webhooks = {
            w.id: w for w in (await session.execute(select(Webhook).where(Webhook.id.in_(ids)))).scalars()
        }
        session.expunge_all()
    results = await asyncio.gather(
        *(_send_job(webhooks.get(job.webhook_id), job, config) for job in jobs), return_exceptions=True
    )
    async with sessionmaker.begin() as session:
        existing = set((await session.execute(select(Webhook.id).where(Webhook.id.in_(ids)))).scalars())
        done: list[int] = []
        for job, result in zip(jobs, results, strict=True):
            if isinstance(result, BaseException):
                # the claim expires and another run tries again
                logger.error("webhook %s: delivery %s failed: %r", job.webhook_id, job.delivery_uuid, result)
                continue
            if job.webhook_id not in existing:
                continue
            row, again = _settle(job, result, config)
            if row is not None:
                session.add(row)
            if again is None:
                done.append(job.id)
            else:
                await session.execute(
                    update(WebhookJob)
                    .where(WebhookJob.id == job.id)
                    .values(attempt=job.attempt + 1, due_date=again, claimed_until=None)
                )
        if done:
            await session.execute(delete(WebhookJob).where(WebhookJob.id.in_(done)))


async def attempt(sessionmaker: async_sessionmaker[AsyncSession], job: WebhookJob, config: Config) -> None:
    """Send one claimed job and record the attempt."""
    await deliver(sessionmaker, [job], config)


#: one run of the periodic job keeps claiming batches for at most this long
RUN_BUDGET = 5.0


async def deliver_due(ctx: JobContext) -> None:
    """The periodic ``webhooks.deliver`` job: batches of due deliveries, sent concurrently, until
    none is due (or the run's time budget is spent)."""
    config: Config = ctx.plugins.config("webhooks")
    deadline = time.monotonic() + RUN_BUDGET
    while time.monotonic() < deadline:
        jobs = await claim(ctx.sessionmaker, config)
        if not jobs:
            return
        await deliver(ctx.sessionmaker, jobs, config)


__all__ = ["Outcome", "attempt", "body_of", "claim", "deliver_due", "request_headers", "send", "signature"]
