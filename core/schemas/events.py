"""The event log (``GET /api/events``): what happened, newest first."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec


class EventRead(msgspec.Struct):
    #: the event's uuid, the ``Event.id`` subscribers de-duplicate by
    id: str
    #: ``create:task``, ``update:job``, ``completed:request[export:dataset]``...
    type: str
    #: what ``payload`` describes (``task``, ``job``, ``label``, ``request``...)
    resource: str
    resource_id: int | None
    org_id: int | None
    project_id: int | None
    task_id: int | None
    job_id: int | None
    #: who made the change (the owner of a background request)
    user_id: int | None
    created_date: dt.datetime
    #: the body subscribers receive: ``{"event", "<resource>": {...}, "sender", "changes"?...}``
    payload: dict[str, Any]


__all__ = ["EventRead"]
