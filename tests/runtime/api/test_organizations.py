"""Organizations API: the creator owns what they create, members see it, only the owner deletes it."""

from __future__ import annotations

from typing import Any

from annota.core.db.tables import Project, Task


def join(owner: Any, member: Any, slug: str, role: str) -> int:
    """Invite ``member`` into ``slug`` with ``role`` and accept; returns the membership id."""
    invited = owner.post(
        "/api/invitations", json={"role": role, "email": member.email}, headers={"X-Organization": slug}
    )
    assert invited.status_code == 201, invited.text
    if not invited.json()["accepted"]:
        accepted = member.post(f"/api/invitations/{invited.json()['key']}/accept")
        assert accepted.status_code == 200, accepted.text
    mine = member.get("/api/memberships", params={"org": slug}).json()["results"]
    return next(m["id"] for m in mine if m["user"]["id"] == member.user_id)


def people(make_user: Any, *names: str) -> list[Any]:
    clients = []
    for name in names:
        client = make_user(name, email=f"{name}@example.com")
        client.email = f"{name}@example.com"
        clients.append(client)
    return clients


def test_create_makes_the_creator_owner_and_lists_it(make_user, admin_client):
    alice, bob = people(make_user, "alice", "bob")
    response = alice.post(
        "/api/organizations",
        json={"slug": "acme", "name": "Acme", "description": "d", "contact": {"email": "a@acme"}},
    )
    assert response.status_code == 201, response.text
    org = response.json()
    assert org["slug"] == "acme" and org["name"] == "Acme" and org["contact"] == {"email": "a@acme"}
    assert org["owner"]["username"] == "alice"
    memberships = alice.get("/api/memberships", params={"org": "acme"}).json()["results"]
    assert [(m["user"]["username"], m["role"], m["is_active"]) for m in memberships] == [
        ("alice", "owner", True)
    ]
    assert [o["slug"] for o in alice.get("/api/organizations").json()["results"]] == ["acme"]
    assert bob.get("/api/organizations").json()["count"] == 0
    assert bob.get(f"/api/organizations/{org['id']}").status_code == 403
    assert admin_client.get("/api/organizations").json()["count"] == 1
    assert alice.get("/api/organizations", params={"slug": "nope"}).json()["count"] == 0


def test_slug_is_validated_and_unique(make_user):
    (alice,) = people(make_user, "alice")
    assert alice.post("/api/organizations", json={"slug": "acme"}).status_code == 201
    duplicate = alice.post("/api/organizations", json={"slug": "ACME"})
    assert duplicate.status_code == 400 and "slug" in duplicate.json()
    for bad in ("has space", "x" * 17, ""):
        response = alice.post("/api/organizations", json={"slug": bad})
        assert response.status_code == 400 and "slug" in response.json(), bad
    missing = alice.post("/api/organizations", json={"name": "n"})
    assert missing.status_code == 400 and "slug" in missing.json()
    long_name = alice.post("/api/organizations", json={"slug": "ok", "name": "n" * 65})
    assert long_name.status_code == 400 and "name" in long_name.json()


def test_workers_cannot_create_organizations(make_user):
    worker = make_user("w", privilege="worker")
    assert worker.post("/api/organizations", json={"slug": "w-org"}).status_code == 403


def test_update_by_owner_and_maintainer_not_by_workers(make_user):
    alice, mary, walt = people(make_user, "alice", "mary", "walt")
    org_id = alice.post("/api/organizations", json={"slug": "acme"}).json()["id"]
    join(alice, mary, "acme", "maintainer")
    join(alice, walt, "acme", "worker")
    assert walt.get(f"/api/organizations/{org_id}").status_code == 200
    assert walt.patch(f"/api/organizations/{org_id}", json={"name": "mine"}).status_code == 403
    renamed = mary.patch(f"/api/organizations/{org_id}", json={"name": "Renamed", "slug": "acme2"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Renamed" and renamed.json()["slug"] == "acme2"
    assert alice.patch(f"/api/organizations/{org_id}", json={"slug": "bad slug"}).status_code == 400
    alice.post("/api/organizations", json={"slug": "taken"})
    taken = alice.patch(f"/api/organizations/{org_id}", json={"slug": "taken"})
    assert taken.status_code == 400 and "already exists" in taken.json()["slug"][0]
    assert alice.get("/api/projects", headers={"X-Organization": "acme2"}).status_code == 200
    # only the owner deletes
    assert mary.delete(f"/api/organizations/{org_id}").status_code == 403
    assert walt.delete(f"/api/organizations/{org_id}").status_code == 403


def test_delete_cascades_and_is_recorded_as_events(make_user, admin_client, run_async, annota_client):
    (alice,) = people(make_user, "alice")
    org_id = alice.post("/api/organizations", json={"slug": "acme"}).json()["id"]

    async def add_project_and_task() -> tuple[int, int]:
        async with annota_client.app.state.annota.sessionmaker.begin() as session:
            project = Project(name="p", owner_id=alice.user_id, organization_id=org_id)
            session.add(project)
            await session.flush()
            task = Task(name="t", owner_id=alice.user_id, project_id=project.id, organization_id=org_id)
            session.add(task)
            await session.flush()
            return project.id, task.id

    project_id, task_id = run_async(add_project_and_task)
    assert alice.patch(f"/api/organizations/{org_id}", json={"description": "new"}).status_code == 200
    assert alice.delete(f"/api/organizations/{org_id}").status_code == 204
    assert alice.get(f"/api/organizations/{org_id}").status_code == 404
    assert admin_client.get(f"/api/projects/{project_id}").status_code == 404
    assert admin_client.get(f"/api/tasks/{task_id}").status_code == 404
    assert admin_client.get("/api/memberships").json()["count"] == 0
    events = admin_client.get("/api/events", params={"page_size": 100}).json()["results"]
    told = [(e["type"], e["org_id"]) for e in events if e["resource"] == "organization"]
    assert sorted(told) == [
        ("create:organization", org_id),
        ("delete:organization", org_id),
        ("update:organization", org_id),
    ]
    update = next(e for e in events if e["type"] == "update:organization")
    assert update["payload"]["changes"]["description"] == {"from": "", "to": "new"}
