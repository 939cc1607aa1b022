"""The "Datumaro 1.0" format: Datumaro's own JSON, one ``annotations/<subset>.json`` per subset.

Each file holds ``categories`` (labels with their parent and attribute names, skeleton point
categories with their joints) and ``items``, each with its annotations: ``label`` (tags), ``bbox``,
``polygon``, ``polyline``, ``points``, ``ellipse``, ``cuboid_2d``, ``mask`` (COCO compressed RLE over
the whole image) and ``skeleton`` (with ``points`` elements). CVAT's per-shape fields travel as
attributes: ``occluded``, ``rotation``, and ``track_id``/``keyframe`` on shapes of tracks. Images go
to ``images/<subset>/<item id><ext>``.

Export streams: each subset's items are written as they come (to a temporary file per subset,
since an archive takes one member at a time) and joined behind the subset's header at the end.
Shapes of tracks that are ``outside`` are left out (the format cannot say it); on import an
``outside`` attribute is honoured. Attribute values are written typed by the label's attribute
spec (checkbox as booleans, numbers as numbers) and read back as strings. Datumaro keeps only the
names of attributes, so their types and values are lost. Coordinates are kept as they are, except
masks, which are cut to the image.

``ellipse`` (points: the bounding box corners) and ``cuboid_2d`` (the 8 vertices as ``[x, y]`` pairs,
in CVAT's order) are annotation types of the PyPI ``datumaro`` package; CVAT's own Datumaro export
turns ellipses into masks and leaves 2D cuboids out, so a CVAT server reading this export may skip
them.

On import a whole subset file is decoded at once (a JSON array cannot be resumed mid-way without a
streaming parser); item names are the item id plus the extension of its image file.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import msgspec

from annota.core import hookimpl
from annota.core.errors import FormatError
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.masks import (
    bitmap_to_coco_rle,
    bitmap_to_cvat,
    bitmap_to_polygons,
    coco_rle_to_bitmap,
    cvat_bbox,
    cvat_crop,
    cvat_to_bitmap,
)
from annota.core.formats.model import DEFAULT_SUBSET, AttributeSpec, Dataset, Item, LabelSpec, Shape, Tag
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, Format, ImportOptions
from annota.core.formats.source import first_file

FORMAT_VERSION = "1.0"
ANNOTATIONS_DIR = "annotations"
IMAGES_DIR = "images"
#: Datumaro's media type code of images
_MEDIA_IMAGE = 2
#: attributes the format uses for CVAT's shape fields
_OWN_ATTRIBUTES = ("keyframe", "occluded", "rotation", "track_id")

_SIMPLE_TYPES = {"polygon": "polygon", "polyline": "polyline", "points": "points"}
_MIN_POINTS = {"polygon": 3, "polyline": 2, "points": 1}
_EDGE = re.compile(
    r"data-node-from=\"(\d+)\"[^>]*data-node-to=\"(\d+)\"|data-node-to=\"(\d+)\"[^>]*data-node-from=\"(\d+)\""
)


# --- labels -----------------------------------------------------------------------------------


class _LabelIndex:
    """Datumaro's flat label list: every label, each skeleton followed by its points."""

    def __init__(self, labels: Sequence[LabelSpec]) -> None:
        self.entries: list[tuple[LabelSpec, str]] = []
        self.ids: dict[tuple[str, str], int] = {}
        for label in labels:
            self._add(label, "")
            for sublabel in label.sublabels:
                self._add(sublabel, label.name)
        self.specs = {label.name: label for label in labels}

    def _add(self, label: LabelSpec, parent: str) -> None:
        self.ids[(parent, label.name)] = len(self.entries)
        self.entries.append((label, parent))

    def id(self, name: str, parent: str = "") -> int:
        try:
            return self.ids[(parent, name)]
        except KeyError:
            raise ValueError(f"the dataset declares no label {name!r}") from None

    def categories(self) -> dict[str, Any]:
        categories: dict[str, Any] = {
            "label": {
                "labels": [
                    {
                        "name": label.name,
                        "parent": parent,
                        "attributes": sorted(a.name for a in label.attributes),
                    }
                    for label, parent in self.entries
                ],
                "label_groups": [],
                "attributes": list(_OWN_ATTRIBUTES),
            }
        }
        skeletons = [
            {
                "label_id": self.id(label.name),
                "labels": [sublabel.name for sublabel in label.sublabels],
                "joints": _joints(label.svg),
                "positions": [],
            }
            for label, parent in self.entries
            if not parent and label.sublabels
        ]
        if skeletons:
            categories["points"] = {"items": skeletons}
        return categories


