"""What a background job made before it became part of the job's result, and how to remove it.

A job notes each such thing with ``JobContext.leave(kind, ref)`` before making it. When its worker
dies, the next attempt removes it before running the job again, and so does the end of the request
when no attempt finishes; a finished request keeps it (it is the result). Without this, the
leftovers of a killed job would wait a day for housekeeping.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete, exists, select

from annota.core.errors import ConfigError

if TYPE_CHECKING:
    from annota.core.queue import JobContext

#: an object in the storage backend, or every object under a prefix ending in ``/``
STORAGE = "storage"
#: a file or directory in the data directory's ``tmp/`` (scratch space of a job), relative to it
SCRATCH = "scratch"
#: a ``data`` row (a task's media in the making) and its objects, unless a task points at it
DATA = "data"
#: what an unfinished write of one object key left (``StorageBackend.abandon_writes``); a
#: finished object under that key stays, whoever wrote it
PARTIAL = "partial"


async def _remove_storage(context: JobContext, ref: str) -> None:
    if ref.endswith("/"):
        await context.storage.delete_prefix(ref)
    else:
        await context.storage.delete(ref)


def _scratch_path(context: JobContext, ref: str) -> Path:
    root = (Path(context.settings.data_dir) / "tmp").resolve()
    path = (root / ref).resolve()
    if not path.is_relative_to(root) or path == root:
        raise ConfigError(f"scratch leftover {ref!r} is not inside {root}")
    return path


async def _remove_scratch(context: JobContext, ref: str) -> None:
    path = _scratch_path(context, ref)
    if path.is_dir():
        await asyncio.to_thread(shutil.rmtree, path, True)
    else:
        path.unlink(missing_ok=True)


async def _remove_data(context: JobContext, ref: str) -> None:
    from annota.core.db.tables import Data, Task
    from annota.core.media import layout

    data_id = int(ref)
    async with context.sessionmaker.begin() as session:
        if await session.scalar(select(exists().where(Task.data_id == data_id))):
            return  # a task uses it after all
        await session.execute(delete(Data).where(Data.id == data_id))
    await context.storage.delete_prefix(layout.data_prefix(data_id))


async def _remove_partial(context: JobContext, ref: str) -> None:
    await context.storage.abandon_writes(ref)


REMOVERS: dict[str, Callable[[JobContext, str], Awaitable[None]]] = {
    STORAGE: _remove_storage,
    SCRATCH: _remove_scratch,
    DATA: _remove_data,
    PARTIAL: _remove_partial,
}


async def remove(context: JobContext, kind: str, ref: str) -> None:
    """Remove one leftover; removing what is already gone does nothing."""
    try:
        remover = REMOVERS[kind]
    except KeyError:
        raise ConfigError(f"unknown kind of leftover {kind!r}; the kinds are {', '.join(REMOVERS)}") from None
    await remover(context, ref)
