"""Changing the labels of a project or a task: CVAT's create/update rules and skeletons.

A change set (the ``labels`` of a project or task body, or one ``PATCH /api/labels/{id}``) is
checked as a whole against the stored labels before anything is written, so a bad entry anywhere
answers 400 and changes nothing.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

from annota.core.db.tables import AttributeSpec, Label, Task
from annota.core.errors import NotFound
from annota.core.schemas.labels import AttributeWrite, LabelWrite, SublabelWrite
from annota.core.services import attribute_values
from annota.core.services.attribute_specs import (
    AttributePlan,
    encode_values,
    first_duplicate,
    invalid,
    plan_attributes,
)

SKELETON = "skeleton"
#: The type of every skeleton element.
SUBLABEL_TYPE = "points"

#: Colors given, in this order, to labels created without one: the first one not yet used by
#: another label of the same project or task.
PALETTE = (
    "#33ddff", "#fa3253", "#34d1b7", "#ff007c", "#ff6037", "#ddff33", "#24b353", "#b83df5",
    "#66ff66", "#32b7fa", "#ffcc33", "#83e070", "#fafa37", "#5986b3", "#8c78f0", "#ff6a4d",
    "#f078f0", "#2a7dd1", "#b25050", "#cc3366", "#cc9933", "#aaf0d1", "#ff00cc", "#3df53d",
    "#fa32b7", "#3d3df5", "#733380", "#f59331", "#b0d4ff", "#c8ff00", "#ff8000", "#00ffff",
)  # fmt: skip


def owner_clause(*, project_id: int | None = None, task_id: int | None = None) -> ColumnElement[bool]:
    """All label rows (sublabels included) of one project or one task."""
    if (project_id is None) == (task_id is None):
        raise ValueError("give exactly one of project_id and task_id")
    return Label.project_id == project_id if project_id is not None else Label.task_id == task_id


def check_task_may_have_labels(project_id: int | None, changes: Sequence[LabelWrite]) -> None:
    """A task inside a project uses the project's labels and cannot have its own (CVAT)."""
    if project_id is not None and changes:
        raise invalid("A task in a project uses the project's labels; change the project's labels instead.")


# --- planning label changes ---------------------------------------------------------------------


@dataclass
class _LabelPlan:
    target: Label | None
    name: str
    #: "" until a palette color is assigned
    color: str
    type: str
    #: None keeps the stored drawing
    svg: str | None
    #: the stored parent (new sublabels of a new skeleton get theirs when it is written)
    parent_id: int | None
    attributes: list[AttributePlan]
    sublabels: list[_LabelPlan] = field(default_factory=list)
    row: Label | None = None


def _walk(plans: Sequence[_LabelPlan]) -> Iterator[tuple[_LabelPlan, _LabelPlan | None]]:
    """Every plan with the plan of its skeleton (``None`` at the top of the request)."""
    for plan in plans:
        yield plan, None
        for sublabel in plan.sublabels:
            yield sublabel, plan


def _as_label(change: SublabelWrite) -> LabelWrite:
    return LabelWrite(
        name=change.name,
        color=change.color,
        attributes=change.attributes,
        type=change.type,
        id=change.id,
        deleted=change.deleted,
    )


def _without_attribute_ids(change: LabelWrite) -> LabelWrite:
    """As in CVAT, ids in the labels of a create request are ignored (clients copy label sets
    from other projects or tasks, ids included)."""

    def strip(attributes: Sequence[AttributeWrite]) -> list[AttributeWrite]:
        return [msgspec.structs.replace(attribute, id=None) for attribute in attributes]

    sublabels = [msgspec.structs.replace(sub, attributes=strip(sub.attributes)) for sub in change.sublabels]
    return msgspec.structs.replace(change, attributes=strip(change.attributes), sublabels=sublabels)


