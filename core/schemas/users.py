"""Users, login, tokens."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from annota.core.schemas.common import BasicUser
from annota.core.schemas.user_agreements import Confirmation


class UserRead(msgspec.Struct):
    url: str
    id: int
    username: str
    first_name: str
    last_name: str
    email: str
    groups: list[str]
    is_staff: bool
    is_superuser: bool
    is_active: bool
    last_login: dt.datetime | None
    date_joined: dt.datetime
    has_analytics_access: bool


class UserUpdate(msgspec.Struct):
    #: checked by the service, as CVAT checks usernames (its messages name the field)
    username: str | msgspec.UnsetType = msgspec.UNSET
    first_name: Annotated[str, msgspec.Meta(max_length=150)] | msgspec.UnsetType = msgspec.UNSET
    last_name: Annotated[str, msgspec.Meta(max_length=150)] | msgspec.UnsetType = msgspec.UNSET
    is_active: bool | msgspec.UnsetType = msgspec.UNSET


class LoginRequest(msgspec.Struct):
    password: str
    username: str = ""
    email: str = ""


class RegisterRequest(msgspec.Struct):
    #: at least five characters, as CVAT requires (its clients check the answer against that)
    username: Annotated[str, msgspec.Meta(min_length=5, max_length=150, pattern=r"^[\w.@+-]+$")]
    password1: str
    password2: str
    email: Annotated[str, msgspec.Meta(max_length=254)] = ""
    first_name: Annotated[str, msgspec.Meta(max_length=150)] = ""
    last_name: Annotated[str, msgspec.Meta(max_length=150)] = ""
    #: answers to the agreements of ``GET /api/user-agreements``
    confirmations: list[Confirmation] = []


class RegisterRead(msgspec.Struct):
    username: str
    email: str
    first_name: str
    last_name: str
    email_verification_required: bool
    key: str | None


class Token(msgspec.Struct):
    key: str


class AccessTokenRead(msgspec.Struct, omit_defaults=True):
    id: int
    name: str
    created_date: dt.datetime
    updated_date: dt.datetime
    expiry_date: dt.datetime | None
    last_used_date: dt.datetime | None
    read_only: bool
    #: CVAT serializes the owner as a ``BasicUser``
    owner: BasicUser
    #: the secret, only in the answer to its creation
    value: str | None = None


class AccessTokenWrite(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(max_length=256)] = ""
    expiry_date: dt.datetime | None = None
    read_only: bool = False


class AccessTokenUpdate(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(max_length=256)] | msgspec.UnsetType = msgspec.UNSET
    expiry_date: dt.datetime | None | msgspec.UnsetType = msgspec.UNSET
    read_only: bool | msgspec.UnsetType = msgspec.UNSET
