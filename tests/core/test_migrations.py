"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from annota.core.db import migrate
from annota.core.db.engine import create_engine
from annota.core.db.tables import Base


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
