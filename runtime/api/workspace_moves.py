"""Moves of projects and tasks between workspaces, as their ``PATCH`` routes take them.

A move needs the right to move the object where it is (``update:organization``, asked with the
other per-field scopes) and the right to create such an object where it goes: the caller is judged
in the destination's context. Subscribers see the object leave one workspace and arrive in the
other: a ``delete:`` event in the old scope, a ``create:`` event in the new one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from annota.core.access import Identity, Resource
from annota.core.bounds import INT4_MAX
from annota.core.services import workspace_moves as service
from annota.runtime import web
from annota.runtime.api.request_body import Body


async def authorize_destination(
    request: Request, session: AsyncSession, body: Body, creation: Callable[[Identity], Resource]
) -> None:
    """403 unless the caller may create ``creation``'s object in the workspace the body names."""
    if not service.is_move(body.fields):
        return
    target = body.fields["organization_id"]
    # JSON's true and false are ints to Python, not ids
    if target is not None and (
        isinstance(target, bool) or not isinstance(target, int) or not 0 <= target <= INT4_MAX
    ):
        return  # not an id: the body's validation says so
    who = web.identity(request)
    context = await service.destination(session, target, who.memberships)
    there = dataclasses.replace(who, organization=context, organization_specified=True)
    await web.authorize(request, "create", creation(there), who=there)


def check_request(body: Body, write_type: type[msgspec.Struct], task: Any = None) -> bool:
    """Whether the body asks for a move, refusing what CVAT refuses with one (fields it does not
    know are ignored, as DRF ignores them)."""
    if not service.is_move(body.fields):
        return False
    known = {field.name for field in msgspec.structs.fields(write_type)}
    service.check_request({k: v for k, v in body.fields.items() if k in known}, task)
    return True


async def record(
    request: Request,
    session: AsyncSession,
    resource: str,
    resource_id: int,
    before: Any,
    after: Any,
    *,
    old_org: int | None,
    new_org: int | None,
    project_id: int | None = None,
    task_id: int | None = None,
) -> None:
    """``delete:<resource>`` where it was, ``create:<resource>`` where it is."""
    ids = {"resource_id": resource_id, "project_id": project_id, "task_id": task_id}
    await web.record_event(request, session, f"delete:{resource}", resource, before, org_id=old_org, **ids)
    await web.record_event(request, session, f"create:{resource}", resource, after, org_id=new_org, **ids)


__all__ = ["authorize_destination", "check_request", "record"]
