"""Registration left unset is open only to clients on the server's own machine, and ``annota
serve`` closes it, saying so, when it listens on any other address. ``annota serve`` also sends no
server banner."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from annota.runtime.settings import Settings

BODY = {"username": "carol", "password1": "long enough pw", "password2": "long enough pw"}


def _client(app: object, server: str, client: str, **kwargs: object) -> TestClient:
    return TestClient(app, base_url=f"http://{server}", client=(client, 50000), **kwargs)  # type: ignore[arg-type]


def test_unset_registration_is_open_on_loopback_only(
    annota_client: TestClient, annota_settings: Settings
) -> None:
    assert annota_settings.allow_registration is None
    app = annota_client.app
    assert (
        _client(app, "203.0.113.7", "198.51.100.1").post("/api/auth/register", json=BODY).status_code == 403
    )
    # a loopback server address reached by another machine is not local either
    assert _client(app, "127.0.0.1", "198.51.100.1").post("/api/auth/register", json=BODY).status_code == 403
    # nor is a request relayed by a reverse proxy on this machine
    proxied = _client(app, "127.0.0.1", "127.0.0.1", headers={"X-Forwarded-For": "198.51.100.1"})
    response = proxied.post("/api/auth/register", json=BODY)
    assert response.status_code == 403 and "Registration is disabled" in response.json()["detail"]
    local = _client(app, "127.0.0.1", "127.0.0.1").post("/api/auth/register", json=BODY)
    assert local.status_code == 201, local.text
    ipv6 = _client(app, "[::1]", "::1").post("/api/auth/register", json={**BODY, "username": "davey"})
    assert ipv6.status_code == 201, ipv6.text


def test_explicit_settings_win(annota_client: TestClient, annota_settings: Settings) -> None:
    app = annota_client.app
    annota_settings.allow_registration = True
    assert (
        _client(app, "203.0.113.7", "198.51.100.1").post("/api/auth/register", json=BODY).status_code == 201
    )
    annota_settings.allow_registration = False
    response = _client(app, "127.0.0.1", "127.0.0.1").post(
        "/api/auth/register", json={**BODY, "username": "erin1"}
    )
    assert response.status_code == 403


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(tmp_path: Path, host: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], int]:
    port = _free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ANNOTA_")}
    environ.update(env or {})
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "annota.runtime.cli",
            "serve",
            "--host",
            host,
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "data"),
        ],  # fmt: skip
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, port


def _wait_started(process: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/server/health", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.2)


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    return output


@pytest.mark.parametrize(
    ("host", "env", "status", "line"),
    [
        (
            "127.0.0.1",
            {},
            201,
            "registration is open to clients on this machine only (the server listens on 127.0.0.1)",
        ),
        ("0.0.0.0", {}, 403, "registration is closed: the server listens on 0.0.0.0, not on loopback"),
        (
            "0.0.0.0",
            {"ANNOTA_ALLOW_REGISTRATION": "true"},
            201,
            "registration is open to anyone who reaches 0.0.0.0",
        ),
    ],
    ids=["loopback", "any-address", "enabled"],
)
def test_serve_says_at_start_up_whether_registration_is_open(
    tmp_path: Path, host: str, env: dict[str, str], status: int, line: str
) -> None:
    process, port = _serve(tmp_path, host, env)
    try:
        _wait_started(process, port)
        # reached over loopback in every case: only the listening address decides
        response = httpx.post(f"http://127.0.0.1:{port}/api/auth/register", json=BODY, timeout=30)
    finally:
        output = _stop(process)
    assert response.status_code == status, response.text
    assert line in output, output
    # no version banner (uvicorn's "server: uvicorn"), and the security headers on a real server too
    assert "server" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"
