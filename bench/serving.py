"""annota served by uvicorn in a thread of the benchmark's own process, on a free loopback port."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from annota.runtime.app import create_app
from annota.runtime.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The base URL of a running server until the block ends."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


POSTGRES_SERVER_URL = os.environ.get(
    "ANNOTA_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def bench_database(kind: str) -> Iterator[tuple[str, Path]]:
    """A migrated, empty database (``sqlite`` or ``postgres``) and a scratch directory, removed
    afterwards: ``(database_url, directory)``."""
    from annota.testing.databases import (
        create_postgres_database,
        drop_postgres_database,
        migrated_sqlite_template,
    )

    with tempfile.TemporaryDirectory() as tmp:
        if kind == "postgres":
            database_url = create_postgres_database(POSTGRES_SERVER_URL)
        else:
            database_url = f"sqlite:///{migrated_sqlite_template(Path(tmp))}"
        try:
            yield database_url, Path(tmp)
        finally:
            if kind == "postgres":
                drop_postgres_database(POSTGRES_SERVER_URL, database_url)


def add_admin(settings: Settings, username: str, password: str) -> None:
    """Create an administrator in the (migrated) database of ``settings``."""
    import asyncio

    from annota.core.services import users as user_service
    from annota.runtime.state import close_state, open_state

    async def create() -> None:
        state = await open_state(settings)
        try:
            async with state.sessionmaker.begin() as session:
                await user_service.create_user(session, username, password, privilege="admin")
        finally:
            await close_state(state)

    asyncio.run(create())
