"""pytest fixtures for annota and its plugins (registered through the ``pytest11`` entry point).

A plugin author's test::

    import pytest
    from my_plugin import plugin

    @pytest.fixture
    def annota_plugins():
        return {"my-plugin": plugin}

    def test_my_route(admin_client):
        assert admin_client.get("/api/my-route").status_code == 200

Fixtures: ``annota_settings``, ``annota_plugins`` (extra plugins to register, by name),
``annota_app``, ``annota_client`` (anonymous), ``admin_client`` and ``user_client`` (signed in
with HTTP Basic), ``make_user`` (a factory) and ``run_async`` (run a coroutine on the app's loop).
The database is a fresh SQLite file per test unless ``annota_database_url`` is overridden.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from annota.runtime.app import create_app
from annota.runtime.settings import Settings, finalize
from annota.testing.databases import migrated_sqlite_template

PASSWORD = "annota-test-password"


@pytest.fixture(scope="session")
def _annota_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_sqlite_template(tmp_path_factory.mktemp("annota-template"))


@pytest.fixture
def sqlite_database_url(tmp_path: Path, _annota_sqlite_template: Path) -> str:
    """A migrated, empty SQLite database for one test."""
    target = tmp_path / "annota.db"
    shutil.copyfile(_annota_sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def annota_database_url(sqlite_database_url: str) -> str:
    """A migrated, empty database for one test (SQLite by default)."""
    return sqlite_database_url


@pytest.fixture
def annota_plugins() -> dict[str, Any]:
    """Extra plugin objects to register, by name; override in your tests."""
    return {}


@pytest.fixture
def annota_settings(tmp_path: Path, annota_database_url: str) -> Settings:
    data_dir = tmp_path / "data"
    return finalize(
        Settings(data_dir=str(data_dir), database_url=annota_database_url, secret_key="test-secret")
    )


@pytest.fixture
def annota_app(annota_settings: Settings, annota_plugins: dict[str, Any]) -> Any:
    return create_app(annota_settings, extra_plugins=annota_plugins)


@pytest.fixture
def annota_client(annota_app: Any) -> Iterator[TestClient]:
    """An anonymous in-process client; the app's lifespan runs around the test."""
    with TestClient(annota_app, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def run_async(annota_client: TestClient) -> Callable[..., Any]:
    """Run a coroutine function on the app's event loop: ``run_async(fn, *args)``."""

    def run(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        assert annota_client.portal is not None
        return annota_client.portal.call(lambda: function(*args, **kwargs))

    return run


@pytest.fixture
def make_user(annota_client: TestClient, run_async: Callable[..., Any]) -> Callable[..., TestClient]:
    """``make_user("alice", privilege="user", superuser=False)`` → a client signed in as alice."""
    from annota.core.services import users as user_service

    def make(
        username: str, *, privilege: str | None = "user", superuser: bool = False, email: str = ""
    ) -> TestClient:
        async def create() -> int:
            async with annota_client.app.state.annota.sessionmaker.begin() as session:  # type: ignore[attr-defined]
                user = await user_service.create_user(
                    session, username, PASSWORD, email=email, privilege=privilege, superuser=superuser
                )
                return user.id

        user_id = run_async(create)
        client = TestClient(annota_client.app, base_url="http://testserver")
        client.auth = (username, PASSWORD)
        client.user_id = user_id  # type: ignore[attr-defined]
        client.username = username  # type: ignore[attr-defined]
        return client

    return make


@pytest.fixture
def admin_client(make_user: Callable[..., TestClient]) -> TestClient:
    return make_user("admin", superuser=True)


@pytest.fixture
def user_client(make_user: Callable[..., TestClient]) -> TestClient:
    return make_user("user1")
