"""Users and credentials: accounts, login tokens, cookie sessions and personal access tokens."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from sqlalchemy import delete, exists, false, func, null, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.access import FilterFields, Identity, Resource
from annota.core.db.tables import AccessToken, AuthToken, Membership, Session, User
from annota.core.db.types import utcnow
from annota.core.errors import NotAuthenticated, NotFound, ValidationError
from annota.core.passwords import DUMMY_HASH, hash_password, new_token, token_digest, verify_password
from annota.core.schemas.common import BasicUser
from annota.core.schemas.users import (
    AccessTokenRead,
    AccessTokenUpdate,
    RegisterRequest,
    UserRead,
    UserUpdate,
)
from annota.core.services.listing import ListSpec

PRIVILEGES = ("admin", "user", "worker")
WRONG_CREDENTIALS = "Unable to log in with provided credentials."


def validate_password(password: str, field: str = "password") -> None:
    if len(password) < 8:
        raise ValidationError.for_field(
            field, "This password is too short. It must contain at least 8 characters."
        )
    if password.isdigit():
        raise ValidationError.for_field(field, "This password is entirely numeric.")


async def create_user(
    session: AsyncSession,
    username: str,
    password: str,
    *,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    privilege: str | None = "user",
    superuser: bool = False,
) -> User:
    """Create an account; superusers get the ``admin`` privilege."""
    if not username or len(username) > 150:
        raise ValidationError.for_field("username", "Enter a username of 1 to 150 characters.")
    if privilege is not None and privilege not in PRIVILEGES:
        raise ValidationError.for_field("privilege", f"Expected one of {', '.join(PRIVILEGES)}.")
    validate_password(password)
    taken = await session.scalar(select(func.count()).where(func.lower(User.username) == username.lower()))
    if taken:
        raise ValidationError.for_field("username", "A user with that username already exists.")
    if email:
        taken = await session.scalar(select(func.count()).where(func.lower(User.email) == email.lower()))
        if taken:
            raise ValidationError.for_field("email", "A user with that e-mail address already exists.")
    user = User(
        username=username,
        email=email,
        first_name=first_name,
        last_name=last_name,
        password_hash=hash_password(password),
        # the column defaults to "user", and the ORM treats a plain None as "use the default"
        privilege="admin" if superuser else (null() if privilege is None else privilege),
        is_superuser=superuser,
        is_staff=superuser,
        is_active=True,
        date_joined=utcnow(),
    )
    session.add(user)
    await session.flush()
    if privilege is None and not superuser:
        await session.refresh(user, ["privilege"])
    return user


async def register(session: AsyncSession, data: RegisterRequest) -> User:
    """Self-service sign-up: the two passwords must agree and be strong; the account gets the
    ordinary ``user`` privilege."""
    if data.password1 != data.password2:
        raise ValidationError.for_field("password2", "The two password fields didn't match.")
    validate_password(data.password1, "password1")
    if data.email and ("@" not in data.email.strip("@") or any(c.isspace() for c in data.email)):
        raise ValidationError.for_field("email", "Enter a valid email address.")
    return await create_user(
        session,
        data.username,
        data.password1,
        email=data.email,
        first_name=data.first_name,
        last_name=data.last_name,
        privilege="user",
    )


async def get(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} not found.")
    return user


async def resource(session: AsyncSession, user: User) -> Resource:
    """The policy input for one account: its id and the organizations it is an active member of
    (whoever shares one may see it)."""
    rows = await session.scalars(
        select(Membership.organization_id).where(Membership.user_id == user.id, Membership.is_active)
    )
    return Resource("users", {"id": user.id, "organizations": sorted(rows)}, user.id)


def update_scopes(fields: Mapping[str, Any]) -> list[str]:
    """Names are personal data their owner may edit; account status is a separate ``update``."""
    scopes = []
    if "first_name" in fields or "last_name" in fields or "username" in fields:
        scopes.append("update:personal_data")
    if "is_active" in fields:
        scopes.append("update")
    return scopes or ["update:personal_data"]


_USERNAME = re.compile(r"^[\w.@+-]+\Z")


async def _check_new_username(session: AsyncSession, user: User, username: str) -> None:
    if not username or len(username) > 150:
        raise ValidationError.for_field("username", "Ensure this field has 1 to 150 characters.")
    if not _USERNAME.match(username):
        raise ValidationError.for_field(
            "username",
            "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.",
        )
    taken = await session.scalar(
        select(func.count()).where(func.lower(User.username) == username.lower(), User.id != user.id)
    )
    if taken:
        raise ValidationError.for_field("username", "A user with that username already exists.")


async def update(session: AsyncSession, user: User, data: UserUpdate) -> User:
    if data.username is not msgspec.UNSET and data.username != user.username:
        await _check_new_username(session, user, data.username)
        user.username = data.username
    if data.first_name is not msgspec.UNSET:
        user.first_name = data.first_name
    if data.last_name is not msgspec.UNSET:
        user.last_name = data.last_name
    if data.is_active is not msgspec.UNSET:
        user.is_active = data.is_active
        if not data.is_active:
            # a deactivated account loses its cookie sessions and login token at once
            await session.execute(delete(Session).where(Session.user_id == user.id))
            await revoke_login_token(session, user.id)
    await session.flush()
    return user


async def remove(session: AsyncSession, user: User) -> None:
    """Delete the account; its sessions and tokens go with it, its objects lose their owner."""
    await session.execute(delete(User).where(User.id == user.id))


async def set_password(session: AsyncSession, user: User, password: str) -> None:
    validate_password(password)
    user.password_hash = hash_password(password)


async def check_credentials(session: AsyncSession, login: str, password: str) -> User:
    """The active user with this username (or e-mail) and password, else 401 with one message for
    every failure, so nothing tells whether the account exists."""
    matches = or_(User.username == login, func.lower(User.email) == login.lower()) if login else false()
    user = await session.scalar(select(User).where(matches).limit(1))
    stored = user.password_hash if user is not None and user.password_hash else DUMMY_HASH
    valid = verify_password(password, stored)
    if user is None or not valid or not user.is_active:
        raise NotAuthenticated(WRONG_CREDENTIALS)
    return user


def identity_for(user: User, method: str, token: AccessToken | None = None) -> Identity:
    return Identity(
        user_id=user.id,
        username=user.username,
        privilege="admin" if user.is_superuser else user.privilege,
        is_superuser=user.is_superuser,
        method=method,
        access_token_id=token.id if token else None,
        read_only=bool(token and token.read_only),
    )


# --- login token (legacy "Authorization: Token") and cookie sessions ------------------------


#: login tokens a user keeps at once (a browser, cvat-cli, a script …); older ones stop working
MAX_LOGIN_TOKENS = 20


async def issue_login_token(session: AsyncSession, user: User) -> str:
    """A fresh legacy token for the user. Earlier logins' tokens keep working (CVAT hands every
    login the same token), so signing in from a second client does not sign the first one out;
    only the newest ``MAX_LOGIN_TOKENS`` are kept.

    Forty hex digits, like Django REST framework's tokens: CVAT's clients refuse longer keys.
    """
    key = secrets.token_hex(20)
    kept = (
        select(AuthToken.key_digest)
        .where(AuthToken.user_id == user.id)
        .order_by(AuthToken.created.desc(), AuthToken.key_digest)
        .limit(MAX_LOGIN_TOKENS - 1)
    )
    await session.execute(
        delete(AuthToken).where(AuthToken.user_id == user.id, AuthToken.key_digest.not_in(kept))
    )
    session.add(AuthToken(key_digest=token_digest(key), user_id=user.id, created=utcnow()))
    return key


async def revoke_login_token(session: AsyncSession, user_id: int) -> None:
    """Withdraw every login token of the user (a new password, a deactivated account, a logout)."""
    await session.execute(delete(AuthToken).where(AuthToken.user_id == user_id))


async def revoke_one_login_token(session: AsyncSession, key: str) -> None:
    await session.execute(delete(AuthToken).where(AuthToken.key_digest == token_digest(key)))


async def user_for_login_token(session: AsyncSession, key: str) -> User | None:
    token = await session.get(AuthToken, token_digest(key))
    return None if token is None else await session.get(User, token.user_id)


async def open_session(session: AsyncSession, user: User, max_age: int) -> str:
    key = new_token()
    now = utcnow()
    session.add(
        Session(
            key_digest=token_digest(key),
            user_id=user.id,
            created=now,
            expires=now + dt.timedelta(seconds=max_age),
        )
    )
    user.last_login = now
    return key


async def user_for_session(session: AsyncSession, key: str) -> User | None:
    row = await session.get(Session, token_digest(key))
    if row is None or row.expires <= utcnow():
        return None
    return await session.get(User, row.user_id)


async def close_session(session: AsyncSession, key: str) -> None:
    await session.execute(delete(Session).where(Session.key_digest == token_digest(key)))


async def prune_sessions(session: AsyncSession) -> None:
    await session.execute(delete(Session).where(Session.expires <= utcnow()))


# --- personal access tokens ----------------------------------------------------------------


#: ``last_used_date`` is refreshed at most this often, so that a busy token does not turn every
#: read into a write.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def _future_expiry(expiry_date: dt.datetime | None) -> dt.datetime | None:
    """Expiry dates without a zone are taken as UTC; past ones are refused."""
    if expiry_date is None:
        return None
    if expiry_date.tzinfo is None:
        expiry_date = expiry_date.replace(tzinfo=dt.UTC)
    if expiry_date <= utcnow():
        raise ValidationError.for_field("expiry_date", "The expiry date must be in the future.")
    return expiry_date


async def create_access_token(
    session: AsyncSession, owner: User, name: str, expiry_date: dt.datetime | None, read_only: bool
) -> tuple[AccessToken, str]:
    expiry_date = _future_expiry(expiry_date)
    secret = new_token()
    now = utcnow()
    token = AccessToken(
        name=name,
        owner_id=owner.id,
        digest=token_digest(secret),
        read_only=read_only,
        created_date=now,
        updated_date=now,
        expiry_date=expiry_date,
    )
    session.add(token)
    await session.flush()
    return token, secret


async def user_for_access_token(session: AsyncSession, secret: str) -> tuple[User, AccessToken] | None:
    token = await session.scalar(select(AccessToken).where(AccessToken.digest == token_digest(secret)))
    if token is None or (token.expiry_date is not None and token.expiry_date <= utcnow()):
        return None
    user = await session.get(User, token.owner_id)
    if user is None:
        return None
    now = utcnow()
    if token.last_used_date is None or now - token.last_used_date >= LAST_USED_RESOLUTION:
        token.last_used_date = now
    return user, token


async def get_access_token(session: AsyncSession, token_id: int) -> AccessToken:
    token = await session.get(AccessToken, token_id)
    if token is None:
        raise NotFound(f"Access token {token_id} not found.")
    return token


async def update_access_token(
    session: AsyncSession, token: AccessToken, data: AccessTokenUpdate
) -> AccessToken:
    if data.name is not msgspec.UNSET:
        token.name = data.name
    if data.expiry_date is not msgspec.UNSET:
        token.expiry_date = _future_expiry(data.expiry_date)
    if data.read_only is not msgspec.UNSET:
        token.read_only = data.read_only
    token.updated_date = utcnow()
    await session.flush()
    return token


async def revoke_access_token(session: AsyncSession, token: AccessToken) -> None:
    """Delete the token: requests that present it are refused from now on."""
    await session.execute(delete(AccessToken).where(AccessToken.id == token.id))


def access_token_resource(token: AccessToken | None, owner_id: int | None = None) -> Resource:
    """The policy input for one token (``None``: a token ``owner_id`` is about to create)."""
    if token is None:
        return Resource("access_tokens", {"id": None, "owner": {"id": owner_id}}, None)
    return Resource("access_tokens", {"id": token.id, "owner": {"id": token.owner_id}}, token.id)


async def read_access_tokens(
    session: AsyncSession, tokens: Sequence[AccessToken], base_url: str
) -> list[AccessTokenRead]:
    owners = await users_by_id(session, {t.owner_id for t in tokens})
    return [read_access_token(t, owners[t.owner_id], base_url) for t in tokens]


def read_access_token(
    token: AccessToken, owner: User, base_url: str, value: str | None = None
) -> AccessTokenRead:
    """The wire form; ``value`` (the secret) only in the answer to the token's creation."""
    owner_read = basic(owner, base_url)
    assert owner_read is not None
    return AccessTokenRead(
        id=token.id,
        name=token.name,
        created_date=token.created_date,
        updated_date=token.updated_date,
        expiry_date=token.expiry_date,
        last_used_date=token.last_used_date,
        read_only=token.read_only,
        owner=owner_read,
        value=value,
    )


