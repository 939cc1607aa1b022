"""The loopback cluster survives a worker and an API process killed under load.

nginx balances two ``annota serve`` processes; three ``annota worker`` processes serve the queues
split as in the compose file; PostgreSQL, Redis and moto's S3 server hold the state. Clients
create tasks with media, save annotations, export and list for a bounded time. Meanwhile the
worker creating a task is killed with SIGKILL and restarted, and so is one API process. At the
end: every request accepted finished, once (only those the dead worker ran were run again); every
acknowledged annotation save is there; the only client calls that failed were in flight on the
killed API process, and their retries went through; storage holds no orphan nor leftover.
"""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cv2
import httpx2 as httpx
import numpy as np
import pytest

from annota.core.services.requests import make_request_id
from annota.testing.cluster import S3_AUTH, Cluster, nginx_binary, start_cluster
from tests.conftest import IN_CI, POSTGRES_SERVER_URL, REDIS_URL, require_service

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

ADMIN = ("admin", "cluster-admin-password")
CLIENTS = 4
#: the load runs this long; the worker is killed at WORKER_KILL, the API process at API_KILL
LOAD = 30.0
WORKER_KILL = 6.0
API_KILL = 14.0
#: what nginx answers for a request whose server died under it, and a refused new request
RETRIED = (502, 503, 504)
FORMAT = "CVAT for images 1.1"
FRAMES = 6


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if nginx_binary() is None:
        if IN_CI:
            pytest.fail("nginx is missing: .ci/run installs nginx-light")
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", "127.0.0.1", 6379)
    running = start_cluster(
        tmp_path_factory.mktemp("cluster"),
        postgres_server_url=POSTGRES_SERVER_URL,
        redis_url=REDIS_URL,
        admin=ADMIN,
        # a dead worker's requests run again within about 3.5 s
        extra_env={"ANNOTA_REQUEST_LEASE": "3", "ANNOTA_SWEEP_INTERVAL": "0.5", "ANNOTA_REQUEUE_AFTER": "1"},
    )
    try:
        yield running
    finally:
        running.stop()


# --- the clients ------------------------------------------------------------------------------


@dataclass
class Failure:
    what: str
    started: float
    ended: float
    outcome: str


