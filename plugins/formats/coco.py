"""COCO 1.0 and COCO Keypoints 1.0: the MS COCO object detection and keypoint JSON files.

Layout (as CVAT writes it): ``annotations/instances_<subset>.json`` (keypoints:
``annotations/person_keypoints_<subset>.json``) and, with images, ``images/<subset>/<file_name>``.
An archive with one top-level folder holding that layout is read too, and a single uploaded JSON
file is read as the ``default`` subset.

Conventions:

- Category ids are 1-based in label order; image ids are 1-based per file, in item order. On import
  an item's ``frame`` is its position over all files read (files in name order, images in file order).
- Rectangles: ``bbox`` is the *unrotated* box and the ``rotation`` attribute the angle in degrees
  around its centre (CVAT's convention), so a rotated box comes back exactly; readers that ignore
  ``rotation`` see the unrotated box.
- Polygons: ``segmentation: [[x0, y0, ...]]``, ``iscrowd: 0``. Masks: compressed RLE over the
  whole image, ``iscrowd: 1``. A multi-polygon annotation imports as polygons sharing a group.
- ``attributes`` holds ``occluded``, ``rotation``, ``track_id`` and ``keyframe`` (for shapes of
  tracks) and the shape's own attributes. Shapes with ``track_id`` are gathered back into tracks on
  import; a track ends (an ``outside`` keyframe) on the first frame after one where it is missing.
- Keypoints: one annotation per skeleton, ``v`` 0 for outside (written as ``0, 0, 0``), 1 occluded,
  2 visible; ``bbox`` surrounds the points with ``v > 0``. Attributes of skeleton elements are lost.
- Other shape types (and shapes with ``outside``), tags, z_order, group and source are not written.
- Coordinates are kept as they are, also outside the image.

The exporter streams: images entries and annotations are buffered in temporary files per subset
(a ZIP member cannot be written while images are added) and joined at the end. The importer holds
the decoded annotation list of one JSON file at a time (the categories are read first, when the
dataset is opened; tracks take one more pass over the files).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Annotated, Any

import msgspec

from annota.core import hookimpl
from annota.core.errors import FormatError
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.model import DEFAULT_SUBSET, Dataset, Item, LabelSpec, Shape, Track, TrackShape
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, Format, ImportOptions
from annota.core.formats.tracks import gather_tracks

INSTANCES = "instances"
KEYPOINTS = "person_keypoints"
#: attribute names the format itself fills; the rest are the shape's attributes
_RESERVED = ("occluded", "rotation", "track_id", "keyframe")
_SVG_EDGE = re.compile(r"<line\b[^>]*>")
_SVG_NODE = re.compile(r"<circle\b[^>]*>")
_SVG_ATTR = re.compile(r'([\w-]+)="([^"]*)"')

_encoder = msgspec.json.Encoder()


# --- export ------------------------------------------------------------------------------------


def skeleton_edges(label: LabelSpec) -> list[list[int]]:
    """The edges of a skeleton label as 1-based pairs of sublabel positions, read from its SVG.

    Nodes name their sublabel with ``data-label-name``; a node without it is taken to be the
    sublabel at position ``data-node-id`` (1-based), which is how CVAT numbers nodes."""
    names = [sub.name for sub in label.sublabels]
    node_to_index: dict[str, int] = {}
    for match in _SVG_NODE.finditer(label.svg):
        attrs = dict(_SVG_ATTR.findall(match.group(0)))
        node = attrs.get("data-node-id")
        if node is None:
            continue
        name = attrs.get("data-label-name")
        if name in names:
            node_to_index[node] = names.index(name) + 1
        elif node.isdigit() and 1 <= int(node) <= len(names):
            node_to_index[node] = int(node)
    edges = []
    for match in _SVG_EDGE.finditer(label.svg):
        attrs = dict(_SVG_ATTR.findall(match.group(0)))
        if attrs.get("data-type") != "edge":
            continue
        a = node_to_index.get(attrs.get("data-node-from", ""))
        b = node_to_index.get(attrs.get("data-node-to", ""))
        if a and b:
            edges.append([a, b])
    return edges


def _skeleton_svg(names: Sequence[str], edges: Sequence[Sequence[int]]) -> str:
    """A CVAT-style skeleton drawing for imported keypoint categories (nodes on a circle)."""
    import math

    parts = []
    for a, b in edges:
        parts.append(
            f'<line x1="0" y1="0" x2="0" y2="0" data-type="edge" data-node-from="{a}" data-node-to="{b}"/>'
        )
    count = max(len(names), 1)
    for index, name in enumerate(names, 1):
        angle = 2 * math.pi * (index - 1) / count
        cx, cy = 0.5 + 0.4 * math.cos(angle), 0.5 + 0.4 * math.sin(angle)
        parts.append(
            f'<circle r="0.75" cx="{cx:.3f}" cy="{cy:.3f}" data-type="element node" '
            f'data-element-id="{index}" data-node-id="{index}" data-label-name="{name}"/>'
        )
    return "".join(parts)


@dataclass
class _SubsetOutput:
    """Buffered parts of one subset's JSON file."""

    images: IO[bytes] = field(default_factory=lambda: tempfile.TemporaryFile())
    annotations: IO[bytes] = field(default_factory=lambda: tempfile.TemporaryFile())
    image_count: int = 0
    annotation_count: int = 0

    def close(self) -> None:
        self.images.close()
        self.annotations.close()


