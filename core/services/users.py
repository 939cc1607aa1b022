"""Users and credentials: accounts, login tokens, cookie sessions and personal access tokens."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.access import Identity
from annota.core.db.tables import AccessToken, AuthToken, Session, User
from annota.core.db.types import utcnow
from annota.core.errors import NotAuthenticated, ValidationError
from annota.core.passwords import DUMMY_HASH, hash_password, new_token, token_digest, verify_password
from annota.core.schemas.common import BasicUser
from annota.core.schemas.users import UserRead
from annota.core.services.listing import ListSpec

PRIVILEGES = ("admin", "user", "worker")
WRONG_CREDENTIALS = "Unable to log in with provided credentials."


def validate_password(password: str, field: str = "password") -> None:
    if len(password) < 8:
        raise ValidationError.for_field(field, "This password is too short. It must contain at least 8 characters.")
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
        privilege="admin" if superuser else privilege,
        is_superuser=superuser,
        is_staff=superuser,
        is_active=True,
        date_joined=utcnow(),
    )
    session.add(user)
    await session.flush()
    return user


async def set_password(session: AsyncSession, user: User, password: str) -> None:
    validate_password(password)
    user.password_hash = hash_password(password)


async def check_credentials(session: AsyncSession, login: str, password: str) -> User:
    """The active user with this username (or e-mail) and password, else 401 with one message for
    every failure, so nothing tells whether the account exists."""
    user = await session.scalar(
        select(User).where(or_(User.username == login, func.lower(User.email) == login.lower()) if login else False)
    )
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


async def issue_login_token(session: AsyncSession, user: User) -> str:
    """A fresh legacy token for the user (the previous one stops working)."""
    key = new_token()
    await session.execute(delete(AuthToken).where(AuthToken.user_id == user.id))
    session.add(AuthToken(key_digest=token_digest(key), user_id=user.id, created=utcnow()))
    return key


async def user_for_login_token(session: AsyncSession, key: str) -> User | None:
    token = await session.get(AuthToken, token_digest(key))
    return None if token is None else await session.get(User, token.user_id)


async def open_session(session: AsyncSession, user: User, max_age: int) -> str:
    key = new_token()
    now = utcnow()
    session.add(
        Session(key_digest=token_digest(key), user_id=user.id, created=now, expires=now + dt.timedelta(seconds=max_age))
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


async def create_access_token(
    session: AsyncSession, owner: User, name: str, expiry_date: dt.datetime | None, read_only: bool
) -> tuple[AccessToken, str]:
    if expiry_date is not None and expiry_date <= utcnow():
        raise ValidationError.for_field("expiry_date", "The expiry date must be in the future.")
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
    token.last_used_date = utcnow()
    return user, token


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


LIST_SPEC = ListSpec(
    fields={
        "id": User.id,
        "username": User.username,
        "first_name": User.first_name,
        "last_name": User.last_name,
        "email": User.email,
        "is_active": User.is_active,
    },
    equality=("username", "first_name", "last_name", "id"),
    search=("username", "first_name", "last_name"),
    sortable=("id", "username", "first_name", "last_name", "is_active"),
    default_sort="id",
    integer_fields=frozenset({"id"}),
)
