"""Which organization a request acts in, and the caller's role there (CVAT's ``iam_context``).

The context is named by the ``X-Organization`` header (a slug), the ``org`` query (a slug) or the
``org_id`` query (an id); an empty value names the sandbox. The caller's active memberships are
loaded with it, so that an object in an organization is judged by the caller's role in that
organization even when the request names none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.access import OrganizationContext
from annota.core.bounds import parse_int
from annota.core.db.tables import Membership, Organization
from annota.core.errors import NotFound, PermissionDenied, ValidationError

#: CVAT's organization slug: letters, digits and dashes, at most 16 characters
SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,16}$")


def check_slug(slug: str, field: str = "slug") -> str:
    if not SLUG.match(slug):
        raise ValidationError.for_field(
            field,
            f"{slug!r} is not a valid organization slug: use 1 to 16 letters, digits, '-' or '_'.",
        )
    return slug


async def memberships_of(session: AsyncSession, user_id: int) -> dict[int, OrganizationContext]:
    """The caller's active memberships, by organization id."""
    rows = await session.execute(
        select(Organization.id, Organization.slug, Organization.owner_id, Membership.role)
        .join(Membership, Membership.organization_id == Organization.id)
        .where(Membership.user_id == user_id, Membership.is_active.is_(True))
    )
    return {
        org_id: OrganizationContext(id=org_id, slug=slug, owner_id=owner_id, role=role)
        for org_id, slug, owner_id, role in rows
    }


def requested(headers: Mapping[str, str], query: Mapping[str, str]) -> tuple[bool, str | None, int | None]:
    """``(specified, slug, id)`` named by the request; both empty when it names the sandbox.

    Naming two different organizations (header against query, ``org`` against ``org_id``) is
    refused rather than guessed.
    """
    names: list[tuple[str, str]] = []
    if "x-organization" in headers:
        names.append(("X-Organization", headers["x-organization"].strip()))
    if "org" in query:
        names.append(("org", query["org"].strip()))
    org_id: int | None = None
    if "org_id" in query:
        raw = query["org_id"].strip()
        if raw:
            try:
                org_id = parse_int(raw, "org_id", 0)
            except ValidationError:
                raise ValidationError.for_field("org_id", f"{raw!r} is not an organization id.") from None
    if not names and "org_id" not in query:
        return False, None, None
    slugs = {value for _, value in names}
    if len(slugs) > 1:
        given = ", ".join(f"{where}={value!r}" for where, value in names)
        raise ValidationError(f"The request names two different organizations ({given}); name one.")
    slug = slugs.pop() if slugs else None
    if slug:
        check_slug(slug, names[0][0])
    if "org_id" in query and names and bool(slug) != (org_id is not None):
        raise ValidationError("The request names both the sandbox and an organization; name one.")
    return True, slug or None, org_id


async def resolve(
    session: AsyncSession,
    *,
    slug: str | None,
    org_id: int | None,
    memberships: Mapping[int, OrganizationContext],
    is_admin: bool,
) -> OrganizationContext:
    """The named organization with the caller's role; outsiders other than administrators are
    refused, so a forged header changes nothing."""
    query = select(Organization.id, Organization.slug, Organization.owner_id)
    if slug is not None:
        query = query.where(Organization.slug == slug)
    else:
        query = query.where(Organization.id == org_id)
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound(
            f"No organization with {f'slug {slug!r}' if slug is not None else f'id {org_id}'} exists."
        )
    found_id, found_slug, owner_id = row
    if org_id is not None and found_id != org_id:
        raise ValidationError(
            f"The request names two different organizations (slug {slug!r} is organization {found_id}, "
            f"org_id is {org_id}); name one."
        )
    membership = memberships.get(found_id)
    if membership is not None:
        return membership
    if not is_admin:
        raise PermissionDenied(f"You are not a member of organization {found_slug!r}.")
    return OrganizationContext(id=found_id, slug=found_slug, owner_id=owner_id, role=None)
