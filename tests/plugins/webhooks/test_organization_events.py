"""Organization, membership and invitation events delivered to real receivers: each payload shows
the resource as the API's GET does, names the acting user and is signed; each webhook hears its
own scope, and only what it subscribed to."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from annota.plugins.webhooks.events import ALLOWED
from annota.runtime.settings import Settings
from tests.plugins.webhooks import helpers
from tests.plugins.webhooks.conftest import SECRET
from tests.plugins.webhooks.receiver import Received, Receiver


@pytest.fixture
def annota_settings(annota_settings: Settings) -> Settings:
    """Invitations wait for the invitee here, so that accepting one is an event of its own."""
    annota_settings.invitation_confirm = True
    return annota_settings


ORG_EVENTS = [
    f"{action}:{resource}"
    for resource in ("organization", "invitation", "membership")
    for action in ("create", "update", "delete")
]
#: how long nothing more may arrive once the expected deliveries did
QUIET = 0.6


def _person(make_user: Callable[..., TestClient], name: str) -> TestClient:
    client = make_user(name, email=f"{name}@example.com")
    client.email = f"{name}@example.com"  # type: ignore[attr-defined]
    return client


def _organization(owner: TestClient, slug: str) -> dict[str, Any]:
    response = owner.post("/api/organizations", json={"slug": slug, "name": slug.capitalize()})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _webhook_in(client: TestClient, slug: str, url: str, **fields: Any) -> Any:
    """``POST /api/webhooks`` in organization ``slug``: the answer."""
    body = {"target_url": url, "secret": SECRET, **fields}
    return client.post("/api/webhooks", json=body, headers={"X-Organization": slug})


def _org_webhook(client: TestClient, slug: str, url: str, events: list[str]) -> dict[str, Any]:
    response = _webhook_in(client, slug, url, type="organization", events=events)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _invite(inviter: TestClient, slug: str, invitee: TestClient, role: str = "worker") -> str:
    """The secret key of a new invitation of ``invitee`` into ``slug``."""
    response = inviter.post(
        "/api/invitations",
        json={"role": role, "email": invitee.email},  # type: ignore[attr-defined]
        headers={"X-Organization": slug},
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


def _membership_of(client: TestClient, slug: str, member: TestClient) -> int:
    found = client.get("/api/memberships", headers={"X-Organization": slug}).json()["results"]
    membership_id: int = next(m["id"] for m in found if m["user"]["id"] == member.user_id)  # type: ignore[attr-defined]
    return membership_id


def _arrived(receiver: Receiver, path: str, count: int, timeout: float = 8.0) -> list[Received]:
    """The first ``count`` requests to ``path``, once they arrived."""
    deadline = time.monotonic() + timeout
    while len(found := receiver.to(path)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"expected {count} requests to {path}: {[i.payload['event'] for i in found]}"
            )
        time.sleep(0.02)
    return found[:count]


def _checked(item: Received, event: str, webhook: dict[str, Any], actor: TestClient) -> dict[str, Any]:
    """The payload of ``item``, once it is signed and says ``event``, ``webhook`` and ``actor``."""
    assert item.signed is True
    payload: dict[str, Any] = item.payload
    assert payload["event"] == event and payload["webhook_id"] == webhook["id"]
    assert payload["sender"]["id"] == actor.user_id  # type: ignore[attr-defined]
    assert payload["sender"]["username"] == actor.username  # type: ignore[attr-defined]
    return payload


def _org_of(payload: dict[str, Any]) -> int:
    """The organization an event is about, as its payload names it."""
    if "organization" in payload:
        org_id: int = payload["organization"]["id"]
        return org_id
    resource = payload.get("membership") or payload["invitation"]
    org_id = resource["organization"]
    return org_id


def _identity(payload: dict[str, Any]) -> tuple[str, Any]:
    """What tells the deliveries to one webhook apart: the event type and its resource's id (an
    invitation's public key)."""
    event: str = payload["event"]
    resource = payload[event.partition(":")[2]]
    return event, resource["key"] if "key" in resource else resource["id"]


