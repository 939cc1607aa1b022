"""Who sent a request: ``Authorization: Token|Bearer|Basic`` headers or a cookie session.

Cookie sessions are the only ambient credentials, so only they are checked for CSRF: on unsafe
methods the ``X-CSRFToken`` header must equal the ``csrftoken`` cookie and a present ``Origin``
must be the server's own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from dataclasses import replace
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from annota.core.access import Identity
from annota.core.db.tables import User
from annota.core.errors import NotAuthenticated, PermissionDenied
from annota.core.services import organization_context
from annota.core.services import users as user_service
from annota.plugins.auth import throttle
from annota.runtime import web

SESSION_COOKIE = "sessionid"
CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "x-csrftoken"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

#: Basic auth re-sends the password on every request; a verified (user, password) pair is
#: remembered briefly so that each request does not pay for a memory-hard hash.
BASIC_CACHE_SECONDS = 60.0
_basic_cache: dict[str, tuple[float, int]] = {}


async def authenticate(request: Request) -> Identity | None:
    """The caller with the organization context the request names (and their memberships)."""
    # one transaction for the credentials and the organization context
    async with web.transaction(request) as session:
        identity = await _caller(request, session)
        if identity is None:
            return None
        return await with_organization(request, session, identity)


async def with_organization(request: Request, session: AsyncSession, identity: Identity) -> Identity:
    assert identity.user_id is not None
    specified, slug, org_id = organization_context.requested(request.headers, request.query_params)
    memberships = await organization_context.memberships_of(session, identity.user_id)
    organization = None
    if slug is not None or org_id is not None:
        organization = await organization_context.resolve(
            session, slug=slug, org_id=org_id, memberships=memberships, is_admin=identity.is_admin
        )
    return replace(
        identity, organization=organization, organization_specified=specified, memberships=memberships
    )


async def _caller(request: Request, session: AsyncSession) -> Identity | None:
    # credentials are looked up as text: one no database can store is refused before any query
    header = web.check_text(request.headers.get("authorization", ""), "Authorization")
    if header:
        scheme, _, credentials = header.partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        if scheme == "token":
            return await _by_login_token(request, session, credentials)
        if scheme == "bearer":
            return await _by_access_token(request, session, credentials)
        if scheme == "basic":
            return await _by_basic(request, session, credentials)
    session_key = web.check_text(request.cookies.get(SESSION_COOKIE, ""), SESSION_COOKIE)
    if session_key:
        return await _by_session(request, session, session_key)
    return None


async def _by_login_token(request: Request, session: AsyncSession, key: str) -> Identity:
    user = await user_service.user_for_login_token(session, key)
    if user is None or not user.is_active:
        raise NotAuthenticated("Invalid token.")
    return user_service.identity_for(user, "token")


async def _by_access_token(request: Request, session: AsyncSession, secret: str) -> Identity:
    found = await user_service.user_for_access_token(session, secret)
    if found is None or not found[0].is_active:
        raise NotAuthenticated("Invalid or expired access token.")
    user, token = found
    return user_service.identity_for(user, "access_token", token)


def _cache_key(username: str, password: str, secret: str) -> str:
    return hmac.new(secret.encode(), f"{username}\0{password}".encode(), hashlib.sha256).hexdigest()


async def _by_basic(request: Request, session: AsyncSession, credentials: str) -> Identity:
    try:
        username, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise NotAuthenticated("Invalid basic header. Credentials not correctly base64 encoded.") from None
    web.check_text(username, "Authorization")
    key = _cache_key(username, password, web.state(request).settings.secret_key)
    cached = _basic_cache.get(key)
    if cached is not None and cached[0] > time.monotonic():
        user = await session.get(User, cached[1])
        if user is not None and user.is_active and user.username == username:
            return user_service.identity_for(user, "basic")
    attempt = await throttle.admit(request, username)
    user = await user_service.check_credentials(session, username, password)
    if attempt is not None:
        await attempt.succeeded()
    if len(_basic_cache) > 10_000:
        _basic_cache.clear()
    _basic_cache[key] = (time.monotonic() + BASIC_CACHE_SECONDS, user.id)
    return user_service.identity_for(user, "basic")


async def _by_session(request: Request, session: AsyncSession, key: str) -> Identity | None:
    user = await user_service.user_for_session(session, key)
    if user is None or not user.is_active:
        # a stale cookie is not an error: the caller is simply anonymous (and may log in again)
        return None
    if request.method not in SAFE_METHODS:
        check_csrf(request)
    return user_service.identity_for(user, "session")


def check_csrf(request: Request) -> None:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    header = request.headers.get(CSRF_HEADER, "")
    if not cookie or not hmac.compare_digest(cookie, header):
        raise PermissionDenied("CSRF Failed: CSRF token missing or incorrect.")
    origin = request.headers.get("origin")
    if origin and not _same_origin(request, origin):
        raise PermissionDenied(
            f"CSRF Failed: Origin checking failed - {origin} does not match any trusted origins."
        )


def _same_origin(request: Request, origin: str) -> bool:
    """Scheme and host must match the public URL or the ``Host`` the request was sent to; an opaque
    ``Origin: null`` (sandboxed frames, redirects across origins) never does."""
    public = urlsplit(web.base_url(request))
    trusted = {f"{public.scheme}://{public.netloc}".lower()}
    host = request.headers.get("host", "")
    if host:
        trusted.add(f"{request.url.scheme}://{host}".lower())
    parsed = urlsplit(origin)
    return bool(parsed.scheme and parsed.netloc) and f"{parsed.scheme}://{parsed.netloc}".lower() in trusted