def _polygon_area(points: Sequence[float]) -> float:
    """The shoelace formula (no numpy: most polygons are small and the call overhead dominates)."""
    xs = points[0::2]
    ys = points[1::2]
    n = len(xs)
    total = 0.0
    for i in range(n):
        j = i + 1 if i + 1 < n else 0
        total += xs[i] * ys[j] - xs[j] * ys[i]
    return abs(total) / 2


def _file_name(item: Item, dataset: Dataset) -> str:
    name: str = item.name
    return name if PurePosixPath(name).suffix else name + dataset.image_extension(item)


def _instance(shape: Shape, item: Item) -> tuple[list[Any] | dict[str, Any], list[float], float, int] | None:
    """``(segmentation, bbox, area, iscrowd)`` of a polygon or mask (rectangles are handled inline
    by the writer), None for shapes COCO instances cannot hold."""
    kind = shape.type
    points = shape.points
    if kind == "polygon":
        xs = points[0::2]
        ys = points[1::2]
        left, top = min(xs), min(ys)
        return [points], [left, top, max(xs) - left, max(ys) - top], _polygon_area(points), 0
    if kind == "mask":
        # numpy (behind masks) only when there are masks: it is most of a small conversion's start-up
        from annota.core.formats import masks

        left, top, right, bottom = masks.cvat_bbox(points)
        width = item.width or right + 1
        height = item.height or bottom + 1
        # from the mask's crop: a full-image bitmap per mask would dominate the export
        counts = masks.cvat_to_coco_counts(points, height, width)
        crop, x, y = masks.cvat_crop(points)
        crop = crop[: max(0, height - y), : max(0, width - x)] if x >= 0 and y >= 0 else crop
        box = masks.bbox_of_bitmap(crop)
        return (
            {"size": [height, width], "counts": masks.compress_counts(counts)},
            [box[0] + x, box[1] + y, box[2], box[3]] if box else [0.0, 0.0, 0.0, 0.0],
            float(sum(counts[1::2])),
            1,
        )
    return None


def _keypoints(shape: Shape, names: Sequence[str]) -> tuple[list[float], int, list[float]]:
    by_label = {element.label: element for element in shape.elements}
    values: list[float] = []
    xs: list[float] = []
    ys: list[float] = []
    for name in names:
        element = by_label.get(name)
        if element is None or element.outside or len(element.points) < 2:
            values += (0, 0, 0)
            continue
        x, y = element.points[0], element.points[1]
        values += (x, y, 1 if element.occluded else 2)
        xs.append(x)
        ys.append(y)
    if xs:
        left, top = min(xs), min(ys)
        box = [left, top, max(xs) - left, max(ys) - top]
    else:
        box = [0.0, 0.0, 0.0, 0.0]
    return values, len(xs), box


