"""Background request rows: create, claim for running, progress, finish, cancel, prune, read.

Every state change is a single conditional statement, so an API process cancelling a request and
a worker claiming it cannot both win.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.access import FilterFields, Resource
from annota.core.db.tables import BackgroundRequest, User
from annota.core.db.types import utcnow
from annota.core.errors import Conflict, NotFound, RequestInProgress
from annota.core.queue import DEFAULT_LEASE, DEFAULT_REQUEST_TTL, JobResult
from annota.core.schemas.requests import RequestOperation, RequestOwner, RequestRead
from annota.core.services.listing import ListSpec

ACTIVE = ("queued", "started")


def make_request_id(
    action: str,
    target: str,
    target_id: int | str,
    subresource: str | None = None,
    format: str | None = None,
    user_id: int | None = None,
) -> str:
    """CVAT-style readable ids (clients treat them as opaque): ``action=create&target=task&target_id=1``."""
    parts = [f"action={action}", f"target={target}", f"target_id={target_id}"]
    if subresource:
        parts.append(f"subresource={subresource}")
    if format:
        parts.append("format=" + format.replace(".", "~").replace(" ", "_"))
    if user_id is not None:
        parts.append(f"user_id={user_id}")
    return "&".join(parts)


async def create(
    session: AsyncSession,
    *,
    request_id: str,
    action: str,
    target: str,
    queue: str,
    job_name: str,
    job_kwargs: dict[str, Any],
    owner_id: int | None,
    subresource: str | None = None,
    project_id: int | None = None,
    task_id: int | None = None,
    job_id: int | None = None,
    org_id: int | None = None,
    format: str | None = None,
    function_id: str | None = None,
    lightweight: bool | None = None,
    origin_request_id: str | None = None,
) -> BackgroundRequest:
    """Add a queued request; 409 while an identical one is still queued or running.
    ``origin_request_id`` is the id of the HTTP request that starts it, which its job's log lines
    carry too."""
    existing = await session.get(BackgroundRequest, request_id, with_for_update=True)
    if existing is not None:
        if existing.status in ACTIVE:
            raise RequestInProgress(
                f"Request {request_id} is already {existing.status}; wait for it to finish."
            )
        await session.delete(existing)
        await session.flush()
    row = BackgroundRequest(
        id=request_id,
        action=action,
        target=target,
        subresource=subresource,
        project_id=project_id,
        task_id=task_id,
        job_id=job_id,
        org_id=org_id,
        format=format,
        function_id=function_id,
        lightweight=lightweight,
        status="queued",
        message="",
        owner_id=owner_id,
        queue=queue,
        job_name=job_name,
        job_kwargs=msgspec.json.encode(job_kwargs).decode(),
        created_date=utcnow(),
        origin_request_id=origin_request_id,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        # the same request was created concurrently by another API process
        raise RequestInProgress(f"Request {request_id} is already queued; wait for it to finish.") from None
    return row


def _lapsed(now: dt.datetime) -> Any:
    """A started request whose worker stopped renewing its lease (no lease: started before leases)."""
    return (BackgroundRequest.status == "started") & (
        BackgroundRequest.lease_expires.is_(None) | (BackgroundRequest.lease_expires < now)
    )


async def claim(
    session: AsyncSession, request_id: str, lease: dt.timedelta = DEFAULT_LEASE
) -> tuple[str, dict[str, Any], int, str | None] | None:
    """Mark a request started, leased to the caller for ``lease``, and count the attempt; ``None``
    if it is gone (cancelled), over, or running under a live lease (another worker has it).

    Returns the job name, its keyword arguments, the attempt number (1 for the first run) and the
    id of the HTTP request that started it.
    """
    now = utcnow()
    claimed = (
        await session.execute(
            update(BackgroundRequest)
            .where(
                BackgroundRequest.id == request_id,
                (BackgroundRequest.status == "queued") | _lapsed(now),
            )
            .values(
                status="started",
                started_date=now,
                lease_expires=now + lease,
                attempts=BackgroundRequest.attempts + 1,
                message="",
                progress=None,
            )
            .returning(
                BackgroundRequest.job_name,
                BackgroundRequest.job_kwargs,
                BackgroundRequest.attempts,
                BackgroundRequest.origin_request_id,
            )
        )
    ).one_or_none()
    if claimed is None:
        return None
    job_name, job_kwargs, attempts, origin_request_id = claimed
    return job_name, msgspec.json.decode(job_kwargs), attempts, origin_request_id


def _held(request_id: str, attempt: int | None) -> Any:
    """The request while the given attempt holds it (any attempt when ``None``)."""
    condition = BackgroundRequest.id == request_id
    if attempt is not None:
        condition &= BackgroundRequest.attempts == attempt
    return condition


async def renew_lease(session: AsyncSession, request_id: str, attempt: int, lease: dt.timedelta) -> bool:
    """Extend the lease of a running attempt; ``False`` when it no longer holds the request (its
    lease lapsed and another worker took it, or the request ended)."""
    result = await session.execute(
        update(BackgroundRequest)
        .where(_held(request_id, attempt), BackgroundRequest.status == "started")
        .values(lease_expires=utcnow() + lease)
    )
    return bool(getattr(result, "rowcount", 0))


async def release(session: AsyncSession, request_id: str, attempt: int) -> str | None:
    """Put a running attempt's request back in the queue (its job was interrupted, not at fault:
    the attempt does not count); returns the queue, or ``None`` when the attempt no longer holds
    the request."""
    return (
        await session.execute(
            update(BackgroundRequest)
            .where(_held(request_id, attempt), BackgroundRequest.status == "started")
            .values(status="queued", lease_expires=None, message="", attempts=BackgroundRequest.attempts - 1)
            .returning(BackgroundRequest.queue)
        )
    ).scalar_one_or_none()


async def release_lapsed(session: AsyncSession) -> list[tuple[str, str]]:
    """Put back in the queue the started requests whose lease lapsed (their worker died); returns
    their ``(id, queue)``. Sweepers racing each other each get distinct requests."""
    rows = await session.execute(
        update(BackgroundRequest)
        .where(_lapsed(utcnow()))
        .values(status="queued", lease_expires=None)
        .returning(BackgroundRequest.id, BackgroundRequest.queue)
    )
    return [(row[0], row[1]) for row in rows.all()]


async def add_leftover(
    session: AsyncSession, request_id: str, attempt: int, kind: str, ref: str, until_end: bool = False
) -> None:
    """Record that the running attempt made ``ref`` (of ``kind``), to be removed if it never
    becomes part of the result: by the next attempt, or, ``until_end``, only when the request
    fails for good (the job's input, which a retry needs)."""
    current = await session.scalar(
        select(BackgroundRequest.leftovers).where(_held(request_id, attempt)).with_for_update()
    )
    if current is None:
        return
    items = msgspec.json.decode(current)
    item = [kind, ref, "end"] if until_end else [kind, ref]
    if item not in items:
        items.append(item)
    await session.execute(
        update(BackgroundRequest)
        .where(_held(request_id, attempt))
        .values(leftovers=msgspec.json.encode(items).decode())
    )


async def take_leftovers(session: AsyncSession, request_id: str, final: bool) -> list[tuple[str, str]]:
    """The leftovers to remove, forgotten as they are handed over: all of them when the request
    ends (``final``), else those a retry removes."""
    current = await session.scalar(
        select(BackgroundRequest.leftovers).where(BackgroundRequest.id == request_id).with_for_update()
    )
    if not current or current == "[]":
        return []
    items = msgspec.json.decode(current)
    taken = [item for item in items if final or len(item) == 2]
    if taken:
        kept = [item for item in items if item not in taken]
        await session.execute(
            update(BackgroundRequest)
            .where(BackgroundRequest.id == request_id)
            .values(leftovers=msgspec.json.encode(kept).decode())
        )
    return [(item[0], item[1]) for item in taken]


async def set_progress(
    session: AsyncSession, request_id: str, progress: float, message: str | None, attempt: int | None = None
) -> None:
    values: dict[str, Any] = {"progress": max(0.0, min(1.0, progress))}
    if message is not None:
        values["message"] = message
    await session.execute(
        update(BackgroundRequest)
        .where(_held(request_id, attempt), BackgroundRequest.status == "started")
        .values(**values)
    )


async def finish(
    session: AsyncSession,
    request_id: str,
    *,
    failed: bool,
    message: str = "",
    result: JobResult | None = None,
    ttl: dt.timedelta = DEFAULT_REQUEST_TTL,
    attempt: int | None = None,
) -> bool:
    """Record the outcome of a queued or running request (of its ``attempt``, when given: an
    attempt that lost its lease records nothing); it expires ``ttl`` later. ``False`` if nothing
    was recorded."""
    now = utcnow()
    values: dict[str, Any] = {
        "status": "failed" if failed else "finished",
        "finished_date": now,
        "expiry_date": now + ttl,
        "message": message,
        "lease_expires": None,
    }
    if not failed:
        values["progress"] = 1.0
    if result is not None:
        values.update(
            result_id=result.result_id,
            result_url=result.result_url,
            result_file=result.result_file,
            message=result.message,
        )
    outcome = await session.execute(
        update(BackgroundRequest)
        .where(_held(request_id, attempt), BackgroundRequest.status.in_(ACTIVE))
        .values(**values)
    )
    return bool(getattr(outcome, "rowcount", 0))


async def fail_interrupted(
    session: AsyncSession, ttl: dt.timedelta = DEFAULT_REQUEST_TTL
) -> tuple[list[str], list[tuple[str, str]]]:
    """After a restart of the in-process runner: requests that were running are marked failed;
    returns (the failed ids, the ``(id, queue)`` of queued requests to run again)."""
    started = (
        (await session.execute(select(BackgroundRequest.id).where(BackgroundRequest.status == "started")))
        .scalars()
        .all()
    )
    if started:
        now = utcnow()
        await session.execute(
            update(BackgroundRequest)
            .where(BackgroundRequest.id.in_(started), BackgroundRequest.status == "started")
            .values(
                status="failed",
                finished_date=now,
                expiry_date=now + ttl,
                message="The server restarted while this request was running; please start it again.",
            )
        )
    queued = (
        await session.execute(
            select(BackgroundRequest.id, BackgroundRequest.queue)
            .where(BackgroundRequest.status == "queued")
            .order_by(BackgroundRequest.created_date)
        )
    ).all()
    return list(started), [(row[0], row[1]) for row in queued]


async def queued_before(session: AsyncSession, cutoff: dt.datetime) -> list[tuple[str, str]]:
    """The ``(id, queue)`` of requests created before ``cutoff`` and still waiting to start."""
    rows = await session.execute(
        select(BackgroundRequest.id, BackgroundRequest.queue)
        .where(BackgroundRequest.status == "queued", BackgroundRequest.created_date < cutoff)
        .order_by(BackgroundRequest.created_date)
    )
    return [(row[0], row[1]) for row in rows.all()]


_LEGACY = re.compile(
    r"^(?P<action>create|import|export):(?P<target>task|project|job)-(?P<id>\d+)"
    r"(?:-(?P<subresource>annotations|dataset|backup))?(?:-in-(?P<format>.+?)-format)?(?:-by-(?P<user>\d+))?$"
)


def from_legacy_id(request_id: str) -> str | None:
    """The id of a request named as CVAT 2.x named it (``create:task-1``,
    ``import:task-1-annotations``, ``export:task-1-dataset-in-COCO_1@0-format-by-2``), if it is one."""
    found = _LEGACY.match(request_id)
    if found is None:
        return None
    action, user = found["action"], found["user"]
    if (action == "create") != (found["subresource"] is None) or (action != "export" and user is not None):
        return None
    legacy_format = found["format"]
    return make_request_id(
        action,
        found["target"],
        int(found["id"]),
        found["subresource"],
        legacy_format.replace("@", ".") if legacy_format else None,
        int(user) if user is not None else None,
    )


async def get(session: AsyncSession, request_id: str) -> BackgroundRequest:
    """A request that has an owner (requests of deleted users are nobody's and not shown); CVAT
    2.x's ids name requests too."""
    row = await session.get(BackgroundRequest, request_id)
    if row is None and (current := from_legacy_id(request_id)) is not None:
        row = await session.get(BackgroundRequest, current)
    if row is None or row.owner_id is None:
        raise NotFound(f"Request {request_id!r} not found.")
    return row


async def cancel(session: AsyncSession, request_id: str) -> None:
    """Remove a queued request; running or finished ones cannot be cancelled."""
    result = await session.execute(
        delete(BackgroundRequest).where(
            BackgroundRequest.id == request_id, BackgroundRequest.status == "queued"
        )
    )
    if not getattr(result, "rowcount", 0):
        row = await get(session, request_id)
        raise Conflict(f"Only queued requests can be cancelled; this one is {row.status}.")


async def prune_expired(session: AsyncSession) -> int:
    """Delete finished/failed requests past their expiry date."""
    result = await session.execute(
        delete(BackgroundRequest).where(
            BackgroundRequest.status.in_(("finished", "failed")), BackgroundRequest.expiry_date < utcnow()
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def resource(row: BackgroundRequest) -> Resource:
    """What the policy decides on: CVAT's ``requests`` input (only the owner's id matters)."""
    return Resource("requests", {"id": row.id, "owner": {"id": row.owner_id}})


#: The fields ``filter_query`` answers may use for requests.
POLICY_FIELDS: FilterFields = {
    "id": lambda v: BackgroundRequest.id == v,
    "owner_id": lambda v: BackgroundRequest.owner_id == v,
    "org_id": lambda v: BackgroundRequest.org_id == v,
}


async def read_many(session: AsyncSession, rows: Sequence[BackgroundRequest]) -> list[RequestRead]:
    """Rows as API objects, their owners fetched in one query."""
    owner_ids = {row.owner_id for row in rows if row.owner_id is not None}
    owners: dict[int, User] = {}
    if owner_ids:
        found = await session.execute(select(User).where(User.id.in_(owner_ids)))
        owners = {user.id: user for user in found.scalars()}
    return [read(row, owners[row.owner_id]) for row in rows if row.owner_id in owners]


def read(row: BackgroundRequest, owner: User) -> RequestRead:
    return RequestRead(
        id=row.id,
        status=row.status,  # type: ignore[arg-type]
        message=row.message,
        operation=RequestOperation(
            type=f"{row.action}:{row.subresource or row.target}",
            target=row.target,
            project_id=row.project_id,
            task_id=row.task_id,
            job_id=row.job_id,
            org_id=row.org_id,
            format=row.format,
            function_id=row.function_id,
            lightweight=row.lightweight,
        ),
        progress=row.progress,
        created_date=row.created_date,
        started_date=row.started_date,
        finished_date=row.finished_date,
        expiry_date=row.expiry_date,
        owner=RequestOwner(id=owner.id, username=owner.username),
        result_url=row.result_url,
        result_id=row.result_id,
    )


LIST_SPEC = ListSpec(
    fields={
        "id": BackgroundRequest.id,
        "status": BackgroundRequest.status,
        "action": BackgroundRequest.action,
        "target": BackgroundRequest.target,
        "subresource": BackgroundRequest.subresource,
        "project_id": BackgroundRequest.project_id,
        "task_id": BackgroundRequest.task_id,
        "job_id": BackgroundRequest.job_id,
        "format": BackgroundRequest.format,
        "org_id": BackgroundRequest.org_id,
        "owner_id": BackgroundRequest.owner_id,
        "created_date": BackgroundRequest.created_date,
    },
    equality=("status", "action", "target", "subresource", "project_id", "task_id", "job_id", "format"),
    sortable=("created_date", "status", "action", "id"),
    default_sort="-created_date",
    integer_fields=frozenset({"project_id", "task_id", "job_id", "org_id", "owner_id"}),
)
