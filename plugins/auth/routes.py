"""``/api/auth/*``: login, logout, registration, personal access tokens and the policy bundle.

Login answers the way CVAT's clients expect: a legacy token key in the body plus ``csrftoken`` and
``sessionid`` cookies, formatted so that the SDK's cookie parser reads both even when its HTTP library
joins the two ``Set-Cookie`` headers into one line.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from annota.core.db.tables import AccessToken
from annota.core.errors import PermissionDenied, ValidationError
from annota.core.passwords import new_token
from annota.core.schemas.common import Detail, Paginated
from annota.core.schemas.user_agreements import UserAgreementRead
from annota.core.schemas.users import (
    AccessTokenRead,
    AccessTokenUpdate,
    AccessTokenWrite,
    LoginRequest,
    RegisterRead,
    RegisterRequest,
    Token,
)
from annota.core.services import user_agreements
from annota.core.services import users as service
from annota.plugins.auth import bundle, throttle
from annota.plugins.auth.authentication import CSRF_COOKIE, SESSION_COOKIE
from annota.runtime import web

TAGS = ["auth"]
LOGGED_OUT = "Successfully logged out."
EMPTY_VALUE = '""'
REGISTRATION_DISABLED = "Registration is disabled on this server; ask an administrator for an account."


# --- cookies ----------------------------------------------------------------------------------


def cookie_header(name: str, value: str, *, max_age: int, http_only: bool, secure: bool) -> str:
    """One ``Set-Cookie`` value whose last attribute is always ``SameSite=Lax``.

    A cookie string ending in a bare flag (``HttpOnly``, ``Secure``) followed by ``", "`` and the next
    cookie makes Python's ``SimpleCookie`` discard every cookie in the line, which is how the CVAT SDK
    reads them; flags therefore go in the middle, as Django writes them.
    """
    # an empty value is written quoted, as Django does when it deletes a cookie
    parts = [f"{name}={value or EMPTY_VALUE}"]
    if http_only:
        parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    parts += [f"Max-Age={max_age}", "Path=/", "SameSite=Lax"]
    return "; ".join(parts)


def _set_cookies(request: Request, response: Response, csrf: str, session_key: str, max_age: int) -> None:
    secure = web.base_url(request).startswith("https://")
    # csrftoken first: it is the one the browser's scripts and the SDK read back
    response.headers.append(
        "set-cookie", cookie_header(CSRF_COOKIE, csrf, max_age=max_age, http_only=False, secure=secure)
    )
    response.headers.append(
        "set-cookie",
        cookie_header(SESSION_COOKIE, session_key, max_age=max_age, http_only=True, secure=secure),
    )


# --- login, logout, registration --------------------------------------------------------------


@web.operation(
    "Log in with a username (or e-mail) and password",
    tags=TAGS,
    request=LoginRequest,
    response=Token,
    responses={401: Detail, 429: Detail},
    anonymous=True,
)
async def login(request: Request) -> Response:
    data = await web.read_json(request, LoginRequest)
    if not (data.username or data.email):
        raise ValidationError(
            {"non_field_errors": ['Must include either "username" or "email" and "password".']}
        )
    max_age = web.state(request).settings.session_max_age
    attempt = await throttle.admit(request, data.username or data.email)
    async with web.transaction(request) as session:
        user = await service.check_credentials(session, data.username or data.email, data.password)
        previous = request.cookies.get(SESSION_COOKIE)
        if previous:
            # a fresh session id on every login, so that a planted cookie never becomes authenticated
            await service.close_session(session, previous)
        await service.prune_sessions(session)
        key = await service.issue_login_token(session, user)
        session_key = await service.open_session(session, user, max_age)
    if attempt is not None:
        await attempt.succeeded()
    response = web.json_response(Token(key=key))
    _set_cookies(request, response, new_token(), session_key, max_age)
    return response


@web.operation("Log out: end the cookie session", tags=TAGS, response=Detail, anonymous=True)
async def logout(request: Request) -> Response:
    who = web.identity(request)
    session_key = request.cookies.get(SESSION_COOKIE)
    async with web.transaction(request) as session:
        if session_key:
            await service.close_session(session, session_key)
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if who.user_id is not None and who.method == "token" and scheme.lower() == "token":
            # a client signing out with its token withdraws that token, not other clients' ones
            await service.revoke_one_login_token(session, presented.strip())
        elif who.user_id is not None and who.method == "session":
            # as CVAT does: a browser logging out also withdraws the key that login handed out
            await service.revoke_login_token(session, who.user_id)
    response = web.json_response(Detail(detail=LOGGED_OUT))
    secure = web.base_url(request).startswith("https://")
    for name, http_only in ((CSRF_COOKIE, False), (SESSION_COOKIE, True)):
        response.headers.append(
            "set-cookie", cookie_header(name, "", max_age=0, http_only=http_only, secure=secure)
        )
    return response


@web.operation(
    "Create an account",
    tags=TAGS,
    request=RegisterRequest,
    response=RegisterRead,
    status=201,
    responses={403: Detail},
    anonymous=True,
)
async def register(request: Request) -> Response:
    allowed = web.state(request).settings.allow_registration
    if allowed is None:
        # not configured: an instance run on a laptop lets its user sign up, a public one does not
        allowed = web.from_this_machine(request)
    if not allowed:
        raise PermissionDenied(REGISTRATION_DISABLED)
    data = await web.read_json(request, RegisterRequest)
    user_agreements.check(web.state(request).settings.user_agreements, data.confirmations)
    async with web.transaction(request) as session:
        user = await service.register(session, data)
        key = await service.issue_login_token(session, user)
    result = RegisterRead(
        username=user.username,
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        email_verification_required=False,
        key=key,
    )
    return web.json_response(result, status_code=201)


# --- personal access tokens -------------------------------------------------------------------


@web.operation(
    "List your personal access tokens",
    tags=TAGS,
    response=Paginated[AccessTokenRead],
    paginated=True,
    query={name: "equality filter" for name in service.ACCESS_TOKEN_LIST_SPEC.equality},
)
async def list_access_tokens(request: Request) -> Response:
    query = select(AccessToken).where(
        await web.visible(request, "access_tokens", service.ACCESS_TOKEN_POLICY_FIELDS)
    )
    base_url = web.base_url(request)
    return await web.list_response(
        request,
        query,
        service.ACCESS_TOKEN_LIST_SPEC,
        lambda session, rows: service.read_access_tokens(session, rows, base_url),
    )


@web.operation(
    "Create a personal access token (its value is shown only now)",
    tags=TAGS,
    request=AccessTokenWrite,
    response=AccessTokenRead,
    status=201,
)
async def create_access_token(request: Request) -> Response:
    who = web.require_user(request)
    assert who.user_id is not None  # require_user refused anonymous callers
    body = await web.read_body(request)
    await web.authorize(request, "create", service.access_token_resource(None, who.user_id))
    data = web.decode(body, AccessTokenWrite)
    async with web.transaction(request) as session:
        owner = await service.get(session, who.user_id)
        token, secret = await service.create_access_token(
            session, owner, data.name, data.expiry_date, data.read_only
        )
        result = service.read_access_token(token, owner, web.base_url(request), value=secret)
    return web.json_response(result, status_code=201)


@web.operation(
    "The access token this request was authenticated with",
    tags=TAGS,
    response=AccessTokenRead,
    responses={400: Detail},
)
async def retrieve_current_access_token(request: Request) -> Response:
    who = web.require_user(request)
    if who.access_token_id is None:
        raise ValidationError("This request was not authenticated with a personal access token.")
    return await _retrieve(request, who.access_token_id)


@web.operation("Get a personal access token", tags=TAGS, response=AccessTokenRead)
async def retrieve_access_token(request: Request) -> Response:
    return await _retrieve(request, web.path_int(request))


async def _retrieve(request: Request, token_id: int) -> Response:
    web.require_user(request)
    async with web.transaction(request) as session:
        token = await service.get_access_token(session, token_id)
        await web.authorize(request, "view", service.access_token_resource(token))
        (result,) = await service.read_access_tokens(session, [token], web.base_url(request))
    return web.json_response(result)


@web.operation(
    "Rename a token, change its expiry or make it read-only",
    tags=TAGS,
    request=AccessTokenUpdate,
    response=AccessTokenRead,
)
async def update_access_token(request: Request) -> Response:
    web.require_user(request)
    body = await web.read_body(request)
    async with web.transaction(request) as session:
        token = await service.get_access_token(session, web.path_int(request))
        await web.authorize(request, "update", service.access_token_resource(token))
        data = web.decode(body, AccessTokenUpdate)
        token = await service.update_access_token(session, token, data)
        (result,) = await service.read_access_tokens(session, [token], web.base_url(request))
    return web.json_response(result)


@web.operation("Revoke a personal access token", tags=TAGS, status=204)
async def delete_access_token(request: Request) -> Response:
    web.require_user(request)
    async with web.transaction(request) as session:
        token = await service.get_access_token(session, web.path_int(request))
        await web.authorize(request, "delete", service.access_token_resource(token))
        await service.revoke_access_token(session, token)
    return Response(status_code=204)


# --- the policy bundle ------------------------------------------------------------------------


@web.operation(
    "The Rego policy bundle, for an OPA server's bundle service (ETag: its revision)",
    tags=TAGS,
    responses={200: bundle.MEDIA_TYPE, 304: None},
    anonymous=True,
)
async def rules(request: Request) -> Response:
    # anonymous like CVAT's: OPA downloads it without credentials, and the rules are no secret
    digest, archive = bundle.build(web.state(request).policies)
    etag = f'"{digest}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    wanted = request.headers.get("if-none-match", "")
    if etag in [tag.strip().removeprefix("W/") for tag in wanted.split(",")] or wanted.strip() == digest:
        return Response(status_code=304, headers=headers)
    return Response(archive, media_type=bundle.MEDIA_TYPE, headers=headers)


@web.operation(
    "Agreements to accept when registering", tags=TAGS, response=list[UserAgreementRead], anonymous=True
)
async def list_user_agreements(request: Request) -> Response:
    return web.json_response(user_agreements.read(web.state(request).settings.user_agreements))


ROUTES: list[tuple[str, Any, list[str]]] = [
    ("/api/auth/login", login, ["POST"]),
    ("/api/auth/logout", logout, ["POST"]),
    ("/api/auth/register", register, ["POST"]),
    ("/api/auth/access_tokens", list_access_tokens, ["GET"]),
    ("/api/auth/access_tokens", create_access_token, ["POST"]),
    ("/api/auth/access_tokens/self", retrieve_current_access_token, ["GET"]),
    ("/api/auth/access_tokens/{id:int}", retrieve_access_token, ["GET"]),
    ("/api/auth/access_tokens/{id:int}", update_access_token, ["PATCH"]),
    ("/api/auth/access_tokens/{id:int}", delete_access_token, ["DELETE"]),
    ("/api/auth/rules", rules, ["GET"]),
    ("/api/user-agreements", list_user_agreements, ["GET"]),
]
