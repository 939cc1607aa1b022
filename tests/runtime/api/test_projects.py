"""Projects API: CRUD, validation, listing and who may see what."""

from __future__ import annotations


def test_create_and_retrieve_project(user_client):
    response = user_client.post("/api/projects", json={"name": "p1"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "p1"
    assert body["owner"]["username"] == "user1"
    assert body["tasks"] == {"url": f"http://testserver/api/tasks?project_id={body['id']}", "count": 0}
    assert user_client.get(f"/api/projects/{body['id']}").json()["id"] == body["id"]
    assert user_client.get(f"/api/projects/{body['id']}/").status_code == 200


def test_project_name_is_required(user_client):
    response = user_client.post("/api/projects", json={"bug_tracker": "x"})
    assert response.status_code == 400
    assert "name" in response.json()


def test_wrong_type_names_the_field(user_client):
    response = user_client.post("/api/projects", json={"name": 5})
    assert response.status_code == 400
    assert response.json() == {"name": ["Expected `str`, got `int`"]}


def test_malformed_json_is_400(user_client):
    response = user_client.post(
        "/api/projects", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["non_field_errors"][0]


def test_other_users_cannot_see_or_change_a_project(make_user, admin_client):
    alice, bob = make_user("alice"), make_user("bob")
    project_id = alice.post("/api/projects", json={"name": "secret"}).json()["id"]
    assert bob.get(f"/api/projects/{project_id}").status_code == 403
    assert bob.patch(f"/api/projects/{project_id}", json={"name": "mine"}).status_code == 403
    assert bob.delete(f"/api/projects/{project_id}").status_code == 403
    assert bob.get("/api/projects").json()["count"] == 0
    assert admin_client.get(f"/api/projects/{project_id}").status_code == 200
    assert admin_client.get("/api/projects").json()["count"] == 1


def test_list_pagination_sort_search_and_filter(user_client):
    for name in ["b", "a", "c", "ab"]:
        user_client.post("/api/projects", json={"name": name})
    page = user_client.get("/api/projects", params={"page_size": 2, "sort": "name"}).json()
    assert page["count"] == 4
    assert [p["name"] for p in page["results"]] == ["a", "ab"]
    assert page["next"].endswith("page=2") or "page=2" in page["next"]
    assert page["previous"] is None
    second = user_client.get(page["next"]).json()
    assert [p["name"] for p in second["results"]] == ["b", "c"]
    assert second["next"] is None
    assert user_client.get("/api/projects", params={"search": "b"}).json()["count"] == 2
    logic = '{"and":[{"==":[{"var":"name"},"c"]}]}'
    assert [
        p["name"] for p in user_client.get("/api/projects", params={"filter": logic}).json()["results"]
    ] == ["c"]
    assert user_client.get("/api/projects", params={"page_size": "all"}).json()["count"] == 4
    assert user_client.get("/api/projects", params={"sort": "bogus"}).status_code == 400
    assert user_client.get("/api/projects", params={"page": 9}).status_code == 404


def test_patch_and_delete(user_client):
    project_id = user_client.post("/api/projects", json={"name": "p"}).json()["id"]
    response = user_client.patch(
        f"/api/projects/{project_id}", json={"name": "renamed", "bug_tracker": "http://bt"}
    )
    assert response.status_code == 200
    assert response.json()["name"] == "renamed"
    assert user_client.delete(f"/api/projects/{project_id}").status_code == 204
    assert user_client.get(f"/api/projects/{project_id}").status_code == 404


def test_anonymous_is_401(annota_client):
    assert annota_client.get("/api/projects").status_code == 401
