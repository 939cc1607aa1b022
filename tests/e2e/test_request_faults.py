"""No stuck, lost or doubled background request after faults, against real processes: ``annota
serve`` and ``annota worker`` on PostgreSQL with a Redis of the test's own. A worker killed with
SIGKILL in the middle of a task's creation, an export and an import; Redis stopped and started
while requests are made; PostgreSQL connections terminated under a worker and the server. Every
accepted request ends finished, once, within a bounded time, and nothing is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cv2
import httpx2 as httpx
import numpy as np
import pytest

from annota.testing.databases import drop_postgres_database
from tests.conftest import POSTGRES_SERVER_URL, require_service
from tests.e2e.conftest import ADMIN, LiveServer, _create_empty_postgres_database, free_port
from tests.e2e.test_webhook_faults import start_redis

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

#: a killed worker's request is taken up again within about LEASE + SWEEP seconds
LEASE = 1.0
SWEEP = 0.5
#: how long any request may take to end, faults included
BOUND = 30.0
FORMAT = "CVAT for images 1.1"


@dataclass
class Cluster:
    server: LiveServer
    database_url: str
    redis_port: int
    redis: subprocess.Popen[bytes]
    tmp_path: Path

    def start_worker(self) -> subprocess.Popen[bytes]:
        return self.server.start("worker")

    def sql(self, query: str) -> list[list[str]]:
        result = subprocess.run(
            ["psql", self.database_url, "-At", "-F", "\t", "-c", query],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        return [line.split("\t") for line in result.stdout.splitlines() if line]

    def stop_redis(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.redis_port), "shutdown", "nosave"], capture_output=True)
        self.redis.wait(10)

    def start_redis(self) -> None:
        self.redis = start_redis(self.redis_port, self.tmp_path)

    def logs(self) -> str:
        return "\n".join(path.read_text() for path in sorted(self.tmp_path.glob("*.log")))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
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
        ANNOTA_REQUEST_LEASE=str(LEASE), ANNOTA_SWEEP_INTERVAL=str(SWEEP), ANNOTA_REQUEUE_AFTER="1",
    )  # fmt: skip
    server = LiveServer(f"http://127.0.0.1:{port}", port, env, tmp_path)
    server.annota("migrate")
    server.annota("users", "create", "--username", ADMIN[0], "--password", ADMIN[1], "--superuser")
    server.start("serve", "--port", str(port))
    cluster = Cluster(server, database_url, redis_port, redis, tmp_path)
    try:
        server.wait_ready()
        yield cluster
    finally:
        server.stop()
        if cluster.redis.poll() is None:
            cluster.redis.terminate()
            cluster.redis.wait(10)
        drop_postgres_database(POSTGRES_SERVER_URL, database_url)


# --- talking to the server --------------------------------------------------------------------


def call(cluster: Cluster, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{cluster.server.url}{path}", auth=ADMIN, timeout=30, **kwargs)


def api(cluster: Cluster, method: str, path: str, **kwargs: Any) -> Any:
    response = call(cluster, method, path, **kwargs)
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def request_status(cluster: Cluster, rq_id: str) -> dict[str, Any]:
    body: dict[str, Any] = api(cluster, "GET", f"/api/requests/{quote(rq_id, safe='')}")
    return body


def wait_until(cluster: Cluster, rq_id: str, *statuses: str, timeout: float = BOUND) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = request_status(cluster, rq_id)
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, (body, cluster.logs())
        time.sleep(0.02)


def images(count: int, width: int = 1280, height: int = 960) -> list[tuple[str, bytes]]:
    """Noise, so that encoding chunks takes the worker a while."""
    rng = np.random.default_rng(7)
    files = []
    for index in range(count):
        ok, encoded = cv2.imencode(".jpg", rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
        assert ok
        files.append((f"frame_{index:03d}.jpg", encoded.tobytes()))
    return files


def new_task(cluster: Cluster, name: str) -> int:
    task = api(cluster, "POST", "/api/tasks", json={"name": name, "labels": [{"name": "car"}]})
    return int(task["id"])


def upload_media(cluster: Cluster, task_id: int, files: list[tuple[str, bytes]]) -> httpx.Response:
    """What cvat-sdk sends: Upload-Start, Upload-Multiple, Upload-Finish."""
    path = f"/api/tasks/{task_id}/data"
    assert call(cluster, "POST", path, headers={"Upload-Start": ""}).status_code == 202
    form = [(f"client_files[{i}]", (name, content)) for i, (name, content) in enumerate(files)]
    response = call(cluster, "POST", path, headers={"Upload-Multiple": ""}, files=form)
    assert response.status_code == 200, response.text
    body = {"image_quality": 70, "chunk_size": 2}
    return call(cluster, "POST", path, headers={"Upload-Finish": ""}, json=body)


def started(response: httpx.Response) -> str:
    assert response.status_code == 202, response.text
    rq_id: str = response.json()["rq_id"]
    return rq_id


def annotations_file(task_id: int, frames: int, boxes: int) -> bytes:
    """A CVAT 1.1 annotations file with ``boxes`` rectangles on each frame."""
    lines = ['<?xml version="1.0" encoding="utf-8"?>', "<annotations>", "<version>1.1</version>"]
    for frame in range(frames):
        lines.append(f'<image id="{frame}" name="frame_{frame:03d}.jpg" width="1280" height="960">')
        lines += [
            f'<box label="car" occluded="0" source="manual" xtl="{i % 500}" ytl="{i % 300}" '
            f'xbr="{i % 500 + 20}" ybr="{i % 300 + 10}" z_order="0"></box>'
            for i in range(boxes)
        ]
        lines.append("</image>")
    lines.append("</annotations>")
    return "\n".join(lines).encode()


# --- what must hold at the end ----------------------------------------------------------------


def assert_nothing_left(cluster: Cluster) -> None:
    """Every request ended finished; no media without a task, no scratch, upload or partial file."""
    rows = cluster.sql("SELECT id, status, message FROM requests WHERE status <> 'finished'")
    assert rows == [], rows
    orphans = cluster.sql(
        "SELECT id FROM data WHERE id NOT IN (SELECT data_id FROM tasks WHERE data_id IS NOT NULL)"
    )
    assert orphans == []
    data_ids = {row[0] for row in cluster.sql("SELECT id FROM data")}
    data_dir = cluster.server.data_dir / "data"
    scratch = data_dir / "tmp"
    assert not scratch.exists() or list(scratch.iterdir()) == []
    storage = data_dir / "storage"
    assert {path.name for path in (storage / "data").iterdir()} == data_ids
    uploads = storage / "uploads"
    assert not uploads.exists() or [p for p in uploads.rglob("*") if p.is_file()] == []
    assert [path for path in storage.rglob("*.tmp")] == []


def kill_mid_job(cluster: Cluster, worker: subprocess.Popen[bytes], rq_id: str, progress: float) -> None:
    """Freeze the worker once the request is past ``progress``, make sure it is still running
    there, and kill it."""
    deadline = time.monotonic() + BOUND
    while True:
        body = request_status(cluster, rq_id)
        if body["status"] == "started" and (body["progress"] or 0) >= progress:
            break
        assert body["status"] in ("queued", "started"), (body, cluster.logs())
        assert time.monotonic() < deadline, body
        time.sleep(0.005)
    worker.send_signal(signal.SIGSTOP)
    frozen = request_status(cluster, rq_id)
    assert frozen["status"] == "started" and frozen["progress"] < 1, f"the job ended too fast: {frozen}"
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)


def attempts(cluster: Cluster, rq_id: str) -> int:
    return int(cluster.sql(f"SELECT attempts FROM requests WHERE id = '{rq_id}'")[0][0])


# --- the faults -------------------------------------------------------------------------------


def test_a_worker_killed_during_creation_export_and_import(cluster: Cluster) -> None:
    worker = cluster.start_worker()
    task_id = new_task(cluster, "killed")
    files = images(24)

    # task creation, killed while chunks are written: taken up again, media built once
    rq_id = started(upload_media(cluster, task_id, files))
    kill_mid_job(cluster, worker, rq_id, 0.2)
    killed = time.monotonic()
    worker = cluster.start_worker()
    done = wait_until(cluster, rq_id, "finished", "failed")
    assert done["status"] == "finished", (done, cluster.logs())
    taken_up = time.monotonic() - killed
    assert attempts(cluster, rq_id) == 2
    task = api(cluster, "GET", f"/api/tasks/{task_id}")
    assert task["size"] == len(files)
    assert_nothing_left(cluster)

    # an import, killed while it reads the file: the annotations are there once
    boxes = 400
    content = annotations_file(task_id, len(files), boxes)
    response = call(
        cluster, "POST", f"/api/tasks/{task_id}/annotations", params={"format": "CVAT 1.1"},
        files={"annotation_file": ("annotations.xml", content)},
    )  # fmt: skip
    rq_id = started(response)
    kill_mid_job(cluster, worker, rq_id, 0.0)
    worker = cluster.start_worker()
    done = wait_until(cluster, rq_id, "finished", "failed")
    assert done["status"] == "finished", (done, cluster.logs())
    assert attempts(cluster, rq_id) == 2
    shapes = api(cluster, "GET", f"/api/tasks/{task_id}/annotations")["shapes"]
    assert len(shapes) == len(files) * boxes

    # an export with its images, killed while it writes the archive: one export, complete
    response = call(
        cluster, "POST", f"/api/tasks/{task_id}/dataset/export",
        params={"format": FORMAT, "save_images": "true"},
    )  # fmt: skip
    rq_id = started(response)
    kill_mid_job(cluster, worker, rq_id, 0.0)
    cluster.start_worker()
    done = wait_until(cluster, rq_id, "finished", "failed")
    assert done["status"] == "finished", (done, cluster.logs())
    assert attempts(cluster, rq_id) == 2
    download = call(cluster, "GET", f"/api/tasks/{task_id}/dataset/download", params={"rq_id": rq_id})
    assert download.status_code == 200, download.text
    exports = [
        path
        for path in (cluster.server.data_dir / "data" / "storage" / "exports").rglob("*")
        if path.is_file()
    ]
    assert len(exports) == 1 and exports[0].stat().st_size == len(download.content)
    assert_nothing_left(cluster)
    print(f"creation taken up {taken_up:.1f} s after its worker was killed")
