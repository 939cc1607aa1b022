"""What CVAT's web UI sends to ``POST /api/events``: a batch of its own events (analytics)."""

from __future__ import annotations

import datetime as dt

import msgspec

from annota.core.schemas.common import BigId, Id


class ClientEvent(msgspec.Struct, kw_only=True):
    """One event as CVAT's ``EventSerializer`` knows it; ``payload`` is a JSON object as a string."""

    scope: str
    timestamp: dt.datetime
    obj_name: str | None = None
    obj_id: Id | None = None
    obj_val: str | None = None
    source: str | None = None
    count: BigId | None = None
    duration: BigId = 0
    project_id: Id | None = None
    task_id: Id | None = None
    job_id: Id | None = None
    user_id: Id | None = None
    user_name: str | None = None
    user_email: str | None = None
    org_id: Id | None = None
    org_slug: str | None = None
    payload: str | None = None


class ClientEventsWrite(msgspec.Struct, kw_only=True):
    #: when the client sent the batch, by its clock: the events' times are corrected by the
    #: difference to the server's
    timestamp: dt.datetime
    events: list[ClientEvent] = []
    previous_event: ClientEvent | None = None


class ClientEventsRead(msgspec.Struct, kw_only=True):
    """The accepted events, as stored: times corrected, sender and organization filled in."""

    timestamp: dt.datetime
    events: list[ClientEvent]


__all__ = ["ClientEvent", "ClientEventsRead", "ClientEventsWrite"]
