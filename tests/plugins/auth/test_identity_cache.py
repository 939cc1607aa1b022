"""Remembered credentials: a repeated token or password is not looked up again, yet a logout, a
revoked token, a deactivated account, a new password or a lost membership takes effect on the very
next request, and a change made elsewhere (another process) once the entries expire."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, text, update
from starlette.testclient import TestClient

from annota.core.db.tables import Membership, Organization, User
from annota.core.db.types import utcnow
from annota.core.services import users as user_service
from annota.testing import PASSWORD

TTL = 0.5


@pytest.fixture
def annota_settings(annota_settings):
    annota_settings.plugin_settings = {"auth": {"identity_cache_seconds": TTL}}
    return annota_settings


@contextmanager
def statements(client: TestClient) -> Iterator[list[str]]:
    engine = client.app.state.annota.engine.sync_engine
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def token_client(client: TestClient, username: str) -> tuple[TestClient, str]:
    login = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.text
    key = login.json()["key"]
    return TestClient(
        client.app, base_url="http://testserver", headers={"Authorization": f"Token {key}"}
    ), key


def test_a_repeated_password_or_token_is_not_looked_up_again(user_client):
    tokened, _ = token_client(user_client, "user1")
    for client in (user_client, tokened):
        assert client.get("/api/server/about").status_code == 200
        with statements(client) as seen:
            assert client.get("/api/server/about").status_code == 200
        assert seen == []


def test_a_wrong_password_is_never_taken_for_a_remembered_one(user_client):
    assert user_client.get("/api/users/self").status_code == 200
    wrong = TestClient(user_client.app, base_url="http://testserver")
    wrong.auth = ("user1", PASSWORD + "x")
    response = wrong.get("/api/users/self")
    assert response.status_code == 401
    assert response.json() == {"detail": "Unable to log in with provided credentials."}


def test_logout_voids_the_token_at_once(user_client):
    tokened, _ = token_client(user_client, "user1")
    assert tokened.get("/api/users/self").status_code == 200
    assert tokened.post("/api/auth/logout").status_code == 200
    assert tokened.get("/api/users/self").status_code == 401


def test_a_deactivated_account_is_refused_at_once(admin_client, user_client):
    tokened, _ = token_client(user_client, "user1")
    for client in (user_client, tokened):
        assert client.get("/api/users/self").status_code == 200
    changed = admin_client.patch(f"/api/users/{user_client.user_id}", json={"is_active": False})
    assert changed.status_code == 200, changed.text
    for client in (user_client, tokened):
        assert client.get("/api/users/self").status_code == 401


def test_a_new_password_voids_the_old_one_at_once(user_client, run_async):
    assert user_client.get("/api/users/self").status_code == 200

    async def change() -> None:
        async with user_client.app.state.annota.sessionmaker.begin() as session:
            user = await session.get(User, user_client.user_id)
            await user_service.set_password(session, user, "An0ther-passw0rd!")

    run_async(change)
    assert user_client.get("/api/users/self").status_code == 401


def test_a_lost_membership_takes_effect_at_once(admin_client, user_client, run_async):
    async def join() -> None:
        async with user_client.app.state.annota.sessionmaker.begin() as session:
            org = Organization(slug="acme", name="Acme", owner_id=admin_client.user_id)
            session.add(org)
            await session.flush()
            session.add(
                Membership(user_id=user_client.user_id, organization_id=org.id, role="worker",
                           is_active=True, joined_date=utcnow())
            )  # fmt: skip

    async def leave() -> None:
        async with user_client.app.state.annota.sessionmaker.begin() as session:
            await session.execute(
                update(Membership).where(Membership.user_id == user_client.user_id).values(is_active=False)
            )

    run_async(join)
    in_acme = {"X-Organization": "acme"}
    assert user_client.get("/api/users/self", headers=in_acme).status_code == 200
    run_async(leave)
    response = user_client.get("/api/users/self", headers=in_acme)
    assert response.status_code == 403
    assert "not a member" in response.json()["detail"]


def test_a_change_made_elsewhere_is_seen_once_entries_expire(user_client, run_async):
    tokened, _ = token_client(user_client, "user1")
    assert tokened.get("/api/users/self").status_code == 200

    async def deactivate_behind_the_orm() -> None:
        # as another process would: plain SQL, no ORM event in this process
        async with user_client.app.state.annota.engine.begin() as connection:
            await connection.execute(
                text("UPDATE users SET is_active = :no WHERE id = :id"),
                {"no": False, "id": user_client.user_id},
            )

    run_async(deactivate_behind_the_orm)
    time.sleep(TTL + 0.1)
    assert tokened.get("/api/users/self").status_code == 401
