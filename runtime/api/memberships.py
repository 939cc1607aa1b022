"""``/api/memberships``: an organization's members, role changes, removals and leaving."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from annota.core.db.tables import Membership
from annota.core.errors import PermissionDenied
from annota.core.schemas.common import Paginated
from annota.core.schemas.organizations import MembershipRead, MembershipUpdate
from annota.core.services import memberships as service
from annota.runtime import web
from annota.runtime.api import request_body

TAGS = ["memberships"]

ROLE_RULES = (
    "The owner changes anyone else's role; maintainers change supervisors and workers (not themselves) "
    "into supervisors or workers; supervisors and workers change no roles."
)


async def record_event(
    request: Request,
    session: AsyncSession,
    type: str,
    membership: Membership,
    data: Any,
    before: Any = None,
) -> None:
    """Record an event about ``membership`` or its invitation (``type`` names which), in the
    membership's organization."""
    await web.record_event(
        request, session, type, type.partition(":")[2], data, resource_id=membership.id,
        org_id=membership.organization_id, before=before,
    )  # fmt: skip


@web.operation(
    "List memberships",
    tags=TAGS,
    response=Paginated[MembershipRead],
    paginated=True,
    query={name: "equality filter" for name in service.LIST_SPEC.equality},
)
async def list_memberships(request: Request) -> Response:
    query = select(Membership).where(await web.visible(request, "memberships", service.POLICY_FIELDS))
    base_url = web.base_url(request)
    return await web.list_response(
        request, query, service.LIST_SPEC, lambda session, rows: service.read_many(session, rows, base_url)
    )


@web.operation("Get a membership", tags=TAGS, response=MembershipRead)
async def retrieve_membership(request: Request) -> Response:
    async with web.transaction(request) as session:
        membership = await service.get(session, web.path_int(request))
        await web.authorize(request, "view", service.resource(membership))
        (result,) = await service.read_many(session, [membership], web.base_url(request))
    return web.json_response(result)


def _role_refusal(request: Request, membership: Membership, role: str) -> str:
    """Why a role change was refused, in the caller's terms (the policy decided it)."""
    if role == "owner":
        return "Nobody can be given the owner role: an organization has exactly one owner."
    if membership.role == "owner":
        return "The owner's role cannot be changed."
    if membership.user_id == web.identity(request).user_id:
        return "You cannot change your own role."
    return f"You cannot change a {membership.role}'s role to {role}. {ROLE_RULES}"


@web.operation("Change a member's role", tags=TAGS, request=MembershipUpdate, response=MembershipRead)
async def update_membership(request: Request) -> Response:
    body = await request_body.read(request)
    async with web.transaction(request) as session:
        membership = await service.get(session, web.path_int(request))
        await web.authorize(request, "view", service.resource(membership))
        # judged as it is and as it would be: nobody hands out a role they could not manage (a
        # role that is none is judged once the caller may change this member's role at all)
        role = body.string("role")
        try:
            await web.authorize(request, "change:role", service.resource(membership))
            if role in service.ROLES:
                await web.authorize(request, "change:role", service.resource(membership, role))
        except PermissionDenied as exc:
            raise PermissionDenied(_role_refusal(request, membership, role or membership.role)) from exc
        data = body.decode(MembershipUpdate)
        (before,) = await service.read_many(session, [membership], web.base_url(request))
        membership = await service.change_role(session, membership, data.role)
        (result,) = await service.read_many(session, [membership], web.base_url(request))
        await record_event(request, session, "update:membership", membership, result, before)
    return web.json_response(result)


@web.operation("Remove a member, or leave an organization", tags=TAGS, status=204)
async def delete_membership(request: Request) -> Response:
    async with web.transaction(request) as session:
        membership = await service.get(session, web.path_int(request))
        await web.authorize(request, "view", service.resource(membership))
        try:
            await web.authorize(request, "delete", service.resource(membership))
        except PermissionDenied as exc:
            if membership.role == "owner":
                raise PermissionDenied("The owner cannot leave or be removed from the organization.") from exc
            raise PermissionDenied(
                "Only the owner removes maintainers; maintainers remove supervisors and workers; "
                "members may leave."
            ) from exc
        (snapshot,) = await service.read_many(session, [membership], web.base_url(request))
        await record_event(request, session, "delete:membership", membership, snapshot)
        await service.remove(session, membership)
    return Response(status_code=204)


routes = [
    ("/api/memberships", list_memberships, ["GET"]),
    ("/api/memberships/{id:int}", retrieve_membership, ["GET"]),
    ("/api/memberships/{id:int}", update_membership, ["PATCH"]),
    ("/api/memberships/{id:int}", delete_membership, ["DELETE"]),
]
