"""Webhook deliveries are never lost: a worker killed in the middle of a delivery, and Redis
stopped while changes are made, against real processes (``annota serve``, ``annota worker``, a
Redis server of the test's own, PostgreSQL) and a real receiver on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from annota.testing.databases import drop_postgres_database
from tests.conftest import POSTGRES_SERVER_URL, require_service
from tests.e2e.conftest import ADMIN, LiveServer, _create_empty_postgres_database, free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


class Receiver:
    """Records every delivery; ``hang`` makes the next ones wait until released."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.hang = threading.Event()
        self.release = threading.Event()
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.arrived:
                    receiver.requests.append((dict(self.headers), body))
                    receiver.arrived.notify_all()
                if receiver.hang.is_set():
                    receiver.release.wait(30)
                try:
                    self.send_response(200)
                    self.end_headers()
                except OSError:
                    pass  # the worker that sent it is gone

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.requests)} of {count} deliveries arrived"
                self.arrived.wait(left)

    def names(self) -> list[str]:
        return [body["changes"]["name"]["to"] for _, body in self.requests if "changes" in body]


def start_redis(port: int, directory: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (
            subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip()
            == b"PONG"
        ):
            return process
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[LiveServer, int]]:
    """A server and a worker on PostgreSQL and a Redis of this test's own (port returned)."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    redis_port = free_port()
    redis = start_redis(redis_port, tmp_path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANNOTA_")}
    database_url = _create_empty_postgres_database()
    env.update(
        ANNOTA_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path),
        ANNOTA_DATABASE_URL=database_url.replace("postgresql://", "postgresql+psycopg://", 1),
        ANNOTA_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        ANNOTA_WEBHOOKS_ALLOW_PRIVATE_TARGETS="true",
        # a killed worker's delivery is taken over after this many seconds
        ANNOTA_WEBHOOKS_LEASE="2",
    )  # fmt: skip
    server = LiveServer(f"http://127.0.0.1:{port}", port, env, tmp_path)
    server.annota("migrate")
    server.annota("users", "create", "--username", ADMIN[0], "--password", ADMIN[1], "--superuser")
    server.start("serve", "--port", str(port))
    server.start("worker")
    try:
        server.wait_ready()
        yield server, redis_port
    finally:
        server.stop()
        redis.terminate()
        redis.wait(10)
        drop_postgres_database(POSTGRES_SERVER_URL, database_url)


def api(server: LiveServer, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, f"{server.url}{path}", auth=ADMIN, timeout=30, **kwargs)
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def subscribe(server: LiveServer, receiver: Receiver) -> int:
    project = api(server, "POST", "/api/projects", json={"name": "watched"})
    api(server, "POST", "/api/webhooks", json={
        "target_url": receiver.url, "type": "project", "project_id": project["id"],
        "events": ["update:project"], "content_type": "application/json", "secret": "s3cret",
    })  # fmt: skip
    return int(project["id"])


def test_a_delivery_interrupted_by_a_dying_worker_is_made_again(cluster: tuple[LiveServer, int]) -> None:
    server, _ = cluster
    receiver = Receiver()
    project_id = subscribe(server, receiver)
    receiver.hang.set()
    api(server, "PATCH", f"/api/projects/{project_id}", json={"name": "renamed"})
    receiver.wait_for(1)
    worker = server.processes[1]
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    receiver.hang.clear()
    receiver.release.set()
    server.start("worker")
    receiver.wait_for(2)
    (first_headers, first), (again_headers, again) = receiver.requests[:2]
    assert first == again and first["changes"]["name"]["to"] == "renamed"
    assert first_headers["X-Webhook-Delivery-Id"] == again_headers["X-Webhook-Delivery-Id"]


def test_changes_made_while_redis_is_down_are_delivered_once_it_is_back(
    cluster: tuple[LiveServer, int], tmp_path: Path
) -> None:
    server, redis_port = cluster
    receiver = Receiver()
    project_id = subscribe(server, receiver)
    subprocess.run(["redis-cli", "-p", str(redis_port), "shutdown", "nosave"], capture_output=True)
    for name in ("one", "two", "three"):
        api(server, "PATCH", f"/api/projects/{project_id}", json={"name": name})
    redis = start_redis(redis_port, tmp_path)
    try:
        # the worker stops when Redis goes away; its supervisor (here, the test) starts another
        server.start("worker")
        receiver.wait_for(3)
        assert sorted(receiver.names()) == ["one", "three", "two"]
    finally:
        redis.terminate()
        redis.wait(10)
