"""Labels of a project or a task: CVAT's create/update rules, skeletons and attribute specs."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.schemas.labels import LabelWrite


async def apply_changes(
    session: AsyncSession,
    changes: Sequence[LabelWrite],
    *,
    project_id: int | None = None,
    task_id: int | None = None,
    creating: bool,
) -> None:
    """Create, update or delete (``deleted: true``) the labels of one project or task."""
    if not changes:
        return
    raise NotImplementedError("filled in by the labels work")
