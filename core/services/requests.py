"""Background request rows: create, claim for running, progress, finish, read."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.db.tables import BackgroundRequest, User
from annota.core.db.types import utcnow
from annota.core.errors import Conflict, NotFound
from annota.core.queue import JobResult
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
) -> BackgroundRequest:
    """Add a queued request; 409 while an identical one is still queued or running."""
    existing = await session.get(BackgroundRequest, request_id, with_for_update=True)
    if existing is not None:
        if existing.status in ACTIVE:
            raise Conflict(f"Request {request_id} is already {existing.status}; wait for it to finish.")
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
    )
    session.add(row)
    await session.flush()
    return row


async def claim(session: AsyncSession, request_id: str) -> tuple[str, dict[str, Any], int] | None:
    """Mark a request started; ``None`` if it is gone (cancelled) or already over."""
    row = await session.get(BackgroundRequest, request_id, with_for_update=True)
    if row is None or row.status not in ACTIVE:
        return None
    row.status = "started"
    row.started_date = utcnow()
    row.attempts += 1
    row.message = ""
    return row.job_name, msgspec.json.decode(row.job_kwargs), row.attempts


async def set_progress(session: AsyncSession, request_id: str, progress: float, message: str | None) -> None:
    values: dict[str, Any] = {"progress": max(0.0, min(1.0, progress))}
    if message is not None:
        values["message"] = message
    await session.execute(
        update(BackgroundRequest)
        .where(BackgroundRequest.id == request_id, BackgroundRequest.status == "started")
        .values(**values)
    )


async def finish(
    session: AsyncSession,
    request_id: str,
    *,
    failed: bool,
    message: str = "",
    result: JobResult | None = None,
    ttl: dt.timedelta = dt.timedelta(days=1),
) -> None:
    now = utcnow()
    values: dict[str, Any] = {
        "status": "failed" if failed else "finished",
        "finished_date": now,
        "expiry_date": now + ttl,
        "message": message,
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
    await session.execute(update(BackgroundRequest).where(BackgroundRequest.id == request_id).values(**values))


async def fail_interrupted(session: AsyncSession) -> tuple[list[str], list[tuple[str, str]]]:
    """After a restart of the in-process runner: requests that were running are marked failed;
    returns (the failed ids, the ``(id, queue)`` of queued requests to run again)."""
    started = (
        await session.execute(select(BackgroundRequest.id).where(BackgroundRequest.status == "started"))
    ).scalars().all()
    if started:
        await session.execute(
            update(BackgroundRequest)
            .where(BackgroundRequest.id.in_(started))
            .values(
                status="failed",
                finished_date=utcnow(),
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


async def get(session: AsyncSession, request_id: str) -> BackgroundRequest:
    row = await session.get(BackgroundRequest, request_id)
    if row is None:
        raise NotFound(f"Request {request_id!r} not found.")
    return row


async def cancel(session: AsyncSession, request_id: str) -> None:
    """Remove a queued request; running or finished ones cannot be cancelled."""
    row = await get(session, request_id)
    if row.status != "queued":
        raise Conflict(f"Only queued requests can be cancelled; this one is {row.status}.")
    await session.execute(delete(BackgroundRequest).where(BackgroundRequest.id == request_id))


async def prune_expired(session: AsyncSession) -> int:
    """Delete finished/failed requests past their expiry date."""
    result = await session.execute(
        delete(BackgroundRequest).where(
            BackgroundRequest.status.in_(("finished", "failed")), BackgroundRequest.expiry_date < utcnow()
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def read(row: BackgroundRequest, owner: User | None) -> RequestRead:
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
        owner=RequestOwner(id=owner.id, username=owner.username) if owner else None,
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
