"""Attribute specs of labels: CVAT's rules for input types, values and defaults.

Specs are only written as part of a label. A refused change answers as CVAT's label updates
refuse theirs, a bare list holding one message (which names the label and attribute). Values are
stored as JSON text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import msgspec

from annota.core.db.tables import AttributeSpec
from annota.core.errors import NotFound, ValidationError
from annota.core.schemas.labels import AttributeRead, AttributeWrite, InputType

BOOLEAN_VALUES = ("true", "false")
#: CVAT keeps an attribute's values newline-joined in 4096 characters; the same limit keeps
#: exports to CVAT formats and backups loadable there.
MAX_VALUES_LENGTH = 4096

_values_decoder = msgspec.json.Decoder(list[str])


def invalid(message: str) -> ValidationError:
    # CVAT raises label and attribute refusals while saving them: DRF answers ``["message"]``
    return ValidationError([message])


def decode_values(raw: str) -> list[str]:
    return _values_decoder.decode(raw)


def encode_values(values: list[str]) -> str:
    return msgspec.json.encode(values).decode()


def read(spec: AttributeSpec) -> AttributeRead:
    return AttributeRead(
        id=spec.id,
        name=spec.name,
        mutable=spec.mutable,
        input_type=cast(InputType, spec.input_type),
        default_value=spec.default_value,
        values=decode_values(spec.values),
    )


def first_duplicate(names: Iterable[str]) -> str | None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def _number(where: str, raw: str, what: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise invalid(f"{where}: {what} {raw!r} is not a number.")
    return value


def _checkbox(where: str, values: list[str], default: str | None) -> tuple[str, list[str]]:
    for value in values:
        if value.lower() not in BOOLEAN_VALUES:
            raise invalid(f"{where}: checkbox values must be 'true' or 'false', got {value!r}.")
    chosen = (default if default is not None else values[0] if values else "false").lower()
    if chosen not in BOOLEAN_VALUES:
        raise invalid(f"{where}: the default value of a checkbox must be 'true' or 'false', got {chosen!r}.")
    return chosen, [chosen]


def _choice(where: str, input_type: str, values: list[str], default: str | None) -> tuple[str, list[str]]:
    if not values:
        raise invalid(f"{where}: a {input_type} attribute needs at least one value.")
    duplicate = first_duplicate(values)
    if duplicate is not None:
        raise invalid(f"{where}: value {duplicate!r} is duplicated.")
    if default is None:
        return values[0], values
    if default not in values:
        raise invalid(f"{where}: the default value {default!r} is not one of the values.")
    return default, values


def _number_range(where: str, values: list[str], default: str | None) -> tuple[str, list[str]]:
    if len(values) != 3:
        raise invalid(f"{where}: number values must be [min, max, step].")
    low, high, step = (_number(where, value, "value") for value in values)
    if not low < high:
        raise invalid(f"{where}: the minimum must be less than the maximum.")
    if step <= 0:
        raise invalid(f"{where}: the step must be positive.")
    chosen = values[0] if default is None else default
    if not low <= _number(where, chosen, "the default value") <= high:
        raise invalid(f"{where}: the default value {chosen!r} is outside [{values[0]}, {values[1]}].")
    return chosen, values


def checked_values(
    where: str, input_type: str, values: list[str], default: str | None
) -> tuple[str, list[str]]:
    """The ``(default_value, values)`` to store for an attribute spec, or a 400 naming ``where``.

    ``default`` ``None`` picks the type's default: ``false``, the first value, or the minimum."""
    if len("\n".join(values)) > MAX_VALUES_LENGTH:
        raise invalid(f"{where}: the values are longer than {MAX_VALUES_LENGTH} characters in all.")
    if input_type == "checkbox":
        return _checkbox(where, values, default)
    if input_type in ("radio", "select"):
        return _choice(where, input_type, values, default)
    if input_type == "number":
        return _number_range(where, values, default)
    return ("" if default is None else default), values


