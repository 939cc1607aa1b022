"""The SSRF guard: without ``allow_private_targets`` no webhook reaches a private, loopback or
link-local address, neither when it is saved nor when a delivery is about to be sent."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from annota.core.db.tables import Webhook
from annota.runtime.app import create_app
from annota.runtime.settings import Settings
from annota.testing import PASSWORD
from tests.plugins.webhooks import helpers
from tests.plugins.webhooks.conftest import SCHEDULE, SECRET
from tests.plugins.webhooks.receiver import Receiver

REFUSED_TARGETS = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://[::1]/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
]


@pytest.fixture
def webhook_config() -> dict[str, object]:
    return {"retry_schedule": SCHEDULE}


def test_private_targets_are_refused_when_saved(admin_client: TestClient, receiver: Receiver) -> None:
    body = {"type": "server", "events": ["create:project"]}
    for url in [receiver.url, *REFUSED_TARGETS]:
        response = admin_client.post("/api/webhooks", json={**body, "target_url": url})
        assert response.status_code == 400, (url, response.text)
        assert "not a public address" in response.json()["target_url"][0], response.text
    assert admin_client.get("/api/webhooks").json()["count"] == 0


def _insert_webhook(run_async: Callable[..., Any], client: TestClient, url: str, owner_id: int) -> int:
    """A webhook whose target passed the check when it was saved (its DNS answer changed since)."""

    async def insert() -> int:
        async with client.app.state.annota.sessionmaker.begin() as session:  # type: ignore[attr-defined]
            webhook = Webhook(
                target_url=url, type="server", events=json.dumps(["create:project"]), secret=SECRET,
                owner_id=owner_id, headers="{}",
            )  # fmt: skip
            session.add(webhook)
            await session.flush()
            webhook_id: int = webhook.id
            return webhook_id

    result: int = run_async(insert)
    return result


# the address itself, and a name the delivery resolves (and connects to only once vetted)
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_private_targets_are_refused_when_delivering(
    admin_client: TestClient, receiver: Receiver, run_async: Callable[..., Any], host: str
) -> None:
    url = receiver.url.replace("127.0.0.1", host)
    webhook_id = _insert_webhook(run_async, admin_client, url, admin_client.user_id)  # type: ignore[attr-defined]
    ping = admin_client.post(f"/api/webhooks/{webhook_id}/ping")
    assert ping.status_code == 200
    assert ping.json()["status_code"] is None and ping.json()["response"].startswith(f"Refused: {host}")

    helpers.project(admin_client)
    deadline = time.monotonic() + 5
    while len(log := helpers.deliveries(admin_client, webhook_id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    # refused for good: recorded once, not retried, never sent
    assert len(receiver.quiet_for(0.8)) == 0
    log = helpers.deliveries(admin_client, webhook_id)
    assert [(d["event"], d["status_code"]) for d in log] == [("ping", None), ("create:project", None)]
    assert "not a public address" in log[1]["response"]


def test_private_targets_allowed_from_the_environment(
    annota_settings: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANNOTA_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "true")
    app = create_app(annota_settings)
    with TestClient(app, base_url="http://testserver") as client:

        async def add_admin() -> None:
            from annota.core.services import users as user_service

            async with app.state.annota.sessionmaker.begin() as session:
                await user_service.create_user(session, "root", PASSWORD, superuser=True)

        assert client.portal is not None
        client.portal.call(add_admin)
        client.auth = ("root", PASSWORD)
        hook = helpers.webhook(client, receiver.url, events=["create:project"])
        assert client.post(f"/api/webhooks/{hook['id']}/ping").json()["status_code"] == 200
    (request,) = receiver.received
    assert request.signed is True and request.payload["event"] == "ping"
