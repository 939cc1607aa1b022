"""LabelMe 3.0: one XML file per image, as CVAT reads and writes it.

Layout: ``<id>.xml`` beside ``<image>`` for the default subset and under ``<subset>/`` for the
others, mask PNGs under ``Masks/[<subset>/]``. An ``<annotation>`` has ``<filename>``,
``<folder>`` (the subset), ``<source>``, ``<imagesize><nrows/><ncols/>`` and one ``<object>`` per
shape: ``<name>`` (label), ``<deleted>``, ``<verified>``, ``<occluded>yes|no``, ``<date>``,
``<id>``, ``<parts><hasparts/><ispartof/>`` (groups: the first object of a group lists the
others), ``<attributes>name=value, ...`` (``\\``-escaped ``=``, ``,``, ``"``; values that look like
numbers are quoted), and either ``<polygon><pt><x/><y/></pt>...<username/></polygon>`` or
``<segm><mask>file.png</mask><box/></segm>``. A box is a 4-point polygon preceded by
``<type>bounding_box</type>``.

Export: rectangles (a rotated one becomes a plain polygon of its corners), polygons, masks and
ellipses (as masks); other shapes and tags have no place in LabelMe. Import reads Datumaro's
layout too (``Annotations/<subset>``, ``Images/<subset>``, ``Masks/<subset>``), skips deleted
objects, and keeps coordinates as they are.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree.ElementTree import Element, ParseError, SubElement, TreeBuilder, tostring

import defusedxml.ElementTree as SafeET
import numpy as np
from defusedxml import DefusedXmlException

from annota.core import hookimpl
from annota.core.errors import FormatError
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.masks import bitmap_to_cvat, bitmap_to_polygons, cvat_to_bitmap
from annota.core.formats.model import DEFAULT_SUBSET, Dataset, Item, LabelSpec, Shape
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, Format, ImportOptions
from annota.core.formats.source import first_file

_EXPORT_ESCAPES = (("\\", "\\\\"), ("=", "\\="), ('"', '\\"'), (",", "\\,"))
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


# --- export --------------------------------------------------------------------------------------


def _escape(text: str) -> str:
    for old, new in _EXPORT_ESCAPES:
        text = text.replace(old, new)
    return text


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def format_attributes(attributes: dict[str, str]) -> str:
    parts = []
    for name, value in attributes.items():
        text = f'"{value}"' if _looks_numeric(value) else _escape(value)
        parts.append(f"{_escape(name)}={text}")
    return ", ".join(parts)


def _text(parent: Element, tag: str, text: str = "") -> Element:
    element = SubElement(parent, tag)
    element.text = text
    return element


def _ellipse_bitmap(shape: Shape, width: int, height: int) -> np.ndarray:
    import cv2

    cx, cy, right, top = shape.points
    canvas = np.zeros((height, width), dtype=np.uint8)
    axes = (max(0, round(abs(right - cx))), max(0, round(abs(cy - top))))
    cv2.ellipse(canvas, (round(cx), round(cy)), axes, shape.rotation, 0, 360, 1, thickness=-1)
    return canvas.astype(bool)


def _png(bitmap: np.ndarray) -> bytes:
    from PIL import Image

    # RGB rather than grayscale: Datumaro merges the channels of LabelMe masks
    pixels = np.zeros((*bitmap.shape, 3), dtype=np.uint8)
    pixels[bitmap] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _corners(points: Sequence[float], rotation: float) -> list[float]:
    x1, y1, x2, y2 = points
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    cos, sin = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    out: list[float] = []
    for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2)):
        out += [cx + (x - cx) * cos - (y - cy) * sin, cy + (x - cx) * sin + (y - cy) * cos]
    return out


def _polygon(parent: Element, points: Sequence[float]) -> None:
    polygon = SubElement(parent, "polygon")
    for i in range(0, len(points) - 1, 2):
        pt = SubElement(polygon, "pt")
        _text(pt, "x", f"{points[i]:.2f}")
        _text(pt, "y", f"{points[i + 1]:.2f}")
    _text(polygon, "username")


def _item_xml(item: Item, image_name: str, folder: str, output: Output, mask_dir: str) -> bytes:
    root = Element("annotation")
    _text(root, "filename", image_name)
    _text(root, "folder", folder)
    source = SubElement(root, "source")
    _text(source, "sourceImage")
    _text(source, "sourceAnnotation", "annota")
    if item.width and item.height:
        size = SubElement(root, "imagesize")
        _text(size, "nrows", str(item.height))
        _text(size, "ncols", str(item.width))
    groups: dict[int, list[tuple[int, Element]]] = {}
    object_id = 0
    for shape in item.shapes:
        if shape.outside or shape.type not in ("rectangle", "polygon", "mask", "ellipse"):
            continue
        obj = SubElement(root, "object")
        _text(obj, "name", shape.label)
        _text(obj, "deleted", "0")
        _text(obj, "verified", "0")
        _text(obj, "occluded", "yes" if shape.occluded else "no")
        _text(obj, "date")
        _text(obj, "id", str(object_id))
        parts = SubElement(obj, "parts")
        if shape.group:
            groups.setdefault(shape.group, []).append((object_id, parts))
        else:
            _text(parts, "hasparts")
            _text(parts, "ispartof")
        if shape.type == "rectangle" and not shape.rotation % 360:
            _text(obj, "type", "bounding_box")
            x1, y1, x2, y2 = shape.points
            _polygon(obj, [x1, y1, x2, y1, x2, y2, x1, y2])
        elif shape.type == "rectangle":
            _polygon(obj, _corners(shape.points, shape.rotation))
        elif shape.type == "polygon":
            _polygon(obj, shape.points)
        else:
            if not item.width or not item.height:
                raise FormatError("the image size is unknown, a mask cannot be drawn", item=item.name)
            if shape.type == "mask":
                bitmap = cvat_to_bitmap(shape.points, item.width, item.height)
            else:
                bitmap = _ellipse_bitmap(shape, item.width, item.height)
            mask_name = f"{PurePosixPath(image_name).with_suffix('')}_mask_{object_id}.png"
            output.write(f"{mask_dir}{mask_name}", _png(bitmap))
            segm = SubElement(obj, "segm")
            _text(segm, "mask", mask_name)
            ys, xs = np.nonzero(bitmap)
            box = SubElement(segm, "box")
            found = xs.size > 0
            _text(box, "xmin", f"{xs.min() if found else 0:.2f}")
            _text(box, "ymin", f"{ys.min() if found else 0:.2f}")
            _text(box, "xmax", f"{xs.max() + 1 if found else 0:.2f}")
            _text(box, "ymax", f"{ys.max() + 1 if found else 0:.2f}")
            _text(segm, "username")
        _text(obj, "attributes", format_attributes(shape.attributes))
        object_id += 1
    for members in groups.values():
        leader, leader_parts = members[0]
        _text(leader_parts, "hasparts", ",".join(str(i) for i, _ in members[1:]))
        _text(leader_parts, "ispartof")
        for _, parts in members[1:]:
            _text(parts, "hasparts")
            _text(parts, "ispartof", str(leader))
    return bytes(tostring(root, encoding="utf-8", xml_declaration=False))


def export_labelme(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    for item in dataset.items():
        folder = "" if item.subset == DEFAULT_SUBSET else item.subset
        prefix = f"{folder}/" if folder else ""
        image_name = item.id + dataset.image_extension(item)
        if options.save_images:
            data = dataset.image(item)
            if data is not None:
                output.write(prefix + image_name, data)
        xml = _item_xml(item, image_name, folder, output, f"Masks/{prefix}")
        output.write(f"{prefix}{item.id}.xml", xml)


# --- import --------------------------------------------------------------------------------------


def _unescape(text: str) -> str:
    out = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts, current, i = [], [], 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def parse_attributes(text: str) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for part in _split_unescaped(text or "", ","):
        part = part.strip()
        if not part:
            continue
        pieces = _split_unescaped(part, "=")
        if len(pieces) == 1:
            attributes[_unescape(part)] = "true"
            continue
        name, value = pieces[0], "=".join(pieces[1:])
        value = value.strip()
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"' and not value.endswith('\\"'):
            value = value[1:-1]
        attributes[_unescape(name.strip())] = _unescape(value)
    return attributes


def _child_text(element: Element, tag: str) -> str:
    child = element.find(tag)
    return (child.text or "").strip() if child is not None else ""


class _LineRecorder(TreeBuilder):
    """Builds the tree and notes the line each ``<object>`` starts on, for error messages."""

    def __init__(self) -> None:
        super().__init__()
        self.parser: Any = None
        self.lines: dict[int, int] = {}

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        element = super().start(tag, attrs)
        if tag == "object":
            self.lines[id(element)] = self.parser.parser.CurrentLineNumber
        return element


def _parse(path: Path, root: Path) -> tuple[Element, dict[int, int]]:
    """The ``<annotation>`` element and the line of each ``<object>`` (by ``id()``)."""
    file = path.relative_to(root).as_posix()
    recorder = _LineRecorder()
    parser = SafeET.DefusedXMLParser(target=recorder)
    recorder.parser = parser
    try:
        with open(path, "rb") as stream:
            while chunk := stream.read(1 << 16):
                parser.feed(chunk)
        element: Element = parser.close()
    except ParseError as exc:
        line, column = exc.position
        raise FormatError(f"malformed XML: {exc.msg}", file=file, line=line, column=column + 1) from None
    except DefusedXmlException as exc:
        raise FormatError(f"refused XML construct: {exc}", file=file) from None
    if element.tag != "annotation":
        raise FormatError(f"the root element is <{element.tag}>, not <annotation>", file=file)
    return element, recorder.lines


class _Reader:
    def __init__(self, root: Path, options: ImportOptions) -> None:
        self.root = root
        self.options = options

    def xml_files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*.xml") if p.is_file())

    def item(self, path: Path) -> Item:
        root = self.root
        file = path.relative_to(root).as_posix()
        xml, lines = _parse(path, root)
        filename = _child_text(xml, "filename")
        if not filename:
            raise FormatError("<filename> is missing", file=file)
        folder = _child_text(xml, "folder")
        width = height = None
        size = xml.find("imagesize")
        if size is not None and _child_text(size, "nrows") and _child_text(size, "ncols"):
            try:
                height, width = int(_child_text(size, "nrows")), int(_child_text(size, "ncols"))
            except ValueError:
                raise FormatError("<imagesize> holds a value that is not an integer", file=file) from None
            if width <= 0 or height <= 0:
                raise FormatError("<imagesize> is not positive", file=file)
        image = first_file(
            root,
            [
                path.parent / filename,
                root / "Images" / folder / filename,
                root / folder / filename,
                root / filename,
            ],
        )
        if image is not None and (width is None or height is None):
            from PIL import Image

            try:
                with Image.open(image) as opened:
                    width, height = opened.size
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                raise FormatError(
                    f"cannot read the image: {exc}", file=image.relative_to(root).as_posix()
                ) from None
        mask_dirs = [root / "Masks" / folder, path.parent / "Masks", root / "Masks", path.parent]
        shapes, groups = self.objects(xml, lines, file, mask_dirs, width, height)
        return Item(
            name=filename,
            subset=folder or DEFAULT_SUBSET,
            width=width,
            height=height,
            shapes=shapes,
            image=str(image) if image else None,
        )

    def objects(
        self,
        xml: Element,
        lines: dict[int, int],
        file: str,
        mask_dirs: list[Path],
        width: int | None,
        height: int | None,
    ) -> tuple[list[Shape], dict[int, int]]:
        shapes: list[Shape] = []
        by_id: dict[int, list[Shape]] = {}
        children: dict[int, list[int]] = {}
        for index, obj in enumerate(xml.iter("object")):
            where: dict[str, Any] = {"file": file, "line": lines.get(id(obj)), "annotation": index}
            try:
                object_id = int(_child_text(obj, "id") or index)
            except ValueError:
                raise FormatError("<id> is not an integer", **where) from None
            label = _child_text(obj, "name")
            if not label:
                raise FormatError("<name> (the label) is empty", **where)
            parts = obj.find("parts")
            if parts is not None and _child_text(parts, "hasparts"):
                try:
                    children[object_id] = [
                        int(v) for v in _child_text(parts, "hasparts").split(",") if v.strip()
                    ]
                except ValueError:
                    raise FormatError("<hasparts> is not a list of ids", **where) from None
            if _child_text(obj, "deleted") not in ("", "0"):
                continue
            occluded = _child_text(obj, "occluded") == "yes"
            attributes = parse_attributes(_child_text(obj, "attributes"))
            made = self.shapes(obj, label, where, mask_dirs, width, height)
            for shape in made:
                shape.occluded = occluded
                shape.attributes = dict(attributes)
            by_id.setdefault(object_id, []).extend(made)
            shapes.extend(made)
        group_of: dict[int, int] = {}
        for number, (leader, members) in enumerate(children.items(), 1):
            for object_id in [leader, *members]:
                group_of.setdefault(object_id, number)
        for object_id, made in by_id.items():
            for shape in made:
                shape.group = group_of.get(object_id, 0)
        return shapes, group_of

    def shapes(
        self,
        obj: Element,
        label: str,
        where: dict[str, Any],
        mask_dirs: list[Path],
        width: int | None,
        height: int | None,
    ) -> list[Shape]:
        polygon = obj.find("polygon")
        if polygon is not None:
            points: list[float] = []
            for pt in polygon.iter("pt"):
                try:
                    points += [float(_child_text(pt, "x")), float(_child_text(pt, "y"))]
                except ValueError:
                    raise FormatError("a <pt> coordinate is not a number", **where) from None
            if _child_text(obj, "type") == "bounding_box":
                if len(points) < 4:
                    raise FormatError("a bounding box needs its corner points", **where)
                xs, ys = points[0::2], points[1::2]
                return [Shape(type="rectangle", label=label, points=[min(xs), min(ys), max(xs), max(ys)])]
            if len(points) < 6:
                # an empty or degenerate outline draws nothing: skipped, as CVAT does
                return []
            return [Shape(type="polygon", label=label, points=points)]
        segm = obj.find("segm")
        if segm is not None:
            return self.mask(segm, label, where, mask_dirs, width, height)
        raise FormatError("the object has neither <polygon> nor <segm>", **where)

    def mask(
        self,
        segm: Element,
        label: str,
        where: dict[str, Any],
        mask_dirs: list[Path],
        width: int | None,
        height: int | None,
    ) -> list[Shape]:
        from PIL import Image

        name = _child_text(segm, "mask")
        path = first_file(self.root, [folder / name for folder in mask_dirs]) if name else None
        if path is None:
            raise FormatError(f"the mask file {name!r} is missing", **where)
        try:
            with Image.open(path) as opened:
                pixels = np.asarray(opened)
        except Exception as exc:  # PIL raises many types for unreadable files
            raise FormatError(f"cannot read the mask {name!r}: {exc}", **where) from None
        bitmap = np.asarray(pixels.any(axis=2) if pixels.ndim == 3 else pixels, dtype=np.bool_)
        if width and height and bitmap.shape != (height, width):
            raise FormatError(
                f"the mask is {bitmap.shape[1]}x{bitmap.shape[0]}, the image {width}x{height}", **where
            )
        if self.options.conv_mask_to_poly:
            return [Shape(type="polygon", label=label, points=p) for p in bitmap_to_polygons(bitmap)]
        return [Shape(type="mask", label=label, points=bitmap_to_cvat(bitmap))]


def import_labelme(root: Path, options: ImportOptions) -> Dataset:
    reader = _Reader(root, options)
    files = reader.xml_files()
    if not files:
        raise FormatError("no LabelMe XML files found", file=root.name)
    known = {label.name: label for label in options.labels}
    names: dict[str, None] = {}
    for path in files:
        for obj in _parse(path, root)[0].iter("object"):
            name = _child_text(obj, "name")
            if name:
                names.setdefault(name)

    def items() -> Iterator[Item]:
        for path in files:
            yield reader.item(path)

    labels = [known.get(name) or LabelSpec(name=name) for name in names]
    return StreamedDataset(root.name, labels, items, size=len(files))


def detect_labelme(root: Path) -> float:
    for count, path in enumerate(sorted(root.rglob("*.xml"))):
        if count >= 3:
            break
        try:
            xml = SafeET.parse(path).getroot()
        except (ParseError, DefusedXmlException, OSError):
            return 0.0
        if xml.tag != "annotation":
            return 0.0
        if xml.find("imagesize") is not None or any(
            o.find("polygon") is not None or o.find("segm") is not None for o in xml.iter("object")
        ):
            return 0.9
        if xml.find("size") is not None:
            return 0.0
    return 0.0


@hookimpl
def register_formats(register: Callable[[Format], None]) -> None:
    register(
        Format(
            "LabelMe",
            "3.0",
            exporter=export_labelme,
            importer=import_labelme,
            carries=frozenset({"rectangle", "polygon", "mask", "attributes", "occluded", "group", "images"}),
            detect=detect_labelme,
            aliases=("labelme", "label_me"),
            description="LabelMe 3.0: one XML per image with polygons, boxes and mask PNGs.",
        )
    )


__all__ = ["format_attributes", "parse_attributes", "register_formats"]
