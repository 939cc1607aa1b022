"""Memberships API: who sees an organization's members, who changes roles, who removes or leaves."""

from __future__ import annotations

from typing import Any

from tests.runtime.api.test_organizations import join, people


def role_of(client: Any, membership_id: int) -> str:
    role: str = client.get(f"/api/memberships/{membership_id}").json()["role"]
    return role


def test_members_list_in_the_organization_and_their_own_elsewhere(make_user):
    alice, mary, walt, olga = people(make_user, "alice", "mary", "walt", "olga")
    alice.post("/api/organizations", json={"slug": "acme"})
    olga.post("/api/organizations", json={"slug": "other"})
    join(alice, mary, "acme", "maintainer")
    join(alice, walt, "acme", "worker")
    listed = walt.get("/api/memberships", headers={"X-Organization": "acme"}).json()
    assert sorted((m["user"]["username"], m["role"]) for m in listed["results"]) == [
        ("alice", "owner"),
        ("mary", "maintainer"),
        ("walt", "worker"),
    ]
    assert walt.get("/api/memberships", params={"org": "acme", "role": "worker"}).json()["count"] == 1
    assert walt.get("/api/memberships", params={"org": "acme", "user": "mary"}).json()["count"] == 1
    # without an organization: one's own memberships only
    own = walt.get("/api/memberships").json()["results"]
    assert [(m["user"]["username"], m["role"]) for m in own] == [("walt", "worker")]
    # another organization's members stay hidden, its memberships refused
    assert olga.get("/api/memberships", headers={"X-Organization": "acme"}).status_code == 403
    assert olga.get(f"/api/memberships/{own[0]['id']}").status_code == 403


def test_role_changes_follow_the_hierarchy(make_user):
    alice, mary, sam, walt = people(make_user, "alice", "mary", "sam", "walt")
    alice.post("/api/organizations", json={"slug": "acme"})
    owner_membership = alice.get("/api/memberships", params={"org": "acme"}).json()["results"][0]["id"]
    mary_id = join(alice, mary, "acme", "maintainer")
    sam_id = join(alice, sam, "acme", "supervisor")
    walt_id = join(alice, walt, "acme", "worker")

    # a maintainer manages supervisors and workers, into supervisors or workers
    assert mary.patch(f"/api/memberships/{walt_id}", json={"role": "supervisor"}).status_code == 200
    for target, role in ((walt_id, "maintainer"), (mary_id, "worker"), (owner_membership, "worker")):
        refused = mary.patch(f"/api/memberships/{target}", json={"role": role})
        assert refused.status_code == 403, (target, role)
        assert refused.json()["detail"]
    own = mary.patch(f"/api/memberships/{mary_id}", json={"role": "supervisor"})
    assert own.status_code == 403 and "your own role" in own.json()["detail"]
    # supervisors and workers change nothing
    assert sam.patch(f"/api/memberships/{walt_id}", json={"role": "worker"}).status_code == 403
    assert walt.patch(f"/api/memberships/{sam_id}", json={"role": "worker"}).status_code == 403
    # the owner changes anyone else, but nobody becomes owner
    assert alice.patch(f"/api/memberships/{sam_id}", json={"role": "maintainer"}).status_code == 200
    given = alice.patch(f"/api/memberships/{walt_id}", json={"role": "owner"})
    assert given.status_code == 403 and "owner role" in given.json()["detail"]
    assert alice.patch(f"/api/memberships/{owner_membership}", json={"role": "worker"}).status_code == 403
    bad = alice.patch(f"/api/memberships/{walt_id}", json={"role": "boss"})
    assert bad.status_code == 400 and "role" in bad.json()
    # nothing refused was changed
    assert [role_of(alice, m) for m in (owner_membership, mary_id, sam_id, walt_id)] == [
        "owner",
        "maintainer",
        "maintainer",
        "supervisor",
    ]


def test_removing_and_leaving(make_user, admin_client):
    alice, mary, sam, walt = people(make_user, "alice", "mary", "sam", "walt")
    org_id = alice.post("/api/organizations", json={"slug": "acme"}).json()["id"]
    owner_membership = alice.get("/api/memberships", params={"org": "acme"}).json()["results"][0]["id"]
    mary_id = join(alice, mary, "acme", "maintainer")
    sam_id = join(alice, sam, "acme", "supervisor")
    walt_id = join(alice, walt, "acme", "worker")
    # the owner can neither leave nor be removed
    left = alice.delete(f"/api/memberships/{owner_membership}")
    assert left.status_code == 403 and "owner" in left.json()["detail"]
    assert mary.delete(f"/api/memberships/{owner_membership}").status_code == 403
    # workers remove nobody else; maintainers remove workers, not other maintainers
    assert walt.delete(f"/api/memberships/{sam_id}").status_code == 403
    assert mary.delete(f"/api/memberships/{walt_id}").status_code == 204
    assert walt.get("/api/organizations").json()["count"] == 0
    assert walt.get("/api/projects", headers={"X-Organization": "acme"}).status_code == 403
    # members leave
    assert sam.delete(f"/api/memberships/{sam_id}").status_code == 204
    assert alice.delete(f"/api/memberships/{mary_id}").status_code == 204
    assert alice.get("/api/memberships", params={"org": "acme"}).json()["count"] == 1
    events = admin_client.get("/api/events", params={"page_size": 100}).json()["results"]
    removed = sorted(e["resource_id"] for e in events if e["type"] == "delete:membership")
    assert removed == sorted([walt_id, sam_id, mary_id])
    assert all(e["org_id"] == org_id for e in events if e["resource"] == "membership")
