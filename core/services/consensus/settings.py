"""Consensus settings: one row per task with consensus replicas, as in CVAT, made with its default
the first time anyone asks for them."""

from __future__ import annotations

import msgspec
from sqlalchemy import exists, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.db.tables import ConsensusSettings, Task
from annota.core.db.types import utcnow
from annota.core.errors import NotFound
from annota.core.schemas.consensus import ConsensusSettingsRead, ConsensusSettingsUpdate
from annota.core.services.listing import ListSpec

#: CVAT's default: the quality comparison's IoU threshold
DEFAULT_IOU_THRESHOLD = 0.4

LIST_SPEC = ListSpec(
    fields={"id": ConsensusSettings.id, "task_id": ConsensusSettings.task_id},
    equality=("task_id",),
    sortable=("id",),
    default_sort="id",
    integer_fields=frozenset({"id", "task_id"}),
)


async def ensure(session: AsyncSession, task_id: int | None = None) -> None:
    """Make the missing settings of the tasks with consensus replicas (of one task, if named)."""
    tasks = select(Task.id, literal(DEFAULT_IOU_THRESHOLD)).where(
        Task.consensus_replicas > 0, ~exists().where(ConsensusSettings.task_id == Task.id)
    )
    if task_id is not None:
        tasks = tasks.where(Task.id == task_id)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(ConsensusSettings).from_select(["task_id", "iou_threshold"], tasks)
    await session.execute(statement.on_conflict_do_nothing())


async def get(session: AsyncSession, settings_id: int) -> ConsensusSettings:
    row = await session.get(ConsensusSettings, settings_id)
    if row is None:
        raise NotFound(f"Consensus settings {settings_id} not found.")
    return row


def read(row: ConsensusSettings) -> ConsensusSettingsRead:
    return ConsensusSettingsRead(id=row.id, task_id=row.task_id, iou_threshold=row.iou_threshold)


async def update(session: AsyncSession, row: ConsensusSettings, change: ConsensusSettingsUpdate) -> None:
    if change.iou_threshold is not msgspec.UNSET:
        row.iou_threshold = change.iou_threshold
    task = await session.get(Task, row.task_id)
    if task is not None:
        task.updated_date = utcnow()
    await session.flush()


__all__ = ["DEFAULT_IOU_THRESHOLD", "LIST_SPEC", "ensure", "get", "read", "update"]
