"""``/api/events``: the event log, newest first, for whoever wants to know what changed lately.

Every event subscribers receive is also kept in the ``events`` table for ``event_retention_days``.
Who sees what: whoever the policy lets list ``events`` (administrators: everything); everybody else
sees the events of the tasks and projects they can see, and the events they caused themselves
(a deleted task's events, and their own background requests).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from sqlalchemy import and_, or_, select
from sqlalchemy.sql import ColumnElement
from starlette.requests import Request
from starlette.responses import Response

from annota.core.access import MATCH_ALL, FilterFields, filter_to_sql
from annota.core.db.tables import EventRecord, Project, Task
from annota.core.errors import ValidationError
from annota.core.schemas.common import Paginated
from annota.core.schemas.events import EventRead
from annota.core.services import client_events, listing
from annota.core.services import projects as project_service
from annota.core.services import tasks as task_service
from annota.runtime import web

TAGS = ["events"]

#: Fields a policy filter may name for events.
POLICY_FIELDS: FilterFields = {
    "org_id": lambda v: EventRecord.org_id == v,
    "project_id": lambda v: EventRecord.project_id == v,
    "task_id": lambda v: EventRecord.task_id == v,
    "job_id": lambda v: EventRecord.job_id == v,
    "user_id": lambda v: EventRecord.user_id == v,
}

_ID_FILTERS = {
    "org_id": EventRecord.org_id,
    "project_id": EventRecord.project_id,
    "task_id": EventRecord.task_id,
    "job_id": EventRecord.job_id,
    "user_id": EventRecord.user_id,
}


def _moment(request: Request, name: str) -> dt.datetime | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationError.for_field(
            name, f"Expected an ISO 8601 date or date and time, got {raw!r}."
        ) from None
    # a moment without a zone is UTC, as every date the API answers with
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _filters(request: Request) -> list[ColumnElement[bool]]:
    """The client's filters; a bad value is a 400 naming its parameter."""
    conditions: list[ColumnElement[bool]] = []
    for name, column in _ID_FILTERS.items():
        value = web.query_int(request, name)
        if value is not None:
            conditions.append(column == value)
    event_type = request.query_params.get("type")
    if event_type:
        conditions.append(EventRecord.type == event_type)
    start, end = _moment(request, "from"), _moment(request, "to")
    if start is not None and end is not None and start > end:
        raise ValidationError.for_field("from", "'from' must not be later than 'to'.")
    if start is not None:
        conditions.append(EventRecord.created_date >= start)
    if end is not None:
        conditions.append(EventRecord.created_date <= end)
    return conditions


async def _visible(request: Request) -> ColumnElement[bool] | None:
    """What the caller may see; ``None``: everything."""
    who = web.require_user(request)
    granted = await web.list_filter(request, "events")
    if granted == MATCH_ALL:
        return None
    tasks = select(Task.id).where(await web.visible(request, "tasks", task_service.POLICY_FIELDS))
    projects = select(Project.id).where(await web.visible(request, "projects", project_service.POLICY_FIELDS))
    # the web UI's own events name the task or project their sender says: only the sender and
    # those the policy grants see them
    server_made = EventRecord.resource != client_events.RESOURCE
    return or_(
        filter_to_sql(granted, POLICY_FIELDS),
        EventRecord.user_id == who.user_id,
        and_(server_made, EventRecord.task_id.in_(tasks)),
        # project events and project labels; a task's events follow the task's visibility
        and_(server_made, EventRecord.task_id.is_(None), EventRecord.project_id.in_(projects)),
    )


def read(row: EventRecord) -> EventRead:
    payload: dict[str, Any] = msgspec.json.decode(row.payload)
    return EventRead(
        id=row.uuid, type=row.type, resource=row.resource, resource_id=row.resource_id, org_id=row.org_id,
        project_id=row.project_id, task_id=row.task_id, job_id=row.job_id, user_id=row.user_id,
        created_date=row.created_date, payload=payload,
    )  # fmt: skip


@web.operation(
    "List recent events",
    tags=TAGS,
    response=Paginated[EventRead],
    paginated=True,
    query={
        **{name: "events about this object (or caused by this user)" for name in _ID_FILTERS},
        "type": "the event key (update:task, completed:request[export:dataset]) or a UI scope (load:job)",
        "from": "events at or after this ISO 8601 date/time (UTC unless a zone is given)",
        "to": "events at or before this ISO 8601 date/time (UTC unless a zone is given)",
    },
)
async def list_events(request: Request) -> Response:
    conditions = _filters(request)
    visible = await _visible(request)
    if visible is not None:
        conditions.append(visible)
    page_number, page_size = listing.parse_page(request.query_params)
    query = (
        select(EventRecord)
        .where(*conditions)
        .order_by(EventRecord.created_date.desc(), EventRecord.id.desc())
    )
    async with web.transaction(request) as session:
        page = await listing.fetch_page(session, query, page_number, page_size)
        results = [read(row) for row in page.rows]
    return web.page_response(request, page, results)


routes = [
    ("/api/events", list_events, ["GET"]),
]
