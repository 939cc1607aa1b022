"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import delete, func, insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from annota.core.db import migrate
from annota.core.db.engine import create_engine
from annota.core.db.tables import Base, Project, Webhook, WebhookDelivery, WebhookJob
from annota.testing.databases import (
    create_postgres_database,
    drop_postgres_database,
    migrated_sqlite_template,
)
from tests.conftest import POSTGRES_SERVER_URL, require_service


def _differences(url: str) -> list[Any]:
    async def go() -> list[Any]:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
                )
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_migrated_schema_matches_the_models(annota_database_url: str) -> None:
    assert _differences(annota_database_url) == []


def test_migrated_database_is_up_to_date(annota_database_url: str) -> None:
    async def go() -> bool:
        engine = create_engine(annota_database_url)
        try:
            return await migrate.is_up_to_date(engine)
        finally:
            await engine.dispose()

    assert asyncio.run(go())


def test_sqlite_never_reuses_ids(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'ids.db'}"

    async def go() -> tuple[int, int]:
        engine = create_engine(url)
        await migrate.upgrade(engine)
        async with engine.begin() as connection:
            insert = text(
                "INSERT INTO data (size, image_quality, start_frame, stop_frame, frame_filter, "
                "compressed_chunk_type, original_chunk_type, storage_method, storage, sorting_method, "
                "deleted_frames, media_kind, chunks_updated_date, created_date) VALUES "
                "(0, 70, 0, 0, '', 'imageset', 'imageset', 'file_system', 'local', 'natural', '[]', '', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) RETURNING id"
            )
            first = (await connection.execute(insert)).scalar_one()
            await connection.execute(text("DELETE FROM data"))
            second = (await connection.execute(insert)).scalar_one()
        await engine.dispose()
        return first, second

    first, second = asyncio.run(go())
    assert second == first + 1


# --- 0004: webhooks outlive their project or organization ---------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def own_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database of this test's own, free to be migrated down and up again."""
    if request.param == "sqlite":
        yield f"sqlite:///{migrated_sqlite_template(tmp_path)}"
        return
    require_service("PostgreSQL", "127.0.0.1", 5432)
    url = create_postgres_database(POSTGRES_SERVER_URL)
    yield url
    drop_postgres_database(POSTGRES_SERVER_URL, url)


async def _downgrade(engine: AsyncEngine, revision: str) -> None:
    config = migrate.alembic_config()

    def run(connection: Any) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


def _webhook(project_id: int | None = None) -> Any:
    return (
        insert(Webhook)
        .values(
            target_url="http://example.com/hook", type="project" if project_id else "server",
            events="[]", project_id=project_id,
        )
        .returning(Webhook.id)
    )  # fmt: skip


def _delivery(webhook_id: int) -> Any:
    return insert(WebhookDelivery).values(
        webhook_id=webhook_id, event="ping", delivery_uuid=str(uuid.uuid4())
    )


def _job(webhook_id: int) -> Any:
    return insert(WebhookJob).values(
        webhook_id=webhook_id, event="create:task", delivery_uuid=str(uuid.uuid4()), payload="{}"
    )