def test_organization_lifecycle_reaches_its_webhook(
    make_user: Callable[..., TestClient], receiver: Receiver
) -> None:
    alice, ivan, jack = (_person(make_user, name) for name in ("alice", "ivan", "jack"))
    org = _organization(alice, "acme")
    # everything but ``update:invitation`` (resending), to see unsubscribed events stay away
    hook = _org_webhook(alice, "acme", receiver.url, [e for e in ORG_EVENTS if e != "update:invitation"])
    joins = _org_webhook(alice, "acme", receiver.base + "/joins", ["create:membership"])
    #: (event, the resource as GET showed it right after the change or before a deletion, actor, changes)
    expected: list[tuple[str, dict[str, Any], TestClient, dict[str, Any] | None]] = []
    secrets: list[str] = []

    renamed = alice.patch(f"/api/organizations/{org['id']}", json={"name": "Acme Inc"})
    assert renamed.status_code == 200, renamed.text
    shown = alice.get(f"/api/organizations/{org['id']}").json()
    expected.append(("update:organization", shown, alice, {"name": {"from": "Acme", "to": "Acme Inc"}}))

    secrets.append(_invite(alice, "acme", ivan))
    invitation = alice.get(f"/api/invitations/{secrets[-1]}").json()
    assert invitation["user"]["id"] == ivan.user_id  # type: ignore[attr-defined]
    expected.append(("create:invitation", invitation, alice, None))

    assert ivan.post(f"/api/invitations/{secrets[-1]}/accept").status_code == 200
    membership_id = _membership_of(alice, "acme", ivan)
    membership = alice.get(f"/api/memberships/{membership_id}").json()
    assert membership["is_active"] is True and membership["role"] == "worker"
    expected.append(("create:membership", membership, ivan, None))

    promoted = alice.patch(f"/api/memberships/{membership_id}", json={"role": "supervisor"})
    assert promoted.status_code == 200, promoted.text
    shown = alice.get(f"/api/memberships/{membership_id}").json()
    expected.append(("update:membership", shown, alice, {"role": {"from": "worker", "to": "supervisor"}}))

    # the snapshot before deletion is what GET showed after the promotion
    assert alice.delete(f"/api/memberships/{membership_id}").status_code == 204
    expected.append(("delete:membership", shown, alice, None))

    # withdrawn by the inviter after resending it (which this webhook does not hear)
    secrets.append(_invite(alice, "acme", jack))
    expected.append(("create:invitation", alice.get(f"/api/invitations/{secrets[-1]}").json(), alice, None))
    resent = alice.post(f"/api/invitations/{secrets[-1]}/resend")
    assert resent.status_code == 200, resent.text
    secrets.append(resent.json()["key"])
    snapshot = alice.get(f"/api/invitations/{secrets[-1]}").json()
    assert alice.delete(f"/api/invitations/{secrets[-1]}").status_code == 204
    expected.append(("delete:invitation", snapshot, alice, None))

    # declined by the invitee
    secrets.append(_invite(alice, "acme", ivan))
    expected.append(("create:invitation", alice.get(f"/api/invitations/{secrets[-1]}").json(), alice, None))
    snapshot = ivan.get(f"/api/invitations/{secrets[-1]}").json()
    assert ivan.post(f"/api/invitations/{secrets[-1]}/decline").status_code == 204
    expected.append(("delete:invitation", snapshot, ivan, None))

    _arrived(receiver, "/hook", len(expected))
    _arrived(receiver, "/joins", 1)
    receiver.quiet_for(QUIET)
    delivered = {_identity(item.payload): item for item in receiver.to("/hook")}
    assert len(delivered) == len(receiver.to("/hook")) == len(expected)
    for event, resource, actor, changes in expected:
        item = delivered[_identity({"event": event, event.partition(":")[2]: resource})]
        payload = _checked(item, event, hook, actor)
        assert payload[event.partition(":")[2]] == resource, event
        if changes is None:
            assert "changes" not in payload and "before_update" not in payload, event
        else:
            assert payload["changes"] == changes, event
            assert payload["before_update"] == {key: value["from"] for key, value in changes.items()}
        # the secret keys go to the inviter only, never to webhooks
        assert not any(secret in item.body.decode() for secret in secrets)

    # the webhook subscribed to joins only heard the one join, the same event as the other
    (joined,) = receiver.to("/joins")
    assert _checked(joined, "create:membership", joins, ivan)["membership"] == membership
    same = delivered["create:membership", membership_id]
    assert joined.headers["X-Webhook-Event-Id"] == same.headers["X-Webhook-Event-Id"]