class _Planner:
    """Checks a change set against the stored labels of one project or task."""

    def __init__(self, stored: Sequence[Label], attributes: Sequence[AttributeSpec]) -> None:
        self.labels = {label.id: label for label in stored}
        self.attributes: dict[int, list[AttributeSpec]] = defaultdict(list)
        for spec in attributes:
            self.attributes[spec.label_id].append(spec)
        self.deleted: set[int] = set()
        self.targeted: set[int] = set()

    def plan(self, changes: Sequence[LabelWrite], creating: bool) -> list[_LabelPlan]:
        plans: list[_LabelPlan] = []
        for change in changes:
            if change.deleted and (creating or change.id is None):
                raise invalid("Only existing labels (given by id) can be deleted.")
            if creating:
                change = _without_attribute_ids(change)
            plan = self.new(change, None) if creating or change.id is None else self.update(change, None)
            if plan is not None:
                plans.append(plan)
        self.check(plans)
        return plans

    def new(self, change: LabelWrite, parent_id: int | None, sublabel: bool = False) -> _LabelPlan:
        if change.name is msgspec.UNSET:
            raise invalid("A new label needs a name.")
        where = f"Label '{change.name}'"
        kind = (SUBLABEL_TYPE if sublabel else "any") if change.type is msgspec.UNSET else change.type
        if sublabel and kind != SUBLABEL_TYPE:
            raise invalid(f"{where}: skeleton sublabels must have the type '{SUBLABEL_TYPE}'.")
        svg = "" if change.svg is msgspec.UNSET else change.svg
        if kind == SKELETON and not change.sublabels:
            raise invalid(f"{where}: a skeleton needs sublabels.")
        if kind != SKELETON:
            self.refuse_skeleton_parts(where, change)
        sublabels = []
        for sub in change.sublabels:
            if sub.deleted:
                raise invalid(f"{where}: sublabels of a new skeleton cannot be deleted.")
            sublabels.append(self.new(_as_label(sub), None, sublabel=True))
        duplicate = first_duplicate(sub.name for sub in sublabels)
        if duplicate is not None:
            raise invalid(f"{where}: sublabel '{duplicate}' is duplicated.")
        color = "" if change.color is msgspec.UNSET else change.color
        attributes = plan_attributes(where, change.attributes, ())
        return _LabelPlan(None, change.name, color, kind, svg, parent_id, attributes, sublabels)

    def update(self, change: LabelWrite, skeleton: Label | None) -> _LabelPlan | None:
        """Change a stored label; at the top of a request (no ``skeleton``) it may be a sublabel."""
        assert change.id is not None
        target = self.labels.get(change.id)
        if target is None:
            raise NotFound(f"Not found label with id #{change.id} to change")
        if skeleton is not None and target.parent_id != skeleton.id:
            raise invalid(f"Label #{change.id} is not a sublabel of '{skeleton.name}'.")
        if target.id in self.targeted:
            raise invalid(f"Label #{target.id} is listed more than once.")
        self.targeted.add(target.id)
        if change.deleted:
            self.deleted.add(target.id)
            return None
        name = target.name if change.name is msgspec.UNSET else change.name
        where = f"Label '{name}'"
        kind = self.updated_type(where, target, change)
        svg: str | None = None
        sublabels: list[_LabelPlan] = []
        if kind == SKELETON:
            svg = None if change.svg is msgspec.UNSET else change.svg
            if svg == "":
                raise invalid(f"{where}: a skeleton needs an svg.")
            sublabels = [plan for sub in change.sublabels if (plan := self.sublabel(sub, target)) is not None]
        else:
            self.refuse_skeleton_parts(where, change)
        color = target.color if change.color is msgspec.UNSET else change.color
        attributes = plan_attributes(where, change.attributes, self.attributes[target.id])
        return _LabelPlan(target, name, color, kind, svg, target.parent_id, attributes, sublabels)

    def sublabel(self, change: SublabelWrite, skeleton: Label) -> _LabelPlan | None:
        if change.id is None:
            if change.deleted:
                raise invalid(
                    f"Label '{skeleton.name}': only existing sublabels (given by id) can be deleted."
                )
            return self.new(_as_label(change), skeleton.id, sublabel=True)
        return self.update(_as_label(change), skeleton)

    @staticmethod
    def updated_type(where: str, target: Label, change: LabelWrite) -> str:
        if change.type is msgspec.UNSET or change.type == target.type:
            return target.type
        # CVAT answers 200 and silently keeps the old type; a refusal tells the client its change
        # was not made
        if SKELETON in (change.type, target.type):
            raise invalid(f"{where}: the type cannot be changed to or from '{SKELETON}'.")
        if target.parent_id is not None:
            raise invalid(f"{where}: skeleton sublabels must have the type '{SUBLABEL_TYPE}'.")
        return change.type

    @staticmethod
    def refuse_skeleton_parts(where: str, change: LabelWrite) -> None:
        if change.sublabels:
            raise invalid(f"{where}: only skeleton labels can have sublabels.")
        if change.svg is not msgspec.UNSET and change.svg:
            raise invalid(f"{where}: only skeleton labels have an svg.")

    def alive(self, label: Label) -> bool:
        return label.id not in self.deleted and label.parent_id not in self.deleted

    def check(self, plans: Sequence[_LabelPlan]) -> None:
        """Rules on the result as a whole: names unique among siblings, skeletons keep sublabels."""
        names: dict[int, str] = {label.id: label.name for label in self.labels.values() if self.alive(label)}
        groups: dict[int | None, list[str]] = defaultdict(list)
        for plan, parent in _walk(plans):
            if plan.target is not None:
                if not self.alive(plan.target):
                    raise invalid(f"Label #{plan.target.id} belongs to a skeleton deleted by this request.")
                names[plan.target.id] = plan.name
            elif parent is None or parent.target is not None:
                # new sublabels of a new skeleton were compared with each other already
                groups[plan.parent_id].append(plan.name)
        for label_id, name in names.items():
            groups[self.labels[label_id].parent_id].append(name)
        for group in groups.values():
            duplicate = first_duplicate(group)
            if duplicate is not None:
                raise invalid(f"All label names must be unique: '{duplicate}' is used twice.")
        for plan in plans:
            if plan.target is None or plan.type != SKELETON:
                continue
            adds_sublabels = any(sub.target is None for sub in plan.sublabels)
            if not adds_sublabels and not self.stored_children(plan.target.id):
                raise invalid(f"Label '{plan.name}': a skeleton needs at least one sublabel.")

    def stored_children(self, label_id: int) -> list[Label]:
        """The stored sublabels of a skeleton that this request keeps."""
        return [label for label in self.labels.values() if label.parent_id == label_id and self.alive(label)]

    def children(self, plan: _LabelPlan) -> list[Label]:
        """The rows of a skeleton's sublabels once the request is written."""
        stored = [] if plan.target is None else self.stored_children(plan.target.id)
        return stored + [sub.row for sub in plan.sublabels if sub.target is None and sub.row is not None]

    def assign_colors(self, plans: Sequence[_LabelPlan]) -> None:
        planned = {plan.target.id for plan, _ in _walk(plans) if plan.target is not None}
        used = {
            label.color for label in self.labels.values() if self.alive(label) and label.id not in planned
        }
        used |= {plan.color for plan, _ in _walk(plans) if plan.color}
        for plan, _ in _walk(plans):
            if not plan.color:
                plan.color = pick_color(plan.name, used)
                used.add(plan.color)