@dataclass
class AttributePlan:
    """What one attribute spec of a label becomes; ``target`` is the stored spec it changes."""

    target: AttributeSpec | None
    name: str
    mutable: bool
    input_type: str
    default_value: str
    values: list[str]
    #: the stored spec goes, with its values in annotations
    delete: bool = False


def _new_attribute(where: str, change: AttributeWrite) -> AttributePlan:
    values = [] if change.values is msgspec.UNSET else list(change.values)
    default, values = checked_values(where, change.input_type, values, change.default_value)
    mutable = False if change.mutable is msgspec.UNSET else change.mutable
    return AttributePlan(None, change.name, mutable, change.input_type, default, values)


def _updated_attribute(where: str, change: AttributeWrite, target: AttributeSpec) -> AttributePlan:
    if change.input_type != target.input_type:
        raise invalid(f"{where}: the input type cannot be changed (it is {target.input_type!r}).")
    if change.mutable is not msgspec.UNSET and change.mutable != target.mutable:
        raise invalid(f"{where}: 'mutable' cannot be changed.")
    stored = decode_values(target.values)
    values = stored if change.values is msgspec.UNSET else list(change.values)
    if target.input_type in ("radio", "select"):
        missing = [value for value in stored if value not in values]
        if missing:
            raise invalid(f"{where}: values can only be added; {missing[0]!r} is missing.")
    if target.input_type == "number" and values != stored:
        raise invalid(f"{where}: the values of a number attribute cannot be changed.")
    default = target.default_value if change.default_value is None else change.default_value
    if target.input_type == "checkbox" and values and values != stored:
        # a checkbox's one value is its default: clients that change it resend the old default
        default = values[0]
    default, values = checked_values(where, target.input_type, values, default)
    return AttributePlan(target, change.name, target.mutable, target.input_type, default, values)


def _deletions(
    where: str, changes: Sequence[AttributeWrite], by_id: dict[int, AttributeSpec]
) -> list[AttributePlan]:
    plans = []
    for change in changes:
        if not change.deleted:
            continue
        if change.id is None:
            raise invalid(f"{where}, attribute '{change.name}': a deleted attribute must have an id.")
        target = by_id.get(change.id)
        if target is None:
            raise NotFound(f"Attribute with id #{change.id} does not exist")
        plans.append(
            AttributePlan(
                target, target.name, target.mutable, target.input_type, target.default_value, [], True
            )
        )
    return plans


def plan_attributes(
    where: str, changes: Sequence[AttributeWrite], stored: Sequence[AttributeSpec]
) -> list[AttributePlan]:
    """Attribute changes of one label; without ``id`` a stored attribute of that name is updated.
    Deletions come first, so that another attribute may take a deleted one's name."""
    by_id = {spec.id: spec for spec in stored}
    plans = _deletions(where, changes, by_id)
    targeted: set[int] = {plan.target.id for plan in plans if plan.target is not None}
    if len(targeted) < len(plans):
        raise invalid(f"{where}: an attribute is deleted more than once.")
    kept = [spec for spec in stored if spec.id not in targeted]
    named_by_id = {change.id for change in changes if change.id is not None}
    by_name = {spec.name: spec for spec in kept if spec.id not in named_by_id}
    for change in changes:
        if change.deleted:
            continue
        target = by_id.get(change.id) if change.id is not None else by_name.get(change.name)
        if change.id is not None and target is None:
            raise NotFound(f"Attribute with id #{change.id} does not exist")
        subject = f"{where}, attribute '{change.name}'"
        if target is None:
            plans.append(_new_attribute(subject, change))
            continue
        if target.id in targeted:
            raise invalid(f"{where}: attribute #{target.id} is listed more than once.")
        targeted.add(target.id)
        plans.append(_updated_attribute(subject, change, target))
    names = [plan.name for plan in plans if not plan.delete] + [
        spec.name for spec in stored if spec.id not in targeted
    ]
    duplicate = first_duplicate(names)
    if duplicate is not None:
        raise invalid(f"{where}: attribute '{duplicate}' is duplicated.")
    return plans
