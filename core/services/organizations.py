"""Organizations: create (the creator becomes the owner), read, update, delete, and the documents
the policy decides on."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.access import FilterFields, Identity, Resource
from annota.core.db.tables import Data, Membership, Organization, Task, User
from annota.core.db.types import utcnow
from annota.core.errors import NotFound, ValidationError
from annota.core.media import layout
from annota.core.schemas.organizations import OrganizationRead, OrganizationUpdate, OrganizationWrite
from annota.core.services import users as user_service
from annota.core.services.listing import ListSpec
from annota.core.services.organization_context import check_slug


async def _free_slug(session: AsyncSession, slug: str, organization_id: int | None = None) -> str:
    check_slug(slug)
    query = select(Organization.id).where(func.lower(Organization.slug) == slug.lower())
    if organization_id is not None:
        query = query.where(Organization.id != organization_id)
    if await session.scalar(query) is not None:
        raise ValidationError.for_field("slug", f"An organization with slug {slug!r} already exists.")
    return slug


async def create(session: AsyncSession, who: Identity, data: OrganizationWrite) -> Organization:
    """The organization, owned by its creator through an active ``owner`` membership."""
    now = utcnow()
    organization = Organization(
        slug=await _free_slug(session, data.slug),
        name=data.name,
        description=data.description,
        contact=json.dumps(data.contact),
        owner_id=who.user_id,
        created_date=now,
        updated_date=now,
    )
    session.add(organization)
    await session.flush()
    session.add(
        Membership(
            user_id=who.user_id,
            organization_id=organization.id,
            role="owner",
            is_active=True,
            joined_date=now,
        )
    )
    await session.flush()
    return organization


async def get(session: AsyncSession, organization_id: int) -> Organization:
    organization = await session.get(Organization, organization_id)
    if organization is None:
        raise NotFound(f"Organization {organization_id} not found.")
    return organization


async def update(session: AsyncSession, organization: Organization, data: OrganizationUpdate) -> Organization:
    if data.slug is not msgspec.UNSET:
        organization.slug = await _free_slug(session, data.slug, organization.id)
    if data.name is not msgspec.UNSET:
        organization.name = data.name
    if data.description is not msgspec.UNSET:
        organization.description = data.description
    if data.contact is not msgspec.UNSET:
        organization.contact = json.dumps(data.contact)
    organization.updated_date = utcnow()
    await session.flush()
    return organization


async def remove(session: AsyncSession, organization: Organization) -> list[str]:
    """Delete the organization; its memberships, invitations, projects and tasks go with it
    (foreign keys cascade), then the tasks' media records (tasks only point at them). Webhooks stay
    until they have heard of the deletion (the webhooks plugin prunes them). Returns
    the storage prefixes of the tasks' media and uploads, to delete once this commits."""
    rows = (
        await session.execute(select(Task.id, Task.data_id).where(Task.organization_id == organization.id))
    ).all()
    data_ids = [data_id for _, data_id in rows if data_id is not None]
    await session.execute(delete(Organization).where(Organization.id == organization.id))
    if data_ids:
        await session.execute(delete(Data).where(Data.id.in_(data_ids)))
    return [layout.upload_prefix(task_id) for task_id, _ in rows] + [layout.data_prefix(d) for d in data_ids]


def resource(organization: Organization | None, who: Identity) -> Resource:
    """The policy input for one organization with the caller's role in it (``None``: create)."""
    if organization is None:
        return Resource("organizations", None)
    membership = who.memberships.get(organization.id)
    return Resource(
        "organizations",
        {
            "id": organization.id,
            "owner": {"id": organization.owner_id},
            "user": {"role": membership.role if membership is not None else None},
        },
        organization.id,
    )


def _contact(raw: str) -> dict[str, Any]:
    value = json.loads(raw or "{}")
    return value if isinstance(value, dict) else {}


async def read_many(
    session: AsyncSession, organizations: Sequence[Organization], base_url: str
) -> list[OrganizationRead]:
    owners = await user_service.users_by_id(session, {o.owner_id for o in organizations})
    return [
        OrganizationRead(
            id=o.id,
            slug=o.slug,
            name=o.name,
            description=o.description,
            created_date=o.created_date,
            updated_date=o.updated_date,
            contact=_contact(o.contact),
            owner=user_service.basic(owners.get(o.owner_id) if o.owner_id else None, base_url),
        )
        for o in organizations
    ]


def _active_member(user_id: Any) -> Any:
    return exists().where(
        Membership.organization_id == Organization.id,
        Membership.user_id == user_id,
        Membership.is_active.is_(True),
    )


#: Fields a policy filter may name for organizations.
POLICY_FIELDS: FilterFields = {
    "id": lambda v: Organization.id == v,
    "owner_id": lambda v: Organization.owner_id == v,
    # one membership both of the user and active (two separate conditions could match two rows)
    "active_member_id": _active_member,
}

_owner = select(User.username).where(User.id == Organization.owner_id).scalar_subquery()

LIST_SPEC = ListSpec(
    fields={
        "id": Organization.id,
        "slug": Organization.slug,
        "name": Organization.name,
        "owner": _owner,
        "created_date": Organization.created_date,
        "updated_date": Organization.updated_date,
    },
    equality=("name", "owner", "slug"),
    search=("name", "owner", "slug"),
    sortable=("id", "name", "owner", "slug", "created_date", "updated_date"),
    integer_fields=frozenset({"id"}),
)

__all__ = ["LIST_SPEC", "POLICY_FIELDS", "create", "get", "read_many", "remove", "resource", "update"]