def _joints(svg: str) -> list[list[int]]:
    """The edges of a skeleton's SVG as pairs of 1-based point numbers."""
    joints = []
    for match in _EDGE.finditer(svg):
        start, end = (match.group(1), match.group(2)) if match.group(1) else (match.group(4), match.group(3))
        joints.append([int(start), int(end)])
    return joints


def _svg(points: Sequence[str], joints: Sequence[Sequence[int]]) -> str:
    """A skeleton drawing for points known only by name and joints (laid out on a circle)."""
    parts = []
    count = max(len(points), 1)
    places = [
        (50 + 40 * math.cos(2 * math.pi * i / count), 50 + 40 * math.sin(2 * math.pi * i / count))
        for i in range(len(points))
    ]
    for joint in joints:
        a, b = int(joint[0]), int(joint[1])
        if 1 <= a <= len(points) and 1 <= b <= len(points):
            (x1, y1), (x2, y2) = places[a - 1], places[b - 1]
            parts.append(
                f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                f'data-type="edge" data-node-from="{a}" data-node-to="{b}"></line>'
            )
    for index, (name, (x, y)) in enumerate(zip(points, places, strict=True), start=1):
        safe = name.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
        parts.append(
            f'<circle r="1.5" cx="{x:.1f}" cy="{y:.1f}" data-type="element node" data-element-id="{index}" '
            f'data-node-id="{index}" data-label-name="{safe}"></circle>'
        )
    return "".join(parts)


# --- writing ----------------------------------------------------------------------------------


def _typed(value: str, spec: AttributeSpec | None) -> Any:
    """An attribute value as Datumaro (and CVAT) write it: booleans and numbers unquoted."""
    if spec is None:
        return value
    if spec.input_type == "checkbox":
        return value.strip().lower() == "true"
    if spec.input_type == "number":
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    return value


