"""Labels of projects and tasks: reading, listing, and the per-label endpoints' rules.

A task inside a project uses the project's labels; a task outside one has its own. Skeleton
labels carry their elements as sublabels, read nested in their skeleton.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from annota.core.access import FilterFields
from annota.core.db.tables import AttributeSpec, Job, Label, Project, Task
from annota.core.db.types import utcnow
from annota.core.errors import NotFound, ValidationError
from annota.core.schemas.labels import AttributeRead, LabelRead, LabelUpdate, LabelWrite, SublabelRead
from annota.core.services import attribute_specs
from annota.core.services.label_changes import (
    PALETTE,
    SKELETON,
    apply_changes,
    check_task_may_have_labels,
    owner_clause,
    pick_color,
)
from annota.core.services.listing import ListSpec


def task_labels_owner(task: Task) -> tuple[int | None, int | None]:
    """``(project_id, task_id)`` owning the labels a task uses: its project's when it is in one."""
    return (task.project_id, None) if task.project_id is not None else (None, task.id)


# --- the label endpoints -------------------------------------------------------------------


async def get(session: AsyncSession, label_id: int) -> Label:
    label = await session.get(Label, label_id)
    if label is None:
        raise NotFound(f"Label {label_id} not found.")
    return label


def _touch(owner: Project | Task) -> None:
    # clients revalidate cached datasets by the task's/project's updated_date
    owner.updated_date = utcnow()


async def update_one(session: AsyncSession, label: Label, data: LabelUpdate, owner: Project | Task) -> Label:
    """``PATCH /api/labels/{id}``: the rules of a nested update, for one label or sublabel."""
    if data.deleted:
        raise ValidationError(
            {
                "non_field_errors": [
                    "Labels cannot be deleted by updating in this endpoint. "
                    "Please use the DELETE method instead."
                ]
            }
        )
    change = LabelWrite(
        name=data.name,
        color=data.color,
        attributes=data.attributes,
        type=data.type,
        svg=data.svg,
        sublabels=data.sublabels,
        id=label.id,
    )
    await apply_changes(session, [change], project_id=label.project_id, task_id=label.task_id, creating=False)
    _touch(owner)
    return label


async def remove(session: AsyncSession, label: Label, owner: Project | Task) -> None:
    """Delete a label with its sublabels, attribute specs and annotations."""
    await session.execute(
        delete(Label).where(Label.id == label.id), execution_options={"synchronize_session": False}
    )
    session.expunge(label)
    _touch(owner)


# --- reading --------------------------------------------------------------------------------


async def read_many(session: AsyncSession, labels: Sequence[Label]) -> list[LabelRead]:
    """Serialize labels with their sublabels and attributes in two queries, whatever their number."""
    children: dict[int, list[Label]] = defaultdict(list)
    skeleton_ids = [label.id for label in labels if label.type == SKELETON]
    if skeleton_ids:
        rows = await session.execute(
            select(Label).where(Label.parent_id.in_(skeleton_ids)).order_by(Label.id)
        )
        for child in rows.scalars():
            children[cast(int, child.parent_id)].append(child)
    label_ids = [label.id for label in labels] + [child.id for group in children.values() for child in group]
    attributes: dict[int, list[AttributeRead]] = defaultdict(list)
    if label_ids:
        specs = await session.execute(
            select(AttributeSpec).where(AttributeSpec.label_id.in_(label_ids)).order_by(AttributeSpec.id)
        )
        for spec in specs.scalars():
            attributes[spec.label_id].append(attribute_specs.read(spec))
    return [
        LabelRead(
            id=label.id,
            name=label.name,
            color=label.color,
            attributes=attributes[label.id],
            type=label.type,
            svg=label.svg if label.type == SKELETON else "",
            sublabels=[
                SublabelRead(
                    id=child.id,
                    name=child.name,
                    color=child.color,
                    attributes=attributes[child.id],
                    type=child.type,
                    has_parent=True,
                )
                for child in children[label.id]
            ],
            has_parent=label.parent_id is not None,
            parent_id=label.parent_id,
            project_id=label.project_id,
            task_id=label.task_id,
        )
        for label in labels
    ]


async def read_labels(
    session: AsyncSession, *, project_id: int | None = None, task_id: int | None = None
) -> list[LabelRead]:
    """The top-level labels of one project or task (sublabels nested), in creation order."""
    query = select(Label).where(
        owner_clause(project_id=project_id, task_id=task_id), Label.parent_id.is_(None)
    )
    labels = (await session.execute(query.order_by(Label.id))).scalars().all()
    return await read_many(session, labels)


# --- listing --------------------------------------------------------------------------------


def _task_field(condition: Any) -> Any:
    return lambda v: exists(select(Task.id).where(Task.id == Label.task_id, condition(v)))


def _project_field(column: Any) -> Any:
    return lambda v: exists(select(Project.id).where(Project.id == Label.project_id, column == v))


def _task_project_field(column: Any) -> Any:
    return lambda v: exists(
        select(Task.id)
        .join(Project, Project.id == Task.project_id)
        .where(Task.id == Label.task_id, column == v)
    )


#: Fields a policy filter may name for labels: the people of the label's task or project.
POLICY_FIELDS: FilterFields = {
    "id": lambda v: Label.id == v,
    "task_id": lambda v: Label.task_id == v,
    "project_id": lambda v: Label.project_id == v,
    "task__owner_id": _task_field(lambda v: Task.owner_id == v),
    "task__assignee_id": _task_field(lambda v: Task.assignee_id == v),
    "task__organization_id": _task_field(lambda v: Task.organization_id == v),
    "task__project__owner_id": _task_project_field(Project.owner_id),
    "task__project__assignee_id": _task_project_field(Project.assignee_id),
    "task__job__assignee_id": _task_field(
        lambda v: exists(select(Job.id).where(Job.task_id == Task.id, Job.assignee_id == v))
    ),
    "project__owner_id": _project_field(Project.owner_id),
    "project__assignee_id": _project_field(Project.assignee_id),
    "project__organization_id": _project_field(Project.organization_id),
}

_Parent = aliased(Label)
_parent_name = select(_Parent.name).where(_Parent.id == Label.parent_id).scalar_subquery()

LIST_SPEC = ListSpec(
    fields={
        "id": Label.id,
        "name": Label.name,
        "type": Label.type,
        "color": Label.color,
        "parent": _parent_name,
        "parent_id": Label.parent_id,
        "task_id": Label.task_id,
        "project_id": Label.project_id,
    },
    equality=("name", "type", "color", "parent", "parent_id"),
    search=("name", "parent"),
    sortable=("id", "name", "type", "color", "parent", "parent_id"),
    default_sort="id",
    integer_fields=frozenset({"id", "parent_id", "task_id", "project_id"}),
)

__all__ = [
    "LIST_SPEC",
    "PALETTE",
    "POLICY_FIELDS",
    "apply_changes",
    "check_task_may_have_labels",
    "get",
    "owner_clause",
    "pick_color",
    "read_labels",
    "read_many",
    "remove",
    "task_labels_owner",
    "update_one",
]
