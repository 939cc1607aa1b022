"""The ``data`` row a task gets as soon as its media upload starts, as in CVAT.

CVAT clients read a task's ``data`` id to tell a task whose upload has begun from a bare one, so
the row exists from the first upload request on; the media itself is written into it only by the
creation job. A refused, failed or abandoned upload removes the row again: a task without media
keeps no ``data`` row.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.db.tables import Data, Task


def is_pending(task: Task) -> bool:
    """Whether the task has a data row but no media in it yet (its upload or creation is under way)."""
    return task.data_id is not None and not task.media_type


async def start(session: AsyncSession, task: Task) -> int:
    """The id of the task's data row, made now if its upload had not started yet."""
    if task.data_id is None:
        data = Data()
        session.add(data)
        await session.flush()
        task.data_id = data.id
        await session.flush()
    return task.data_id


async def forget(session: AsyncSession, task_id: int) -> int | None:
    """Unlink and delete the task's data row while it holds no media; returns its id, if any.
    The caller removes the row's objects from storage once the transaction is committed."""
    task = await session.get(Task, task_id, with_for_update=True)
    if task is None or not is_pending(task):
        return None
    data_id = task.data_id
    task.data_id = None
    await session.flush()
    await session.execute(delete(Data).where(Data.id == data_id))
    return data_id


__all__ = ["forget", "is_pending", "start"]