@dataclass
class Record:
    """What the clients saw, shared by their threads."""

    failures: list[Failure] = field(default_factory=list)
    #: task id -> the frames its acknowledged media creation has
    tasks: dict[int, int] = field(default_factory=dict)
    #: job id -> the points of the shapes of its last acknowledged save
    saves: dict[int, list[list[float]]] = field(default_factory=dict)
    exports: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Client:
    """One user's session through nginx: each call that fails the way a dead server fails is
    noted and repeated until it goes through."""

    def __init__(
        self, cluster: Cluster, number: int, record: Record, stop: threading.Event, token: str
    ) -> None:
        self.http = httpx.Client(
            base_url=cluster.url, headers={"Authorization": f"Token {token}"}, timeout=60
        )
        self.number = number
        self.record = record
        self.stop = stop
        self.files = media(number)
        self.retried = False
        self.user_id = int(self.ok("GET", "/api/users/self")["id"])

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        deadline = time.monotonic() + 60
        self.retried = False
        while True:
            started = time.monotonic()
            try:
                response = self.http.request(method, path, **kwargs)
                if response.status_code not in RETRIED:
                    return response
                outcome = f"{response.status_code} {response.text[:100]}"
            except httpx.TransportError as exc:
                outcome = repr(exc)
            with self.record.lock:
                self.record.failures.append(Failure(f"{method} {path}", started, time.monotonic(), outcome))
            assert time.monotonic() < deadline, f"{method} {path} kept failing: {outcome}"
            self.retried = True
            time.sleep(0.2)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def started(self, method: str, path: str, rq_id: str, **kwargs: Any) -> str:
        """Start a background request; a 409 means an earlier try, whose answer was lost with its
        server, was accepted: its request (of the same id) is the one to follow."""
        response = self.call(method, path, **kwargs)
        if self.retried and (response.status_code == 409 or "already has data" in response.text):
            return rq_id
        assert response.status_code == 202, f"{method} {path}: {response.status_code} {response.text}"
        started: str = response.json()["rq_id"]
        return started

    def finished(self, rq_id: str) -> None:
        deadline = time.monotonic() + 90
        while True:
            body = self.ok("GET", f"/api/requests/{quote(rq_id, safe='')}")
            if body["status"] in ("finished", "failed"):
                assert body["status"] == "finished", body
                return
            assert time.monotonic() < deadline, body
            time.sleep(0.1)

    def run(self) -> None:
        try:
            round_ = 0
            while not self.stop.is_set():
                self.one_round(round_)
                round_ += 1
        except BaseException as exc:  # reported by the test, not lost with its thread
            with self.record.lock:
                self.record.errors.append(f"client {self.number}: {exc!r}")

    def one_round(self, round_: int) -> None:
        task_id = int(
            self.ok(
                "POST", "/api/tasks", json={"name": f"c{self.number}-r{round_}", "labels": [{"name": "car"}]}
            )["id"]
        )
        form = [(f"client_files[{i}]", (name, content)) for i, (name, content) in enumerate(self.files)]
        form += [("image_quality", (None, "70")), ("chunk_size", (None, "2"))]
        creation = make_request_id("create", "task", task_id)
        self.finished(self.started("POST", f"/api/tasks/{task_id}/data", creation, files=form))
        with self.record.lock:
            self.record.tasks[task_id] = len(self.files)
        label = self.ok("GET", "/api/labels", params={"task_id": task_id})["results"][0]["id"]
        job_id = self.ok("GET", "/api/jobs", params={"task_id": task_id})["results"][0]["id"]
        for save in range(3):
            points = [
                [float(self.number), float(round_), float(save), float(i + 10)] for i in range(save + 2)
            ]
            shapes = [
                {"type": "rectangle", "frame": i % FRAMES, "label_id": label, "points": p}
                for i, p in enumerate(points)
            ]
            body = {"version": 0, "tags": [], "shapes": shapes, "tracks": []}
            self.ok("PUT", f"/api/jobs/{job_id}/annotations", json=body)
            with self.record.lock:
                self.record.saves[job_id] = points
        export_id = make_request_id("export", "task", task_id, "dataset", FORMAT, self.user_id)
        export = self.started(
            "POST", f"/api/tasks/{task_id}/dataset/export", export_id,
            params={"format": FORMAT, "save_images": "false"},
        )  # fmt: skip
        self.finished(export)
        download = self.call("GET", f"/api/tasks/{task_id}/dataset/download", params={"rq_id": export})
        assert download.status_code == 200, download.text
        assert "annotations.xml" in zipfile.ZipFile(io.BytesIO(download.content)).namelist()
        with self.record.lock:
            self.record.exports.append(export)
        self.ok("GET", "/api/tasks", params={"page_size": 10, "sort": "-id"})
        self.ok("GET", f"/api/jobs/{job_id}/annotations")


def media(seed: int) -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(seed)
    files = []
    for index in range(FRAMES):
        ok, encoded = cv2.imencode(".jpg", rng.integers(0, 255, (480, 640, 3), dtype=np.uint8))
        assert ok
        files.append((f"frame_{index:03d}.jpg", encoded.tobytes()))
    return files


# --- the faults -------------------------------------------------------------------------------


def kill_worker_mid_creation(cluster: Cluster, deadline: float) -> set[str]:
    """Freeze the import worker while it creates a task, make sure it still is, kill it with
    SIGKILL and start it again; returns the requests it was running."""
    worker = cluster.workers[0]
    while time.monotonic() < deadline:
        if cluster.sql("SELECT id FROM requests WHERE queue = 'import' AND status = 'started'"):
            worker.send_signal(19)  # SIGSTOP
            running = {
                row[0]
                for row in cluster.sql(
                    "SELECT id FROM requests WHERE queue = 'import' AND status = 'started'"
                )
            }
            if running:
                cluster.kill(worker)
                cluster.start_worker(0)
                return running
            worker.send_signal(18)  # SIGCONT: it finished in between
        time.sleep(0.02)
    raise AssertionError(f"no task creation was seen running\n{cluster.logs()}")