class _Writer:
    """Writes one COCO file per subset from items seen once, in order."""

    def __init__(self, dataset: Dataset, output: Output, options: ExportOptions, kind: str) -> None:
        self.dataset = dataset
        self.output = output
        self.options = options
        self.kind = kind
        self.keypoints = kind == KEYPOINTS
        labels = list(dataset.labels)
        self.category_ids = {label.name: index for index, label in enumerate(labels, 1)}
        self.keypoint_names = {label.name: [sub.name for sub in label.sublabels] for label in labels}
        self.categories: list[dict[str, Any]] = []
        for index, label in enumerate(labels, 1):
            category: dict[str, Any] = {"id": index, "name": label.name, "supercategory": ""}
            if self.keypoints:
                category["keypoints"] = self.keypoint_names[label.name]
                category["skeleton"] = skeleton_edges(label) if label.sublabels else []
            self.categories.append(category)
        self.subsets: dict[str, _SubsetOutput] = {}
        self.annotation_id = 0

    def add(self, item: Item) -> None:
        state = self.subsets.get(item.subset)
        if state is None:
            state = self.subsets[item.subset] = _SubsetOutput()
        state.image_count += 1
        image_id = state.image_count
        file_name = _file_name(item, self.dataset)
        entry = {
            "id": image_id,
            "width": item.width or 0,
            "height": item.height or 0,
            "file_name": file_name,
            "license": 0,
            "flickr_url": "",
            "coco_url": "",
            "date_captured": 0,
        }
        if image_id > 1:
            state.images.write(b",")
        state.images.write(_encoder.encode(entry))
        if self.options.save_images:
            data = self.dataset.image(item)
            if data is not None:
                self.output.write(f"images/{item.subset}/{file_name}", data)

        records: list[dict[str, Any]] = []
        keypoints = self.keypoints
        for shape in item.shapes:
            if shape.outside:
                continue
            category_id = self.category_ids.get(shape.label)
            if category_id is None:
                continue
            geometry = None
            if shape.type != "rectangle" or keypoints:
                geometry = self._record(shape, item)
                if geometry is None:
                    continue
            self.annotation_id += 1
            attributes = {**shape.attributes, "occluded": shape.occluded, "rotation": shape.rotation}
            if shape.track_id is not None:
                attributes["track_id"] = shape.track_id
                attributes["keyframe"] = shape.keyframe
            if geometry is None:
                # a rectangle, the common case, inlined: exports of millions of boxes spend their time here
                x0, y0, x1, y1 = shape.points
                width, height = x1 - x0, y1 - y0
                records.append(
                    {
                        "id": self.annotation_id,
                        "image_id": image_id,
                        "category_id": category_id,
                        "segmentation": [],
                        "area": width * height,
                        "bbox": [x0, y0, width, height],
                        "iscrowd": 0,
                        "attributes": attributes,
                    }
                )
                continue
            records.append(
                {
                    "id": self.annotation_id,
                    "image_id": image_id,
                    "category_id": category_id,
                    **geometry,
                    "attributes": attributes,
                }
            )
        if records:
            # one encode call per item keeps the per-annotation cost low
            encoded = _encoder.encode(records)
            if state.annotation_count:
                state.annotations.write(b",")
            state.annotations.write(encoded[1:-1])
            state.annotation_count += len(records)

    def _record(self, shape: Shape, item: Item) -> dict[str, Any] | None:
        if self.keypoints:
            if shape.type != "skeleton":
                return None
            values, visible, bbox = _keypoints(shape, self.keypoint_names[shape.label])
            return {
                "segmentation": [],
                "area": bbox[2] * bbox[3],
                "bbox": bbox,
                "iscrowd": 0,
                "keypoints": values,
                "num_keypoints": visible,
            }
        found = _instance(shape, item)
        if found is None:
            return None
        segmentation, bbox, area, crowd = found
        return {"segmentation": segmentation, "area": area, "bbox": bbox, "iscrowd": crowd}

    def finish(self) -> None:
        if not self.subsets:
            self.subsets[DEFAULT_SUBSET] = _SubsetOutput()
        info = {
            "contributor": "",
            "date_created": "",
            "description": "",
            "url": "",
            "version": "",
            "year": "",
        }
        header = (
            b'{"licenses":[{"name":"","id":0,"url":""}],"info":'
            + _encoder.encode(info)
            + b',"categories":'
            + _encoder.encode(self.categories)
            + b',"images":['
        )
        for subset, state in self.subsets.items():
            with self.output.open(f"annotations/{self.kind}_{subset}.json") as stream:
                stream.write(header)
                state.images.seek(0)
                shutil.copyfileobj(state.images, stream, 1 << 20)
                stream.write(b'],"annotations":[')
                state.annotations.seek(0)
                shutil.copyfileobj(state.annotations, stream, 1 << 20)
                stream.write(b"]}")

    def close(self) -> None:
        for state in self.subsets.values():
            state.close()


