"""Fixtures of the webhooks tests: a loopback receiver, and the plugin configured to reach it with
a short retry schedule."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from annota.runtime.settings import Settings
from tests.plugins.webhooks.receiver import Receiver, serve

SECRET = "receiver-secret"
#: the retry schedule of the tests: two retries, 0.2 s apart
SCHEDULE = [0.2, 0.2]
READ_TIMEOUT = 0.5


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    target = Receiver(secret=SECRET)
    server, thread = serve(target)
    yield target
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def webhook_config() -> dict[str, object]:
    return {"allow_private_targets": True, "retry_schedule": SCHEDULE, "read_timeout": READ_TIMEOUT}


@pytest.fixture
def annota_settings(annota_settings: Settings, webhook_config: dict[str, object]) -> Settings:
    annota_settings.plugin_settings = {"webhooks": webhook_config}
    return annota_settings


@pytest.fixture
def make_user(make_user: Callable[..., TestClient], annota_client: TestClient) -> Callable[..., TestClient]:
    """Signed-in clients whose requests run on the app's own event loop. A client outside a
    ``with`` block runs each request on a loop of its own that is closed afterwards, cancelling
    the event dispatch the request started."""

    def make(*args: Any, **kwargs: Any) -> TestClient:
        client = make_user(*args, **kwargs)
        client.portal = annota_client.portal
        return client

    return make
