"""From a model's labels to a task's: CVAT's lambda ``mapping`` checked, then applied to detections.

``mapping`` is ``{model_label: {"name": task_label, "attributes": {model_attr: task_attr},
"sublabels": {model_sublabel: {"name": task_sublabel, "attributes": {...}}}}}``. Without one, labels,
attributes and sublabels are matched by equal names and the others dropped, as CVAT does. Every
problem in a given mapping is a 400 naming the model label and what it maps to: a label the task
lacks, an attribute or sublabel either side lacks, incompatible label types. Detections of labels
left out of the mapping are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from annota.core.errors import ValidationError
from annota.core.formats import masks
from annota.core.formats.model import LabelSpec, Shape, Tag
from annota.core.models.runner import ModelError
from annota.core.schemas.annotations import (
    AttributeVal,
    LabeledData,
    LabeledImage,
    LabeledShape,
    SubLabeledShape,
)
from annota.core.services.dataset_labels import LabelCatalog, LabelEntry


class SublabelMappingEntry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    attributes: dict[str, str] = {}


class LabelMappingEntry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    attributes: dict[str, str] = {}
    sublabels: dict[str, SublabelMappingEntry] = {}


@dataclass
class _Target:
    """Where one model label (or sublabel) goes."""

    entry: LabelEntry
    #: model attribute name -> task attribute spec id
    attributes: dict[str, int] = field(default_factory=dict)
    #: model sublabel name -> its target
    sublabels: dict[str, _Target] = field(default_factory=dict)


def _compatible(model_type: str, task_type: str, conv_mask_to_poly: bool) -> bool:
    if "any" in (model_type, task_type) or model_type == task_type:
        return True
    return conv_mask_to_poly and model_type == "mask" and task_type == "polygon"


def _attributes(
    spec: LabelSpec, entry: LabelEntry, given: dict[str, str] | None, where: str
) -> dict[str, int]:
    if given is None:
        return {a.name: entry.attributes[a.name].id for a in spec.attributes if a.name in entry.attributes}
    found = {}
    for model_name, task_name in given.items():
        if spec.attribute(model_name) is None:
            raise ValidationError.for_field(
                f"{where}.attributes", f"The model's label {spec.name!r} has no attribute {model_name!r}."
            )
        if task_name not in entry.attributes:
            raise ValidationError.for_field(
                f"{where}.attributes",
                f"Label {entry.name!r} (mapped from {spec.name!r}) has no attribute {task_name!r}.",
            )
        found[model_name] = entry.attributes[task_name].id
    return found


class LabelMap:
    """A checked mapping of one model's labels onto one task's."""

    def __init__(
        self,
        model: str,
        labels: Sequence[LabelSpec],
        catalog: LabelCatalog,
        requested: dict[str, LabelMappingEntry] | None = None,
        *,
        conv_mask_to_poly: bool = False,
        subject: str = "the task",
    ) -> None:
        self.model = model
        self.conv_mask_to_poly = conv_mask_to_poly
        self.catalog = catalog
        specs = {spec.name: spec for spec in labels}
        self.targets: dict[str, _Target] = {}
        if requested is None:
            requested_names = {
                name: LabelMappingEntry(name=name) for name in specs if name in catalog.by_name
            }
            self._build(specs, requested_names, catalog, subject, by_name=True)
        else:
            self._build(specs, requested, catalog, subject, by_name=False)

    def _build(
        self,
        specs: dict[str, LabelSpec],
        requested: dict[str, LabelMappingEntry],
        catalog: LabelCatalog,
        subject: str,
        *,
        by_name: bool,
    ) -> None:
        for model_label, wanted in requested.items():
            where = f"mapping.{model_label}"
            spec = specs.get(model_label)
            if spec is None:
                known = ", ".join(repr(name) for name in specs) or "none"
                raise ValidationError.for_field(
                    where, f"Model {self.model!r} has no label {model_label!r} (its labels: {known})."
                )
            entry = catalog.by_name.get(wanted.name)
            if entry is None:
                known = ", ".join(repr(name) for name in catalog.by_name) or "none"
                raise ValidationError.for_field(
                    f"{where}.name",
                    f"Label {model_label!r} is mapped to {wanted.name!r}, which is not a label of {subject} "
                    f"(its labels: {known}).",
                )
            if not _compatible(spec.type, entry.type, self.conv_mask_to_poly):
                raise ValidationError.for_field(
                    f"{where}.name",
                    f"Label {model_label!r} gives {spec.type} shapes; label {entry.name!r} of {subject} "
                    f"takes {entry.type} shapes.",
                )
            target = _Target(entry, _attributes(spec, entry, None if by_name else wanted.attributes, where))
            subs = {sub.name: sub for sub in spec.sublabels}
            chosen = (
                {name: SublabelMappingEntry(name=name) for name in subs if name in entry.sublabels}
                if by_name or not wanted.sublabels
                else wanted.sublabels
            )
            for model_sub, sub_wanted in chosen.items():
                sub_where = f"{where}.sublabels.{model_sub}"
                sub_spec = subs.get(model_sub)
                if sub_spec is None:
                    raise ValidationError.for_field(
                        sub_where, f"The model's label {model_label!r} has no sublabel {model_sub!r}."
                    )
                sub_entry = entry.sublabels.get(sub_wanted.name)
                if sub_entry is None:
                    raise ValidationError.for_field(
                        f"{sub_where}.name",
                        f"Label {entry.name!r} (mapped from {model_label!r}) has no sublabel "
                        f"{sub_wanted.name!r}.",
                    )
                explicit = None if by_name or not wanted.sublabels else sub_wanted.attributes
                target.sublabels[model_sub] = _Target(
                    sub_entry, _attributes(sub_spec, sub_entry, explicit, sub_where)
                )
            self.targets[model_label] = target

    # --- applying it ------------------------------------------------------------------------

    @staticmethod
    def _values(target: _Target, values: dict[str, str]) -> list[AttributeVal]:
        return [
            AttributeVal(spec_id=target.attributes[name], value=str(value))
            for name, value in values.items()
            if name in target.attributes
        ]

    def _shapes(self, shape: Shape, target: _Target, frame: int, group: int) -> list[LabeledShape]:
        attributes = self._values(target, shape.attributes)
        common = dict(
            label_id=target.entry.id, frame=frame, source="auto", score=float(shape.score),
            occluded=shape.occluded, z_order=shape.z_order, attributes=attributes,
        )  # fmt: skip
        if shape.type == "mask" and self.conv_mask_to_poly:
            try:
                polygons = masks.cvat_to_polygons(shape.points)
            except ValueError as exc:
                raise ModelError(
                    f"Model {self.model!r} gave a malformed mask on frame {frame}: {exc}"
                ) from None
            return [
                LabeledShape(
                    type="polygon", group=group if len(polygons) > 1 else shape.group, points=polygon,
                    **common,  # type: ignore[arg-type]
                )
                for polygon in polygons
            ]  # fmt: skip
        elements = [
            SubLabeledShape(
                type="points",
                label_id=sub.entry.id,
                frame=frame,
                source="auto",
                outside=element.outside,
                occluded=element.occluded,
                points=list(element.points),
                attributes=self._values(sub, element.attributes),
            )  # fmt: skip
            for element in shape.elements
            if (sub := target.sublabels.get(element.label)) is not None
        ]
        if shape.type == "skeleton" and not elements:
            return []
        return [
            LabeledShape(
                type=shape.type, group=shape.group, rotation=shape.rotation, points=list(shape.points),  # type: ignore[arg-type]
                elements=elements, **common,  # type: ignore[arg-type]
            )
        ]  # fmt: skip

    def apply(
        self, detections: Sequence[Tag | Shape], frame: int, threshold: float, data: LabeledData
    ) -> None:
        """Add the mapped detections of one frame at or above ``threshold`` to ``data``."""
        # polygons cut from one mask share a group, numbered past what models use
        group = 1_000_000 + frame * 1000
        for detection in detections:
            target = self.targets.get(detection.label)
            if target is None:
                continue
            if isinstance(detection, Tag):
                data.tags.append(
                    LabeledImage(
                        label_id=target.entry.id,
                        frame=frame,
                        group=detection.group,
                        source="auto",
                        attributes=self._values(target, detection.attributes),
                    )  # fmt: skip
                )
                continue
            if detection.score < threshold:
                continue
            group += 1
            data.shapes.extend(self._shapes(detection, target, frame, group))


def labels_v2(labels: Sequence[LabelSpec]) -> list[dict[str, object]]:
    """A model's labels as CVAT's lambda API lists them (``labels_v2``)."""

    def one(spec: LabelSpec, index: int) -> dict[str, object]:
        item: dict[str, object] = {
            "id": index,
            "name": spec.name,
            "type": spec.type,
            "attributes": [
                {"name": a.name, "input_type": a.input_type, "values": list(a.values)}
                for a in spec.attributes
            ],
        }
        if spec.sublabels:
            item["sublabels"] = [one(sub, i) for i, sub in enumerate(spec.sublabels)]
        if spec.svg:
            item["svg"] = spec.svg
        return item

    return [one(spec, index) for index, spec in enumerate(labels)]


__all__ = ["LabelMap", "LabelMappingEntry", "SublabelMappingEntry", "labels_v2"]
