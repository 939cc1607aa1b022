"""Invitations API: who invites whom with which role, and the invitee's answer."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import msgspec
import pytest
from cvat_sdk.api_client import Configuration, models
from cvat_sdk.api_client.model_utils import validate_and_convert_types
from sqlalchemy import update

from annota.core.db.tables import Invitation
from annota.core.db.types import utcnow
from annota.runtime.settings import Settings
from tests.runtime.api.test_organizations import join, people

ACME = {"X-Organization": "acme"}


@pytest.fixture
def annota_settings(annota_settings: Settings) -> Settings:
    """These tests follow invitations that wait for the invitee (``invitation_confirm``)."""
    return msgspec.structs.replace(annota_settings, invitation_confirm=True)


def invite(client: Any, email: str, role: str = "worker", headers: dict[str, str] = ACME) -> Any:
    return client.post("/api/invitations", json={"role": role, "email": email}, headers=headers)


def test_invite_accept_and_join(make_user, admin_client):
    alice, ivan = people(make_user, "alice", "ivan")
    org_id = alice.post("/api/organizations", json={"slug": "acme"}).json()["id"]
    created = invite(alice, "IVAN@example.com", "supervisor")
    assert created.status_code == 201, created.text
    body = created.json()
    key = body["key"]
    assert body["role"] == "supervisor" and body["user"]["username"] == "ivan"
    assert body["owner"]["username"] == "alice"
    assert body["organization"] == org_id and body["organization_info"] == {"id": org_id, "slug": "acme"}
    assert body["accepted"] is False and body["expired"] is False
    # the invitee sees it among their invitations, by a key that is not the secret
    mine = ivan.get("/api/invitations").json()["results"]
    assert len(mine) == 1 and mine[0]["key"] != key
    assert ivan.get(f"/api/invitations/{mine[0]['key']}").json()["role"] == "supervisor"
    assert ivan.get(f"/api/invitations/{key}").status_code == 200
    # not a member yet
    assert ivan.get("/api/projects", headers=ACME).status_code == 403
    accepted = ivan.post(f"/api/invitations/{key}/accept")
    assert accepted.status_code == 200 and accepted.json() == {"organization_slug": "acme"}
    assert ivan.post(f"/api/invitations/{key}/accept").status_code == 400
    assert ivan.get("/api/projects", headers=ACME).status_code == 200
    membership = ivan.get("/api/memberships", headers=ACME).json()["results"]
    ivan_membership = next(m for m in membership if m["user"]["username"] == "ivan")
    assert ivan_membership["role"] == "supervisor" and ivan_membership["joined_date"]
    assert alice.get("/api/invitations", headers=ACME, params={"accepted": "true"}).json()["count"] == 1
    assert alice.get("/api/invitations", headers=ACME, params={"accepted": "false"}).json()["count"] == 0
    events = admin_client.get("/api/events", params={"page_size": 100}).json()["results"]
    types = [e["type"] for e in events if e["org_id"] == org_id]
    assert "create:invitation" in types and "create:membership" in types
    told = next(e for e in events if e["type"] == "create:invitation")
    assert key not in str(told["payload"])


def test_invitation_input_is_checked(make_user):
    alice, ivan, olga = people(make_user, "alice", "ivan", "olga")
    alice.post("/api/organizations", json={"slug": "acme"})
    no_org = invite(alice, ivan.email, headers={})
    assert no_org.status_code == 400 and "org" in no_org.json()
    unknown = invite(alice, "nobody@example.com")
    assert unknown.status_code == 400 and "email" in unknown.json()
    # as in CVAT, the policy refuses an owner's invitation
    assert invite(alice, ivan.email, "owner").status_code == 403
    assert invite(alice, ivan.email, "chief").status_code == 400
    missing = alice.post("/api/invitations", json={"role": "worker"}, headers=ACME)
    assert missing.status_code == 400 and "email" in missing.json()
    member = invite(alice, alice.email)
    assert member.status_code == 400 and "already a member" in member.json()["email"][0]
    assert invite(alice, ivan.email).status_code == 201
    again = invite(alice, ivan.email)
    assert again.status_code == 400 and "already invited" in again.json()["email"][0]
    # someone outside the organization cannot name it
    assert invite(olga, ivan.email).status_code == 403


def test_who_may_invite_whom(make_user):
    alice, mary, sam, walt, ivan = people(make_user, "alice", "mary", "sam", "walt", "ivan")
    alice.post("/api/organizations", json={"slug": "acme"})
    join(alice, mary, "acme", "maintainer")
    join(alice, sam, "acme", "supervisor")
    join(alice, walt, "acme", "worker")
    assert invite(mary, ivan.email, "maintainer").status_code == 403
    assert invite(sam, ivan.email, "worker").status_code == 403
    assert invite(walt, ivan.email, "worker").status_code == 403
    assert invite(mary, ivan.email, "supervisor").status_code == 201


def test_only_the_invitee_answers_and_expired_invitations_cannot_be_accepted(
    make_user, run_async, annota_client
):
    alice, ivan, eve = people(make_user, "alice", "ivan", "eve")
    alice.post("/api/organizations", json={"slug": "acme"})
    key = invite(alice, ivan.email).json()["key"]
    assert eve.post(f"/api/invitations/{key}/accept").status_code == 403
    assert eve.post(f"/api/invitations/{key}/decline").status_code == 403
    assert eve.get(f"/api/invitations/{key}").status_code == 403
    assert alice.post(f"/api/invitations/{key}/accept").status_code == 403
    assert ivan.post("/api/invitations/not-a-key/accept").status_code == 404

    async def expire() -> None:
        async with annota_client.app.state.annota.sessionmaker.begin() as session:
            await session.execute(update(Invitation).values(expires=utcnow() - dt.timedelta(seconds=1)))

    run_async(expire)
    assert ivan.get(f"/api/invitations/{key}").json()["expired"] is True
    expired = ivan.post(f"/api/invitations/{key}/accept")
    assert expired.status_code == 400 and "expired" in str(expired.json())
    # resending gives a fresh key and a new expiry; the old key stops working
    resent = alice.post(f"/api/invitations/{key}/resend")
    assert resent.status_code == 200, resent.text
    fresh = resent.json()["key"]
    assert fresh != key and resent.json()["expired"] is False
    assert ivan.post(f"/api/invitations/{key}/accept").status_code == 404
    assert ivan.post(f"/api/invitations/{fresh}/decline").status_code == 204
    assert ivan.get("/api/invitations").json()["count"] == 0
    assert alice.get("/api/memberships", headers=ACME).json()["count"] == 1


def test_withdrawing_and_resending_belong_to_the_inviter_and_staff(make_user):
    alice, mary, walt, ivan, jack = people(make_user, "alice", "mary", "walt", "ivan", "jack")
    alice.post("/api/organizations", json={"slug": "acme"})
    join(alice, mary, "acme", "maintainer")
    join(alice, walt, "acme", "worker")
    by_mary = invite(mary, ivan.email).json()["key"]
    by_alice = invite(alice, jack.email).json()["key"]
    # the worker sees only the invitation they accepted themselves, and may touch none
    seen = walt.get("/api/invitations", headers=ACME).json()["results"]
    assert [i["user"]["username"] for i in seen] == ["walt"]
    assert walt.post(f"/api/invitations/{by_mary}/resend").status_code == 403
    assert walt.delete(f"/api/invitations/{by_mary}").status_code == 403
    # staff see all of the organization's invitations
    assert mary.get("/api/invitations", headers=ACME, params={"accepted": "false"}).json()["count"] == 2
    assert mary.post(f"/api/invitations/{by_alice}/resend").status_code == 200
    assert alice.delete(f"/api/invitations/{by_mary}").status_code == 204
    assert ivan.get("/api/invitations").json()["count"] == 0
    assert ivan.post(f"/api/invitations/{by_mary}/accept").status_code == 404
    members = alice.get("/api/memberships", headers=ACME).json()["results"]
    # staff also see the membership still waiting for jack's answer; ivan's went with its invitation
    assert sorted((m["user"]["username"], m["is_active"]) for m in members) == [
        ("alice", True),
        ("jack", False),
        ("mary", True),
        ("walt", True),
    ]
    assert next(m for m in members if not m["is_active"])["invitation"]


def test_cvat_sdk_models_accept_the_answers(make_user):
    alice, ivan = people(make_user, "alice", "ivan")

    def check(data: Any, model: type) -> None:
        # the path the SDK's response deserialization takes, with its type checks
        validate_and_convert_types(data, (model,), ["received_data"], True, True, Configuration())

    check(alice.post("/api/organizations", json={"slug": "acme"}).json(), models.OrganizationRead)
    check(alice.get("/api/organizations").json(), models.PaginatedOrganizationReadList)
    invitation = invite(alice, ivan.email).json()
    check(invitation, models.InvitationRead)
    check(alice.get("/api/invitations", headers=ACME).json(), models.PaginatedInvitationReadList)
    check(alice.get("/api/memberships", headers=ACME).json(), models.PaginatedMembershipReadList)
    check(ivan.post(f"/api/invitations/{invitation['key']}/accept").json(), models.AcceptInvitationRead)
    check(ivan.get("/api/memberships", headers=ACME).json(), models.PaginatedMembershipReadList)


def test_the_list_filters_as_cvats_ui_asks(make_user):
    """The UI asks for the caller's pending invitations with a JSON-logic filter on every page."""
    alice, ivan, olga = people(make_user, "alice", "ivan", "olga")
    alice.post("/api/organizations", json={"slug": "acme"})
    accepted_key = invite(alice, ivan.email).json()["key"]
    invite(alice, olga.email)
    assert ivan.post(f"/api/invitations/{accepted_key}/accept").status_code == 200
    alice.post("/api/organizations", json={"slug": "beta"})
    invite(alice, ivan.email, headers={"X-Organization": "beta"})

    def pending(client: Any, user_id: Any) -> dict[str, Any]:
        rule = {"and": [{"==": [{"var": "user_id"}, user_id]}, {"==": [{"var": "accepted"}, False]}]}
        response = client.get("/api/invitations", params={"filter": json.dumps(rule)})
        assert response.status_code == 200, response.text
        return response.json()

    mine = pending(ivan, str(ivan.user_id))  # the UI sends the id as a string
    assert mine["count"] == 1 and mine["results"][0]["organization_info"]["slug"] == "beta"
    assert pending(olga, olga.user_id)["count"] == 1
    assert pending(olga, ivan.user_id)["count"] == 0
    staff = alice.get("/api/invitations", params={"accepted": "false"}, headers=ACME).json()
    assert [i["user"]["username"] for i in staff["results"]] == ["olga"]
    done = alice.get("/api/invitations", params={"accepted": "1", "owner": "alice"}, headers=ACME).json()
    assert [i["user"]["username"] for i in done["results"]] == ["ivan"]
    ordered = alice.get("/api/invitations", params={"sort": "accepted,-user_id"}, headers=ACME).json()
    assert [i["accepted"] for i in ordered["results"]] == [False, True]
    found = alice.get("/api/invitations", params={"search": "ALI"}, headers=ACME).json()
    assert found["count"] == 2
    bad = alice.get("/api/invitations", params={"accepted": "maybe"}, headers=ACME)
    assert bad.status_code == 400 and "accepted" in bad.json()
    unknown = alice.get("/api/invitations", params={"filter": '{"==": [{"var": "colour"}, 1]}'})
    assert unknown.status_code == 400 and "accepted" in unknown.json()["filter"][0]
