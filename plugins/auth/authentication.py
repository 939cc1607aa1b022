"""Who sent a request: ``Authorization: Token|Bearer|Basic`` headers or a cookie session.

Cookie sessions are the only ambient credentials, so only they are checked for CSRF: on unsafe
methods the ``X-CSRFToken`` header must equal the ``csrftoken`` cookie and a present ``Origin``
must be the server's own.

Who presented which credentials is remembered for a few seconds (``identity_cache``): a client
sending the same token or password again is not looked up, nor its password hashed, again.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import replace
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from annota.core.access import Identity, OrganizationContext
from annota.core.db.tables import Session as LoginSession
from annota.core.db.types import utcnow
from annota.core.errors import NotAuthenticated, PermissionDenied
from annota.core.passwords import token_digest
from annota.core.services import organization_context
from annota.core.services import users as user_service
from annota.plugins.auth import identity_cache, throttle
from annota.plugins.auth.config import AuthConfig
from annota.runtime import web

PLUGIN = "auth"
SESSION_COOKIE = "sessionid"
CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "x-csrftoken"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

#: who presented the credentials, and for how many seconds at most they stay valid (``None``: no
#: expiry of their own)
Found = tuple[Identity, float | None]


async def authenticate(request: Request) -> Identity | None:
    """The caller with the organization context the request names (and their memberships)."""
    presented = _presented(request)
    if presented is None:
        return None
    method, credentials = presented
    state = web.state(request)
    config: AuthConfig = state.plugins.config(PLUGIN)
    cache = identity_cache.for_app(state, config.identity_cache_seconds)
    username = password = ""
    if method == "basic":
        username, password = _basic_pair(credentials)
        credentials = f"{username}\0{password}"
    key = _cache_key(state.settings.secret_key, method, credentials)
    identity = cache.get(key)
    if identity is None:
        loaded_at = identity_cache.generation()
        # one transaction for the credentials and the memberships
        async with web.transaction(request) as session:
            found: Found | None
            if method == "basic":
                found = await _by_basic(request, session, username, password)
            else:
                found = await _LOADERS[method](session, credentials)
            if found is None:
                return None
            identity, valid_for = found
            assert identity.user_id is not None
            memberships = await organization_context.memberships_of(session, identity.user_id)
        identity = replace(identity, memberships=memberships)
        cache.put(key, identity, loaded_at, valid_for)
    if method == "session" and request.method not in SAFE_METHODS:
        check_csrf(request)
    return await with_organization(request, identity)


async def with_organization(request: Request, identity: Identity) -> Identity:
    """``identity`` acting in the organization the request names: one of the caller's own is known
    already; any other is looked up (and refused to outsiders other than administrators)."""
    specified, slug, org_id = organization_context.requested(request.headers, request.query_params)
    organization = None
    if slug is not None or org_id is not None:
        organization = _among_memberships(identity, slug, org_id)
        if organization is None:
            async with web.transaction(request) as session:
                organization = await organization_context.resolve(
                    session,
                    slug=slug,
                    org_id=org_id,
                    memberships=identity.memberships,
                    is_admin=identity.is_admin,
                )
    return replace(identity, organization=organization, organization_specified=specified)


def _among_memberships(
    identity: Identity, slug: str | None, org_id: int | None
) -> OrganizationContext | None:
    """The caller's membership the request names by slug alone or by id alone, if any (naming both
    is checked against the database, which tells which one is wrong)."""
    if slug is not None and org_id is None:
        return next((m for m in identity.memberships.values() if m.slug == slug), None)
    if org_id is not None and slug is None:
        return identity.memberships.get(org_id)
    return None


def _presented(request: Request) -> tuple[str, str] | None:
    """``(method, credentials)`` the request carries, if any."""
    # credentials are looked up as text: one no database can store is refused before any query
    header = web.check_text(request.headers.get("authorization", ""), "Authorization")
    if header:
        scheme, _, credentials = header.partition(" ")
        method = _SCHEMES.get(scheme.lower())
        if method is not None:
            return method, credentials.strip()
    session_key = web.check_text(request.cookies.get(SESSION_COOKIE, ""), SESSION_COOKIE)
    if session_key:
        return "session", session_key
    return None


def _cache_key(secret: str, method: str, credentials: str) -> str:
    """A digest of the credentials keyed by the server's secret: what a cache entry is found by,
    and of no use to whoever reads the process's memory for passwords or tokens."""
    message = f"{method}\0{credentials}".encode(errors="surrogatepass")
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _seconds_until(moment: dt.datetime | None) -> float | None:
    return None if moment is None else (moment - utcnow()).total_seconds()


async def _by_login_token(session: AsyncSession, key: str) -> Found:
    user = await user_service.user_for_login_token(session, key)
    if user is None or not user.is_active:
        raise NotAuthenticated("Invalid token.")
    return user_service.identity_for(user, "token"), None


async def _by_access_token(session: AsyncSession, secret: str) -> Found:
    found = await user_service.user_for_access_token(session, secret)
    if found is None or not found[0].is_active:
        raise NotAuthenticated("Invalid or expired access token.")
    user, token = found
    return user_service.identity_for(user, "access_token", token), _seconds_until(token.expiry_date)


async def _by_session(session: AsyncSession, key: str) -> Found | None:
    user = await user_service.user_for_session(session, key)
    if user is None or not user.is_active:
        # a stale cookie is not an error: the caller is simply anonymous (and may log in again)
        return None
    # the row user_for_session has just read, from the session's identity map
    row = await session.get(LoginSession, token_digest(key))
    return user_service.identity_for(user, "session"), _seconds_until(row.expires if row else None)


def _basic_pair(credentials: str) -> tuple[str, str]:
    try:
        username, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise NotAuthenticated("Invalid basic header. Credentials not correctly base64 encoded.") from None
    web.check_text(username, "Authorization")
    return username, password


async def _by_basic(request: Request, session: AsyncSession, username: str, password: str) -> Found:
    # only a password not verified lately gets here, and every check is counted against guessing
    attempt = await throttle.admit(request, username)
    user = await user_service.check_credentials(session, username, password)
    if attempt is not None:
        await attempt.succeeded()
    return user_service.identity_for(user, "basic"), None


_SCHEMES = {"token": "token", "bearer": "access_token", "basic": "basic"}
_LOADERS: dict[str, Callable[[AsyncSession, str], Awaitable[Found | None]]] = {
    "token": _by_login_token,
    "access_token": _by_access_token,
    "session": _by_session,
}


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
