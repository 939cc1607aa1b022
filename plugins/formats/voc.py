"""PASCAL VOC 1.1: the VOC development kit layout, as CVAT and Datumaro write it.

- ``Annotations/<id>.xml``: ``filename``, ``size``, ``segmented`` and one ``object`` per rectangle
  (``name``, ``pose``, ``truncated``, ``difficult``, ``occluded``, ``bndbox`` with ``xmin ymin xmax
  ymax`` in pixels as they are, no 1-based shift, and ``attributes/attribute`` with ``name`` and
  ``value`` for the other attributes). The shape attributes ``pose``, ``truncated`` and ``difficult``
  fill those elements; on import they come back only when they say something (a pose other than
  ``Unspecified``, ``truncated``/``difficult`` set). A rotated rectangle is written as the box around
  its corners: VOC has no rotation.
- ``ImageSets/Main/<subset>.txt`` lists the items; ``ImageSets/Main/<label>_<subset>.txt`` marks
  the frame tags with ``1`` / ``-1`` (written when the subset has tags).
- Polygons and masks become ``SegmentationClass``/``SegmentationObject`` PNGs (see
  ``_voc_segmentation``), imported back as one mask per instance (or polygons with
  ``conv_mask_to_poly``).
- ``labelmap.txt`` names the labels; ``JPEGImages/<id>.<ext>`` holds the images when saved.

Other shape types, tracks (only their visible shapes, as rectangles) and z_order are not kept;
coordinates outside the image are kept. The importer holds the tags of one subset in memory.

This plugin also registers "Segmentation mask 1.1" (``segmentation_mask``), the segmentation part of
the same layout; the two share ``_voc_segmentation``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree import ElementTree as ET

from defusedxml import DefusedXmlException

from annota.core import hookimpl
from annota.core.errors import FormatError
from annota.core.formats import safe_xml
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.model import DEFAULT_SUBSET, Dataset, Item, Shape, Tag
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, Format, ImportOptions
from annota.plugins.formats import _voc_segmentation as seg
from annota.plugins.formats.segmentation_mask import SEGMENTATION_MASK

MAIN_SETS = "ImageSets/Main"
#: attribute names that have their own element in an ``object``
_OWN_ELEMENTS = ("pose", "truncated", "difficult")
_TRUE = ("1", "true", "True", "yes")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _box(shape: Shape) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = shape.points
    if not shape.rotation:
        return x0, y0, x1, y1
    import math

    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    angle = math.radians(shape.rotation)
    cos, sin = math.cos(angle), math.sin(angle)
    xs, ys = [], []
    for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1)):
        dx, dy = x - cx, y - cy
        xs.append(cx + dx * cos - dy * sin)
        ys.append(cy + dx * sin + dy * cos)
    return min(xs), min(ys), max(xs), max(ys)


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def _xml(item: Item, file_name: str, segmented: bool) -> bytes:
    root = ET.Element("annotation")
    _sub(root, "folder", "")
    _sub(root, "filename", file_name)
    source = _sub(root, "source")
    _sub(source, "database", "Unknown")
    _sub(source, "annotation", "Unknown")
    _sub(source, "image", "Unknown")
    size = _sub(root, "size")
    _sub(size, "width", str(item.width or 0))
    _sub(size, "height", str(item.height or 0))
    _sub(size, "depth", "3")
    _sub(root, "segmented", "1" if segmented else "0")
    for shape in item.shapes:
        if shape.type != "rectangle" or shape.outside:
            continue
        attributes = shape.attributes
        obj = _sub(root, "object")
        _sub(obj, "name", shape.label)
        _sub(obj, "pose", attributes.get("pose") or "Unspecified")
        _sub(obj, "truncated", "1" if attributes.get("truncated") in _TRUE else "0")
        _sub(obj, "difficult", "1" if attributes.get("difficult") in _TRUE else "0")
        _sub(obj, "occluded", "1" if shape.occluded else "0")
        box = _sub(obj, "bndbox")
        xmin, ymin, xmax, ymax = _box(shape)
        for tag, coordinate in (("xmin", xmin), ("ymin", ymin), ("xmax", xmax), ("ymax", ymax)):
            _sub(box, tag, _number(coordinate))
        rest = [(k, v) for k, v in attributes.items() if k not in _OWN_ELEMENTS]
        if rest:
            container = _sub(obj, "attributes")
            for name, value in rest:
                attribute = _sub(container, "attribute")
                _sub(attribute, "name", name)
                _sub(attribute, "value", value)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def _file_name(item: Item, dataset: Dataset) -> str:
    name: str = PurePosixPath(item.name).name
    return name if PurePosixPath(name).suffix else name + dataset.image_extension(item)


def export(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    colors = seg.class_colors(list(dataset.labels))
    label_names = [name for name, _ in colors[1:]]
    main, segmentation, tags = seg.SubsetLists(), seg.SubsetLists(), seg.SubsetLists()
    tagged: set[str] = set()
    try:
        for item in dataset.items():
            item_id = item.id
            main.add(item.subset, item_id)
            tag_labels = sorted({tag.label for tag in item.tags})
            if tag_labels:
                tagged.add(item.subset)
            tags.add(item.subset, "\t".join([item_id, *tag_labels]))
            segmented = seg.has_segments(item)
            file_name = _file_name(item, dataset)
            output.write(f"Annotations/{item_id}.xml", _xml(item, file_name, segmented))
            if segmented:
                seg.write_pngs(output, item, colors)
                segmentation.add(item.subset, item_id)
            if options.save_images:
                data = dataset.image(item)
                if data is not None:
                    output.write(f"JPEGImages/{item_id}{PurePosixPath(file_name).suffix}", data)
        seg.write_labelmap(output, colors)
        if not main.files:
            output.write(f"{MAIN_SETS}/{DEFAULT_SUBSET}.txt", b"")
        main.write(output, MAIN_SETS)
        segmentation.write(output, seg.SEGMENTATION_SETS)
        for subset in sorted(tagged):
            for label in label_names:
                with output.open_text(f"{MAIN_SETS}/{label}_{subset}.txt") as stream:
                    for line in tags.lines(subset):
                        item_id, *present = line.split("\t")
                        stream.write(f"{item_id} {'1' if label in present else '-1'}\n")
    finally:
        for lists in (main, segmentation, tags):
            lists.close()


# --- import ------------------------------------------------------------------------------------


def _subsets(root: Path) -> list[str]:
    names: set[str] = set()
    for directory in (root / MAIN_SETS, root / seg.SEGMENTATION_SETS):
        if directory.is_dir():
            names.update(p.stem for p in directory.glob("*.txt") if "_" not in p.stem)
    return sorted(names)


def _subset_ids(root: Path, subset: str) -> list[str]:
    ids: dict[str, None] = {}
    for directory in (root / MAIN_SETS, root / seg.SEGMENTATION_SETS):
        path = directory / f"{subset}.txt"
        if path.is_file():
            ids.update(dict.fromkeys(seg.read_list(path)))
    return list(ids)


def _tags(root: Path, subset: str, labels: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for label in labels:
        path = root / MAIN_SETS / f"{label}_{subset}.txt"
        if not path.is_file():
            continue
        name = path.relative_to(root).as_posix()
        with open(path, encoding="utf-8") as stream:
            for number, line in enumerate(stream, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = line.rsplit(maxsplit=1)
                if len(parts) != 2 or parts[1] not in ("1", "0", "-1"):
                    raise FormatError("expected '<id> 1', '<id> 0' or '<id> -1'", file=name, line=number)
                if parts[1] == "1":
                    found.setdefault(parts[0], []).append(label)
    return found


def _text(element: ET.Element, tag: str) -> str | None:
    child = element.find(tag)
    return child.text.strip() if child is not None and child.text is not None else None


def _parse_xml(path: Path, root: Path) -> ET.Element:
    name = path.relative_to(root).as_posix()
    try:
        element = safe_xml.fromstring(path.read_bytes())
    except ET.ParseError as exc:
        line, column = exc.position
        # expat appends its own 0-based "line N, column M"; the location is given 1-based instead
        reason = str(exc).split(": line ")[0]
        raise FormatError(f"malformed XML: {reason}", file=name, line=line, column=column + 1) from None
    except DefusedXmlException as exc:
        raise FormatError(f"forbidden XML construct: {exc}", file=name) from None
    if element.tag != "annotation":
        raise FormatError(f"not a PASCAL VOC annotation: the root element is <{element.tag}>", file=name)
    return element


def _objects(document: ET.Element, file: str, labels: set[str]) -> list[Shape]:
    shapes = []
    for index, obj in enumerate(document.findall("object")):
        where = f"/annotation/object[{index + 1}]"

        def fail(message: str, suffix: str = "", where: str = where, index: int = index) -> FormatError:
            return FormatError(message, file=file, pointer=where + suffix, annotation=index)

        label = _text(obj, "name")
        if not label:
            raise fail("the object has no name", "/name")
        if label not in labels:
            raise fail(f"unknown label {label!r}", "/name")
        box = obj.find("bndbox")
        if box is None:
            raise fail("the object has no bndbox")
        try:
            xmin, ymin, xmax, ymax = (
                float(_text(box, tag) or "") for tag in ("xmin", "ymin", "xmax", "ymax")
            )
        except ValueError:
            raise fail("bndbox needs numeric xmin, ymin, xmax and ymax", "/bndbox") from None
        if xmax < xmin or ymax < ymin:
            raise fail(f"the box has a negative {'width' if xmax < xmin else 'height'}", "/bndbox")
        attributes: dict[str, str] = {}
        pose = _text(obj, "pose")
        if pose and pose != "Unspecified":
            attributes["pose"] = pose
        for flag in ("truncated", "difficult"):
            if _text(obj, flag) in _TRUE:
                attributes[flag] = "true"
        for attribute in obj.iterfind("attributes/attribute"):
            name = _text(attribute, "name")
            if name:
                attributes[name] = _text(attribute, "value") or ""
        shapes.append(
            Shape(
                type="rectangle",
                label=label,
                points=[xmin, ymin, xmax, ymax],
                occluded=_text(obj, "occluded") in _TRUE,
                attributes=attributes,
            )
        )
    return shapes


def _image(root: Path, item_id: str, hint: str) -> Path | None:
    directory = root / "JPEGImages"
    if not directory.is_dir():
        return None
    for suffix in dict.fromkeys((hint.lower(), *_IMAGE_SUFFIXES)):
        if suffix:
            for candidate in (directory / f"{item_id}{suffix}", directory / f"{item_id}{suffix.upper()}"):
                if candidate.is_file():
                    return candidate
    return None


def _size(document: ET.Element | None) -> tuple[int | None, int | None]:
    if document is None:
        return None, None
    try:
        width = int(float(_text(document, "size/width") or 0)) or None
        height = int(float(_text(document, "size/height") or 0)) or None
    except ValueError:
        return None, None
    return width, height


def load(root: Path, options: ImportOptions) -> Dataset:
    if not (root / "Annotations").is_dir() and not (root / "ImageSets").is_dir():
        raise FormatError(
            "no Annotations or ImageSets directory: not a PASCAL VOC dataset", file=root.name or "."
        )
    labels, colors = seg.import_classes(root, options)
    label_names = [label.name for label in labels]
    known = {name for name, _ in colors}
    subsets = _subsets(root)

    def items() -> Iterator[Item]:
        group = 0
        listed = [(subset, _subset_ids(root, subset)) for subset in subsets]
        if not listed:
            annotations = root / "Annotations"
            ids = sorted(
                p.relative_to(annotations).with_suffix("").as_posix() for p in annotations.rglob("*.xml")
            )
            listed = [(DEFAULT_SUBSET, ids)]
        for subset, ids in listed:
            tags = _tags(root, subset, label_names)
            for item_id in ids:
                xml_path = root / "Annotations" / f"{item_id}.xml"
                document = _parse_xml(xml_path, root) if xml_path.is_file() else None
                file = xml_path.relative_to(root).as_posix()
                shapes = _objects(document, file, known) if document is not None else []
                segments, png_size, group = seg.read_segments(root, item_id, colors, options, group)
                width, height = _size(document)
                if png_size and not (width and height):
                    width, height = png_size
                hint = PurePosixPath(_text(document, "filename") or "").suffix if document is not None else ""
                image = _image(root, item_id, hint)
                suffix = image.suffix if image is not None else hint
                yield Item(
                    name=item_id + suffix,
                    subset=subset,
                    width=width,
                    height=height,
                    tags=[Tag(label=label) for label in tags.get(item_id, ())],
                    shapes=shapes + segments,
                    image=str(image) if image is not None else None,
                )

    return StreamedDataset(root.name, labels, items)


def detect(root: Path) -> float:
    main = root / MAIN_SETS
    annotations = root / "Annotations"
    if main.is_dir() and any(main.glob("*.txt")):
        return 1.0 if annotations.is_dir() else 0.7
    if annotations.is_dir():
        for path in annotations.rglob("*.xml"):
            with open(path, "rb") as stream:
                return 0.8 if b"<annotation" in stream.read(4096) else 0.0
    if (root / seg.SEGMENTATION_SETS).is_dir():
        return 0.4
    return 0.0


@hookimpl
def register_formats(register: Any) -> None:
    register(
        Format(
            name="PASCAL VOC",
            version="1.1",
            exporter=export,
            importer=load,
            export_ext="ZIP",
            import_ext="ZIP",
            carries=frozenset({"tag", "rectangle", "mask", "attributes", "images", "occluded"}),
            detect=detect,
            aliases=("voc", "pascal_voc"),
            description="PASCAL VOC: boxes in XML, tags in image sets, segmentation PNGs.",
        )
    )
    register(SEGMENTATION_MASK)
