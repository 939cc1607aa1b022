"""Suite-wide fixtures: every API test runs against SQLite and PostgreSQL.

PostgreSQL (and Redis) are real servers on loopback. Outside CI a missing server skips the tests
that need it; with ``CI=true`` it fails them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from annota.testing.databases import create_postgres_database, drop_postgres_database, truncate_postgres
from tests.cloud_emulators import azurite, fake_gcs
from tests.media import make_media_task
from tests.moto_s3 import moto
from tests.plugin_site import PluginSite

__all__ = ["azurite", "fake_gcs", "make_media_task", "moto"]

POSTGRES_SERVER_URL = os.environ.get(
    "ANNOTA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("ANNOTA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def service_up(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if service_up(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if IN_CI:
        pytest.fail(message + " (required in CI)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """One migrated PostgreSQL database for the session; tests truncate it."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    url = create_postgres_database(POSTGRES_SERVER_URL)
    yield url
    drop_postgres_database(POSTGRES_SERVER_URL, url)


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def annota_database_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        sqlite_url: str = request.getfixturevalue("sqlite_database_url")
        return sqlite_url
    url: str = request.getfixturevalue("postgres_database")
    truncate_postgres(url)
    return url


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginSite]:
    """A directory of installed distributions, first on ``sys.path`` for one test."""
    site = PluginSite(tmp_path / "site")
    site.activate(monkeypatch)
    yield site
    site.forget_modules()