def s3_keys(cluster: Cluster, prefix: str) -> list[str]:
    keys: list[str] = []
    token = ""
    while True:
        params = {"list-type": "2", "prefix": prefix, **({"continuation-token": token} if token else {})}
        response = httpx.get(
            f"{cluster.s3_endpoint}/{cluster.bucket}", params=params, headers={"Authorization": S3_AUTH}
        )
        response.raise_for_status()
        text = response.text
        keys += [part.split("</Key>")[0] for part in text.split("<Key>")[1:]]
        if "<NextContinuationToken>" not in text:
            return keys
        token = text.split("<NextContinuationToken>")[1].split("</NextContinuationToken>")[0]


def test_a_worker_and_an_api_process_killed_under_load(cluster: Cluster) -> None:
    record = Record()
    stop = threading.Event()
    # signed in once, as cvat-sdk does (a new login revokes the user's previous token): whichever
    # server gets a call checks the token
    login = httpx.post(f"{cluster.url}/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    assert login.status_code == 200, login.text
    clients = [Client(cluster, number, record, stop, login.json()["key"]) for number in range(CLIENTS)]
    threads = [threading.Thread(target=client.run, daemon=True) for client in clients]
    began = time.monotonic()
    for thread in threads:
        thread.start()

    time.sleep(WORKER_KILL)
    # on a busy machine the first creations reach the worker late: the API kill waits for it
    rerun = kill_worker_mid_creation(cluster, began + LOAD - 8)
    time.sleep(max(1.0, began + API_KILL - time.monotonic()))
    api_killed = time.monotonic()
    cluster.kill(cluster.api[0])
    time.sleep(1)
    cluster.start_api(0)
    time.sleep(max(0.0, began + LOAD - time.monotonic()))
    stop.set()
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive(), cluster.logs()
    assert record.errors == [], (record.errors, cluster.logs())

    # the load was real: every client went round several times, the killed worker's request included
    assert len(record.tasks) >= CLIENTS and len(record.exports) >= CLIENTS, record
    assert rerun and rerun <= {make_request_id("create", "task", task) for task in record.tasks}

    # only calls in flight on the killed API process failed, each of them once, and were repeated
    # (a call sent on a connection nginx had not yet seen close counts as in flight)
    assert len(record.failures) <= CLIENTS, record.failures
    for failure in record.failures:
        assert failure.started <= api_killed + 0.5 and failure.ended >= api_killed, (failure, api_killed)

    # every request accepted finished; only those the dead worker ran were run twice
    rows = cluster.sql("SELECT id, status, attempts FROM requests")
    assert [row for row in rows if row[1] != "finished"] == [], cluster.logs()
    assert {row[0] for row in rows if int(row[2]) > 1} == rerun
    assert set(record.exports) <= {row[0] for row in rows}

    # every acknowledged save is there, as saved last
    for job_id, points in record.saves.items():
        shapes = httpx.get(f"{cluster.url}/api/jobs/{job_id}/annotations", auth=ADMIN).json()["shapes"]
        assert sorted(s["points"] for s in shapes) == sorted(points), job_id

    # the media was made once per task: no orphan, no leftover upload, every chunk there
    for task_id, frames in record.tasks.items():
        assert httpx.get(f"{cluster.url}/api/tasks/{task_id}", auth=ADMIN).json()["size"] == frames
    data_ids = {row[0] for row in cluster.sql("SELECT data_id FROM tasks WHERE data_id IS NOT NULL")}
    stored = {key.split("/")[1] for key in s3_keys(cluster, "data/")}
    assert stored == data_ids
    for data_id in data_ids:
        chunks = [k for k in s3_keys(cluster, f"data/{data_id}/chunks/") if k.endswith(".zip")]
        assert len(chunks) == 2 * (FRAMES // 2), (data_id, chunks)  # two qualities
    assert s3_keys(cluster, "uploads/") == []
    exported = s3_keys(cluster, "exports/")
    assert all(key.endswith(".zip") for key in exported), exported
    scratch = Path(cluster.env["ANNOTA_DATA_DIR"]) / "tmp"
    assert not scratch.exists() or list(scratch.iterdir()) == []
