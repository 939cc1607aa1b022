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
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from annota.core.db.tables import Webhook, WebhookDelivery, WebhookJob
from annota.core.db.types import utcnow
from annota.core.queue import JobContext
from annota.plugins.webhooks import store, targets
from annota.plugins.webhooks.config import Config

logger = logging.getLogger(__name__)

#: responses are kept up to this many bytes
MAX_RESPONSE = 1024 * 1024
#: CVAT records a connection failure as 502 and a timeout as 504
CONNECTION_FAILED = 502
TIMED_OUT = 504
RETRIED_STATUSES = frozenset({408, 429})


@dataclass
class Outcome:
    status_code: int | None
    response: str
    duration_ms: int
    #: worth another attempt (5xx, 408, 429, transport errors)
    retry: bool


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


async def _read_limited(response: httpx.Response) -> str:
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk[: MAX_RESPONSE - len(data)]
        if len(data) >= MAX_RESPONSE:
            break
    return data.decode(response.encoding or "utf-8", errors="replace")


#: HTTP clients kept per event loop, TLS verification and timeouts: building one (its TLS context
#: above all) costs far more than a delivery to a nearby receiver
_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[bool, float, float], httpx.AsyncClient]
] = weakref.WeakKeyDictionary()


def _client(verify: bool, config: Config) -> httpx.AsyncClient:
    clients = _clients.setdefault(asyncio.get_running_loop(), {})
    key = (verify, config.connect_timeout, config.read_timeout)
    client = clients.get(key)
    if client is None or client.is_closed:
        timeout = httpx.Timeout(config.read_timeout, connect=config.connect_timeout)
        # trust_env=False: no proxy from the environment (the vetted address is what is connected
        # to) and no .netrc credentials sent to webhook targets
        client = httpx.AsyncClient(verify=verify, timeout=timeout, follow_redirects=False, trust_env=False)
        clients[key] = client
    return client


async def close_clients() -> None:
    """Close the clients of the running loop (at shutdown)."""
    for client in _clients.pop(asyncio.get_running_loop(), {}).values():
        await client.aclose()


async def send(webhook: Webhook, body: bytes, headers: dict[str, str], config: Config) -> Outcome:
    """One POST of ``body`` to the webhook's target, after the SSRF guard."""
    started = time.monotonic()

    def outcome(status: int | None, text: str, retry: bool) -> Outcome:
        return Outcome(status, text, int((time.monotonic() - started) * 1000), retry)

    parts = urlsplit(webhook.target_url)
    host, port = parts.hostname or "", parts.port or targets.DEFAULT_PORTS.get(parts.scheme, 80)
    addresses: Sequence[Any] = [None]
    if not config.allow_private_targets:
        try:
            addresses = await targets.resolve(host, port, allow_private=False)
        except targets.TargetRefused as exc:
            return outcome(None, f"Refused: {exc}", False)
        except OSError as exc:
            return outcome(CONNECTION_FAILED, f"Cannot resolve {host}: {exc}", True)
        if not addresses:
            return outcome(CONNECTION_FAILED, f"Cannot resolve {host}: no addresses", True)
    client = _client(webhook.enable_ssl, config)
    for index, ip in enumerate(addresses):
        request = targets.build_post(client, webhook.target_url, headers, body, ip)
        try:
            response = await client.send(request, stream=True)
        except httpx.ConnectError as exc:
            if index < len(addresses) - 1:
                continue
            return outcome(CONNECTION_FAILED, f"Connection failed: {exc}", True)
        except httpx.TimeoutException as exc:
            return outcome(TIMED_OUT, f"Timed out: {type(exc).__name__}", True)
        except httpx.HTTPError as exc:
            return outcome(CONNECTION_FAILED, f"Request failed: {type(exc).__name__}: {exc}", True)
        try:
            text = await _read_limited(response)
        except httpx.TimeoutException as exc:
            return outcome(TIMED_OUT, f"Timed out reading the response: {type(exc).__name__}", True)
        except httpx.HTTPError as exc:
            text = f"The response could not be read: {type(exc).__name__}"
        finally:
            await response.aclose()
        status = response.status_code
        return outcome(status, text, status >= 500 or status in RETRIED_STATUSES)
    raise AssertionError("unreachable: there is always at least one address")


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


async def _record(
    session: AsyncSession, job: WebhookJob, sent: tuple[bytes, Outcome] | None, config: Config
) -> None:
    """Log the attempt, then retry the job later or drop it."""
    if sent is None:
        # deleted webhooks took their jobs with them; a deactivated one gets nothing
        await session.execute(delete(WebhookJob).where(WebhookJob.id == job.id))
        return
    body, result = sent
    session.add(
        delivery_row(
            job.webhook_id, job.event, body, result, attempt=job.attempt, redelivery=job.redelivery,
            changed_fields=job.changed_fields, delivery_uuid=job.delivery_uuid, event_uuid=job.event_uuid,
        )
    )  # fmt: skip
    schedule = config.retry_schedule
    if result.retry and job.attempt <= len(schedule):
        await session.execute(
            update(WebhookJob)
            .where(WebhookJob.id == job.id)
            .values(
                attempt=job.attempt + 1,
                due_date=utcnow() + dt.timedelta(seconds=schedule[job.attempt - 1]),
                claimed_until=None,
            )
        )
        return
    if result.retry:
        logger.warning(
            "webhook %s: giving up on delivery %s after %d attempts",
            job.webhook_id,
            job.delivery_uuid,
            job.attempt,
        )
    await session.execute(delete(WebhookJob).where(WebhookJob.id == job.id))


async def deliver(
    sessionmaker: async_sessionmaker[AsyncSession], jobs: list[WebhookJob], config: Config
) -> None:
    """Send claimed jobs concurrently, then record every attempt in one transaction."""
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
        for job, result in zip(jobs, results, strict=True):
            if isinstance(result, BaseException):
                # the claim expires and another run tries again
                logger.error("webhook %s: delivery %s failed: %r", job.webhook_id, job.delivery_uuid, result)
            elif job.webhook_id in existing:
                await _record(session, job, result, config)


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