def _export(dataset: Dataset, output: Output, options: ExportOptions, kind: str) -> None:
    writer = _Writer(dataset, output, options, kind)
    try:
        for item in dataset.items():
            writer.add(item)
        writer.finish()
    finally:
        writer.close()


def export_instances(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    _export(dataset, output, options, INSTANCES)


def export_keypoints(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    _export(dataset, output, options, KEYPOINTS)


# --- import ------------------------------------------------------------------------------------
# Decoding a large file allocates millions of containers: the structs are not tracked by the cycle
# collector and numbers come as tuples (which it leaves alone), or collections would dominate the
# decoding time. Decoded JSON cannot hold reference cycles.


#: ids are 64-bit in every COCO tool; sizes are positive and fit the 32 bits images have
_Id = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_Size = Annotated[int, msgspec.Meta(gt=0, le=2**31 - 1)]


class _Image(msgspec.Struct, gc=False):
    id: _Id | str
    file_name: str
    width: _Size | None = None
    height: _Size | None = None


class _Category(msgspec.Struct, gc=False):
    id: int
    name: str
    keypoints: list[str] = []
    skeleton: list[list[int]] = []


class _Rle(msgspec.Struct, gc=False):
    size: list[int]
    counts: str | list[int]


class _Annotation(msgspec.Struct, gc=False):
    image_id: _Id | str
    category_id: _Id
    segmentation: tuple[tuple[float, ...], ...] | _Rle | None = None
    bbox: tuple[float, ...] = ()
    attributes: dict[str, Any] = {}
    keypoints: tuple[float, ...] = ()


class _Header(msgspec.Struct):
    categories: list[_Category] = []


class _File(msgspec.Struct, gc=False):
    # a file without the list of images is not COCO (and would import as an empty dataset)
    images: list[_Image]
    annotations: list[_Annotation] = []
    categories: list[_Category] = []


_BYTE = re.compile(r"\(byte (\d+)\)")
_PATH = re.compile(r"at `\$(.*)`")
_ANNOTATION_INDEX = re.compile(r"^/annotations/(\d+)")


def _decode(path: Path, root: Path, data: bytes, kind: type[Any]) -> Any:
    name = path.relative_to(root).as_posix()
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.ValidationError as exc:
        message = str(exc)
        found = _PATH.search(message)
        pointer = None
        if found:
            pointer = re.sub(r"\[(\d+)\]", r"/\1", found.group(1)).replace(".", "/") or "/"
            message = message[: found.start()].rstrip(" -")
        index = _ANNOTATION_INDEX.match(pointer or "")
        raise FormatError(
            message, file=name, pointer=pointer, annotation=int(index.group(1)) if index else None
        ) from None
    except msgspec.DecodeError as exc:
        message = str(exc)
        found = _BYTE.search(message)
        line = column = None
        if found:
            position = int(found.group(1))
            line = data.count(b"\n", 0, position) + 1
            column = position - (data.rfind(b"\n", 0, position) + 1) + 1
            message = message[: found.start()].rstrip()
        raise FormatError(message, file=name, line=line, column=column) from None


def annotation_files(root: Path, kind: str) -> list[tuple[Path, str]]:
    """``(file, subset)`` for each annotation file of the kind, in name order. Archives with one
    top-level folder are looked into; a lone JSON file (an upload of one file) is the ``default``
    subset."""
    for pattern in (f"annotations/{kind}_*.json", f"{kind}_*.json", f"*/annotations/{kind}_*.json"):
        paths = sorted(p for p in root.glob(pattern) if p.is_file())
        if paths:
            return [(path, path.stem[len(kind) + 1 :] or DEFAULT_SUBSET) for path in paths]
    loose = sorted(p for p in root.rglob("*.json") if p.is_file())
    if len(loose) == 1:
        return [(loose[0], DEFAULT_SUBSET)]
    return []


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _flag(value: Any) -> bool:
    # some tools write flags as text
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _split_attributes(attributes: dict[str, Any]) -> tuple[bool, bool, float, int | None, dict[str, str]]:
    """``occluded, keyframe, rotation, track_id`` and the shape's own attributes (as text)."""
    if not attributes:
        return False, True, 0.0, None, {}
    found = attributes.get("track_id")
    extra = {
        k: v if type(v) is str else _attribute_text(v) for k, v in attributes.items() if k not in _RESERVED
    }
    return (
        _flag(attributes.get("occluded", False)),
        _flag(attributes.get("keyframe", True)),
        float(attributes.get("rotation") or 0.0),
        int(found) if found is not None else None,
        extra,
    )


class _Reader:
    """Turns decoded annotations into shapes, raising located errors."""

    def __init__(self, options: ImportOptions, keypoints: bool) -> None:
        self.options = options
        self.keypoints = keypoints
        self.next_group = 0

    def _group(self, count: int) -> int:
        if count < 2:
            return 0
        self.next_group += 1
        return self.next_group

    def shapes(self, ann: _Annotation, index: int, file: str, category: _Category) -> list[Shape]:
        def fail(message: str, where: str = "") -> FormatError:
            return FormatError(message, file=file, pointer=f"/annotations/{index}{where}", annotation=index)

        try:
            occluded, keyframe, rotation, track_id, extra = _split_attributes(ann.attributes)
        except (TypeError, ValueError):
            raise fail("the rotation and track_id attributes must be numbers", "/attributes") from None
        bbox = ann.bbox
        if bbox:
            if len(bbox) != 4:
                raise fail(f"bbox has {len(bbox)} values, expected 4", "/bbox")
            if bbox[2] < 0 or bbox[3] < 0:
                raise fail(f"bbox has a negative {'width' if bbox[2] < 0 else 'height'}", "/bbox")
        template = Shape(
            type="rectangle",
            label=category.name,
            points=[],
            occluded=occluded,
            rotation=rotation,
            attributes=extra,
            track_id=track_id,
            keyframe=keyframe,
        )
        segmentation = ann.segmentation
        if self.keypoints and category.keypoints and ann.keypoints:
            if len(ann.keypoints) != 3 * len(category.keypoints):
                raise fail(
                    f"keypoints has {len(ann.keypoints)} values, expected 3 x {len(category.keypoints)}",
                    "/keypoints",
                )
            return [self._skeleton(template, ann.keypoints, category.keypoints)]
        if isinstance(segmentation, tuple) and segmentation:
            polygons = _drawn_polygons(segmentation, fail)
            if polygons:
                return self._polygons(template, polygons)
            segmentation = None
        if isinstance(segmentation, _Rle):
            try:
                return self._mask(template, segmentation)
            except (ValueError, UnicodeEncodeError) as exc:
                raise fail(f"malformed RLE: {exc}", "/segmentation") from None
        if not bbox:
            if ann.segmentation is not None:
                # only degenerate polygons and no box: nothing to draw, as CVAT skips it
                return []
            raise fail("the annotation has neither segmentation, keypoints nor bbox")
        x, y, w, h = bbox
        template.points = [x, y, x + w, y + h]
        return [template]

    def _polygons(self, template: Shape, polygons: Sequence[Sequence[float]]) -> list[Shape]:
        group = self._group(len(polygons))
        return [
            msgspec.structs.replace(
                template,
                type="polygon",
                points=list(polygon),
                rotation=0.0,
                group=group,
                attributes=dict(template.attributes),
            )
            for polygon in polygons
        ]

    def _mask(self, template: Shape, rle: _Rle) -> list[Shape]:
        from annota.core.formats import masks

        if len(rle.size) != 2 or min(rle.size) < 0:
            raise ValueError("size must be [height, width]")
        bitmap = masks.coco_rle_to_bitmap({"size": rle.size, "counts": rle.counts})
        if not bitmap.any():
            return []
        if self.options.conv_mask_to_poly:
            return self._polygons(template, masks.bitmap_to_polygons(bitmap))
        return [
            msgspec.structs.replace(template, type="mask", rotation=0.0, points=masks.bitmap_to_cvat(bitmap))
        ]

    @staticmethod
    def _skeleton(template: Shape, values: Sequence[float], names: Sequence[str]) -> Shape:
        elements = []
        for position, name in enumerate(names):
            x, y, v = values[3 * position : 3 * position + 3]
            elements.append(Shape(type="points", label=name, points=[x, y], outside=v == 0, occluded=v == 1))
        return msgspec.structs.replace(template, type="skeleton", rotation=0.0, elements=elements)


def _drawn_polygons(
    segmentation: Sequence[Sequence[float]], fail: Callable[[str, str], FormatError]
) -> list[Sequence[float]]:
    """The parts of a polygon segmentation that draw something: empty or degenerate parts (fewer
    than 3 points; CVAT's own files hold ``[[]]`` for boxes) are none, and an object without any
    other part is its box."""
    for number, polygon in enumerate(segmentation):
        if len(polygon) % 2:
            raise fail(f"polygon {number} has an odd number of coordinates", f"/segmentation/{number}")
    return [polygon for polygon in segmentation if len(polygon) >= 6]


def _images_dir(annotation_file: Path) -> str:
    """The ``images/`` folder next to the ``annotations/`` folder of a file."""
    base = annotation_file.parent
    if base.name == "annotations":
        base = base.parent
    return os.path.join(base, "images")


def _image_path(images: str, subset: str, file_name: str) -> str | None:
    """The image of an item, under ``images/<subset>/`` or ``images/`` (strings, not ``Path``: this
    runs for every item)."""
    for candidate in (os.path.join(images, subset, file_name), os.path.join(images, file_name)):
        if os.path.isfile(candidate):
            return candidate
    return None


class _Source:
    """One decoded annotation file with its annotations indexed by image."""

    def __init__(self, root: Path, path: Path) -> None:
        self.file = path.relative_to(root).as_posix()
        self.data: _File = _decode(path, root, path.read_bytes(), _File)
        self.tracked = any("track_id" in ann.attributes for ann in self.data.annotations)
        self.categories = {category.id: category for category in self.data.categories}
        self.by_image: dict[int | str, list[int]] = {image.id: [] for image in self.data.images}
        for index, ann in enumerate(self.data.annotations):
            owner = self.by_image.get(ann.image_id)
            if owner is None:
                raise FormatError(
                    f"unknown image_id {ann.image_id!r}",
                    file=self.file,
                    pointer=f"/annotations/{index}/image_id",
                    annotation=index,
                )
            owner.append(index)

    def shapes(self, reader: _Reader, indices: Sequence[int], tracked: bool) -> list[Shape]:
        """The shapes of the annotations with (``tracked``) or without a ``track_id`` attribute."""
        shapes: list[Shape] = []
        annotations = self.data.annotations
        for index in indices:
            ann = annotations[index]
            attributes = ann.attributes
            if ("track_id" in attributes) != tracked:
                continue
            category = self.categories.get(ann.category_id)
            if category is None:
                raise FormatError(
                    f"unknown category_id {ann.category_id}",
                    file=self.file,
                    pointer=f"/annotations/{index}/category_id",
                    annotation=index,
                )
            bbox = ann.bbox
            if (
                not attributes
                and not ann.segmentation
                and not ann.keypoints
                and len(bbox) == 4
                and bbox[2] >= 0
                and bbox[3] >= 0
            ):
                # a plain box, most of what detection datasets hold: what ``_Reader.shapes``
                # makes of it, without its checks and attribute parsing
                x, y, w, h = bbox
                shapes.append(Shape(type="rectangle", label=category.name, points=[x, y, x + w, y + h]))
                continue
            shapes.extend(reader.shapes(ann, index, self.file, category))
        return shapes


class _Sources:
    """Decoded annotation files; the last one is kept, so the passes over a dataset of one file
    (items, then tracks) decode it once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.last: tuple[Path, _Source] | None = None

    def get(self, path: Path) -> _Source:
        if self.last is None or self.last[0] != path:
            self.last = None  # the previous file can go before the next is decoded
            self.last = (path, _Source(self.root, path))
        return self.last[1]


def _read(root: Path, options: ImportOptions, kind: str, sources: _Sources) -> Iterator[Item]:
    """The items with the shapes that carry no ``track_id`` (those go to tracks)."""
    reader = _Reader(options, kind == KEYPOINTS)
    frame = 0
    for path, subset in annotation_files(root, kind):
        source = sources.get(path)
        images = _images_dir(path)
        for image in source.data.images:
            yield Item(
                name=image.file_name,
                frame=frame,
                subset=subset,
                width=image.width,
                height=image.height,
                shapes=source.shapes(reader, source.by_image[image.id], tracked=False),
                image=_image_path(images, subset, image.file_name),
            )
            frame += 1


def _tracks(root: Path, options: ImportOptions, kind: str, sources: _Sources) -> list[Track]:
    reader = _Reader(options, kind == KEYPOINTS)
    seen: dict[int, list[tuple[int, Shape]]] = {}
    frame = 0
    for path, _ in annotation_files(root, kind):
        source = sources.get(path)
        if not source.tracked:
            frame += len(source.data.images)
            continue
        for image in source.data.images:
            for shape in source.shapes(reader, source.by_image[image.id], tracked=True):
                assert shape.track_id is not None
                seen.setdefault(shape.track_id, []).append((frame, shape))
            frame += 1
    last_frame = frame - 1
    pairs: list[tuple[int, Shape]] = []
    for shapes in seen.values():
        frames = {frame for frame, _ in shapes}
        for frame, shape in shapes:
            pairs.append((frame, shape))
            # COCO cannot say "outside": a track that skips a frame has left the picture there
            if frame + 1 not in frames and frame + 1 <= last_frame:
                gone = msgspec.structs.replace(shape, outside=True, keyframe=True)
                if gone.elements:
                    gone.elements = [msgspec.structs.replace(e, outside=True) for e in gone.elements]
                pairs.append((frame + 1, gone))
    tracks: list[Track] = gather_tracks(pairs)
    by_id = {track.id: track for track in tracks}
    for track_id, shapes in seen.items():
        if shapes[0][1].type == "skeleton":
            by_id[track_id].elements = _element_tracks(p for p in pairs if p[1].track_id == track_id)
    return tracks


def _element_tracks(pairs: Iterable[tuple[int, Shape]]) -> list[Track]:
    """The per-sublabel tracks of a skeleton track, from its skeletons frame by frame."""
    parts: dict[str, list[TrackShape]] = {}
    for frame, skeleton in sorted(pairs, key=lambda pair: pair[0]):
        for element in skeleton.elements:
            parts.setdefault(element.label, []).append(
                TrackShape(
                    frame=frame,
                    type="points",
                    points=element.points,
                    occluded=element.occluded,
                    outside=element.outside or skeleton.outside,
                    keyframe=skeleton.keyframe,
                )
            )
    return [
        Track(id=index, label=label, shapes=shapes) for index, (label, shapes) in enumerate(parts.items(), 1)
    ]


def _labels(root: Path, files: list[tuple[Path, str]], options: ImportOptions) -> list[LabelSpec]:
    known = {label.name: label for label in options.labels}
    labels: dict[str, LabelSpec] = {}
    for path, _ in files:
        header: _Header = _decode(path, root, path.read_bytes(), _Header)
        for category in header.categories:
            if category.name in labels:
                continue
            existing = known.get(category.name)
            attributes = list(existing.attributes) if existing else []
            if category.keypoints:
                sublabels = [LabelSpec(name=name, type="points") for name in category.keypoints]
                if existing and {s.name for s in existing.sublabels} == set(category.keypoints):
                    sublabels = list(existing.sublabels)
                labels[category.name] = LabelSpec(
                    name=category.name,
                    type="skeleton",
                    attributes=attributes,
                    sublabels=sublabels,
                    svg=existing.svg
                    if existing and existing.svg
                    else _skeleton_svg(category.keypoints, category.skeleton),
                )
            else:
                labels[category.name] = LabelSpec(
                    name=category.name,
                    type=existing.type if existing else "any",
                    color=existing.color if existing else "",
                    attributes=attributes,
                )
    return list(labels.values())


def _load(root: Path, options: ImportOptions, kind: str) -> Dataset:
    files = annotation_files(root, kind)
    if not files:
        raise FormatError(f"no annotations/{kind}_<subset>.json file found")
    labels = _labels(root, files, options)

    sources = _Sources(root)

    def items() -> Iterator[Item]:
        return _read(root, options, kind, sources)

    def tracks() -> Iterator[Track]:
        return iter(_tracks(root, options, kind, sources))

    return StreamedDataset(files[0][0].stem, labels, items, tracks)


def load_instances(root: Path, options: ImportOptions) -> Dataset:
    return _load(root, options, INSTANCES)


def load_keypoints(root: Path, options: ImportOptions) -> Dataset:
    return _load(root, options, KEYPOINTS)


def _sniff(path: Path) -> bytes:
    with open(path, "rb") as stream:
        return stream.read(1 << 16)


def _detect(root: Path, kind: str) -> float:
    files = annotation_files(root, kind)
    if files and files[0][0].name.startswith(f"{kind}_"):
        return 1.0 if files[0][0].parent.name == "annotations" else 0.9
    other = KEYPOINTS if kind == INSTANCES else INSTANCES
    if any(path.name.startswith(f"{other}_") for path, _ in annotation_files(root, other)):
        return 0.0
    if len(files) != 1:
        return 0.0
    head = _sniff(files[0][0])
    if b'"images"' not in head or (b'"annotations"' not in head and b'"categories"' not in head):
        return 0.0
    has_keypoints = b'"keypoints"' in head
    if kind == KEYPOINTS:
        return 0.8 if has_keypoints else 0.0
    return 0.4 if has_keypoints else 0.8


def detect_instances(root: Path) -> float:
    return _detect(root, INSTANCES)


def detect_keypoints(root: Path) -> float:
    return _detect(root, KEYPOINTS)


@hookimpl
def register_formats(register: Any) -> None:
    register(
        Format(
            name="COCO",
            version="1.0",
            exporter=export_instances,
            importer=load_instances,
            export_ext="ZIP",
            import_ext="JSON, ZIP",
            carries=frozenset(
                {
                    "rectangle",
                    "polygon",
                    "mask",
                    "attributes",
                    "images",
                    "rotation",
                    "occluded",
                    "track",
                    "track_id",
                }
            ),
            detect=detect_instances,
            aliases=("coco", "coco_instances"),
            description="MS COCO object detection: boxes, polygons and RLE masks.",
        )
    )
    register(
        Format(
            name="COCO Keypoints",
            version="1.0",
            exporter=export_keypoints,
            importer=load_keypoints,
            export_ext="ZIP",
            import_ext="JSON, ZIP",
            carries=frozenset({"skeleton", "attributes", "images", "occluded", "track", "track_id"}),
            detect=detect_keypoints,
            aliases=("coco_keypoints", "coco_person_keypoints"),
            description="MS COCO person keypoints: skeletons.",
        )
    )