#: Fields a policy filter may name for access tokens.
ACCESS_TOKEN_POLICY_FIELDS: FilterFields = {
    "id": lambda v: AccessToken.id == v,
    "owner_id": lambda v: AccessToken.owner_id == v,
}

ACCESS_TOKEN_LIST_SPEC = ListSpec(
    fields={
        "id": AccessToken.id,
        "name": AccessToken.name,
        "created_date": AccessToken.created_date,
        "updated_date": AccessToken.updated_date,
        "expiry_date": AccessToken.expiry_date,
        "last_used_date": AccessToken.last_used_date,
        "read_only": AccessToken.read_only,
    },
    equality=("name",),
    search=("name",),
    sortable=("id", "name", "created_date", "updated_date", "expiry_date", "last_used_date", "read_only"),
    integer_fields=frozenset({"id"}),
)


# --- reading ---------------------------------------------------------------------------------


def groups(user: User) -> list[str]:
    privilege = "admin" if user.is_superuser else user.privilege
    return [privilege] if privilege else []


def basic(user: User | None, base_url: str) -> BasicUser | None:
    if user is None:
        return None
    return BasicUser(
        url=f"{base_url}/api/users/{user.id}",
        id=user.id,
        username=user.username,
        first_name=user.first_name,
        last_name=user.last_name,
    )


