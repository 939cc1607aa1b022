"""Who is calling and what they act on: the vocabulary of the ``authenticate``, ``authorize``
and ``filter_query`` hooks.

A ``Resource`` carries the document CVAT's OPA policies receive as ``input.resource``, and
``Identity.auth_document()`` the ``input.auth`` part, so a Python policy and a Rego policy see the
same facts. List scoping is data (a ``Filter``) that the host turns into SQL, never a row-by-row check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import and_, false, not_, or_, true
from sqlalchemy.sql import ColumnElement

Privilege = Literal["admin", "user", "worker"]

#: Global privileges from most to least powerful (CVAT's ``utils.rego`` priorities).
PRIVILEGE_RANK: dict[str | None, int] = {"admin": 0, "user": 75, "worker": 100, None: 1000}

#: Organization roles from most to least powerful.
ROLE_RANK: dict[str | None, int] = {"owner": 0, "maintainer": 50, "supervisor": 75, "worker": 100, None: 1000}


@dataclass(frozen=True)
class OrganizationContext:
    id: int
    slug: str
    owner_id: int | None
    #: the caller's role in it, or None when not a member
    role: str | None


@dataclass(frozen=True)
class Identity:
    """The authenticated caller (or the anonymous one: ``user_id is None``)."""

    user_id: int | None
    username: str = ""
    privilege: str | None = None
    is_superuser: bool = False
    #: how the caller authenticated: "session", "token", "basic", "access_token" or "" (anonymous)
    method: str = ""
    access_token_id: int | None = None
    read_only: bool = False
    #: the organization the request names (``X-Organization``, ``org`` or ``org_id``), if any
    organization: OrganizationContext | None = None
    #: True when the request named a context, even the empty one (``org=`` for the sandbox)
    organization_specified: bool = False
    #: the caller's active memberships by organization id: the context of an object in an
    #: organization when the request names none
    memberships: Mapping[int, OrganizationContext] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def is_admin(self) -> bool:
        return self.is_superuser or self.privilege == "admin"

    def has_privilege(self, minimum: str) -> bool:
        own = "admin" if self.is_admin else self.privilege
        return PRIVILEGE_RANK[own] <= PRIVILEGE_RANK[minimum]

    def context_for(self, organization_id: int | None) -> OrganizationContext | None:
        """The organization context of an action on an object in ``organization_id``: the one the
        request named, else the object's own (with the caller's role in it, ``None`` for outsiders)."""
        if self.organization_specified or organization_id is None:
            return self.organization
        known = self.memberships.get(organization_id)
        return known or OrganizationContext(id=organization_id, slug="", owner_id=None, role=None)

    def auth_document(self, organization_id: int | None = None) -> dict[str, Any]:
        """CVAT's ``input.auth`` for an action on an object in ``organization_id`` (or on none)."""
        org = self.context_for(organization_id)
        return {
            "user": {"id": self.user_id, "privilege": "admin" if self.is_admin else self.privilege},
            "organization": None
            if org is None
            else {"id": org.id, "owner": {"id": org.owner_id}, "user": {"role": org.role}},
            "organization_specified": self.organization_specified,
            # the organizations a list naming no context spans, with the sandbox
            "member_of": sorted(self.memberships),
            "token": None
            if self.access_token_id is None
            else {"id": self.access_token_id, "read_only": self.read_only},
        }


ANONYMOUS = Identity(user_id=None)


@dataclass(frozen=True)
class Resource:
    """The object an action is about. ``kind`` is the policy package (``tasks``, ``projects``…),
    ``document`` the ``input.resource`` CVAT's policy for it reads (``None`` for list/create scopes
    without an object)."""

    kind: str
    document: Mapping[str, Any] | None = None
    id: int | None = None

    @property
    def organization_id(self) -> int | None:
        """The organization the object lives in (``document.organization.id``)."""
        org = (self.document or {}).get("organization")
        return org.get("id") if isinstance(org, Mapping) else None

    def input_document(self, identity: Identity, scope: str) -> dict[str, Any]:
        """The whole OPA input: ``{"scope", "auth", "resource"}``."""
        return {
            "scope": scope,
            "auth": identity.auth_document(self.organization_id),
            "resource": dict(self.document) if self.document is not None else None,
        }


# --- list filters ---------------------------------------------------------------------------

#: A filter: ``{}`` (everything), ``{"field": value, ...}`` (all equal), or ``["|"|"&", f, ...]`` /
#: ``["~", f]`` combining filters. Field names are those of the resource kind's ``FilterFields``.
Filter = Mapping[str, Any] | list[Any]

#: How a filter field becomes SQL: a function from the compared value to a boolean clause.
FilterFields = Mapping[str, Callable[[Any], ColumnElement[bool]]]

MATCH_ALL: Filter = {}
MATCH_NONE: Filter = ["|"]


def filter_to_sql(spec: Filter | None, fields: FilterFields) -> ColumnElement[bool]:
    """Translate a ``Filter`` into a SQL clause. ``None`` (nobody answered) matches nothing."""
    if spec is None:
        return false()
    if isinstance(spec, Mapping):
        clauses = []
        for name, value in spec.items():
            if name not in fields:
                raise ValueError(f"filter field {name!r} is not known for this resource")
            clauses.append(fields[name](value))
        return and_(true(), *clauses)
    if not spec or spec[0] not in ("|", "&", "~"):
        raise ValueError(f"malformed filter {spec!r}")
    op, *operands = spec
    parts = [filter_to_sql(operand, fields) for operand in operands]
    if op == "~":
        if len(parts) != 1:
            raise ValueError("'~' takes exactly one filter")
        return not_(parts[0])
    if op == "|":
        return or_(false(), *parts)
    return and_(true(), *parts)


@dataclass
class Decision:
    """An authorization answer with optional reasons (shown to the client on 403)."""

    allow: bool
    reasons: list[str] = field(default_factory=list)