def test_webhooks_outlive_their_project_and_migrate_back(own_database_url: str) -> None:
    """Upgrading keeps every webhook with its deliveries and queued jobs; a webhook then outlives its
    project; downgrading drops such orphans, keeps the rest and cascades deletions again."""

    async def counts(connection: Any) -> tuple[list[int], int, int]:
        webhooks = list(await connection.scalars(select(Webhook.id).order_by(Webhook.id)))
        deliveries = await connection.scalar(select(func.count()).select_from(WebhookDelivery))
        jobs = await connection.scalar(select(func.count()).select_from(WebhookJob))
        return webhooks, deliveries, jobs

    async def go() -> None:
        engine = create_engine(own_database_url)
        try:
            await _downgrade(engine, "0003")
            async with engine.begin() as connection:
                project_id = await connection.scalar(insert(Project).values(name="p").returning(Project.id))
                server = await connection.scalar(_webhook())
                scoped = await connection.scalar(_webhook(project_id))
                deleted = await connection.scalar(_webhook())
                await connection.execute(delete(Webhook).where(Webhook.id == deleted))
                for webhook_id in (server, scoped):
                    await connection.execute(_delivery(webhook_id))
                    await connection.execute(_job(webhook_id))

            await migrate.upgrade(engine)
            async with engine.begin() as connection:
                assert await counts(connection) == ([server, scoped], 2, 2)
                await connection.execute(delete(Project).where(Project.id == project_id))
                # no cascade any more: the webhook outlives its project
                assert await counts(connection) == ([server, scoped], 2, 2)
            async with engine.connect() as connection:
                differences = await connection.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
                )
            assert differences == []

            await _downgrade(engine, "0003")
            async with engine.begin() as connection:
                # the orphan went, with its delivery and job
                assert await counts(connection) == ([server], 1, 1)
                other = await connection.scalar(insert(Project).values(name="q").returning(Project.id))
                cascaded = await connection.scalar(_webhook(other))
                # ids of deleted webhooks are not handed out again
                assert cascaded > deleted
                await connection.execute(delete(Project).where(Project.id == other))
                assert await counts(connection) == ([server], 1, 1)
            await migrate.upgrade(engine)
            assert await migrate.is_up_to_date(engine)
        finally:
            await engine.dispose()

    asyncio.run(go())


# --- 0005: review issues and comments -----------------------------------------------------------


def test_review_tables_migrate_down_and_up(own_database_url: str) -> None:
    """Downgrading past 0005 drops the issues and comments tables; upgrading brings them back as
    the models describe them."""

    async def tables(engine: AsyncEngine) -> set[str]:
        async with engine.connect() as connection:
            names: list[str] = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        return {name for name in names if name in ("issues", "comments")}

    async def go() -> None:
        engine = create_engine(own_database_url)
        try:
            assert await tables(engine) == {"issues", "comments"}
            await _downgrade(engine, "0004")
            assert await tables(engine) == set()
            await migrate.upgrade(engine)
            assert await tables(engine) == {"issues", "comments"}
            async with engine.connect() as connection:
                differences = await connection.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
                )
            assert differences == []
        finally:
            await engine.dispose()

    asyncio.run(go())


# --- 0009: projects and tasks point at storage rows ---------------------------------------------


def test_storage_settings_become_rows_and_migrate_back(own_database_url: str) -> None:
    """Upgrading turns each JSON storage setting into a ``storages`` row the project or task points
    at; downgrading writes the settings back as JSON."""
    setting = '{"location": "local", "cloud_storage_id": null}'

    async def go() -> None:
        engine = create_engine(own_database_url)
        try:
            await _downgrade(engine, "0008")
            async with engine.begin() as connection:
                await connection.execute(
                    text("INSERT INTO projects (name, bug_tracker, status, source_storage, created_date, "
                         "updated_date) VALUES ('p', '', 'annotation', :s, CURRENT_TIMESTAMP, "
                         "CURRENT_TIMESTAMP)"),
                    {"s": setting},
                )  # fmt: skip
            await migrate.upgrade(engine)
            async with engine.begin() as connection:
                row = (await connection.execute(text(
                    "SELECT projects.source_storage_id, projects.target_storage_id, storages.location, "
                    "storages.cloud_storage_id FROM projects "
                    "JOIN storages ON storages.id = projects.source_storage_id"
                ))).one()  # fmt: skip
                assert (row[1], row[2], row[3]) == (None, "local", None) and isinstance(row[0], int)
            await _downgrade(engine, "0008")
            async with engine.begin() as connection:
                values = (
                    await connection.execute(text("SELECT source_storage, target_storage FROM projects"))
                ).one()
                assert (values[0].replace(" ", ""), values[1]) == (setting.replace(" ", ""), None)
            await migrate.upgrade(engine)
            assert await migrate.is_up_to_date(engine)
        finally:
            await engine.dispose()

    asyncio.run(go())