class _Writer:
    """Turns items into Datumaro item objects, numbering annotations across the dataset."""

    def __init__(self, dataset: Dataset, index: _LabelIndex) -> None:
        self.dataset = dataset
        self.index = index
        self.next_id = 1

    def _attributes(self, label: str, values: dict[str, str], parent: str = "") -> dict[str, Any]:
        spec = self.index.specs.get(label) if not parent else None
        if parent:
            owner = self.index.specs.get(parent)
            spec = next((s for s in owner.sublabels if s.name == label), None) if owner else None
        return {name: _typed(value, spec.attribute(name) if spec else None) for name, value in values.items()}

    def _common(self, kind: str, label_id: int, group: int, attributes: dict[str, Any]) -> dict[str, Any]:
        annotation = {
            "id": self.next_id,
            "type": kind,
            "attributes": attributes,
            "group": group,
            "label_id": label_id,
        }
        self.next_id += 1
        return annotation

    def tag(self, tag: Tag) -> dict[str, Any]:
        return self._common(
            "label", self.index.id(tag.label), tag.group, self._attributes(tag.label, tag.attributes)
        )

    def shape(self, shape: Shape, item: Item) -> dict[str, Any]:
        attributes = self._attributes(shape.label, shape.attributes)
        attributes["occluded"] = shape.occluded
        if shape.rotation and shape.type in ("rectangle", "ellipse"):
            attributes["rotation"] = shape.rotation
        if shape.track_id is not None:
            attributes["track_id"] = shape.track_id
            attributes["keyframe"] = shape.keyframe
        points = [float(v) for v in shape.points]
        # numbered before a skeleton's elements
        annotation = self._common("", self.index.id(shape.label), shape.group, attributes)
        annotation["type"], geometry = self._geometry(shape, points, item)
        annotation.update(geometry)
        annotation["z_order"] = shape.z_order
        return annotation

    def _geometry(self, shape: Shape, points: list[float], item: Item) -> tuple[str, dict[str, Any]]:
        if shape.type == "rectangle":
            x1, y1, x2, y2 = points
            return "bbox", {"bbox": [x1, y1, x2 - x1, y2 - y1]}
        if shape.type in _SIMPLE_TYPES:
            geometry: dict[str, Any] = {"points": points}
            if shape.type == "points":
                geometry["visibility"] = [2] * (len(points) // 2)
            return _SIMPLE_TYPES[shape.type], geometry
        if shape.type == "ellipse":
            cx, cy, right, top = points
            rx, ry = right - cx, cy - top
            return "ellipse", {"points": [cx - rx, cy - ry, cx + rx, cy + ry]}
        if shape.type == "cuboid":
            return "cuboid_2d", {"points": [[x, y] for x, y in zip(points[0::2], points[1::2], strict=True)]}
        if shape.type == "mask":
            _, _, right, bottom = cvat_bbox(points)
            width = item.width if item.width is not None else right + 1
            height = item.height if item.height is not None else bottom + 1
            return "mask", {"rle": bitmap_to_coco_rle(cvat_to_bitmap(points, width, height))}
        if shape.type == "skeleton":
            elements = []
            for element in shape.elements:
                attributes = self._attributes(element.label, element.attributes, shape.label)
                attributes["occluded"] = element.occluded
                part = self._common(
                    "points", self.index.id(element.label, shape.label), shape.group, attributes
                )
                # Datumaro's visibility: 0 absent, 1 hidden, 2 visible
                visibility = 0 if element.outside else 1 if element.occluded else 2
                part.update(
                    {"points": [float(v) for v in element.points], "visibility": [visibility], "z_order": 0}
                )
                elements.append(part)
            return "skeleton", {"elements": elements}
        raise ValueError(f"Datumaro cannot hold a shape of type {shape.type!r}")

    def item(self, item: Item, frame: int, extension: str) -> dict[str, Any]:
        annotations = [self.tag(tag) for tag in item.tags]
        annotations += [self.shape(shape, item) for shape in item.shapes if not shape.outside]
        described: dict[str, Any] = {"id": item.id, "annotations": annotations, "attr": {"frame": frame}}
        image: dict[str, Any] = {"path": item.id + extension}
        if item.width is not None and item.height is not None:
            image["size"] = [item.height, item.width]
        described["image"] = image
        return described


@dataclass
class _Subset:
    spool: IO[bytes]
    count: int = 0


def _header(dataset: Dataset, categories: dict[str, Any]) -> bytes:
    header = {
        "dm_format_version": FORMAT_VERSION,
        "media_type": _MEDIA_IMAGE,
        "infos": {},
        "categories": categories,
    }
    encoded = msgspec.json.encode(header)
    # reopen the object to append the items array
    return encoded[:-1] + b',"items":['


def export(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    index = _LabelIndex(dataset.labels)
    writer = _Writer(dataset, index)
    subsets: dict[str, _Subset] = {}
    try:
        for position, item in enumerate(dataset.items()):
            subset_name = item.subset or DEFAULT_SUBSET
            if "/" in subset_name or "\\" in subset_name or subset_name in (".", ".."):
                raise ValueError(f"a subset name cannot be a path: {subset_name!r}")
            extension = dataset.image_extension(item)
            if options.save_images:
                data = dataset.image(item)
                if data is not None:
                    output.write(f"{IMAGES_DIR}/{subset_name}/{item.id}{extension}", data)
            try:
                described = writer.item(item, item.frame if item.frame is not None else position, extension)
            except ValueError as exc:
                raise ValueError(f"item {item.name!r}: {exc}") from None
            subset = subsets.get(subset_name)
            if subset is None:
                subset = subsets[subset_name] = _Subset(tempfile.TemporaryFile())
            if subset.count:
                subset.spool.write(b",")
            subset.spool.write(msgspec.json.encode(described))
            subset.count += 1
        if not subsets:
            subsets[DEFAULT_SUBSET] = _Subset(tempfile.TemporaryFile())
        header = _header(dataset, index.categories())
        for name, subset in subsets.items():
            subset.spool.seek(0)
            with output.open(f"{ANNOTATIONS_DIR}/{name}.json") as target:
                target.write(header)
                shutil.copyfileobj(subset.spool, target, 1 << 20)
                target.write(b"]}")
    finally:
        for subset in subsets.values():
            subset.spool.close()


# --- reading ----------------------------------------------------------------------------------


class _Header(msgspec.Struct):
    categories: dict[str, Any] = {}


def _decode(path: Path, display: str, kind: Any = Any) -> Any:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"cannot read the file: {exc.strerror or exc}", file=display) from None
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.ValidationError as exc:
        raise FormatError(f"unexpected JSON structure: {exc}", file=display) from None
    except msgspec.DecodeError:
        pass
    # the standard parser tells the line and column of a syntax error
    try:
        json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            raise FormatError(
                f"malformed JSON: {exc.msg}", file=display, line=exc.lineno, column=exc.colno
            ) from None
        raise FormatError(f"the file is not UTF-8: {exc.reason}", file=display) from None
    raise FormatError("malformed JSON", file=display)


def _json_files(root: Path) -> list[Path]:
    directory = root / ANNOTATIONS_DIR
    found = sorted(directory.glob("*.json")) if directory.is_dir() else []
    return found or sorted(root.glob("*.json"))


class _Categories:
    """The labels of one subset file: Datumaro's flat list, by id, and as ``LabelSpec``s."""

    def __init__(self, categories: dict[str, Any], display: str) -> None:
        self.display = display
        label_category = categories.get("label") or {}
        entries = label_category.get("labels", []) if isinstance(label_category, dict) else []
        if not isinstance(entries, list):
            raise FormatError(
                "the label categories are not a list", file=display, pointer="/categories/label/labels"
            )
        self.names: list[tuple[str, str]] = []
        self.labels: dict[str, LabelSpec] = {}
        for number, entry in enumerate(entries):
            pointer = f"/categories/label/labels/{number}"
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise FormatError("a label needs a name", file=display, pointer=pointer)
            name, parent = entry["name"], entry.get("parent") or ""
            attributes = [AttributeSpec(name=str(a)) for a in entry.get("attributes") or []]
            label = LabelSpec(name=name, attributes=attributes)
            self.names.append((name, parent))
            if parent:
                owner = self.labels.get(parent)
                if owner is None:
                    raise FormatError(
                        f"label {name!r} names an unknown parent {parent!r}", file=display, pointer=pointer
                    )
                label.type = "points"
                owner.type = "skeleton"
                owner.sublabels.append(label)
            else:
                self.labels.setdefault(name, label)
        points_category = categories.get("points") or {}
        for entry in points_category.get("items", []) if isinstance(points_category, dict) else []:
            label_id = entry.get("label_id")
            if isinstance(label_id, int) and 0 <= label_id < len(self.names) and not self.names[label_id][1]:
                owner = self.labels[self.names[label_id][0]]
                joints = [j for j in entry.get("joints") or [] if isinstance(j, list) and len(j) == 2]
                owner.svg = _svg([sub.name for sub in owner.sublabels], joints)

    def name(self, label_id: Any, where: dict[str, Any], parent: str = "") -> str:
        if not isinstance(label_id, int) or isinstance(label_id, bool) or not 0 <= label_id < len(self.names):
            raise FormatError(f"unknown label_id {label_id!r}", **where)
        name, owner = self.names[label_id]
        if owner != parent:
            kind = f"a point of skeleton {owner!r}" if owner else "not a skeleton point"
            expected = f"a point of skeleton {parent!r}" if parent else "a top-level label"
            raise FormatError(f"label_id {label_id} ({name!r}) is {kind}, expected {expected}", **where)
        return name


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)


