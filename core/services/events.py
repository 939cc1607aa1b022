"""Recording events in the caller's transaction, reading them back, listing and pruning them.

``record`` adds a row to the ``events`` outbox and remembers it on the session; the runtime
dispatches the session's events once it commits (and forgets them on rollback).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.db.tables import EventRecord, User
from annota.core.db.types import utcnow
from annota.core.events import Event

#: ``session.info`` key of the event ids recorded in the session's transaction
PENDING = "annota.events"
#: fields that change on every write and say nothing by themselves
_NOISE = frozenset({"updated_date", "version"})
#: events one dispatch takes at most
BATCH_LIMIT = 500

_encoder = msgspec.json.Encoder()


def _plain(value: Any) -> Any:
    return msgspec.to_builtins(value) if not isinstance(value, dict) else value


def changes(before: Any, after: Any) -> dict[str, dict[str, Any]]:
    """``{field: {"from", "to"}}`` of the top-level fields that differ (serialized values)."""
    old, new = _plain(before), _plain(after)
    return {
        key: {"from": old.get(key), "to": value}
        for key, value in new.items()
        if key not in _NOISE and old.get(key) != value
    }


async def sender(session: AsyncSession, user_id: int | None, base_url: str = "") -> dict[str, Any] | None:
    if user_id is None:
        return None
    user = await session.get(User, user_id)
    if user is None:
        return None
    return {
        "url": f"{base_url}/api/users/{user.id}",
        "id": user.id,
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
    }


async def record(
    session: AsyncSession,
    type: str,
    resource: str,
    data: Any,
    *,
    resource_id: int | None = None,
    user_id: int | None = None,
    base_url: str = "",
    org_id: int | None = None,
    project_id: int | None = None,
    task_id: int | None = None,
    job_id: int | None = None,
    change: Mapping[str, dict[str, Any]] | None = None,
) -> str:
    """Record an event in the caller's transaction; returns its id. ``data`` is what the read
    serializer shows of the resource (a msgspec struct or a dict); ``change`` the changed fields."""
    payload: dict[str, Any] = {"event": type, resource: _plain(data)}
    who = await sender(session, user_id, base_url)
    if who is not None:
        payload["sender"] = who
    if change:
        payload["changes"] = dict(change)
        payload["before_update"] = {key: value["from"] for key, value in change.items()}
    event_id = str(uuid.uuid4())
    session.add(
        EventRecord(
            uuid=event_id, type=type, resource=resource, resource_id=resource_id, org_id=org_id,
            project_id=project_id, task_id=task_id, job_id=job_id, user_id=user_id, created_date=utcnow(),
            payload=_encoder.encode(payload).decode(), dispatched=False,
        )
    )  # fmt: skip
    session.info.setdefault(PENDING, []).append(event_id)
    return event_id


def as_event(row: EventRecord) -> Event:
    return Event(
        id=row.uuid, type=row.type, resource=row.resource, resource_id=row.resource_id,
        created_date=row.created_date, payload=msgspec.json.decode(row.payload), org_id=row.org_id,
        project_id=row.project_id, task_id=row.task_id, job_id=row.job_id, user_id=row.user_id,
    )  # fmt: skip


async def load(session: AsyncSession, event_ids: Sequence[str]) -> list[Event]:
    rows = await session.execute(
        select(EventRecord).where(EventRecord.uuid.in_(list(event_ids))).order_by(EventRecord.id)
    )
    return [as_event(row) for row in rows.scalars()]


async def mark_dispatched(session: AsyncSession, event_ids: Sequence[str]) -> None:
    await session.execute(
        update(EventRecord).where(EventRecord.uuid.in_(list(event_ids))).values(dispatched=True)
    )


def _undispatched(older_than: dt.timedelta, limit: int) -> Any:
    return (
        select(EventRecord)
        .where(EventRecord.dispatched.is_(False), EventRecord.created_date <= utcnow() - older_than)
        .order_by(EventRecord.id)
        .limit(limit)
    )


async def undispatched(
    session: AsyncSession, older_than: dt.timedelta, limit: int = BATCH_LIMIT
) -> list[str]:
    """Ids of events committed at least ``older_than`` ago and never dispatched."""
    statement = _undispatched(older_than, limit).with_only_columns(EventRecord.uuid)
    return list((await session.execute(statement)).scalars())


async def claim_undispatched(
    session: AsyncSession, older_than: dt.timedelta, limit: int = BATCH_LIMIT
) -> list[Event]:
    """Like ``undispatched``, as events, locking their rows (PostgreSQL) and skipping rows another
    transaction has locked, until the caller's transaction ends."""
    statement = _undispatched(older_than, limit).with_for_update(skip_locked=True)
    return [as_event(row) for row in (await session.execute(statement)).scalars()]


async def prune(session: AsyncSession, retention: dt.timedelta) -> int:
    """Forget dispatched events older than ``retention``; returns how many."""
    result = await session.execute(
        delete(EventRecord).where(
            EventRecord.dispatched.is_(True), EventRecord.created_date < utcnow() - retention
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


__all__ = [
    "PENDING",
    "BATCH_LIMIT",
    "as_event",
    "claim_undispatched",
    "changes",
    "load",
    "mark_dispatched",
    "prune",
    "record",
    "sender",
    "undispatched",
]
