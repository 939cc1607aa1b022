"""Users API: listing, the caller's own account, who may edit names, status and delete accounts."""

from __future__ import annotations

from starlette.testclient import TestClient

from annota.testing import PASSWORD
from tests.runtime.api.test_organizations import join, people

FULL = {
    "url",
    "id",
    "username",
    "first_name",
    "last_name",
    "email",
    "groups",
    "is_staff",
    "is_superuser",
    "is_active",
    "last_login",
    "date_joined",
    "has_analytics_access",
}
BASIC = {"url", "id", "username", "first_name", "last_name"}


def test_self_is_the_full_record(make_user):
    alice = make_user("alice", email="alice@example.com")
    body = alice.get("/api/users/self").json()
    assert set(body) == FULL
    assert (body["id"], body["username"], body["email"], body["groups"]) == (
        alice.user_id,
        "alice",
        "alice@example.com",
        ["user"],
    )
    assert body["url"] == f"http://testserver/api/users/{alice.user_id}"


def test_others_see_public_fields_and_admins_see_everything(make_user, admin_client):
    alice, bob, carol = people(make_user, "alice", "bob", "carol")
    alice.post("/api/organizations", json={"slug": "acme"})
    join(alice, bob, "acme", "worker")
    listed = {
        u["username"]: u for u in alice.get("/api/users", params={"page_size": "all"}).json()["results"]
    }
    # as in CVAT, people see themselves and the members of the organizations they share
    assert set(listed) == {"alice", "bob"}
    assert set(listed["alice"]) == FULL and set(listed["bob"]) == BASIC
    assert set(alice.get(f"/api/users/{bob.user_id}").json()) == BASIC
    assert alice.get(f"/api/users/{bob.user_id}", headers={"X-Organization": "acme"}).status_code == 200
    # outside a shared organization, another user is not to be read
    assert carol.get(f"/api/users/{bob.user_id}").status_code == 403
    assert alice.get(f"/api/users/{bob.user_id}", params={"org": ""}).status_code == 403
    assert [u["username"] for u in carol.get("/api/users").json()["results"]] == ["carol"]
    assert admin_client.get(f"/api/users/{bob.user_id}").json()["email"] == "bob@example.com"
    admin_view = admin_client.get("/api/users", params={"username": "bob"}).json()
    assert admin_view["count"] == 1 and admin_view["results"][0]["email"] == "bob@example.com"


def test_an_organization_lists_its_members_only(make_user, admin_client):
    alice, bob, carol = people(make_user, "alice", "bob", "carol")
    alice.post("/api/organizations", json={"slug": "acme"})
    carol.post("/api/organizations", json={"slug": "other"})
    join(alice, bob, "acme", "worker")
    for client in (alice, bob, admin_client):
        members = client.get("/api/users", params={"org": "acme", "sort": "username"}).json()["results"]
        assert [u["username"] for u in members] == ["alice", "bob"]
    assert [
        u["username"] for u in admin_client.get("/api/users", params={"org": "other"}).json()["results"]
    ] == ["carol"]
    # a user who is not a member cannot name the organization
    assert carol.get("/api/users", params={"org": "acme"}).status_code == 403


def test_list_pages_searches_and_sorts(make_user, admin_client):
    for name in ("bob", "carol", "dave"):
        make_user(name)
    page = admin_client.get("/api/users", params={"page_size": 2, "sort": "-username"}).json()
    assert page["count"] == 4 and [u["username"] for u in page["results"]] == ["dave", "carol"]
    assert page["next"] is not None and page["previous"] is None
    found = admin_client.get("/api/users", params={"search": "aro"}).json()["results"]
    assert [u["username"] for u in found] == ["carol"]


