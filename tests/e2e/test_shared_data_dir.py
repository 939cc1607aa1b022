"""The ``local`` storage backend on a shared directory (an NFS/EFS mount in production): two
``annota serve`` processes and one ``annota worker`` share nothing but the data directory,
PostgreSQL and Redis. A task created through one server is processed by the worker, and its frames
and chunks are read through the other server."""

from __future__ import annotations

import io
import os
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from annota.testing.databases import drop_postgres_database
from tests.conftest import POSTGRES_SERVER_URL, REDIS_URL, require_service
from tests.e2e.conftest import ADMIN, LiveServer, _create_empty_postgres_database, free_port
from tests.media import make_jpeg

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

FILES = [(f"img_{i}.jpg", make_jpeg(64, 48, 30 * i)) for i in range(5)]


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    """Server A (the ``LiveServer``), the URL of server B, and one worker, all on one data dir."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    require_service("Redis", "127.0.0.1", 6379)

    port_a, port_b = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANNOTA_")}
    database_url = _create_empty_postgres_database()
    env.update(
        ANNOTA_DATA_DIR=str(tmp_path / "shared-mount"),
        ANNOTA_DATABASE_URL=database_url.replace("postgresql://", "postgresql+psycopg://", 1),
        ANNOTA_REDIS_URL=REDIS_URL,
        # a queue namespace of its own, so no other test's worker takes these jobs
        ANNOTA_QUEUE_PREFIX=f"efs-{uuid.uuid4().hex[:8]}",
        HOME=str(tmp_path),
    )
    server = LiveServer(f"http://127.0.0.1:{port_a}", port_a, env, tmp_path)
    url_b = f"http://127.0.0.1:{port_b}"
    try:
        server.annota("migrate")
        server.annota("users", "create", "--username", ADMIN[0], "--password", ADMIN[1], "--superuser")
        server.start("serve", "--port", str(port_a))
        server.start("serve", "--port", str(port_b))
        server.start("worker")
        # three processes importing everything at once on a small machine take a while
        server.wait_ready(timeout=90)
        LiveServer(url_b, port_b, env, tmp_path, server.processes).wait_ready(timeout=60)
        yield server, url_b
    finally:
        server.stop()
        drop_postgres_database(POSTGRES_SERVER_URL, database_url)


def test_two_servers_and_a_worker_share_one_data_directory(shared: tuple[LiveServer, str]) -> None:
    server, url_b = shared
    a = httpx.Client(base_url=server.url, auth=ADMIN, timeout=30)
    b = httpx.Client(base_url=url_b, auth=ADMIN, timeout=30)

    created = a.post("/api/tasks", json={"name": "on the shared mount", "labels": [{"name": "car"}]})
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    files = [(f"client_files[{i}]", (name, content)) for i, (name, content) in enumerate(FILES)]
    upload = a.post(
        f"/api/tasks/{task_id}/data", data={"image_quality": "70", "chunk_size": "2"}, files=files
    )
    assert upload.status_code == 202, upload.text
    rq_id = upload.json()["rq_id"]

    # server B follows the request that server A queued and the worker runs
    deadline = time.monotonic() + 40
    while (request := b.get(f"/api/requests/{rq_id}").json())["status"] not in ("finished", "failed"):
        assert time.monotonic() < deadline, request
        time.sleep(0.1)
    assert request["status"] == "finished", request["message"]

    # the media the worker wrote on the shared directory is served by server B (and A)
    for client in (b, a):
        for number in (0, 3):
            frame = client.get(f"/api/tasks/{task_id}/data?type=frame&number={number}&quality=original")
            assert frame.status_code == 200 and frame.content == FILES[number][1]
    chunk = b.get(f"/api/tasks/{task_id}/data?type=chunk&index=2&quality=compressed")
    assert chunk.status_code == 200
    with zipfile.ZipFile(io.BytesIO(chunk.content)) as archive:
        assert len(archive.namelist()) == 1
    assert b.get(f"/api/tasks/{task_id}").json()["size"] == len(FILES)

    # the job ran in the worker process, not in either server
    ran = f"request {rq_id}: job create_task_data started"
    assert ran in (server.data_dir / "worker-2.log").read_text()
    for log in ("serve-0.log", "serve-1.log"):
        assert ran not in (server.data_dir / log).read_text()
