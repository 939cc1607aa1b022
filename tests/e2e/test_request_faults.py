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

#: a killed worker's request is taken up again within about LEASE + SWEEP seconds (not shorter:
#: on a loaded machine a busy worker must still renew its leases in time)
LEASE = 3.0
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

    def workers(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.server.processes[1:] if p.poll() is None]

    def stop_workers(self) -> None:
        """Every request of the test has ended: the workers can go at once."""
        for process in self.workers():
            process.kill()
        for process in self.server.processes[1:]:
            process.wait(30)

    def running(self, rq_id: str, attempt: int) -> subprocess.Popen[bytes]:
        """The worker process running ``attempt`` of the request, told by its log (which says so
        just after the request shows as started)."""
        line = f"annota.core.queue: request {rq_id}: job "
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for index, process in enumerate(self.server.processes):
                log = self.tmp_path / f"worker-{index}.log"
                if log.exists() and any(
                    line in text and text.endswith(f"(attempt {attempt})")
                    for text in log.read_text().splitlines()
                ):
                    return process
            time.sleep(0.005)
        raise AssertionError(f"no worker runs attempt {attempt} of {rq_id}:\n{self.logs()}")

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


@pytest.fixture(scope="module")
def live_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One server on one database and Redis for the module (starting them is slow here); each test
    brings its own workers."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    tmp_path = tmp_path_factory.mktemp("faults")
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


@pytest.fixture
def cluster(live_cluster: Cluster) -> Iterator[Cluster]:
    yield live_cluster
    live_cluster.stop_workers()


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


def kill_mid_job(cluster: Cluster, rq_id: str, progress: float) -> float:
    """Freeze the worker running the request once it is past ``progress``, make sure it is still
    running there, kill it, and start another in its stead; returns when it was killed."""
    deadline = time.monotonic() + BOUND
    while True:
        body = request_status(cluster, rq_id)
        if body["status"] == "started" and (body["progress"] or 0) >= progress:
            break
        assert body["status"] in ("queued", "started"), (body, cluster.logs())
        assert time.monotonic() < deadline, body
        time.sleep(0.005)
    worker = cluster.running(rq_id, 1)
    worker.send_signal(signal.SIGSTOP)
    frozen = request_status(cluster, rq_id)
    assert frozen["status"] == "started" and (frozen["progress"] or 0) < 1, (
        f"the job ended too soon: {frozen}"
    )
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    killed = time.monotonic()
    cluster.start_worker()
    return killed


def attempts(cluster: Cluster, rq_id: str) -> int:
    return int(cluster.sql(f"SELECT attempts FROM requests WHERE id = '{rq_id}'")[0][0])


# --- the faults -------------------------------------------------------------------------------


def media_task(cluster: Cluster, name: str, files: list[tuple[str, bytes]]) -> int:
    task_id = new_task(cluster, name)
    done = wait_until(cluster, started(upload_media(cluster, task_id, files)), "finished", "failed")
    assert done["status"] == "finished", done
    return task_id


def test_a_worker_killed_during_task_creation(cluster: Cluster) -> None:
    # two workers: the one left takes up the request of the one killed
    cluster.start_worker()
    cluster.start_worker()
    task_id = new_task(cluster, "killed")
    files = images(8, 960, 720)
    # killed while chunks are written: taken up again, the media built once
    rq_id = started(upload_media(cluster, task_id, files))
    killed = kill_mid_job(cluster, rq_id, 0.2)
    done = wait_until(cluster, rq_id, "finished", "failed")
    taken_up = time.monotonic() - killed
    assert done["status"] == "finished", (done, cluster.logs())
    assert attempts(cluster, rq_id) == 2
    assert taken_up < LEASE + SWEEP + 10, taken_up
    task = api(cluster, "GET", f"/api/tasks/{task_id}")
    assert task["size"] == len(files)
    assert_nothing_left(cluster)


def test_a_worker_killed_during_an_import(cluster: Cluster) -> None:
    cluster.start_worker()
    cluster.start_worker()
    files = images(8, 96, 72)
    task_id = media_task(cluster, "import killed", files)
    # killed while it reads the file: the annotations are there once
    boxes = 400
    content = annotations_file(task_id, len(files), boxes)
    response = call(
        cluster, "POST", f"/api/tasks/{task_id}/annotations", params={"format": "CVAT 1.1"},
        files={"annotation_file": ("annotations.xml", content)},
    )  # fmt: skip
    rq_id = started(response)
    kill_mid_job(cluster, rq_id, 0.0)
    done = wait_until(cluster, rq_id, "finished", "failed")
    assert done["status"] == "finished", (done, cluster.logs())
    assert attempts(cluster, rq_id) == 2
    shapes = api(cluster, "GET", f"/api/tasks/{task_id}/annotations")["shapes"]
    assert len(shapes) == len(files) * boxes
    assert_nothing_left(cluster)