def test_users_change_their_username(make_user, admin_client):
    alice, bob = make_user("alice"), make_user("bob")
    renamed = alice.patch(f"/api/users/{alice.user_id}", json={"username": "alice.l+1@x"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["username"] == "alice.l+1@x"
    alice.auth = ("alice.l+1@x", PASSWORD)
    assert alice.get("/api/users/self").json()["username"] == "alice.l+1@x"
    for bad, message in (
        ("BOB", "already exists"),
        ("no spaces", "valid username"),
        ("", "150"),
        ("x" * 151, "150"),
    ):
        response = alice.patch(f"/api/users/{alice.user_id}", json={"username": bad})
        assert response.status_code == 400, response.text
        assert message in response.json()["username"][0]
    assert alice.get("/api/users/self").json()["username"] == "alice.l+1@x"
    assert bob.patch(f"/api/users/{alice.user_id}", json={"username": "mallory"}).status_code == 403
    assert (
        admin_client.patch(f"/api/users/{bob.user_id}", json={"username": "robert"}).json()["username"]
        == "robert"
    )


def test_unknown_user_is_404(user_client):
    assert user_client.get("/api/users/999").status_code == 404
    assert user_client.patch("/api/users/999", json={"first_name": "x"}).status_code == 404


def test_users_edit_their_own_names_only(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    response = alice.patch(
        f"/api/users/{alice.user_id}", json={"first_name": "Alice", "last_name": "Liddell"}
    )
    assert response.status_code == 200, response.text
    assert (response.json()["first_name"], response.json()["last_name"]) == ("Alice", "Liddell")
    assert alice.get("/api/users/self").json()["first_name"] == "Alice"
    assert bob.patch(f"/api/users/{alice.user_id}", json={"first_name": "Mallory"}).status_code == 403


def test_only_admins_change_account_status(make_user, admin_client):
    alice = make_user("alice")
    assert alice.patch(f"/api/users/{alice.user_id}", json={"is_active": False}).status_code == 403
    assert alice.get("/api/users/self").json()["is_active"] is True
    response = admin_client.patch(f"/api/users/{alice.user_id}", json={"is_active": False, "first_name": "A"})
    assert response.status_code == 200
    assert (response.json()["is_active"], response.json()["first_name"]) == (False, "A")
    # a deactivated account can no longer authenticate
    assert alice.get("/api/users/self").status_code == 401
    assert admin_client.patch(f"/api/users/{alice.user_id}", json={"is_active": True}).status_code == 200
    assert alice.get("/api/users/self").status_code == 200


def test_deactivation_ends_sessions(make_user, admin_client, annota_client):
    alice = make_user("alice")
    browser = TestClient(annota_client.app, base_url="http://testserver")
    assert (
        browser.post("/api/auth/login", json={"username": "alice", "password": PASSWORD}).status_code == 200
    )
    assert browser.get("/api/users/self").status_code == 200
    admin_client.patch(f"/api/users/{alice.user_id}", json={"is_active": False})
    admin_client.patch(f"/api/users/{alice.user_id}", json={"is_active": True})
    assert browser.get("/api/users/self").status_code == 401


def test_only_admins_delete_accounts(make_user, admin_client):
    alice = make_user("alice")
    project_id = alice.post("/api/projects", json={"name": "kept"}).json()["id"]
    assert alice.delete(f"/api/users/{alice.user_id}").status_code == 403
    assert admin_client.delete(f"/api/users/{alice.user_id}").status_code == 204
    assert admin_client.get(f"/api/users/{alice.user_id}").status_code == 404
    assert alice.get("/api/users/self").status_code == 401
    # what the account owned stays, without an owner
    assert admin_client.get(f"/api/projects/{project_id}").json()["owner"] is None


def test_read_only_token_cannot_edit_the_account(user_client):
    token = user_client.post("/api/auth/access_tokens", json={"name": "ro", "read_only": True}).json()
    client = TestClient(
        user_client.app, base_url="http://testserver", headers={"Authorization": f"Bearer {token['value']}"}
    )
    assert client.get("/api/users/self").status_code == 200
    assert client.patch(f"/api/users/{user_client.user_id}", json={"first_name": "x"}).status_code == 403


def test_invalid_patch_names_the_field(user_client):
    response = user_client.patch(f"/api/users/{user_client.user_id}", json={"first_name": "x" * 151})
    assert response.status_code == 400
    assert list(response.json()) == ["first_name"]


def test_anonymous_is_401(annota_client):
    assert annota_client.get("/api/users").status_code == 401
    assert annota_client.get("/api/users/self").status_code == 401
    assert annota_client.get("/api/users/1").status_code == 401