def _numbers(value: Any, count: int | None, what: str, where: dict[str, Any]) -> list[float]:
    if not isinstance(value, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        raise FormatError(f"{what} must be a list of numbers", **where)
    if count is not None and len(value) != count:
        raise FormatError(f"{what} must have {count} numbers, it has {len(value)}", **where)
    return [float(v) for v in value]


@dataclass
class _Fields:
    """CVAT's shape fields, taken out of an annotation's attributes."""

    attributes: dict[str, str]
    occluded: bool = False
    outside: bool = False
    rotation: float = 0.0
    track_id: int | None = None
    keyframe: bool = True


def _flag(value: Any) -> bool:
    # writers differ: JSON booleans, numbers, or strings
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value)


def _fields(annotation: dict[str, Any], where: dict[str, Any]) -> _Fields:
    raw = annotation.get("attributes") or {}
    if not isinstance(raw, dict):
        raise FormatError("attributes must be an object", **where)
    raw = dict(raw)
    fields = _Fields(attributes={})
    fields.occluded = _flag(raw.pop("occluded", False))
    fields.outside = _flag(raw.pop("outside", False))
    fields.keyframe = _flag(raw.pop("keyframe", True))
    rotation = raw.pop("rotation", 0.0)
    track_id = raw.pop("track_id", None)
    try:
        fields.rotation = float(rotation) % 360
        fields.track_id = None if track_id is None else int(track_id)
    except (TypeError, ValueError):
        raise FormatError("rotation and track_id must be numbers", **where) from None
    fields.attributes = {str(name): _text(value) for name, value in raw.items()}
    return fields


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _as_polygons(mask: Shape) -> list[Shape]:
    """A mask as the polygons of its outlines (``conv_mask_to_poly``)."""
    crop, left, top = cvat_crop(mask.points)
    polygons = []
    for outline in bitmap_to_polygons(crop):
        points = [value + (left if index % 2 == 0 else top) for index, value in enumerate(outline)]
        polygons.append(msgspec.structs.replace(mask, type="polygon", points=points))
    return polygons


