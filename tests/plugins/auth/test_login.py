"""Login, logout and registration: CVAT's wire behaviour, the cookie format its SDK can parse, and
a real ``cvat_sdk`` client against a real server."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from http.cookies import SimpleCookie

import pytest
import uvicorn
from cvat_sdk import make_client
from cvat_sdk.api_client import ApiClient, Configuration, models
from starlette.testclient import TestClient

from annota.core.db.engine import create_engine, create_sessionmaker
from annota.core.services import users as user_service
from annota.plugins.auth.routes import cookie_header
from annota.runtime.app import create_app
from annota.runtime.settings import Settings
from annota.testing import PASSWORD

WRONG = {"detail": "Unable to log in with provided credentials."}


def sdk_cookies(response) -> SimpleCookie:
    """Parse ``Set-Cookie`` exactly as the CVAT SDK does after urllib3 joined the headers."""
    return SimpleCookie(", ".join(response.headers.get_list("set-cookie")))


def login(client: TestClient, username: str, password: str = PASSWORD):
    return client.post("/api/auth/login", json={"username": username, "password": password})


@pytest.fixture
def anonymous(annota_client: TestClient) -> TestClient:
    """A cookie-keeping client of its own, not signed in."""
    return TestClient(annota_client.app, base_url="http://testserver")


def with_session(annota_client: TestClient, session_id: str) -> TestClient:
    return TestClient(annota_client.app, base_url="http://testserver", cookies={"sessionid": session_id})


def test_login_returns_a_key_and_both_cookies_the_sdk_can_parse(make_user, anonymous):
    make_user("alice")
    response = login(anonymous, "alice")
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"key"} and len(response.json()["key"]) >= 32
    headers = response.headers.get_list("set-cookie")
    assert [h.split("=", 1)[0] for h in headers] == ["csrftoken", "sessionid"]
    for header in headers:
        assert header.rsplit(";", 1)[-1].strip() == "SameSite=Lax", header
    cookies = sdk_cookies(response)
    assert set(cookies) == {"csrftoken", "sessionid"}
    assert cookies["sessionid"]["httponly"] is True
    assert not cookies["csrftoken"]["httponly"]
    assert int(cookies["sessionid"]["max-age"]) == 14 * 24 * 3600


def test_cookie_format_survives_joining_also_with_the_secure_flag():
    joined = ", ".join(
        cookie_header(name, "v" + name, max_age=60, http_only=name == "sessionid", secure=True)
        for name in ("csrftoken", "sessionid")
    )
    cookies = SimpleCookie(joined)
    assert {name: morsel.value for name, morsel in cookies.items()} == {
        "csrftoken": "vcsrftoken",
        "sessionid": "vsessionid",
    }
    assert cookies["sessionid"]["secure"] is True
    # the shape that breaks the SDK, to show the check above is meaningful
    assert not SimpleCookie("sessionid=x; Path=/; HttpOnly, csrftoken=y; Path=/")


def test_login_by_email(make_user, anonymous):
    make_user("alice", email="Alice@Example.com")
    response = anonymous.post("/api/auth/login", json={"email": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 200, response.text


def test_wrong_password_unknown_and_inactive_users_look_the_same(make_user, admin_client, anonymous):
    bob = make_user("bob")
    wrong_password = login(anonymous, "bob", "not-the-password")
    unknown = login(anonymous, "nobody")
    assert admin_client.patch(f"/api/users/{bob.user_id}", json={"is_active": False}).status_code == 200
    inactive = login(anonymous, "bob")
    for response in (wrong_password, unknown, inactive):
        assert response.status_code == 401
        assert response.json() == WRONG
        assert "set-cookie" not in response.headers


def test_login_needs_a_username_or_email(anonymous):
    response = anonymous.post("/api/auth/login", json={"password": PASSWORD})
    assert response.status_code == 400
    assert "non_field_errors" in response.json()


def test_session_cookie_and_token_key_authenticate(make_user, anonymous, annota_client):
    make_user("alice")
    key = login(anonymous, "alice").json()["key"]
    assert anonymous.get("/api/users/self").json()["username"] == "alice"
    by_token = annota_client.get("/api/users/self", headers={"Authorization": f"Token {key}"})
    assert by_token.status_code == 200 and by_token.json()["username"] == "alice"
    assert annota_client.get("/api/users/self", headers={"Authorization": "Token wrong"}).status_code == 401


def test_logout_ends_the_session_and_clears_cookies(make_user, anonymous, annota_client):
    make_user("alice")
    key = login(anonymous, "alice").json()["key"]
    session_id = anonymous.cookies["sessionid"]
    csrf = anonymous.cookies["csrftoken"]
    response = anonymous.post("/api/auth/logout", headers={"X-CSRFToken": csrf})
    assert response.status_code == 200
    assert response.json() == {"detail": "Successfully logged out."}
    cleared = sdk_cookies(response)
    assert set(cleared) == {"csrftoken", "sessionid"}
    assert all(morsel.value == "" and morsel["max-age"] == "0" for morsel in cleared.values())
    # the old session id and the login key no longer work
    assert with_session(annota_client, session_id).get("/api/users/self").status_code == 401
    assert annota_client.get("/api/users/self", headers={"Authorization": f"Token {key}"}).status_code == 401


def test_logout_without_a_session_is_harmless(anonymous):
    response = anonymous.post("/api/auth/logout")
    assert response.status_code == 200
    assert response.json() == {"detail": "Successfully logged out."}


def test_a_second_login_replaces_the_presented_session(make_user, anonymous, annota_client):
    make_user("alice")
    login(anonymous, "alice")
    first = anonymous.cookies["sessionid"]
    csrf = anonymous.cookies["csrftoken"]
    response = anonymous.post(
        "/api/auth/login", json={"username": "alice", "password": PASSWORD}, headers={"X-CSRFToken": csrf}
    )
    assert response.status_code == 200
    assert anonymous.cookies["sessionid"] != first
    assert with_session(annota_client, first).get("/api/users/self").status_code == 401


def fresh_login(client: TestClient, username: str) -> str:
    """A login as a new client would make it: no cookies of an earlier one."""
    client.cookies.clear()
    response = login(client, username)
    client.cookies.clear()
    assert response.status_code == 200, response.text
    key: str = response.json()["key"]
    return key


def test_two_clients_of_one_user_keep_their_tokens_until_each_logs_out(make_user, annota_client):
    make_user("alice")
    keys = [fresh_login(annota_client, "alice") for _ in range(2)]

    def as_token(key: str) -> int:
        return annota_client.get("/api/users/self", headers={"Authorization": f"Token {key}"}).status_code

    # a second login (cvat-cli beside a script) does not sign the first client out
    assert [as_token(key) for key in keys] == [200, 200]
    # a client logging out with its token withdraws that token only
    logout = annota_client.post("/api/auth/logout", headers={"Authorization": f"Token {keys[0]}"})
    assert logout.status_code == 200
    assert [as_token(key) for key in keys] == [401, 200]


def test_only_the_newest_login_tokens_are_kept(make_user, annota_client):
    make_user("alice")
    keys = [fresh_login(annota_client, "alice") for _ in range(user_service.MAX_LOGIN_TOKENS + 1)]
    oldest, newest = keys[0], keys[-1]
    assert (
        annota_client.get("/api/users/self", headers={"Authorization": f"Token {oldest}"}).status_code == 401
    )
    assert (
        annota_client.get("/api/users/self", headers={"Authorization": f"Token {newest}"}).status_code == 200
    )


# --- registration -----------------------------------------------------------------------------


@pytest.fixture
def registration_open(annota_settings: Settings) -> None:
    """Registration enabled explicitly: the test client does not come from loopback."""
    annota_settings.allow_registration = True


def register(client: TestClient, **fields: str):
    body = {"username": "carol", "password1": "long enough pw", "password2": "long enough pw", **fields}
    return client.post("/api/auth/register", json=body)


def test_register_creates_an_ordinary_user_with_a_key(registration_open, anonymous, annota_client):
    response = register(anonymous, email="carol@example.com", first_name="Carol")
    assert response.status_code == 201, response.text
    body = response.json()
    assert {k: body[k] for k in ("username", "email", "first_name", "email_verification_required")} == {
        "username": "carol",
        "email": "carol@example.com",
        "first_name": "Carol",
        "email_verification_required": False,
    }
    me = annota_client.get("/api/users/self", headers={"Authorization": f"Token {body['key']}"}).json()
    assert me["groups"] == ["user"] and me["is_superuser"] is False
    assert login(anonymous, "carol", "long enough pw").status_code == 200


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"password2": "something else"}, "password2"),
        ({"password1": "short", "password2": "short"}, "password1"),
        ({"password1": "1234567890", "password2": "1234567890"}, "password1"),
        ({"username": "bad name!"}, "username"),
        ({"email": "not-an-address"}, "email"),
    ],
)
def test_register_names_the_invalid_field(registration_open, anonymous, fields, field):
    response = register(anonymous, **fields)
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_register_refuses_a_taken_username(registration_open, make_user, anonymous):
    make_user("carol")
    response = register(anonymous, username="Carol")
    assert response.status_code == 400
    assert response.json() == {"username": ["A user with that username already exists."]}


def test_register_when_disabled_is_403(anonymous, annota_settings: Settings):
    annota_settings.allow_registration = False
    response = register(anonymous)
    assert response.status_code == 403
    assert "Registration is disabled" in response.json()["detail"]


# --- the real SDK against a real server ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_server(annota_settings: Settings) -> Iterator[int]:
    """``create_app`` served by uvicorn on loopback in a thread, with the user ``alice``."""

    async def create_alice() -> None:
        engine = create_engine(annota_settings.database_url)
        async with create_sessionmaker(engine).begin() as session:
            await user_service.create_user(session, "alice", PASSWORD)
        await engine.dispose()

    asyncio.run(create_alice())
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(annota_settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def test_cvat_sdk_logs_in_uses_the_session_and_an_access_token(live_server, caplog):
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        client = make_client("http://127.0.0.1", port=live_server, credentials=("alice", PASSWORD))
    assert [str(w.message) for w in caught] == []
    assert [r.getMessage() for r in caplog.records if r.name.startswith("cvat_sdk")] == []
    with client:
        me, _ = client.api_client.users_api.retrieve_self()
        assert me.username == "alice"
        # unsafe requests on the cookie session carry the SDK's X-CSRFToken and Origin headers
        project, _ = client.api_client.projects_api.create(models.ProjectWriteRequest(name="sdk"))
        token, _ = client.api_client.auth_api.create_access_tokens(models.AccessTokenWriteRequest(name="cli"))
        assert token.value
        client.logout()

    with make_client("http://127.0.0.1", port=live_server, access_token=token.value) as pat_client:
        me, _ = pat_client.api_client.users_api.retrieve_self()
        assert me.username == "alice"
        current, _ = pat_client.api_client.auth_api.retrieve_access_tokens_self()
        assert (current.id, current.name, current.owner.username) == (token.id, "cli", "alice")
        assert pat_client.api_client.projects_api.retrieve(project.id)[0].name == "sdk"

    host = f"http://127.0.0.1:{live_server}"
    with ApiClient(Configuration(host=host)) as anonymous_client:
        registered, _ = anonymous_client.auth_api.create_register(
            models.RegisterSerializerExRequest(
                username="carol", password1="long enough pw", password2="long enough pw"
            )
        )
        assert registered.username == "carol" and registered.key

    # the low-level client with Basic credentials, as CVAT's own test suites use it
    with ApiClient(Configuration(host=host, username="alice", password=PASSWORD)) as api_client:
        assert api_client.users_api.retrieve_self()[0].username == "alice"
        # as in CVAT, people who share no organization do not see each other
        listed, _ = api_client.users_api.list()
        assert sorted(user.username for user in listed.results) == ["alice"]
