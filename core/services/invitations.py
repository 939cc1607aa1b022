"""Invitations into an organization: an inactive membership plus a random key, which the invitee
accepts (the membership becomes active) or declines (it goes away).

Keys are stored as digests, like access tokens: the secret is shown to the inviter when the
invitation is created or resent. Elsewhere an invitation is shown with its digest as its public
key, which names it in ``/api/invitations/{key}`` as the secret does; either way only the invitee
may accept, so neither is a credential by itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.access import FilterFields, Resource
from annota.core.db.tables import Invitation, Membership, Organization, User
from annota.core.db.types import utcnow
from annota.core.errors import NotFound, ValidationError
from annota.core.passwords import new_token, token_digest
from annota.core.schemas.organizations import BasicOrganization, InvitationRead
from annota.core.services import memberships as membership_service
from annota.core.services import users as user_service
from annota.core.services.listing import ListSpec

#: how long an invitation can be accepted after it was sent (CVAT's default)
LIFETIME = dt.timedelta(days=7)


def check_role(role: str) -> str:
    if role == "owner":
        raise ValidationError.for_field(
            "role", "Nobody can be invited as the owner: an organization has one."
        )
    return role


async def invitee_by_email(session: AsyncSession, email: str) -> User:
    users = (
        (await session.execute(select(User).where(func.lower(User.email) == email.strip().lower()).limit(2)))
        .scalars()
        .all()
    )
    if len(users) != 1:
        raise ValidationError.for_field(
            "email",
            f"No user with e-mail {email!r} exists: only registered users can be invited."
            if not users
            else f"Several users have e-mail {email!r}; it does not name one person.",
        )
    return users[0]


def creation_resource(
    inviter_id: int | None, organization_id: int, role: str | None, invitee_id: int | None
) -> Resource:
    """The policy input for inviting someone with ``role`` into ``organization_id``."""
    return Resource(
        "invitations",
        {
            "owner": {"id": inviter_id},
            "invitee": {"id": invitee_id},
            "role": role,
            "organization": {"id": organization_id},
        },
    )


def resource(invitation: Invitation, membership: Membership) -> Resource:
    return creation_resource(
        invitation.owner_id, membership.organization_id, membership.role, membership.user_id
    )


def list_resource() -> Resource:
    return Resource("invitations", None)


async def create(
    session: AsyncSession, inviter_id: int | None, organization_id: int, invitee: User, role: str
) -> tuple[Invitation, Membership, str]:
    """An inactive membership and its invitation; returns them with the secret key."""
    check_role(role)
    existing = await membership_service.of_user(session, organization_id, invitee.id)
    if existing is not None:
        raise ValidationError.for_field(
            "email",
            f"{invitee.username} is already a member of this organization."
            if existing.is_active
            else f"{invitee.username} is already invited to this organization.",
        )
    membership = Membership(user_id=invitee.id, organization_id=organization_id, role=role, is_active=False)
    session.add(membership)
    await session.flush()
    invitation, key = _new_invitation(membership.id, inviter_id, utcnow())
    session.add(invitation)
    await session.flush()
    return invitation, membership, key


def _new_invitation(membership_id: int, owner_id: int | None, created: dt.datetime) -> tuple[Invitation, str]:
    key = new_token()
    now = utcnow()
    invitation = Invitation(
        key_digest=token_digest(key),
        membership_id=membership_id,
        owner_id=owner_id,
        created_date=created,
        sent_date=now,
        expires=now + LIFETIME,
    )
    return invitation, key


async def get(session: AsyncSession, key: str) -> tuple[Invitation, Membership]:
    """The invitation named by its secret key or its public key, with its membership."""
    row = (
        await session.execute(
            select(Invitation, Membership)
            .join(Membership, Membership.id == Invitation.membership_id)
            .where(or_(Invitation.key_digest == token_digest(key), Invitation.key_digest == key))
        )
    ).first()
    if row is None:
        raise NotFound("Invitation not found.")
    return row[0], row[1]


def is_expired(invitation: Invitation, membership: Membership) -> bool:
    return not membership.is_active and invitation.expires <= utcnow()


async def accept(session: AsyncSession, invitation: Invitation, membership: Membership) -> Organization:
    """Make the membership active; returns the organization joined."""
    if membership.is_active:
        raise ValidationError("This invitation has already been accepted.")
    if is_expired(invitation, membership):
        raise ValidationError("This invitation has expired; ask for it to be sent again.")
    membership.is_active = True
    membership.joined_date = utcnow()
    await session.flush()
    return await membership_service.organization_of(session, membership)


async def decline(session: AsyncSession, membership: Membership) -> None:
    if membership.is_active:
        raise ValidationError("This invitation has already been accepted; leave the organization instead.")
    await membership_service.remove(session, membership)


async def resend(
    session: AsyncSession, invitation: Invitation, membership: Membership
) -> tuple[Invitation, str]:
    """The invitation sent again: a new key and a new expiry (the old key stops working)."""
    if membership.is_active:
        raise ValidationError("This invitation has already been accepted.")
    renewed, key = _new_invitation(membership.id, invitation.owner_id, invitation.created_date)
    await session.execute(delete(Invitation).where(Invitation.key_digest == invitation.key_digest))
    session.add(renewed)
    await session.flush()
    return renewed, key


async def remove(session: AsyncSession, invitation: Invitation, membership: Membership) -> None:
    """Withdraw the invitation; an invitee who has not accepted loses the waiting membership too."""
    if membership.is_active:
        await session.execute(delete(Invitation).where(Invitation.key_digest == invitation.key_digest))
    else:
        await membership_service.remove(session, membership)


async def read_many(
    session: AsyncSession,
    invitations: Sequence[Invitation],
    base_url: str,
    keys: Mapping[str, str] | None = None,
) -> list[InvitationRead]:
    """Serialize invitations; ``keys`` maps digests to the secret keys the caller may be shown."""
    keys = keys or {}
    memberships: dict[int, Membership] = {}
    if invitations:
        found_memberships = await session.execute(
            select(Membership).where(Membership.id.in_({i.membership_id for i in invitations}))
        )
        memberships = {m.id: m for m in found_memberships.scalars()}
    rows = [(i, memberships[i.membership_id]) for i in invitations]
    users = await user_service.users_by_id(
        session, {i.owner_id for i, _ in rows} | {m.user_id for _, m in rows}
    )
    org_ids = {m.organization_id for _, m in rows}
    slugs: dict[int, str] = {}
    if org_ids:
        found = await session.execute(
            select(Organization.id, Organization.slug).where(Organization.id.in_(org_ids))
        )
        slugs = {org_id: slug for org_id, slug in found}
    return [
        InvitationRead(
            key=keys.get(i.key_digest, i.key_digest),
            created_date=i.created_date,
            owner=user_service.basic(users.get(i.owner_id) if i.owner_id else None, base_url),
            role=m.role,
            user=user_service.basic(users.get(m.user_id) if m.user_id else None, base_url),
            organization=m.organization_id,
            organization_info=BasicOrganization(id=m.organization_id, slug=slugs.get(m.organization_id, "")),
            expired=is_expired(i, m),
            accepted=m.is_active,
        )
        for i, m in rows
    ]


def list_query() -> Select[Invitation]:
    return select(Invitation).join(Membership, Membership.id == Invitation.membership_id)


#: Fields a policy filter may name for invitations (the query joins each to its membership).
POLICY_FIELDS: FilterFields = {
    "owner_id": lambda v: Invitation.owner_id == v,
    "membership__user_id": lambda v: Membership.user_id == v,
    "membership__organization_id": lambda v: Membership.organization_id == v,
}

_owner = select(User.username).where(User.id == Invitation.owner_id).scalar_subquery()

LIST_SPEC = ListSpec(
    fields={
        "owner": _owner,
        "user_id": Membership.user_id,
        "role": Membership.role,
        "accepted": Membership.is_active,
        "created_date": Invitation.created_date,
    },
    equality=("owner", "user_id", "role", "accepted"),
    search=("owner", "role"),
    sortable=("created_date", "owner", "role", "user_id", "accepted"),
    default_sort="-created_date",
    integer_fields=frozenset({"user_id"}),
    boolean_fields=frozenset({"accepted"}),
)

__all__ = [
    "LIFETIME",
    "LIST_SPEC",
    "POLICY_FIELDS",
    "accept",
    "create",
    "decline",
    "get",
    "invitee_by_email",
    "read_many",
    "remove",
    "resend",
    "resource",
]
