"""Moving a task into a project without losing its annotations.

Outside a project a task owns its labels; inside one it uses the project's. On a move every label
the task uses must exist in the target project (matched by name, skeleton points by their skeleton's
name too) with the same attributes, so annotations are re-pointed to the target's labels and attribute
specs instead of being dropped. The rules are CVAT's ``TaskWriteSerializer.update``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import case, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.db.tables import AttributeSpec, Job, Label, Project, Shape, Tag, Task, Track, TrackedShape
from annota.core.errors import ValidationError

#: annotation tables whose rows carry a ``label_id`` and ``job_id``
_LABELLED = (Tag, Shape, Track)


@dataclass
class _LabelInfo:
    id: int
    #: (skeleton name or None, label name): how labels are matched across label sets
    key: tuple[str | None, str]
    #: attribute name -> (spec id, input type, values)
    attributes: dict[str, tuple[int, str, list[str]]] = field(default_factory=dict)


async def _label_set(session: AsyncSession, owner: Any) -> list[_LabelInfo]:
    labels = (await session.execute(select(Label).where(owner))).scalars().all()
    names = {label.id: label.name for label in labels}
    infos = {
        label.id: _LabelInfo(label.id, (names.get(label.parent_id) if label.parent_id else None, label.name))
        for label in labels
    }
    if infos:
        specs = await session.execute(select(AttributeSpec).where(AttributeSpec.label_id.in_(infos)))
        for spec in specs.scalars():
            values = msgspec.json.decode(spec.values or "[]", type=list[str])
            infos[spec.label_id].attributes[spec.name] = (spec.id, spec.input_type, values)
    return list(infos.values())


def _mapping(
    source: Sequence[_LabelInfo], target: Sequence[_LabelInfo]
) -> tuple[dict[int, int], dict[int, int]]:
    """Old label id -> new label id and old spec id -> new spec id; 400 if anything has no match."""
    by_key = {info.key: info for info in target}
    labels: dict[int, int] = {}
    specs: dict[int, int] = {}
    for old in source:
        new = by_key.get(old.key)
        if new is None:
            name = old.key[1] if old.key[0] is None else f"{old.key[0]}/{old.key[1]}"
            raise ValidationError.for_field(
                "project_id", f'Target project does not have label with name "{name}".'
            )
        labels[old.id] = new.id
        for attr_name, (spec_id, input_type, values) in old.attributes.items():
            match = new.attributes.get(attr_name)
            if match is None or match[1:] != (input_type, values):
                raise ValidationError.for_field(
                    "project_id",
                    f'Target project does not have "{old.key[1]}" label with "{attr_name}" attribute.',
                )
            specs[spec_id] = match[0]
    return labels, specs


async def _repoint_labels(session: AsyncSession, task_id: int, labels: dict[int, int]) -> None:
    jobs = select(Job.id).where(Job.task_id == task_id)
    for table in _LABELLED:
        await session.execute(
            update(table)
            .where(table.job_id.in_(jobs), table.label_id.in_(labels))
            .values(label_id=case(labels, value=table.label_id))
            .execution_options(synchronize_session=False)
        )


def _remap_attributes(raw: str, specs: dict[int, int]) -> str:
    pairs = msgspec.json.decode(raw)
    return msgspec.json.encode([[specs.get(pair[0], pair[0]), *pair[1:]] for pair in pairs]).decode()


async def _repoint_attributes(session: AsyncSession, task_id: int, specs: dict[int, int]) -> None:
    """Attribute values are JSON ``[[spec_id, value], ...]`` per row: rewrite the rows that have any."""
    jobs = select(Job.id).where(Job.task_id == task_id)
    tracks = select(Track.id).where(Track.job_id.in_(jobs))
    scopes = [(table, table.job_id.in_(jobs)) for table in _LABELLED] + [
        (TrackedShape, TrackedShape.track_id.in_(tracks))
    ]
    for table, in_task in scopes:
        rows = await session.execute(
            select(table.id, table.attributes).where(in_task, table.attributes != "[]")
        )
        changes = [{"id": row_id, "attributes": _remap_attributes(raw, specs)} for row_id, raw in rows]
        if changes:
            await session.execute(update(table), changes)


async def move_to_project(session: AsyncSession, task: Task, project: Project) -> None:
    """Put ``task`` into ``project``: check the label mapping, re-point annotations, drop own labels."""
    if project.organization_id != task.organization_id:
        raise ValidationError.for_field(
            "project_id", "The task and its project should be in the same organization."
        )
    dimension = await session.scalar(
        select(Task.dimension).where(Task.project_id == project.id, Task.id != task.id).limit(1)
    )
    if dimension is not None and dimension != task.dimension:
        raise ValidationError.for_field(
            "project_id",
            f"Dimension ({task.dimension}) of the task must be the same as other tasks "
            f"in the project ({dimension}).",
        )
    own_labels = task.project_id is None
    source = await _label_set(
        session, Label.task_id == task.id if own_labels else Label.project_id == task.project_id
    )
    labels, specs = _mapping(source, await _label_set(session, Label.project_id == project.id))
    if labels:
        await _repoint_labels(session, task.id, labels)
    if specs:
        await _repoint_attributes(session, task.id, specs)
    if own_labels:
        await session.execute(delete(Label).where(Label.task_id == task.id))
    task.project_id = project.id
