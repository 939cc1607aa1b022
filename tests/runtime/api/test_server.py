"""``/api/server/health``: what a load balancer reads before sending traffic."""

from __future__ import annotations

import shutil
from pathlib import Path

from starlette.testclient import TestClient


def test_health_checks_database_queue_and_storage(annota_client: TestClient) -> None:
    response = annota_client.get("/api/server/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "storage": "ok", "queue": "ok", "authorization": "ok"},
    }


def test_health_is_unavailable_when_the_storage_is_gone(annota_client: TestClient) -> None:
    # an unmounted volume: the storage root is now a plain file, so nothing under it can be read
    root = Path(annota_client.app.state.annota.storage.root)  # type: ignore[attr-defined]
    shutil.rmtree(root)
    root.write_bytes(b"")
    response = annota_client.get("/api/server/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["storage"].startswith("error: ")
    assert body["checks"]["database"] == "ok"
