"""Memberships: who belongs to an organization with which role, role changes and departures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.access import FilterFields, Resource
from annota.core.db.tables import Invitation, Membership, Organization, User
from annota.core.errors import NotFound
from annota.core.schemas.organizations import MembershipRead
from annota.core.services import users as user_service
from annota.core.services.listing import ListSpec

ROLES = ("worker", "supervisor", "maintainer", "owner")


async def get(session: AsyncSession, membership_id: int) -> Membership:
    membership = await session.get(Membership, membership_id)
    if membership is None:
        raise NotFound(f"Membership {membership_id} not found.")
    return membership


async def of_user(session: AsyncSession, organization_id: int, user_id: int) -> Membership | None:
    found: Membership | None = await session.scalar(
        select(Membership).where(Membership.organization_id == organization_id, Membership.user_id == user_id)
    )
    return found


def document(membership: Membership, role: str | None = None) -> dict[str, Any]:
    return {
        "id": membership.id,
        "role": role or membership.role,
        "is_active": membership.is_active,
        "user": {"id": membership.user_id},
        "organization": {"id": membership.organization_id},
    }


def resource(membership: Membership, role: str | None = None) -> Resource:
    """The policy input for one membership; ``role`` judges it as if it had that role (the role a
    change would give it)."""
    return Resource("memberships", document(membership, role), membership.id)


def list_resource() -> Resource:
    return Resource("memberships", None)


async def change_role(session: AsyncSession, membership: Membership, role: str) -> Membership:
    membership.role = role
    await session.flush()
    return membership


async def remove(session: AsyncSession, membership: Membership) -> None:
    """Delete the membership (its invitation goes with it)."""
    await session.execute(delete(Membership).where(Membership.id == membership.id))


async def read_many(
    session: AsyncSession, memberships: Sequence[Membership], base_url: str
) -> list[MembershipRead]:
    users = await user_service.users_by_id(session, {m.user_id for m in memberships})
    pending: dict[int, str] = {}
    waiting = [m.id for m in memberships if not m.is_active]
    if waiting:
        rows = await session.execute(
            select(Invitation.membership_id, Invitation.key_digest).where(
                Invitation.membership_id.in_(waiting)
            )
        )
        pending = {membership_id: digest for membership_id, digest in rows}
    return [
        MembershipRead(
            id=m.id,
            user=user_service.basic(users.get(m.user_id) if m.user_id else None, base_url),
            organization=m.organization_id,
            is_active=m.is_active,
            joined_date=m.joined_date,
            role=m.role,
            invitation=pending.get(m.id),
        )
        for m in memberships
    ]


async def organization_of(session: AsyncSession, membership: Membership) -> Organization:
    organization = await session.get(Organization, membership.organization_id)
    assert organization is not None  # the foreign key holds
    return organization


#: Fields a policy filter may name for memberships.
POLICY_FIELDS: FilterFields = {
    "id": lambda v: Membership.id == v,
    "user_id": lambda v: Membership.user_id == v,
    "organization_id": lambda v: Membership.organization_id == v,
    "is_active": lambda v: Membership.is_active.is_(bool(v)),
}

_user = select(User.username).where(User.id == Membership.user_id).scalar_subquery()

LIST_SPEC = ListSpec(
    fields={"id": Membership.id, "user": _user, "role": Membership.role},
    equality=("user", "role"),
    search=("user", "role"),
    sortable=("id", "user", "role"),
    integer_fields=frozenset({"id"}),
)

__all__ = [
    "LIST_SPEC",
    "POLICY_FIELDS",
    "ROLES",
    "change_role",
    "get",
    "of_user",
    "read_many",
    "remove",
    "resource",
]
