"""The ``cvat-function`` runner kind: any ``cvat_sdk.auto_annotation`` detection function, run in
annota's own workers instead of by ``cvat-cli task auto-annotate`` on a user's machine.

The function's spec (labels by id, skeleton sublabels, attributes) becomes a label spec by name;
what ``detect`` returns is checked by the rules cvat_sdk's driver applies (ids from the spec, frame
0, no preset id or source, no masks when polygons were asked for, one element per sublabel) and
turned into neutral shapes and tags. Options: ``module`` (an importable name) or ``file`` (a path),
and ``params`` for the module's ``create(**params)`` when it defines one.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from annota.core import hookimpl
from annota.core.formats.masks import cvat_bbox
from annota.core.formats.model import AttributeSpec, LabelSpec, Shape, Tag
from annota.core.models.runner import DetectOptions, Image, LoadedModel, ModelDeclaration, ModelError

from ._common import model_error, parse_options

KIND = "cvat-function"


class FunctionOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    module: str | None = None
    file: str | None = None
    params: dict[str, Any] = {}


def _value(obj: Any, name: str, default: Any = None) -> Any:
    """A field of a cvat_sdk model (unset optional fields raise), enums as their string."""
    value = getattr(obj, name, default)
    return getattr(value, "value", value)


@dataclass
class _Entry:
    """A spec label or sublabel by id: its name, type, attributes by id and sublabels by id."""

    name: str
    type: str
    attributes: dict[int, tuple[str, Any]] = field(default_factory=dict)
    sublabels: dict[int, _Entry] = field(default_factory=dict)


class CvatFunction(LoadedModel):
    def __init__(self, declaration: ModelDeclaration) -> None:
        options = parse_options(declaration, FunctionOptions)
        try:
            from cvat_sdk.attributes import attribute_value_validator
            from cvat_sdk.auto_annotation import DetectionFunctionContext, DetectionFunctionSpec
        except ImportError as exc:
            raise model_error(
                declaration, "cvat_sdk is not installed (pip install 'annota[cvat-function]')"
            ) from exc
        self._validator = attribute_value_validator
        module = _import(declaration, options)
        function = module
        create = getattr(module, "create", None)
        if callable(create):
            try:
                function = create(**options.params)
            except Exception as exc:
                raise model_error(
                    declaration, f"create(**params) failed: {type(exc).__name__}: {exc}"
                ) from exc
        elif options.params:
            raise model_error(declaration, "options.params needs a module with a create() function")
        spec = getattr(function, "spec", None)
        if not isinstance(spec, DetectionFunctionSpec) or not callable(getattr(function, "detect", None)):
            raise model_error(
                declaration, "not a detection function: it needs a DetectionFunctionSpec `spec` and `detect`"
            )
        self.function = function
        self._context_class = _context_class(DetectionFunctionContext)
        self.entries: dict[int, _Entry] = {}
        labels = [self._label(spec_label, self.entries) for spec_label in spec.labels]
        super().__init__(declaration, labels)

    def _label(self, spec_label: Any, entries: dict[int, _Entry]) -> LabelSpec:
        entry = _Entry(str(spec_label.name), str(_value(spec_label, "type", "any")))
        entries[int(spec_label.id)] = entry
        attributes = []
        for attribute in _value(spec_label, "attributes", []) or []:
            values = [str(v) for v in _value(attribute, "values", [])]
            input_type = str(_value(attribute, "input_type"))
            entry.attributes[int(attribute.id)] = (str(attribute.name), self._validator(attribute))
            default = _value(attribute, "default_value", None)
            attributes.append(
                AttributeSpec(
                    name=str(attribute.name),
                    input_type=input_type,
                    mutable=bool(_value(attribute, "mutable", False)),
                    values=values,
                    default_value=str(default) if default is not None else (values[0] if values else ""),
                )
            )
        sublabels = [self._label(sub, entry.sublabels) for sub in _value(spec_label, "sublabels", []) or []]
        return LabelSpec(
            name=entry.name,
            type=entry.type,
            attributes=attributes,
            sublabels=sublabels,
            svg=str(_value(spec_label, "svg", "") or ""),
        )

    def detect(self, frames: Sequence[Image], options: DetectOptions) -> list[list[Tag | Shape]]:
        from PIL import Image as PILImage

        results = []
        for index, frame in enumerate(frames):
            context = self._context_class(
                f"frame_{index:06d}", self.threshold(options), options.conv_mask_to_poly
            )
            try:
                output = self.function.detect(context, PILImage.fromarray(frame[:, :, ::-1]))
            except ModelError:
                raise
            except Exception as exc:
                raise model_error(self.declaration, f"detect failed: {type(exc).__name__}: {exc}") from exc
            results.append([self._convert(annotation, options) for annotation in output])
        return results

    # --- results ---------------------------------------------------------------------------

    def _bad(self, message: str) -> ModelError:
        return model_error(self.declaration, f"the function output {message}")

    def _common(self, annotation: Any, what: str, entries: dict[int, _Entry]) -> _Entry:
        if hasattr(annotation, "id"):
            raise self._bad(f"a {what} with a preset id")
        if hasattr(annotation, "source"):
            raise self._bad(f"a {what} with a preset source")
        if _value(annotation, "frame", 0) != 0:
            raise self._bad(f"a {what} with frame {annotation.frame} (expected 0)")
        entry = entries.get(int(annotation.label_id))
        if entry is None:
            raise self._bad(f"a {what} with unknown label id {annotation.label_id}")
        return entry

    def _attributes(self, annotation: Any, entry: _Entry) -> dict[str, str]:
        values: dict[str, str] = {}
        for attribute in _value(annotation, "attributes", []) or []:
            known = entry.attributes.get(int(attribute.spec_id))
            if known is None:
                raise self._bad(f"attribute id {attribute.spec_id}, unknown for label {entry.name!r}")
            name, validator = known
            if name in values:
                raise self._bad(f"attribute {name!r} twice on one {entry.name!r} annotation")
            if not validator(attribute.value):
                raise self._bad(f"{attribute.value!r} for attribute {name!r}, not one of its values")
            values[name] = str(attribute.value)
        return values

    def _convert(self, annotation: Any, options: DetectOptions) -> Tag | Shape:
        kind = type(annotation).__name__
        if kind == "LabeledImageRequest":
            entry = self._common(annotation, "tag", self.entries)
            if entry.type not in ("any", "tag"):
                raise self._bad(f"a tag for label {entry.name!r} of type {entry.type!r}")
            return Tag(
                label=entry.name,
                source="auto",
                group=int(_value(annotation, "group", 0) or 0),
                attributes=self._attributes(annotation, entry),
            )
        if kind != "LabeledShapeRequest":
            raise self._bad(f"a {kind} (expected LabeledImageRequest or LabeledShapeRequest)")
        entry = self._common(annotation, "shape", self.entries)
        shape_type = str(_value(annotation, "type"))
        if shape_type == "mask" and options.conv_mask_to_poly:
            raise self._bad("a mask although polygons were asked for (conv_mask_to_poly)")
        expected = "polygon" if entry.type == "mask" and options.conv_mask_to_poly else entry.type
        if expected not in ("any", shape_type):
            raise self._bad(f"a {shape_type} for label {entry.name!r} of type {entry.type!r}")
        if shape_type == "mask":
            try:
                cvat_bbox(list(annotation.points))
            except ValueError as exc:
                raise self._bad(f"a mask with invalid points: {exc}") from None
        elements = []
        if shape_type == "skeleton":
            elements = self._elements(annotation, entry)
        elif _value(annotation, "elements", None):
            raise self._bad(f"a {shape_type} with elements")
        return self._shape(annotation, shape_type, entry, elements)

    def _shape(self, annotation: Any, shape_type: str, entry: _Entry, elements: list[Shape]) -> Shape:
        return Shape(
            type=shape_type,
            label=entry.name,
            points=[float(v) for v in _value(annotation, "points", []) or []],
            occluded=bool(_value(annotation, "occluded", False)),
            outside=bool(_value(annotation, "outside", False)),
            z_order=int(_value(annotation, "z_order", 0) or 0),
            rotation=float(_value(annotation, "rotation", 0.0) or 0.0),
            group=int(_value(annotation, "group", 0) or 0),
            source="auto",
            score=float(_value(annotation, "score", 1.0)),
            attributes=self._attributes(annotation, entry),
            elements=elements,
        )

    def _elements(self, annotation: Any, entry: _Entry) -> list[Shape]:
        elements, seen = [], set()
        for element in _value(annotation, "elements", []) or []:
            sub = self._common(element, "skeleton element", entry.sublabels)
            if str(_value(element, "type")) != "points":
                raise self._bad(f"a skeleton element of type {_value(element, 'type')!r} (expected points)")
            if sub.name in seen:
                raise self._bad(f"two elements for sublabel {sub.name!r} of {entry.name!r}")
            seen.add(sub.name)
            elements.append(self._shape(element, "points", sub, []))
        if len(elements) != len(entry.sublabels):
            raise self._bad(
                f"a {entry.name!r} skeleton with {len(elements)} elements,"
                f" its label has {len(entry.sublabels)}"
            )
        return elements


def _import(declaration: ModelDeclaration, options: FunctionOptions) -> Any:
    if (options.module is None) == (options.file is None):
        raise model_error(declaration, "give exactly one of options.module and options.file")
    try:
        if options.module is not None:
            return importlib.import_module(options.module)
        path = Path(options.file or "").expanduser()
        if not path.is_file():
            raise model_error(declaration, f"function file {str(path)!r} does not exist")
        name = f"annota_cvat_function_{declaration.name.replace('-', '_')}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise model_error(declaration, f"{str(path)!r} is not a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    except ModelError:
        raise
    except Exception as exc:
        raise model_error(
            declaration, f"the function module failed to import: {type(exc).__name__}: {exc}"
        ) from exc


def _context_class(base: type) -> type:
    class Context(base):  # type: ignore[misc]
        def __init__(self, frame_name: str, conf_threshold: float | None, conv_mask_to_poly: bool) -> None:
            self._frame_name, self._conf_threshold, self._conv = frame_name, conf_threshold, conv_mask_to_poly

        @property
        def frame_name(self) -> str:
            return self._frame_name

        @property
        def conf_threshold(self) -> float | None:
            return self._conf_threshold

        @property
        def conv_mask_to_poly(self) -> bool:
            return self._conv

    return Context


def load(declaration: ModelDeclaration) -> LoadedModel:
    return CvatFunction(declaration)


@hookimpl
def register_model_runners(register: Any) -> None:
    register(KIND, load)