def pick_color(name: str, used: set[str]) -> str:
    """The first palette color not in ``used``; past the palette, one derived from the name."""
    for color in PALETTE:
        if color not in used:
            return color
    digest = hashlib.sha256(name.encode()).hexdigest()
    for start in range(len(digest) - 6):
        color = f"#{digest[start : start + 6]}"
        if color not in used:
            return color
    return f"#{digest[:6]}"


# --- writing --------------------------------------------------------------------------------


def _apply_update(plan: _LabelPlan) -> None:
    assert plan.target is not None
    plan.target.name = plan.name
    plan.target.color = plan.color
    plan.target.type = plan.type
    plan.row = plan.target


def _rewrite_svg(svg: str, children: Iterable[Label]) -> str:
    """CVAT's skeleton drawings name their elements on create and refer to sublabel ids once stored."""
    for child in children:
        svg = svg.replace(f'data-label-name="{child.name}"', f'data-label-id="{child.id}"')
    return svg


async def _write(
    session: AsyncSession,
    planner: _Planner,
    plans: Sequence[_LabelPlan],
    project_id: int | None,
    task_id: int | None,
) -> None:
    if planner.deleted:
        gone = [label for label in planner.labels.values() if not planner.alive(label)]
        await session.execute(
            delete(Label).where(Label.id.in_(planner.deleted)),
            execution_options={"synchronize_session": False},
        )
        for label in gone:
            for spec in planner.attributes.pop(label.id, []):
                session.expunge(spec)
            session.expunge(label)
    walked = list(_walk(plans))
    for plan, _ in walked:
        if plan.target is not None:
            _apply_update(plan)
    # parents are written before their sublabels so that these know the parent's id
    new = [(plan, parent) for plan, parent in walked if plan.target is None]
    first = [(plan, None) for plan, parent in new if parent is None or parent.target is not None]
    second = [(plan, parent) for plan, parent in new if parent is not None and parent.target is None]
    for batch in (first, second):
        rows = []
        for plan, parent in batch:
            parent_id = parent.row.id if parent is not None and parent.row is not None else plan.parent_id
            plan.row = Label(
                project_id=project_id,
                task_id=task_id,
                parent_id=parent_id,
                name=plan.name,
                color=plan.color,
                type=plan.type,
                svg="",
            )
            rows.append(plan.row)
        session.add_all(rows)
        await session.flush()
    await _write_attributes(session, walked)
    for plan, _ in walked:
        if plan.type == SKELETON and plan.svg is not None and plan.row is not None:
            plan.row.svg = _rewrite_svg(plan.svg, planner.children(plan))
    await session.flush()