def read(user: User, base_url: str) -> UserRead:
    return UserRead(
        url=f"{base_url}/api/users/{user.id}",
        id=user.id,
        username=user.username,
        first_name=user.first_name,
        last_name=user.last_name,
        email=user.email,
        groups=groups(user),
        is_staff=user.is_staff,
        is_superuser=user.is_superuser,
        is_active=user.is_active,
        last_login=user.last_login,
        date_joined=user.date_joined,
        has_analytics_access=user.is_superuser,
    )


async def users_by_id(session: AsyncSession, ids: set[int | None]) -> dict[int, User]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = (await session.execute(select(User).where(User.id.in_(wanted)))).scalars().all()
    return {user.id: user for user in rows}


#: Fields a policy filter may name for users.
POLICY_FIELDS: FilterFields = {
    "id": lambda v: User.id == v,
    "member_of": lambda v: exists(
        select(Membership.id).where(
            Membership.user_id == User.id, Membership.organization_id == v, Membership.is_active
        )
    ),
}

LIST_SPEC = ListSpec(
    fields={
        "id": User.id,
        "username": User.username,
        "first_name": User.first_name,
        "last_name": User.last_name,
        # no e-mail: a filter on it would let anyone test and bisect other users' addresses
        "is_active": User.is_active,
    },
    equality=("username", "first_name", "last_name", "id"),
    search=("username", "first_name", "last_name"),
    sortable=("id", "username", "first_name", "last_name", "is_active"),
    default_sort="id",
    integer_fields=frozenset({"id"}),
)