class _SubsetFile:
    def __init__(self, path: Path, root: Path, options: ImportOptions) -> None:
        self.options = options
        self.path = path
        self.root = root
        self.subset = path.stem
        self.display = str(path.relative_to(root)) if path.is_relative_to(root) else path.name
        header = _decode(path, self.display, _Header)
        self.categories = _Categories(header.categories, self.display)

    def items(self) -> Iterator[Item]:
        document = _decode(self.path, self.display)
        if not isinstance(document, dict) or not isinstance(document.get("items", []), list):
            raise FormatError("the file has no items list", file=self.display, pointer="/items")
        for number, described in enumerate(document.get("items", [])):
            yield self._item(described, number)

    def _image(self, path: str) -> str | None:
        images = self.root / IMAGES_DIR
        found = first_file(images, (images / self.subset / path, images / path))
        return str(found) if found else None

    def _item(self, described: Any, number: int) -> Item:
        pointer = f"/items/{number}"
        if not isinstance(described, dict) or not isinstance(described.get("id"), str | int):
            raise FormatError("an item needs an id", file=self.display, pointer=pointer)
        item_id = str(described["id"])
        image: dict[str, Any] = described["image"] if isinstance(described.get("image"), dict) else {}
        path = image.get("path") if isinstance(image.get("path"), str) else None
        item = Item(name=item_id + (Path(path).suffix if path else ""), subset=self.subset)
        attr: dict[str, Any] = described["attr"] if isinstance(described.get("attr"), dict) else {}
        if isinstance(attr.get("frame"), int):
            item.frame = attr["frame"]
        size = image.get("size")
        if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size):
            item.height, item.width = size
        if path:
            item.image = self._image(path)
        annotations = described.get("annotations") or []
        if not isinstance(annotations, list):
            raise FormatError(
                "annotations must be a list", file=self.display, pointer=f"{pointer}/annotations"
            )
        for index, annotation in enumerate(annotations):
            where: dict[str, Any] = {
                "file": self.display,
                "pointer": f"{pointer}/annotations/{index}",
                "item": item_id,
                "annotation": index,
            }
            if not isinstance(annotation, dict):
                raise FormatError("an annotation must be an object", **where)
            if annotation.get("type") == "label":
                fields = _fields(annotation, where)
                item.tags.append(
                    Tag(
                        label=self.categories.name(annotation.get("label_id"), where),
                        group=_int(annotation.get("group")),
                        attributes=fields.attributes,
                    )
                )
            elif self._degenerate_line(annotation, where):
                continue
            else:
                shape = self._shape(annotation, item, where)
                if shape.type == "mask" and self.options.conv_mask_to_poly:
                    item.shapes += _as_polygons(shape)
                else:
                    item.shapes.append(shape)
        return item

    def _degenerate_line(self, annotation: dict[str, Any], where: dict[str, Any]) -> bool:
        """Whether ``annotation`` is a polyline of fewer than 2 points or points without any:
        Datumaro (and CVAT through it) takes them without a word, they draw nothing and no
        annotation can hold them, so they are left out. A polygon of fewer than 3 points is refused
        below, as Datumaro refuses it."""
        kind = annotation.get("type")
        if kind not in ("polyline", "points"):
            return False
        self.categories.name(annotation.get("label_id"), where)
        points = _numbers(annotation.get("points"), None, "points", where)
        return len(points) % 2 == 0 and len(points) < 2 * _MIN_POINTS[kind]

    def _shape(self, annotation: dict[str, Any], item: Item, where: dict[str, Any]) -> Shape:
        kind = annotation.get("type")
        label = self.categories.name(annotation.get("label_id"), where)
        fields = _fields(annotation, where)
        shape_type, points, elements = self._geometry(kind, annotation, label, item, where)
        return Shape(
            type=shape_type,
            label=label,
            points=points,
            occluded=fields.occluded,
            outside=fields.outside,
            z_order=_int(annotation.get("z_order")),
            rotation=fields.rotation if shape_type in ("rectangle", "ellipse") else 0.0,
            group=_int(annotation.get("group")),
            attributes=fields.attributes,
            elements=elements,
            track_id=fields.track_id,
            keyframe=fields.keyframe,
        )

    def _geometry(
        self, kind: Any, annotation: dict[str, Any], label: str, item: Item, where: dict[str, Any]
    ) -> tuple[str, list[float], list[Shape]]:
        if kind == "bbox":
            x, y, w, h = _numbers(annotation.get("bbox"), 4, "bbox", where)
            if w < 0 or h < 0:
                raise FormatError(f"the bbox has a negative size ({w:g} x {h:g})", **where)
            return "rectangle", [x, y, x + w, y + h], []
        if kind in _SIMPLE_TYPES:
            points = _numbers(annotation.get("points"), None, "points", where)
            least = _MIN_POINTS[kind]
            if len(points) % 2 or len(points) < 2 * least:
                raise FormatError(f"a {kind} needs at least {least} points (x, y pairs)", **where)
            return _SIMPLE_TYPES[kind], points, []
        if kind == "ellipse":
            x1, y1, x2, y2 = _numbers(annotation.get("points"), 4, "points", where)
            if x2 < x1 or y2 < y1:
                raise FormatError("the ellipse has a negative size", **where)
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            return "ellipse", [cx, cy, x2, y1], []
        if kind == "cuboid_2d":
            pairs = annotation.get("points")
            if not isinstance(pairs, list) or len(pairs) != 8:
                raise FormatError("a cuboid_2d needs 8 points", **where)
            points = [v for pair in pairs for v in _numbers(pair, 2, "a cuboid point", where)]
            return "cuboid", points, []
        if kind == "mask":
            rle = annotation.get("rle")
            if not isinstance(rle, dict) or "counts" not in rle or "size" not in rle:
                raise FormatError("a mask needs an rle with counts and size", **where)
            try:
                bitmap = coco_rle_to_bitmap(rle)
            except (ValueError, TypeError) as exc:
                raise FormatError(f"bad mask rle: {exc}", **where) from None
            return "mask", bitmap_to_cvat(bitmap), []
        if kind == "skeleton":
            return "skeleton", [], self._elements(annotation, label, where)
        raise FormatError(f"unsupported annotation type {kind!r}", **where)

    def _elements(self, annotation: dict[str, Any], label: str, where: dict[str, Any]) -> list[Shape]:
        """The points of a skeleton; Datumaro's visibility is 0 absent, 1 hidden, 2 visible."""
        elements = []
        for number, part in enumerate(annotation.get("elements") or []):
            part_where = {**where, "pointer": f"{where['pointer']}/elements/{number}"}
            if not isinstance(part, dict):
                raise FormatError("a skeleton element must be an object", **part_where)
            name = self.categories.name(part.get("label_id"), part_where, parent=label)
            points = _numbers(part.get("points"), 2, "points", part_where)
            visibility = part.get("visibility") or [2]
            fields = _fields(part, part_where)
            state = visibility[0] if isinstance(visibility, list) and visibility else 2
            elements.append(
                Shape(
                    type="points",
                    label=name,
                    points=points,
                    occluded=fields.occluded or state == 1,
                    outside=fields.outside or state == 0,
                    attributes=fields.attributes,
                )
            )
        if not elements:
            raise FormatError("the skeleton has no elements", **where)
        return elements