def test_a_worker_killed_during_an_export(cluster: Cluster) -> None:
    cluster.start_worker()
    cluster.start_worker()
    task_id = media_task(cluster, "export killed", images(8, 960, 720))
    # killed while it writes the archive with the images: one export, complete
    response = call(
        cluster, "POST", f"/api/tasks/{task_id}/dataset/export",
        params={"format": FORMAT, "save_images": "true"},
    )  # fmt: skip
    rq_id = started(response)
    kill_mid_job(cluster, rq_id, 0.0)
    done = wait_until(cluster, rq_id, "finished", "failed")
    assert done["status"] == "finished", (done, cluster.logs())
    assert attempts(cluster, rq_id) == 2
    download = call(cluster, "GET", f"/api/tasks/{task_id}/dataset/download", params={"rq_id": rq_id})
    assert download.status_code == 200, download.text
    exports = cluster.server.data_dir / "data" / "storage" / "exports" / "tasks" / str(task_id)
    files_exported = [path for path in exports.rglob("*") if path.is_file()]
    assert len(files_exported) == 1 and files_exported[0].stat().st_size == len(download.content)
    assert_nothing_left(cluster)


def test_redis_stopped_and_started_while_requests_are_made(cluster: Cluster) -> None:
    worker = cluster.start_worker()
    task_id = new_task(cluster, "through an outage")
    assert wait_until(cluster, started(upload_media(cluster, task_id, images(2, 64, 48))), "finished")

    # accepted just before the outage, its job lost with Redis's data
    worker.send_signal(signal.SIGSTOP)
    export = f"/api/tasks/{task_id}/dataset/export"
    before = started(call(cluster, "POST", export, params={"format": FORMAT, "save_images": "false"}))
    cluster.stop_redis()
    worker.send_signal(signal.SIGCONT)
    outage = time.monotonic()

    # the server answers reads and refuses new background work; an upload refused leaves nothing
    assert call(cluster, "GET", f"/api/tasks/{task_id}").status_code == 200
    assert request_status(cluster, before)["status"] == "queued"
    refused = call(cluster, "POST", export, params={"format": "COCO 1.0", "save_images": "false"})
    assert refused.status_code == 503, refused.text
    second = new_task(cluster, "refused, then repeated")
    assert upload_media(cluster, second, images(2, 64, 48)).status_code == 503
    assert [
        p for p in (cluster.server.data_dir / "data" / "storage" / "uploads").rglob("*") if p.is_file()
    ] == []
    # the worker waits for Redis rather than exiting, and so does one started meanwhile
    late = cluster.start_worker()
    while time.monotonic() - outage < 3:
        assert worker.poll() is None and late.poll() is None, cluster.logs()
        time.sleep(0.2)

    cluster.start_redis()
    back = time.monotonic()
    # the request accepted before the outage runs, once
    done = wait_until(cluster, before, "finished", "failed")
    assert done["status"] == "finished", (done, cluster.logs())
    assert time.monotonic() - back < BOUND
    # the refused work, repeated as the client made it, goes through
    after = started(call(cluster, "POST", export, params={"format": "COCO 1.0", "save_images": "false"}))
    repeated = started(upload_media(cluster, second, images(2, 64, 48)))
    for rq_id in (after, repeated):
        assert wait_until(cluster, rq_id, "finished", "failed")["status"] == "finished", cluster.logs()
    assert worker.poll() is None and late.poll() is None
    assert [attempts(cluster, rq_id) for rq_id in (before, after, repeated)] == [1, 1, 1]
    assert "lost Redis" in cluster.logs()
    assert_nothing_left(cluster)


def terminate_connections(cluster: Cluster) -> int:
    """End every other session on the test's database, as a database failover or an administrator would."""
    name = cluster.database_url.rsplit("/", 1)[1]
    rows = cluster.sql(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )
    return len(rows)


def test_postgres_connections_terminated_under_a_worker_and_the_server(cluster: Cluster) -> None:
    cluster.start_worker()
    task_id = new_task(cluster, "connections dropped")
    files = images(8, 960, 720)
    creation = started(upload_media(cluster, task_id, files))
    wait_until(cluster, creation, "started")
    accepted = [creation]
    ended = 0
    # sessions end under the job creating the task, and under the server answering
    while request_status_or_none(cluster, creation) not in ("finished", "failed"):
        ended += terminate_connections(cluster)
        assert call(cluster, "GET", f"/api/tasks/{task_id}").status_code in (200, 503)
        time.sleep(0.1)
    # then under exports being started and run
    for fmt in ("CVAT for images 1.1", "COCO 1.0", "YOLO 1.1"):
        ended += terminate_connections(cluster)
        while True:
            response = call(
                cluster, "POST", f"/api/tasks/{task_id}/dataset/export",
                params={"format": fmt, "save_images": "false"},
            )  # fmt: skip
            assert response.status_code in (202, 503), response.text
            if response.status_code == 202:
                accepted.append(response.json()["rq_id"])
                break
        time.sleep(0.1)
    assert ended > 0
    for rq_id in accepted:
        done = wait_until(cluster, rq_id, "finished", "failed")
        assert done["status"] == "finished", (done, cluster.logs())
    assert api(cluster, "GET", f"/api/tasks/{task_id}")["size"] == len(files)
    assert "the database connection was lost" in cluster.logs()
    assert_nothing_left(cluster)


def request_status_or_none(cluster: Cluster, rq_id: str) -> str | None:
    response = call(cluster, "GET", f"/api/requests/{quote(rq_id, safe='')}")
    return str(response.json()["status"]) if response.status_code == 200 else None
