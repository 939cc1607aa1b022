"""Quality settings: one row per task and per project, made with CVAT 2.73's defaults the first
time anyone asks for them, read and changed through the API."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from sqlalchemy import Select, and_, exists, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.db.tables import Project, QualitySettings, Task
from annota.core.db.types import utcnow
from annota.core.errors import NotFound, ValidationError
from annota.core.schemas.quality import QualitySettingsRead, QualitySettingsUpdate
from annota.core.services.listing import ListSpec

#: CVAT 2.73's defaults (its comparison parameters)
DEFAULTS: dict[str, Any] = {
    "inherit": True, "job_filter": "", "target_metric": "accuracy", "target_metric_threshold": 0.7,
    "max_validations_per_job": 0, "iou_threshold": 0.4, "oks_sigma": 0.09,
    "point_size_base": "group_bbox_size", "line_thickness": 0.01, "low_overlap_threshold": 0.8,
    "compare_line_orientation": True, "line_orientation_threshold": 0.1, "compare_groups": True,
    "group_match_threshold": 0.5, "check_covered_annotations": True, "object_visibility_threshold": 0.05,
    "panoptic_comparison": True, "compare_attributes": True, "empty_is_annotated": False,
}  # fmt: skip
WRITE_ONCE = ("task_id", "project_id")
PARENT_TYPES = ("task", "project")

LIST_SPEC = ListSpec(
    fields={
        "id": QualitySettings.id,
        "task_id": QualitySettings.task_id,
        "project_id": QualitySettings.project_id,
        "inherit": QualitySettings.inherit,
        "created_date": QualitySettings.created_date,
        "updated_date": QualitySettings.updated_date,
    },
    equality=("inherit",),
    sortable=("id", "task_id", "project_id", "inherit", "created_date", "updated_date"),
    default_sort="id",
    integer_fields=frozenset({"id", "task_id", "project_id"}),
    boolean_fields=frozenset({"inherit"}),
)


def _insert(session: AsyncSession, parent: str, ids: Select[Any]) -> Any:
    """Settings with the defaults for each id ``ids`` selects that has none yet (concurrent
    requests may race to make the same row: the loser makes nothing)."""
    column = QualitySettings.task_id if parent == "task" else QualitySettings.project_id
    now = utcnow()
    values = {**DEFAULTS, "created_date": now, "updated_date": now}
    source = ids.where(~exists().where(column == ids.selected_columns[0])).add_columns(
        *(literal(value).label(name) for name, value in values.items())
    )
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    target = [f"{parent}_id", *values]
    return dialect.insert(QualitySettings).from_select(target, source).on_conflict_do_nothing()


async def ensure(session: AsyncSession, *, task_id: int | None = None, project_id: int | None = None) -> None:
    """Make the missing settings of one task, of one project and its tasks, or of everything."""
    tasks = select(Task.id)
    projects = select(Project.id)
    if task_id is not None:
        await session.execute(_insert(session, "task", tasks.where(Task.id == task_id)))
        return
    if project_id is not None:
        tasks = tasks.where(Task.project_id == project_id)
        projects = projects.where(Project.id == project_id)
    await session.execute(_insert(session, "task", tasks))
    await session.execute(_insert(session, "project", projects))


def list_query(project_id: int | None, parent_type: str | None) -> Select[Any]:
    query = select(QualitySettings)
    if project_id is not None:
        in_project = select(Task.id).where(Task.project_id == project_id)
        query = query.where(
            (QualitySettings.project_id == project_id) | QualitySettings.task_id.in_(in_project)
        )
    if parent_type is not None:
        if parent_type not in PARENT_TYPES:
            raise ValidationError.for_field(
                "parent_type", f"Must be one of {', '.join(PARENT_TYPES)}, got {parent_type!r}."
            )
        column = QualitySettings.task_id if parent_type == "task" else QualitySettings.project_id
        query = query.where(and_(column.is_not(None)))
    return query


async def get(session: AsyncSession, settings_id: int) -> QualitySettings:
    row = await session.get(QualitySettings, settings_id)
    if row is None:
        raise NotFound(f"Quality settings {settings_id} not found.")
    return row


def read(row: QualitySettings) -> QualitySettingsRead:
    fields = {name: getattr(row, name) for name in QualitySettingsRead.__struct_fields__}
    return QualitySettingsRead(**fields)


def _check_job_filter(value: str) -> None:
    if not value:
        return
    try:
        rule = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValidationError.for_field(
            "job_filter", f"Invalid JSON: {exc.msg} at column {exc.colno}."
        ) from None
    if not isinstance(rule, dict) or len(rule) != 1:
        raise ValidationError.for_field(
            "job_filter", "Expected a JSON-logic expression: an object of one operator."
        )


async def update(
    session: AsyncSession, row: QualitySettings, change: QualitySettingsUpdate
) -> QualitySettings:
    values = {k: v for k, v in msgspec.structs.asdict(change).items() if v is not msgspec.UNSET}
    for name in WRITE_ONCE:
        if name in values and values.pop(name) != getattr(row, name):
            raise ValidationError.for_field(name, "This field cannot be changed.")
    if "job_filter" in values:
        _check_job_filter(values["job_filter"])
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_date = utcnow()
    parent = (
        await session.get(Task, row.task_id) if row.task_id else await session.get(Project, row.project_id)
    )
    if parent is not None:
        parent.updated_date = row.updated_date
    await session.flush()
    return row


__all__ = ["DEFAULTS", "LIST_SPEC", "PARENT_TYPES", "ensure", "get", "list_query", "read", "update"]