def load(root: Path, options: ImportOptions) -> Dataset:
    files = _json_files(root)
    if not files:
        raise FormatError("no Datumaro annotation file (annotations/<subset>.json) in the dataset")
    subsets = [_SubsetFile(path, root, options) for path in files]
    labels: dict[str, LabelSpec] = {}
    for subset in subsets:
        for name, label in subset.categories.labels.items():
            labels.setdefault(name, label)

    def items() -> Iterator[Item]:
        for subset in subsets:
            yield from subset.items()

    return StreamedDataset(root.name, list(labels.values()), items)


def detect(root: Path) -> float:
    best = 0.0
    for path in _json_files(root)[:4]:
        with open(path, "rb") as stream:
            head = stream.read(65536)
        if b'"dm_format_version"' in head:
            return 1.0
        if b'"categories"' in head and b'"label"' in head and b'"images"' not in head:
            best = max(best, 0.7)
    return best


@hookimpl
def register_formats(register: Callable[[Format], None]) -> None:
    register(
        Format(
            name="Datumaro",
            version="1.0",
            exporter=export,
            importer=load,
            export_ext="ZIP",
            import_ext="JSON, ZIP",
            carries=frozenset(
                {
                    "tag",
                    "rectangle",
                    "polygon",
                    "polyline",
                    "points",
                    "ellipse",
                    "cuboid",
                    "mask",
                    "skeleton",
                    "attributes",
                    "images",
                    "rotation",
                    "occluded",
                    "z_order",
                    "group",
                    "track_id",
                }
            ),  # fmt: skip
            detect=detect,
            aliases=("datumaro", "dm"),
            description="Datumaro's JSON: annotations/<subset>.json and images/<subset>/",
        )
    )


__all__ = ["detect", "export", "load", "register_formats"]
