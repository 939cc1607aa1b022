"""Fixtures for API tests: media, segments and jobs without uploading files, and SQL counting."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import event

from annota.core.db.tables import Data, Job, Segment, Task
from tests.media import make_jpeg, make_media_task, wait_for_request

__all__ = ["make_jpeg", "make_media_task", "wait_for_request"]


@pytest.fixture
def add_jobs(annota_client: Any, run_async: Callable[..., Any]) -> Callable[..., list[int]]:
    """``add_jobs(task_id, [(0, 4), (5, 9)], assignee_id=None)`` → job ids.

    Attaches an image Data record to the task (on first use) and one segment with one annotation
    job per frame range, the rows the media pipeline writes when a task's data is processed.
    """

    def add(
        task_id: int,
        ranges: Sequence[tuple[int, int]] = ((0, 4),),
        *,
        assignee_id: int | None = None,
        chunk_size: int = 36,
    ) -> list[int]:
        async def write() -> list[int]:
            async with annota_client.app.state.annota.sessionmaker.begin() as session:
                task = await session.get(Task, task_id)
                assert task is not None
                if task.data_id is None:
                    size = max(stop for _, stop in ranges) + 1
                    data = Data(size=size, stop_frame=size - 1, chunk_size=chunk_size, image_quality=70,
                                media_kind="images")  # fmt: skip
                    session.add(data)
                    await session.flush()
                    task.data_id, task.media_type, task.mode = data.id, "image", "annotation"
                jobs = []
                for start, stop in ranges:
                    segment = Segment(task_id=task_id, start_frame=start, stop_frame=stop)
                    session.add(segment)
                    await session.flush()
                    job = Job(segment_id=segment.id, task_id=task_id, assignee_id=assignee_id)
                    session.add(job)
                    jobs.append(job)
                await session.flush()
                return [job.id for job in jobs]

        result: list[int] = run_async(write)
        return result

    return add


@pytest.fixture
def count_queries(annota_client: Any) -> Callable[[Callable[[], Any]], int]:
    """``count_queries(lambda: client.get(...))`` → how many SQL statements the call ran.

    Statements of the server's own background tasks (periodic jobs, event dispatch: their tasks are
    named ``annota-…``) running meanwhile are not the call's and are not counted."""

    def count(call: Callable[[], Any]) -> int:
        engine = annota_client.app.state.annota.engine.sync_engine
        statements: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            task = asyncio.current_task()
            if task is None or not task.get_name().startswith("annota-"):
                statements.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            call()
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return len(statements)

    return count
