"""A task's or project's labels as the format plugins see them (by name) and the database stores
them (by id): the bridge both dataset export and import cross."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.formats.model import AttributeSpec, LabelSpec
from annota.core.schemas.labels import AttributeRead, LabelRead
from annota.core.services.labels import read_labels


@dataclass
class LabelEntry:
    """One label (or skeleton sublabel) with its attribute specs by name."""

    id: int
    name: str
    type: str
    attributes: dict[str, AttributeRead] = field(default_factory=dict)
    #: sublabels of a skeleton, by name
    sublabels: dict[str, LabelEntry] = field(default_factory=dict)


@dataclass
class LabelCatalog:
    specs: list[LabelSpec]
    #: top-level labels by name
    by_name: dict[str, LabelEntry]
    #: every label and sublabel id -> name
    names: dict[int, str]
    #: every attribute spec id -> name
    attribute_names: dict[int, str]

    def attributes_by_name(self, values: Mapping[int, str]) -> dict[str, str]:
        return {
            self.attribute_names[spec]: value
            for spec, value in values.items()
            if spec in self.attribute_names
        }


def _attribute_spec(read: AttributeRead) -> AttributeSpec:
    return AttributeSpec(
        name=read.name,
        input_type=read.input_type,
        mutable=read.mutable,
        values=list(read.values),
        default_value=read.default_value,
    )


def catalog(labels: list[LabelRead]) -> LabelCatalog:
    specs: list[LabelSpec] = []
    by_name: dict[str, LabelEntry] = {}
    names: dict[int, str] = {}
    attribute_names: dict[int, str] = {}
    for label in labels:
        entry = LabelEntry(label.id, label.name, label.type, {a.name: a for a in label.attributes})
        names[label.id] = label.name
        attribute_names.update({a.id: a.name for a in label.attributes})
        sublabels = []
        for sub in label.sublabels:
            entry.sublabels[sub.name] = LabelEntry(
                sub.id, sub.name, sub.type, {a.name: a for a in sub.attributes}
            )
            names[sub.id] = sub.name
            attribute_names.update({a.id: a.name for a in sub.attributes})
            sublabels.append(
                LabelSpec(
                    name=sub.name,
                    type=sub.type,
                    color=sub.color,
                    attributes=[_attribute_spec(a) for a in sub.attributes],
                )
            )
        by_name[label.name] = entry
        specs.append(
            LabelSpec(
                name=label.name,
                type=label.type,
                color=label.color,
                attributes=[_attribute_spec(a) for a in label.attributes],
                sublabels=sublabels,
                svg=label.svg,
            )
        )
    return LabelCatalog(specs, by_name, names, attribute_names)


async def load_catalog(
    session: AsyncSession, *, project_id: int | None = None, task_id: int | None = None
) -> LabelCatalog:
    return catalog(await read_labels(session, project_id=project_id, task_id=task_id))


__all__ = ["LabelCatalog", "LabelEntry", "catalog", "load_catalog"]
