"""Migrated template databases for tests: SQLite files and PostgreSQL databases on a server."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from sqlalchemy import text

from annota.core.db import migrate
from annota.core.db.engine import create_engine
from annota.core.db.tables import Base


def migrated_sqlite_template(directory: Path) -> Path:
    path = directory / "template.db"

    async def go() -> None:
        engine = create_engine(f"sqlite:///{path}")
        await migrate.upgrade(engine)
        await engine.dispose()

    asyncio.run(go())
    return path


def create_postgres_database(server_url: str) -> str:
    """Create a uniquely named, migrated database on the server; returns its URL."""
    name = f"annota_test_{uuid.uuid4().hex[:12]}"

    async def go() -> None:
        admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
        engine = create_engine(_with_database(server_url, name))
        await migrate.upgrade(engine)
        await engine.dispose()

    asyncio.run(go())
    return _with_database(server_url, name)


def drop_postgres_database(server_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]

    async def go() -> None:
        admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()

    asyncio.run(go())


def truncate_postgres(url: str) -> None:
    """Empty every table and restart ids, keeping the schema (fast per-test isolation)."""
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)

    async def go() -> None:
        engine = create_engine(url)
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await engine.dispose()

    asyncio.run(go())


def _with_database(server_url: str, name: str) -> str:
    return server_url.rsplit("/", 1)[0] + "/" + name