def test_each_webhook_hears_its_own_scope(
    make_user: Callable[..., TestClient], admin_client: TestClient, receiver: Receiver
) -> None:
    server = helpers.webhook(admin_client, receiver.base + "/server", events=ORG_EVENTS)
    alice, olga, ivan = (_person(make_user, name) for name in ("alice", "olga", "ivan"))
    acme, other = _organization(alice, "acme"), _organization(olga, "other")
    acme_hook = _org_webhook(alice, "acme", receiver.base + "/acme", ORG_EVENTS)
    project = alice.post("/api/projects", json={"name": "p"}, headers={"X-Organization": "acme"})
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    # a project webhook in the organization may not subscribe to its membership events...
    refused = _webhook_in(
        alice, "acme", receiver.base + "/project", type="project", project_id=project_id,
        events=["create:membership"],
    )  # fmt: skip
    assert refused.status_code == 400 and "events" in refused.json()
    # ...and, subscribed to all it may, hears none of them
    created = _webhook_in(
        alice, "acme", receiver.base + "/project", type="project", project_id=project_id,
        events=ALLOWED["project"],
    )  # fmt: skip
    assert created.status_code == 201, created.text
    project_hook = created.json()

    def churn(owner: TestClient, slug: str, org_id: int) -> None:
        """Five events of ``slug``: an edit, ivan invited, ivan joining, promoted, removed."""
        edited = owner.patch(f"/api/organizations/{org_id}", json={"description": f"about {slug}"})
        assert edited.status_code == 200, edited.text
        key = _invite(owner, slug, ivan)
        assert ivan.post(f"/api/invitations/{key}/accept").status_code == 200
        membership_id = _membership_of(owner, slug, ivan)
        promoted = owner.patch(f"/api/memberships/{membership_id}", json={"role": "supervisor"})
        assert promoted.status_code == 200, promoted.text
        assert owner.delete(f"/api/memberships/{membership_id}").status_code == 204

    churn(olga, "other", other["id"])
    churn(alice, "acme", acme["id"])
    snapshot = olga.get(f"/api/organizations/{other['id']}").json()
    assert olga.delete(f"/api/organizations/{other['id']}").status_code == 204
    # the project webhook is alive: it hears its project change
    assert alice.patch(f"/api/projects/{project_id}", json={"name": "p2"}).status_code == 200

    five = ["update:organization", "create:invitation", "create:membership", "update:membership"]
    five.append("delete:membership")
    _arrived(receiver, "/server", 2 + 5 + 5 + 1)
    _arrived(receiver, "/acme", 5)
    _arrived(receiver, "/project", 1)
    receiver.quiet_for(QUIET)

    on_acme = receiver.to("/acme")
    assert Counter(item.payload["event"] for item in on_acme) == Counter(five)
    assert all(item.signed is True and item.payload["webhook_id"] == acme_hook["id"] for item in on_acme)
    assert {_org_of(item.payload) for item in on_acme} == {acme["id"]}

    on_server = receiver.to("/server")
    assert all(item.signed is True and item.payload["webhook_id"] == server["id"] for item in on_server)
    assert Counter((item.payload["event"], _org_of(item.payload)) for item in on_server) == Counter(
        [
            ("create:organization", acme["id"]),
            ("create:organization", other["id"]),
            ("delete:organization", other["id"]),
            *((event, org_id) for org_id in (acme["id"], other["id"]) for event in five),
        ]
    )
    told = {(item.payload["event"], _org_of(item.payload)): item for item in on_server}
    acme_created = _checked(told["create:organization", acme["id"]], "create:organization", server, alice)
    assert acme_created["organization"] == acme
    other_created = _checked(told["create:organization", other["id"]], "create:organization", server, olga)
    assert other_created["organization"] == other
    other_deleted = _checked(told["delete:organization", other["id"]], "delete:organization", server, olga)
    assert other_deleted["organization"] == snapshot

    (changed,) = receiver.to("/project")
    assert (
        changed.payload["event"] == "update:project" and changed.payload["webhook_id"] == project_hook["id"]
    )
