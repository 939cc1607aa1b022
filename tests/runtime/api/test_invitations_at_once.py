"""Invitations with the default settings: the invitee joins at once, as in CVAT."""

from __future__ import annotations

from tests.runtime.api.test_invitations import ACME, invite
from tests.runtime.api.test_organizations import people


def test_without_confirmation_the_invitee_is_a_member_at_once(make_user, admin_client):
    """CVAT's default (``ORG_INVITATION_CONFIRM=No``): a registered invitee joins when invited."""
    alice, ivan = people(make_user, "alice", "ivan")
    org_id = alice.post("/api/organizations", json={"slug": "acme"}).json()["id"]
    created = invite(alice, ivan.email, "supervisor")
    assert created.status_code == 201, created.text
    assert created.json()["accepted"] is True
    assert ivan.get("/api/projects", headers=ACME).status_code == 200
    (membership,) = [
        m
        for m in ivan.get("/api/memberships", headers=ACME).json()["results"]
        if m["user"]["id"] == ivan.user_id
    ]
    assert membership["role"] == "supervisor" and membership["joined_date"]
    assert ivan.post(f"/api/invitations/{created.json()['key']}/accept").status_code == 400
    events = admin_client.get("/api/events", params={"page_size": 100}).json()["results"]
    types = [e["type"] for e in events if e["org_id"] == org_id]
    assert "create:invitation" in types and "create:membership" in types
    # as in CVAT, nobody is invited as the owner
    assert invite(alice, "admin@example.com", "owner").status_code == 403
