"""Organizations, memberships and invitations on the wire (CVAT's serializers)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

from annota.core.schemas.common import BasicUser

Role = Literal["worker", "supervisor", "maintainer", "owner"]
OrganizationName = Annotated[str, msgspec.Meta(max_length=64)]
Email = Annotated[str, msgspec.Meta(min_length=1, max_length=254)]


class OrganizationRead(msgspec.Struct):
    id: int
    slug: str
    name: str
    description: str
    created_date: dt.datetime
    updated_date: dt.datetime
    contact: dict[str, Any]
    owner: BasicUser | None


class OrganizationWrite(msgspec.Struct):
    # checked by ``organization_context.check_slug`` for a message naming the rule
    slug: str
    name: OrganizationName = ""
    description: str = ""
    contact: dict[str, Any] = {}


class OrganizationUpdate(msgspec.Struct):
    slug: str | msgspec.UnsetType = msgspec.UNSET
    name: OrganizationName | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType = msgspec.UNSET
    contact: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET


class BasicOrganization(msgspec.Struct):
    id: int
    slug: str


class MembershipRead(msgspec.Struct):
    id: int
    user: BasicUser | None
    organization: int
    is_active: bool
    joined_date: dt.datetime | None
    role: str
    #: the key of the invitation still waiting for an answer (see ``InvitationRead.key``)
    invitation: str | None


class MembershipUpdate(msgspec.Struct):
    role: Role


class InvitationRead(msgspec.Struct):
    #: the secret key on creation and resend; elsewhere the invitation's public key (the secret's
    #: digest), which names the invitation in ``/api/invitations/{key}`` just as well
    key: str
    created_date: dt.datetime
    owner: BasicUser | None
    role: str
    user: BasicUser | None
    organization: int
    organization_info: BasicOrganization
    expired: bool
    accepted: bool


class InvitationWrite(msgspec.Struct):
    role: Role
    email: Email


class AcceptInvitationRead(msgspec.Struct):
    organization_slug: str