async def _write_attributes(
    session: AsyncSession, walked: Sequence[tuple[_LabelPlan, _LabelPlan | None]]
) -> None:
    # deletions first: a renamed or new attribute may take a deleted one's name
    doomed = [a.target for plan, _ in walked for a in plan.attributes if a.delete and a.target is not None]
    if doomed:
        await attribute_values.forget(session, doomed)
        await session.execute(
            delete(AttributeSpec).where(AttributeSpec.id.in_([spec.id for spec in doomed])),
            execution_options={"synchronize_session": False},
        )
        for spec in doomed:
            session.expunge(spec)
    for plan, _ in walked:
        assert plan.row is not None
        for attribute in plan.attributes:
            if attribute.delete:
                continue
            values = encode_values(attribute.values)
            if attribute.target is None:
                session.add(
                    AttributeSpec(
                        label_id=plan.row.id,
                        name=attribute.name,
                        mutable=attribute.mutable,
                        input_type=attribute.input_type,
                        default_value=attribute.default_value,
                        values=values,
                    )
                )
                continue
            attribute.target.name = attribute.name
            attribute.target.default_value = attribute.default_value
            attribute.target.values = values


async def apply_changes(
    session: AsyncSession,
    changes: Sequence[LabelWrite],
    *,
    project_id: int | None = None,
    task_id: int | None = None,
    creating: bool,
) -> None:
    """Create, update or delete (``deleted: true``) the labels of one project or task.

    Entries without ``id`` (all of them when ``creating``) are new labels; entries with one change
    that stored label (a sublabel too). Everything is checked before anything is written, and all
    of it happens in the caller's transaction.
    """
    if not changes:
        return
    clause = owner_clause(project_id=project_id, task_id=task_id)
    if task_id is not None:
        task = await session.get(Task, task_id)
        if task is None:
            raise NotFound(f"Task {task_id} not found.")
        check_task_may_have_labels(task.project_id, changes)
    stored = (await session.execute(select(Label).where(clause).order_by(Label.id))).scalars().all()
    specs = select(AttributeSpec).where(AttributeSpec.label_id.in_(select(Label.id).where(clause)))
    attributes = (await session.execute(specs.order_by(AttributeSpec.id))).scalars().all()
    planner = _Planner(stored, attributes)
    plans = planner.plan(changes, creating)
    planner.assign_colors(plans)
    await _write(session, planner, plans, project_id, task_id)
