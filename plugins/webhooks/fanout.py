"""Fan-out: turning committed events into queued deliveries (``webhook_jobs`` rows), one per event
and subscribed webhook.

A batch of events (up to a few hundred) costs three statements: the candidate webhooks, the deliveries
already made, one insert. An event told twice (after a crash) is not queued twice: a delivery's id
is derived from the event's and the webhook's, and both tables are checked for it.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.db.tables import Webhook, WebhookDelivery, WebhookJob
from annota.core.db.types import utcnow
from annota.core.events import Event
from annota.plugins.webhooks import store

#: deliveries of one event to one webhook share an id derived from both
DELIVERY_NAMESPACE = uuid.UUID("5f0c8a84-7d0e-4d1a-9a43-2b8f3c6f1e10")
#: bound parameters per ``IN`` list, well under SQLite's and PostgreSQL's limits
CHUNK = 500

T = TypeVar("T")


def delivery_uuid(event_id: str, webhook_id: int) -> str:
    return str(uuid.uuid5(DELIVERY_NAMESPACE, f"{event_id}:{webhook_id}"))


def _candidates(events: Sequence[Event]) -> Any:
    """Active webhooks whose scope covers at least one of ``events`` (exact matching follows)."""
    scopes = [Webhook.type == "server"]
    org_ids = {event.org_id for event in events if event.org_id is not None}
    project_ids = {event.project_id for event in events if event.project_id is not None}
    if org_ids:
        scopes.append(and_(Webhook.type == "organization", Webhook.organization_id.in_(org_ids)))
    if project_ids:
        scopes.append(and_(Webhook.type == "project", Webhook.project_id.in_(project_ids)))
    latest = max(event.created_date for event in events)
    return select(Webhook).where(Webhook.is_active.is_(True), Webhook.created_date <= latest, or_(*scopes))


def _hears(webhook: Webhook, subscribed: list[str], event: Event) -> bool:
    if event.type not in subscribed:
        return False
    # a change made before the webhook existed is not its business, however late it is told
    if webhook.created_date > event.created_date:
        return False
    if webhook.type == "organization":
        return event.org_id is not None and webhook.organization_id == event.org_id
    if webhook.type == "project":
        return event.project_id is not None and webhook.project_id == event.project_id
    return webhook.type == "server"


def _chunks(values: Sequence[T]) -> Iterable[Sequence[T]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


async def fan_out(session: AsyncSession, events: Sequence[Event]) -> int:
    """Queue one delivery of each of ``events`` per active webhook subscribed to it; a delivery
    already queued or made is not queued again. Returns how many were queued."""
    if not events:
        return 0
    webhooks = [
        (webhook, store.subscribed(webhook)) for webhook in (await session.scalars(_candidates(events)))
    ]
    pairs = [
        (event, webhook.id, delivery_uuid(event.id, webhook.id))
        for event in events
        for webhook, subscribed in webhooks
        if _hears(webhook, subscribed, event)
    ]
    if not pairs:
        return 0
    made: set[str] = set()
    for keys in _chunks([key for _, _, key in pairs]):
        made.update(
            await session.scalars(
                select(WebhookDelivery.delivery_uuid).where(WebhookDelivery.delivery_uuid.in_(keys))
            )
        )
    now = utcnow()
    payloads = {event.id: json.dumps(event.payload) for event, _, _ in pairs}
    rows = [
        _row(event, webhook_id, key, payloads[event.id], now)
        for event, webhook_id, key in pairs
        if key not in made
    ]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    queued = 0
    for batch in _chunks(rows):
        statement = (
            insert(WebhookJob)
            .values(list(batch))
            .on_conflict_do_nothing(index_elements=["webhook_id", "delivery_uuid"])
            .returning(WebhookJob.id)
        )
        queued += len((await session.execute(statement)).all())
    return queued


def _row(event: Event, webhook_id: int, key: str, payload: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "webhook_id": webhook_id, "event": event.type, "event_uuid": event.id, "delivery_uuid": key,
        "payload": payload, "changed_fields": ",".join(event.changed_fields), "redelivery": False,
        "attempt": 1, "due_date": now, "claimed_until": None, "created_date": now,
    }  # fmt: skip


__all__ = ["delivery_uuid", "fan_out"]
