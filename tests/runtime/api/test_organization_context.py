"""The organization a request acts in (``X-Organization``, ``org``, ``org_id``): where objects are
created, which ones lists show, and refusals of contexts that are malformed, unknown or not the
caller's."""

from __future__ import annotations

from typing import Any

from tests.runtime.api.test_organizations import join, people

ACME = {"X-Organization": "acme"}


def new_task(client: Any, name: str, headers: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    response = client.post(
        "/api/tasks", json={"name": name, "labels": [{"name": "a"}], **fields}, headers=headers
    )
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def names(client: Any, path: str, **options: Any) -> list[str]:
    response = client.get(path, params={"page_size": "all", **options.pop("params", {})}, **options)
    assert response.status_code == 200, response.text
    return sorted(item["name"] for item in response.json()["results"])


def test_objects_are_created_and_listed_in_the_named_context(make_user):
    (alice,) = people(make_user, "alice")
    org_id = alice.post("/api/organizations", json={"slug": "acme"}).json()["id"]
    in_org = new_task(alice, "in-org", ACME)
    by_query = alice.post(
        "/api/tasks", params={"org_id": org_id}, json={"name": "by-id", "labels": [{"name": "a"}]}
    ).json()
    sandbox = new_task(alice, "sandbox")
    assert in_org["organization"] == org_id and by_query["organization"] == org_id
    assert sandbox["organization"] is None
    assert names(alice, "/api/tasks", headers=ACME) == ["by-id", "in-org"]
    assert names(alice, "/api/tasks", params={"org": "acme"}) == ["by-id", "in-org"]
    # `org=` names the sandbox; naming nothing lists everything the caller may see
    assert names(alice, "/api/tasks", params={"org": ""}) == ["sandbox"]
    assert names(alice, "/api/tasks") == ["by-id", "in-org", "sandbox"]


def test_projects_are_created_in_the_named_organization(make_user):
    (alice,) = people(make_user, "alice")
    org_id = alice.post("/api/organizations", json={"slug": "acme"}).json()["id"]
    created = alice.post("/api/projects", json={"name": "p"}, headers=ACME)
    assert created.status_code == 201, created.text
    assert created.json()["organization"] == org_id
    assert names(alice, "/api/projects", params={"org": ""}) == []


def test_malformed_conflicting_unknown_and_foreign_contexts_are_refused(make_user):
    alice, olga = people(make_user, "alice", "olga")
    org_id = alice.post("/api/organizations", json={"slug": "acme"}).json()["id"]
    olga.post("/api/organizations", json={"slug": "other"})
    conflicting = alice.get("/api/tasks", headers=ACME, params={"org": "other"})
    assert conflicting.status_code == 400 and "two different organizations" in str(conflicting.json())
    assert alice.get("/api/tasks", headers=ACME, params={"org": ""}).status_code == 400
    assert alice.get("/api/tasks", params={"org": "acme", "org_id": org_id + 1}).status_code == 400
    malformed = alice.get("/api/tasks", headers={"X-Organization": "not a slug!"})
    assert malformed.status_code == 400 and "X-Organization" in malformed.json()
    bad_id = alice.get("/api/tasks", params={"org_id": "x"})
    assert bad_id.status_code == 400 and "org_id" in bad_id.json()
    assert alice.get("/api/tasks", headers={"X-Organization": "nowhere"}).status_code == 404
    assert alice.get("/api/tasks", params={"org_id": 9999}).status_code == 404
    # a forged header for someone else's organization reads and creates nothing there
    assert olga.get("/api/tasks", headers=ACME).status_code == 403
    forged = olga.post("/api/tasks", json={"name": "x", "labels": [{"name": "a"}]}, headers=ACME)
    assert forged.status_code == 403
    assert names(alice, "/api/tasks", headers=ACME) == []


def test_workers_see_their_own_tasks_and_maintainers_all(make_user):
    alice, mary, walt = people(make_user, "alice", "mary", "walt")
    alice.post("/api/organizations", json={"slug": "acme"})
    join(alice, mary, "acme", "maintainer")
    join(alice, walt, "acme", "worker")
    secret = new_task(alice, "secret", ACME)
    new_task(alice, "assigned", ACME, assignee_id=walt.user_id)
    assert names(mary, "/api/tasks", headers=ACME) == ["assigned", "secret"]
    assert names(walt, "/api/tasks", headers=ACME) == ["assigned"]
    assert names(walt, "/api/tasks") == ["assigned"]
    assert walt.get(f"/api/tasks/{secret['id']}").status_code == 403
    assert mary.get(f"/api/tasks/{secret['id']}").status_code == 200
    # a worker creates nothing in the organization; a maintainer does
    assert (
        walt.post("/api/tasks", json={"name": "w", "labels": [{"name": "a"}]}, headers=ACME).status_code
        == 403
    )
    new_task(mary, "by-mary", ACME)
