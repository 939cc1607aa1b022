"""Personal access tokens: the CRUD API, ``Bearer`` authentication, read-only tokens, expiry,
revocation, and that tokens stay private to their owner."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from annota.core.db.tables import AccessToken

FIELDS = {"id", "name", "created_date", "updated_date", "expiry_date", "last_used_date", "read_only", "owner"}


def future(days: int = 30) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat()


def bearer(client: TestClient, secret: str) -> TestClient:
    """A client of the same app that authenticates with the token only."""
    return TestClient(client.app, base_url="http://testserver", headers={"Authorization": f"Bearer {secret}"})


def create_token(client: TestClient, **fields) -> dict:
    response = client.post("/api/auth/access_tokens", json={"name": "t", **fields})
    assert response.status_code == 201, response.text
    return response.json()


def test_the_value_is_shown_only_on_creation(user_client):
    token = create_token(user_client, name="ci", expiry_date=future())
    assert set(token) == FIELDS | {"value"} and token["value"]
    assert token["owner"]["username"] == "user1" and token["owner"]["id"] == user_client.user_id
    assert token["read_only"] is False and token["last_used_date"] is None
    fetched = user_client.get(f"/api/auth/access_tokens/{token['id']}").json()
    assert set(fetched) == FIELDS
    listed = user_client.get("/api/auth/access_tokens").json()
    assert listed["count"] == 1 and set(listed["results"][0]) == FIELDS


def test_bearer_authenticates_and_self_describes_the_token(user_client):
    token = create_token(user_client, name="cli")
    client = bearer(user_client, token["value"])
    assert client.get("/api/users/self").json()["username"] == "user1"
    current = client.get("/api/auth/access_tokens/self")
    assert current.status_code == 200
    assert (current.json()["id"], current.json()["name"]) == (token["id"], "cli")
    assert current.json()["last_used_date"] is not None
    assert "value" not in current.json()


def test_self_needs_a_token_authenticated_request(user_client, annota_client):
    assert user_client.get("/api/auth/access_tokens/self").status_code == 400
    assert annota_client.get("/api/auth/access_tokens/self").status_code == 401


def test_read_only_token_reads_but_never_writes(user_client):
    project_id = user_client.post("/api/projects", json={"name": "p"}).json()["id"]
    token = create_token(user_client, read_only=True)
    client = bearer(user_client, token["value"])
    assert client.get("/api/projects").status_code == 200
    assert client.get(f"/api/projects/{project_id}").status_code == 200
    assert client.post("/api/projects", json={"name": "q"}).status_code == 403
    assert client.patch(f"/api/projects/{project_id}", json={"name": "r"}).status_code == 403
    assert client.delete(f"/api/projects/{project_id}").status_code == 403
    # nor can it mint a stronger token, or loosen or revoke itself
    assert client.post("/api/auth/access_tokens", json={"name": "escalate"}).status_code == 403
    assert (
        client.patch(f"/api/auth/access_tokens/{token['id']}", json={"read_only": False}).status_code == 403
    )
    assert client.delete(f"/api/auth/access_tokens/{token['id']}").status_code == 403
    assert client.get(f"/api/auth/access_tokens/{token['id']}").status_code == 200


def test_expiry_must_be_in_the_future(user_client):
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    response = user_client.post("/api/auth/access_tokens", json={"name": "t", "expiry_date": past})
    assert response.status_code == 400
    assert list(response.json()) == ["expiry_date"]
    token = create_token(user_client)
    assert (
        user_client.patch(f"/api/auth/access_tokens/{token['id']}", json={"expiry_date": past}).status_code
        == 400
    )


def test_an_expiry_without_a_zone_is_utc(user_client):
    naive = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(tzinfo=None, microsecond=0)
    token = create_token(user_client, expiry_date=naive.isoformat())
    assert dt.datetime.fromisoformat(token["expiry_date"]) == naive.replace(tzinfo=dt.UTC)


def test_an_expired_token_is_401(user_client, run_async):
    token = create_token(user_client, expiry_date=future())
    client = bearer(user_client, token["value"])
    assert client.get("/api/users/self").status_code == 200

    async def expire() -> None:
        async with user_client.app.state.annota.sessionmaker.begin() as session:
            past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            await session.execute(
                update(AccessToken).where(AccessToken.id == token["id"]).values(expiry_date=past)
            )

    run_async(expire)
    response = client.get("/api/users/self")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or expired access token."}


def test_a_deleted_token_is_401(user_client):
    token = create_token(user_client)
    client = bearer(user_client, token["value"])
    assert user_client.delete(f"/api/auth/access_tokens/{token['id']}").status_code == 204
    assert client.get("/api/users/self").status_code == 401
    assert user_client.get(f"/api/auth/access_tokens/{token['id']}").status_code == 404


def test_update_renames_and_changes_read_only(user_client):
    token = create_token(user_client, name="old")
    response = user_client.patch(
        f"/api/auth/access_tokens/{token['id']}", json={"name": "new", "read_only": True, "expiry_date": None}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["read_only"], body["expiry_date"]) == ("new", True, None)
    assert "value" not in body
    assert bearer(user_client, token["value"]).post("/api/projects", json={"name": "p"}).status_code == 403


def test_tokens_are_private_to_their_owner(make_user, admin_client):
    alice, bob = make_user("alice"), make_user("bob")
    token = create_token(alice, name="alice's")
    create_token(bob, name="bob's")
    url = f"/api/auth/access_tokens/{token['id']}"
    assert bob.get(url).status_code == 403
    assert bob.patch(url, json={"name": "mine"}).status_code == 403
    assert bob.delete(url).status_code == 403
    assert [t["name"] for t in bob.get("/api/auth/access_tokens").json()["results"]] == ["bob's"]
    # administrators can act on any token by id, but their list is their own
    assert admin_client.get(url).status_code == 200
    assert admin_client.get("/api/auth/access_tokens").json()["count"] == 0
    assert alice.get(url).json()["name"] == "alice's"


def test_users_without_a_privilege_cannot_create_tokens(make_user):
    nobody = make_user("nobody", privilege=None)
    assert nobody.post("/api/auth/access_tokens", json={"name": "t"}).status_code == 403


@pytest.mark.parametrize("params", [{"search": "bu"}, {"name": "build"}, {"sort": "name"}])
def test_list_filters_and_sorts(user_client, params):
    for name in ("deploy", "build"):
        create_token(user_client, name=name)
    names = [t["name"] for t in user_client.get("/api/auth/access_tokens", params=params).json()["results"]]
    assert names == (["build", "deploy"] if "sort" in params else ["build"])


def test_anonymous_is_401(annota_client):
    assert annota_client.get("/api/auth/access_tokens").status_code == 401
    assert annota_client.post("/api/auth/access_tokens", json={"name": "t"}).status_code == 401
    for method in ("GET", "PATCH", "DELETE"):
        assert annota_client.request(method, "/api/auth/access_tokens/1").status_code == 401
