"""The whole API, fuzzed from its own ``/api/schema`` by schemathesis against a real server.

A server (``annota serve`` on SQLite, or on PostgreSQL) with an administrator and a project, a task
and its job, so that ids resolve; schemathesis then runs its examples, coverage, fuzzing and
stateful phases on every operation, deterministically and with a bounded number of cases. No
answer may be a server error, every status must be one the schema documents for the operation, and
every documented body must match its schema.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from annota.testing.databases import create_postgres_database, drop_postgres_database
from tests.conftest import POSTGRES_SERVER_URL, require_service
from tests.e2e.conftest import ADMIN, BIN, LiveServer, free_port
from tests.media import make_jpeg

pytestmark = pytest.mark.slow
CONFIG = Path(__file__).with_name("schemathesis.toml")

#: cases per operation and phase: enough to reach every parameter, few enough for ~1.5 min a run
MAX_EXAMPLES = "3"
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance"
#: operations that would lock the fuzzer itself out: changing or deleting the administrator
#: (whose id is one of the first any generator tries)
EXCLUDED = ("PATCH /api/users/{id}", "DELETE /api/users/{id}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def seeded_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANNOTA_")}
    env.update(ANNOTA_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path))
    server = LiveServer(f"http://127.0.0.1:{port}", port, env, tmp_path)
    database_url = None
    if request.param == "postgres":
        require_service("PostgreSQL", "127.0.0.1", 5432)
        database_url = create_postgres_database(POSTGRES_SERVER_URL)
        env["ANNOTA_DATABASE_URL"] = database_url
    server.annota("users", "create", "--username", ADMIN[0], "--password", ADMIN[1], "--superuser")
    server.start("serve", "--port", str(port))
    try:
        server.wait_ready(timeout=60)
        seed(server.url)
        yield server
    finally:
        server.stop()
        if database_url:
            drop_postgres_database(POSTGRES_SERVER_URL, database_url)


def seed(url: str) -> None:
    """A project with labels, a task in it and the task's job (from one uploaded image)."""
    with httpx.Client(base_url=url, auth=ADMIN, timeout=30) as client:
        project = client.post("/api/projects", json={"name": "fuzzed", "labels": [{"name": "car"}]})
        assert project.status_code == 201, project.text
        task = client.post("/api/tasks", json={"name": "fuzzed task", "project_id": project.json()["id"]})
        assert task.status_code == 201, task.text
        upload = client.post(
            f"/api/tasks/{task.json()['id']}/data",
            data={"image_quality": "70"},
            files={"client_files[0]": ("frame.jpg", make_jpeg(), "image/jpeg")},
        )
        assert upload.status_code == 202, upload.text
        deadline = time.monotonic() + 60
        while not client.get("/api/jobs").json()["count"]:
            assert time.monotonic() < deadline, "the seeded task got no job"
            time.sleep(0.2)


def test_no_server_error_and_every_status_documented(seeded_server: LiveServer, tmp_path: Path) -> None:
    excluded = [arg for name in EXCLUDED for arg in ("--exclude-name", name)]
    run = subprocess.run(
        [
            str(BIN / "schemathesis"), "--config-file", str(CONFIG), "run", f"{seeded_server.url}/api/schema",
            "--auth", f"{ADMIN[0]}:{ADMIN[1]}",
            "--phases", "examples,coverage,fuzzing,stateful",
            "--max-examples", MAX_EXAMPLES,
            "--generation-deterministic",
            "--generation-with-security-parameters", "false",
            "--checks", CHECKS, "--workers", "1", "--no-color", "--output-truncate", "true",
            *excluded,
        ],
        cwd=tmp_path, env=seeded_server.env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    report = run.stdout[run.stdout.find("FAILURES") :] if "FAILURES" in run.stdout else run.stdout[-5000:]
    assert run.returncode == 0, f"schemathesis found problems:\n{report}\n{run.stderr[-2000:]}"
