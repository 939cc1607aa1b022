"""``/api/invitations``: invite a registered user into the request's organization, and the
invitee's answer (accept, decline); the inviter or the organization's staff resend or withdraw."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from annota.core.db.tables import Invitation, Membership
from annota.core.errors import ValidationError
from annota.core.schemas.common import Paginated
from annota.core.schemas.organizations import AcceptInvitationRead, InvitationRead, InvitationWrite
from annota.core.services import invitations as service
from annota.core.services import memberships as membership_service
from annota.runtime import web
from annota.runtime.api import request_body
from annota.runtime.api.memberships import record_event

TAGS = ["invitations"]


async def _authorized(request: Request, session: AsyncSession, scope: str) -> tuple[Invitation, Membership]:
    """The invitation the path names and its membership, if the caller may ``scope`` it."""
    invitation, membership = await service.get(session, request.path_params["key"])
    await web.authorize(request, scope, service.resource(invitation, membership))
    return invitation, membership


async def _public(request: Request, session: AsyncSession, invitation: Invitation) -> InvitationRead:
    """The invitation as everyone may see it: with its public key, never the secret."""
    (result,) = await service.read_many(session, [invitation], web.base_url(request))
    return result


@web.operation(
    "List invitations",
    tags=TAGS,
    response=Paginated[InvitationRead],
    paginated=True,
    query={name: "equality filter" for name in service.LIST_SPEC.equality},
)
async def list_invitations(request: Request) -> Response:
    query = service.list_query().where(await web.visible(request, "invitations", service.POLICY_FIELDS))
    base_url = web.base_url(request)
    return await web.list_response(
        request, query, service.LIST_SPEC, lambda session, rows: service.read_many(session, rows, base_url)
    )


@web.operation(
    "Invite a user into the organization",
    tags=TAGS,
    request=InvitationWrite,
    response=InvitationRead,
    status=201,
)
async def create_invitation(request: Request) -> Response:
    body = await request_body.read(request)
    who = web.require_user(request)
    if who.organization is None:
        raise ValidationError.for_field(
            "org", "Invitations are made into an organization: name it with X-Organization, org or org_id."
        )
    organization_id = who.organization.id
    # the policy judges the role as sent (inviting an owner is refused there, 403, as in CVAT)
    role = body.string("role")
    await web.authorize(
        request, "create", service.creation_resource(who.user_id, organization_id, role, None)
    )
    data = body.decode(InvitationWrite)
    service.check_role(data.role)
    async with web.transaction(request) as session:
        invitee = await service.invitee_by_email(session, data.email)
        invitation, membership, key = await service.create(
            session, who.user_id, organization_id, invitee, data.role
        )
        await record_event(
            request, session, "create:invitation", membership, await _public(request, session, invitation)
        )
        if not web.state(request).settings.invitation_confirm:
            await service.accept(session, invitation, membership)
            (joined,) = await membership_service.read_many(session, [membership], web.base_url(request))
            await record_event(request, session, "create:membership", membership, joined)
        (result,) = await service.read_many(
            session, [invitation], web.base_url(request), {invitation.key_digest: key}
        )
    return web.json_response(result, status_code=201)


@web.operation("Get an invitation", tags=TAGS, response=InvitationRead)
async def retrieve_invitation(request: Request) -> Response:
    async with web.transaction(request) as session:
        invitation, membership = await _authorized(request, session, "view")
        result = await _public(request, session, invitation)
    return web.json_response(result)


@web.operation("Accept an invitation", tags=TAGS, response=AcceptInvitationRead)
async def accept_invitation(request: Request) -> Response:
    async with web.transaction(request) as session:
        invitation, membership = await _authorized(request, session, "accept")
        organization = await service.accept(session, invitation, membership)
        (joined,) = await membership_service.read_many(session, [membership], web.base_url(request))
        await record_event(request, session, "create:membership", membership, joined)
    return web.json_response(AcceptInvitationRead(organization_slug=organization.slug))


@web.operation("Decline an invitation", tags=TAGS, status=204)
async def decline_invitation(request: Request) -> Response:
    async with web.transaction(request) as session:
        invitation, membership = await _authorized(request, session, "decline")
        snapshot = await _public(request, session, invitation)
        await service.decline(session, membership)
        await record_event(request, session, "delete:invitation", membership, snapshot)
    return Response(status_code=204)


@web.operation("Send an invitation again, with a new key and expiry", tags=TAGS, response=InvitationRead)
async def resend_invitation(request: Request) -> Response:
    async with web.transaction(request) as session:
        invitation, membership = await _authorized(request, session, "resend")
        before = await _public(request, session, invitation)
        renewed, key = await service.resend(session, invitation, membership)
        await record_event(
            request,
            session,
            "update:invitation",
            membership,
            await _public(request, session, renewed),
            before,
        )
        (result,) = await service.read_many(
            session, [renewed], web.base_url(request), {renewed.key_digest: key}
        )
    return web.json_response(result)


@web.operation("Withdraw an invitation", tags=TAGS, status=204)
async def delete_invitation(request: Request) -> Response:
    async with web.transaction(request) as session:
        invitation, membership = await _authorized(request, session, "delete")
        snapshot = await _public(request, session, invitation)
        await service.remove(session, invitation, membership)
        await record_event(request, session, "delete:invitation", membership, snapshot)
    return Response(status_code=204)


routes = [
    ("/api/invitations", list_invitations, ["GET"]),
    ("/api/invitations", create_invitation, ["POST"]),
    ("/api/invitations/{key}", retrieve_invitation, ["GET"]),
    ("/api/invitations/{key}", delete_invitation, ["DELETE"]),
    ("/api/invitations/{key}/accept", accept_invitation, ["POST"]),
    ("/api/invitations/{key}/decline", decline_invitation, ["POST"]),
    ("/api/invitations/{key}/resend", resend_invitation, ["POST"]),
]
