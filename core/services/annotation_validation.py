"""CVAT's rules for annotations sent by clients, checked before anything is written.

Every error names the offending object by its path in the request body, e.g.
``{"shapes[12].points": ["rectangle needs 4 values, got 3"]}``, and one bad object refuses the
whole request, so a save is never half-applied.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from annota.core.errors import ValidationError
from annota.core.schemas.annotations import (
    AttributeVal,
    LabeledData,
    SubLabeledShape,
    SubLabeledTrack,
    TrackedShape,
)

#: CVAT stores attribute values in 4096 characters.
MAX_VALUE_LENGTH = 4096
_EXACT_LENGTH = {"rectangle": 4, "ellipse": 4, "cuboid": 16}
_MIN_EVEN_LENGTH = {"polygon": 6, "polyline": 4, "points": 2}


@dataclass(frozen=True)
class Spec:
    """What a value of one attribute spec may be."""

    input_type: str
    values: tuple[str, ...]


@dataclass
class LabelInfo:
    type: str
    parent_id: int | None
    specs: dict[int, Spec] = field(default_factory=dict)
    sublabels: frozenset[int] = frozenset()


@dataclass
class Context:
    """The labels of a task and the frames a write may touch."""

    labels: dict[int, LabelInfo]
    #: inclusive task-relative frame range
    start_frame: int
    stop_frame: int
    #: for segments made of picked frames: exactly these
    frames: frozenset[int] | None = None

    def frame_ok(self, frame: int) -> bool:
        if self.frames is not None:
            return frame in self.frames
        return self.start_frame <= frame <= self.stop_frame


def invalid(path: str, message: str) -> ValidationError:
    return ValidationError({path: [message]})


def points_error(shape_type: str, points: Sequence[float]) -> str | None:
    """Why ``points`` cannot be the geometry of a ``shape_type`` shape, or ``None``."""
    count = len(points)
    # one C-level sum covers the common case; only a non-finite total needs a closer look
    if not math.isfinite(sum(points)):
        for value in points:
            if not math.isfinite(value):
                return f"points must be finite numbers, got {value}"
    exact = _EXACT_LENGTH.get(shape_type)
    if exact is not None:
        return None if count == exact else f"{shape_type} needs {exact} values, got {count}"
    minimum = _MIN_EVEN_LENGTH.get(shape_type)
    if minimum is not None:
        if count < minimum or count % 2:
            return f"{shape_type} needs an even number of values, at least {minimum}, got {count}"
        return None
    if shape_type == "skeleton":
        return None if count == 0 else f"skeleton points must be empty, got {count} values"
    return _mask_error(points)


def _mask_error(points: Sequence[float]) -> str | None:
    if len(points) < 5:
        return f"mask needs run lengths and a bounding box (at least 5 values), got {len(points)}"
    left, top, right, bottom = points[-4:]
    if right < left or bottom < top:
        return "mask bounding box must have right >= left and bottom >= top"
    runs = points[:-4]
    if any(run < 0 or run != int(run) for run in runs):
        return "mask run lengths must be non-negative integers"
    area = (int(right) - int(left) + 1) * (int(bottom) - int(top) + 1)
    total = int(sum(runs))
    if total != area:
        return f"mask run lengths sum to {total}, but the bounding box has {area} pixels"
    return None


def normalize_rotation(rotation: float, path: str) -> float:
    if not math.isfinite(rotation):
        raise invalid(f"{path}.rotation", "rotation must be a finite number")
    return rotation % 360.0


class Validator:
    """Checks (and normalizes: ``group`` null → 0, rotation into [0, 360)) a ``LabeledData``."""

    def __init__(self, context: Context) -> None:
        self.context = context
        #: (spec id, value) -> error: big saves repeat a few values many times
        self._values: dict[tuple[int, str], str | None] = {}

    def check(self, data: LabeledData) -> None:
        for index, tag in enumerate(data.tags):
            path = f"tags[{index}]"
            label = self._label(tag.label_id, path)
            self._frame(tag.frame, path)
            tag.group = self._group(tag.group, path)
            self._attributes(tag.attributes, label, path)
        for index, shape in enumerate(data.shapes):
            path = f"shapes[{index}]"
            label = self._label(shape.label_id, path)
            self._shape(shape, label, path)
            if shape.type == "skeleton":
                self._cover(label, [element.label_id for element in shape.elements], path)
                for number, element in enumerate(shape.elements):
                    where = f"{path}.elements[{number}]"
                    sub = self._sublabel(element.label_id, label, shape.label_id, where)
                    if element.type != "points":
                        raise invalid(f"{where}.type", "skeleton elements must be of type points")
                    element.frame = shape.frame
                    self._shape(element, sub, where)
            elif shape.elements:
                raise invalid(f"{path}.elements", "only skeleton shapes may have elements")
        for index, track in enumerate(data.tracks):
            path = f"tracks[{index}]"
            label = self._label(track.label_id, path)
            self._track(track, label, path)
            skeleton = any(keyframe.type == "skeleton" for keyframe in track.shapes)
            if skeleton:
                self._cover(label, [element.label_id for element in track.elements], path)
                for number, sub_track in enumerate(track.elements):
                    where = f"{path}.elements[{number}]"
                    sub = self._sublabel(sub_track.label_id, label, track.label_id, where)
                    self._track(sub_track, sub, where)
            elif track.elements:
                raise invalid(f"{path}.elements", "only skeleton tracks may have elements")

    # --- pieces -----------------------------------------------------------------------------

    def _label(self, label_id: int, path: str) -> LabelInfo:
        label = self.context.labels.get(label_id)
        if label is None or label.parent_id is not None:
            raise invalid(f"{path}.label_id", f"label {label_id} is not a label of this task")
        return label

    def _sublabel(self, label_id: int, parent: LabelInfo, parent_id: int, path: str) -> LabelInfo:
        label = self.context.labels.get(label_id)
        if label is None or label.parent_id != parent_id:
            raise invalid(
                f"{path}.label_id", f"label {label_id} is not an element of skeleton label {parent_id}"
            )
        return label

    def _cover(self, label: LabelInfo, element_labels: list[int], path: str) -> None:
        if label.type != "skeleton":
            raise invalid(f"{path}.label_id", "skeletons need a skeleton label")
        if len(element_labels) != len(set(element_labels)) or set(element_labels) != label.sublabels:
            raise invalid(
                f"{path}.elements",
                f"elements must cover the skeleton's sublabels {sorted(label.sublabels)} once each, "
                f"got {element_labels}",
            )

    def _frame(self, frame: int, path: str) -> None:
        if not self.context.frame_ok(frame):
            raise invalid(
                f"{path}.frame",
                f"frame {frame} is outside the job's frames "
                f"{self.context.start_frame}-{self.context.stop_frame}",
            )

    @staticmethod
    def _group(group: int | None, path: str) -> int:
        if group is None:
            return 0
        if group < 0:
            raise invalid(f"{path}.group", "group must be 0 or positive")
        return group

    def _shape(self, shape: SubLabeledShape, label: LabelInfo, path: str) -> None:
        self._frame(shape.frame, path)
        shape.group = self._group(shape.group, path)
        message = points_error(shape.type, shape.points)
        if message is not None:
            raise invalid(f"{path}.points", message)
        if not 0.0 <= shape.score <= 1.0:
            raise invalid(f"{path}.score", "score must be between 0 and 1")
        shape.rotation = normalize_rotation(shape.rotation, path)
        self._attributes(shape.attributes, label, path)

    def _track(self, track: SubLabeledTrack, label: LabelInfo, path: str) -> None:
        self._frame(track.frame, path)
        track.group = self._group(track.group, path)
        self._attributes(track.attributes, label, path)
        seen: set[int] = set()
        for number, keyframe in enumerate(track.shapes):
            self._keyframe(keyframe, label, f"{path}.shapes[{number}]", seen)
        track.shapes.sort(key=lambda keyframe: keyframe.frame)

    def _keyframe(self, keyframe: TrackedShape, label: LabelInfo, path: str, seen: set[int]) -> None:
        self._frame(keyframe.frame, path)
        if keyframe.frame in seen:
            raise invalid(f"{path}.frame", f"the track has two keyframes on frame {keyframe.frame}")
        seen.add(keyframe.frame)
        message = points_error(keyframe.type, keyframe.points)
        if message is not None:
            raise invalid(f"{path}.points", message)
        keyframe.rotation = normalize_rotation(keyframe.rotation, path)
        self._attributes(keyframe.attributes, label, path)

    def _attributes(self, attributes: Iterable[AttributeVal], label: LabelInfo, path: str) -> None:
        known = self._values
        for number, attribute in enumerate(attributes):
            spec = label.specs.get(attribute.spec_id)
            if spec is None:
                raise invalid(
                    f"{path}.attributes[{number}].spec_id",
                    f"attribute {attribute.spec_id} is not an attribute of the label",
                )
            key = (attribute.spec_id, attribute.value)
            if key in known:
                message = known[key]
            else:
                message = known[key] = value_error(spec, attribute.value)
            if message is not None:
                raise invalid(f"{path}.attributes[{number}].value", message)


def value_error(spec: Spec, value: str) -> str | None:
    """Why ``value`` is not valid for ``spec``, or ``None``."""
    if len(value) > MAX_VALUE_LENGTH:
        return f"values are limited to {MAX_VALUE_LENGTH} characters"
    if spec.input_type == "checkbox":
        return (
            None
            if value.lower() in ("true", "false")
            else f"checkbox value must be true or false, got {value!r}"
        )
    if spec.input_type in ("radio", "select"):
        return None if value in spec.values else f"{value!r} is not one of {list(spec.values)}"
    if spec.input_type == "number":
        try:
            number = float(value)
            low, high = float(spec.values[0]), float(spec.values[1])
        except (ValueError, IndexError):
            return f"{value!r} is not a number"
        if not (math.isfinite(number) and low <= number <= high):
            return f"{value!r} is not a number in [{spec.values[0]}, {spec.values[1]}]"
    return None
