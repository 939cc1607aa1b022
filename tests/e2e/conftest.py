"""Real servers for end-to-end tests: ``annota serve`` (and ``annota worker``) as subprocesses on
loopback, driven by the unmodified CVAT clients."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import pytest

from annota.testing.databases import drop_postgres_database
from tests.conftest import POSTGRES_SERVER_URL, REDIS_URL, require_service

ADMIN = ("admin", "e2e-admin-password")
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    port: int
    env: dict[str, str]
    data_dir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def annota(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "annota"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def cvat_cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The unmodified ``cvat-cli``, signed in as the administrator."""
        server = ["--server-host", "http://127.0.0.1", "--server-port", str(self.port)]
        return subprocess.run(
            [str(BIN / "cvat-cli"), *server, "--auth", f"{ADMIN[0]}:{ADMIN[1]}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
        )

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.data_dir / f"{args[0]}-{len(self.processes)}.log", "wb")
        process = subprocess.Popen(
            [str(BIN / "annota"), *args], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes.append(process)
        return process

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/server/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if any(p.poll() is not None for p in self.processes):
                break
            time.sleep(0.1)
        logs = "\n".join(path.read_text() for path in self.data_dir.glob("*.log"))
        raise RuntimeError(f"annota did not become ready:\n{logs}")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _create_empty_postgres_database() -> str:
    """A database with no schema yet, to exercise `annota migrate`."""
    import uuid

    name = f"annota_e2e_{uuid.uuid4().hex[:10]}"
    subprocess.run(
        ["psql", POSTGRES_SERVER_URL, "-q", "-c", f'CREATE DATABASE "{name}"'],
        check=True,
        capture_output=True,
    )
    return POSTGRES_SERVER_URL.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(
    params=["sqlite", pytest.param("postgres+redis", marks=[pytest.mark.postgres, pytest.mark.redis])]
)
def live_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    port = free_port()
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANNOTA_")}
    env.update(ANNOTA_DATA_DIR=str(data_dir), HOME=str(tmp_path))
    # @pytest.mark.annota_env(NAME="value"): settings a test's server starts with
    marker = request.node.get_closest_marker("annota_env")
    env.update(marker.kwargs if marker else {})
    server = LiveServer(f"http://127.0.0.1:{port}", port, env, tmp_path)
    database_url = None
    if request.param == "postgres+redis":
        require_service("PostgreSQL", "127.0.0.1", 5432)
        require_service("Redis", "127.0.0.1", 6379)
        database_url = _create_empty_postgres_database()
        env["ANNOTA_DATABASE_URL"] = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
        env["ANNOTA_REDIS_URL"] = REDIS_URL.rsplit("/", 1)[0] + "/7"
        refused = server.annota("serve", "--port", str(port), check=False)
        assert refused.returncode != 0 and "annota migrate" in refused.stderr
        server.annota("migrate")
    server.annota("users", "create", "--username", ADMIN[0], "--password", ADMIN[1], "--superuser")
    server.start("serve", "--port", str(port))
    if request.param == "postgres+redis":
        server.start("worker")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
        if database_url:
            drop_postgres_database(POSTGRES_SERVER_URL, database_url)
