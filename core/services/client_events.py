"""Events CVAT's web UI reports about itself (a job opened, a frame changed, an exception).

They are analytics, as in CVAT: kept in the event log (``GET /api/events``, their ``type`` is the
event's scope, their ``resource`` is ``client``) but never dispatched to ``on_event`` subscribers or
webhooks, which hear only of changes the server made. The sender and the organization are the
request's, whatever the client claims; times are moved by the difference between the client's clock
and the server's.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.db.tables import EventRecord
from annota.core.db.types import utcnow
from annota.core.errors import ValidationError
from annota.core.schemas.client_events import ClientEvent, ClientEventsRead, ClientEventsWrite

#: the ``resource`` of client events in the event log
RESOURCE = "client"
#: the scopes CVAT 2.73 accepts from its web UI
ALLOWED_SCOPES = frozenset({
    "load:cvat", "load:job", "save:job", "load:workspace", "send:exception", "join:objects",
    "change:frame", "draw:object", "paste:object", "copy:object", "propagate:object", "drag:object",
    "resize:object", "delete:object", "merge:objects", "split:objects", "group:objects", "slice:object",
    "zoom:image", "fit:image", "rotate:image", "action:undo", "action:redo", "debug:info",
    "run:annotations_action", "click:element", "user:activity",
})  # fmt: skip
#: sent only so CVAT can tell working time; not recorded
ACTIVITY_SCOPE = "user:activity"


@dataclass(frozen=True)
class Sender:
    user_id: int
    username: str
    email: str
    org_id: int | None
    org_slug: str | None


@dataclass(frozen=True)
class Limits:
    #: events one request may carry
    max_events: int
    #: bytes one event's ``payload`` may have
    max_payload_bytes: int


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _check(batch: ClientEventsWrite, limits: Limits) -> None:
    if len(batch.events) > limits.max_events:
        raise ValidationError.for_field(
            "events",
            f"At most {limits.max_events} events may be sent at once (client_events_max_batch), "
            f"got {len(batch.events)}.",
        )
    for number, event in enumerate(batch.events):
        source = event.source or "client"
        if source != "client" or event.scope not in ALLOWED_SCOPES:
            raise ValidationError.for_field(
                "scope", f"events[{number}]: event scope {event.scope!r} is not allowed from {source}."
            )
        size = len((event.payload or "").encode())
        if size > limits.max_payload_bytes:
            raise ValidationError.for_field(
                "payload",
                f"events[{number}]: the payload has {size} bytes, more than the limit of "
                f"{limits.max_payload_bytes} (client_events_max_payload_bytes).",
            )


def _payload(event: ClientEvent, number: int) -> str:
    try:
        decoded = json.loads(event.payload or "{}")
    except json.JSONDecodeError as exc:
        raise ValidationError.for_field(
            "payload", f"events[{number}]: the payload is not valid JSON ({exc.msg} at column {exc.colno})."
        ) from None
    return json.dumps(decoded)


def accept(batch: ClientEventsWrite, sender: Sender, limits: Limits) -> ClientEventsRead:
    """The batch as it will be stored, or a ``ValidationError`` naming the first bad event."""
    _check(batch, limits)
    correction = utcnow() - _aware(batch.timestamp)
    events = [
        msgspec.structs.replace(
            event,
            timestamp=_aware(event.timestamp) + correction,
            source="client",
            payload=_payload(event, number),
            user_id=sender.user_id,
            user_name=sender.username,
            user_email=sender.email,
            org_id=sender.org_id,
            org_slug=sender.org_slug,
        )
        for number, event in enumerate(batch.events)
    ]
    return ClientEventsRead(timestamp=_aware(batch.timestamp), events=events)


async def store(session: AsyncSession, events: Sequence[ClientEvent]) -> int:
    """Add the events to the event log, already dispatched (no subscriber hears of them)."""
    rows = [
        {
            "uuid": str(uuid.uuid4()), "type": event.scope, "resource": RESOURCE,
            "resource_id": event.obj_id, "org_id": event.org_id, "project_id": event.project_id,
            "task_id": event.task_id, "job_id": event.job_id, "user_id": event.user_id,
            "created_date": event.timestamp, "dispatched": True,
            "payload": msgspec.json.encode({"event": event.scope, RESOURCE: event}).decode(),
        }
        for event in events
        if event.scope != ACTIVITY_SCOPE
    ]  # fmt: skip
    if rows:
        await session.execute(insert(EventRecord), rows)
    return len(rows)


__all__ = ["ACTIVITY_SCOPE", "ALLOWED_SCOPES", "RESOURCE", "Limits", "Sender", "accept", "store"]
