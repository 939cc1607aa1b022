"""The segmentation part of the PASCAL VOC layout, shared by "PASCAL VOC 1.1" and "Segmentation mask 1.1".

Not a plugin itself: both format plugins read and write the same files through it.

- ``labelmap.txt``: ``# label:color_rgb:parts:actions`` then one ``name:r,g,b::`` line per label,
  ``background`` first (the Datumaro/CVAT convention). Its order gives the class indices.
- ``SegmentationClass/<id>.png``: the class of every pixel, ``SegmentationObject/<id>.png``: the
  instance (1, 2, ...; 0 background, 255 void), both palette PNGs. Class PNGs are coloured with the
  labelmap colours, instance PNGs with the VOC colour map; RGB PNGs (as Datumaro writes them) are
  read through the same colours.
- ``ImageSets/Segmentation/<subset>.txt``: the ids of the items with segmentation PNGs.

On export, polygons and masks are painted in ``z_order`` order (later shapes on top), each one a new
instance: an object entirely covered by another one is lost. On import each instance becomes one
mask (or polygons sharing a group with ``conv_mask_to_poly``), labelled with the class most of its
pixels have.
"""

from __future__ import annotations

import io
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from annota.core.errors import FormatError, ValidationError
from annota.core.formats import masks
from annota.core.formats.model import Item, LabelSpec, Shape
from annota.core.formats.output import Output
from annota.core.formats.registry import ImportOptions

Color = tuple[int, int, int]

BACKGROUND = "background"
LABELMAP = "labelmap.txt"
CLASS_DIR = "SegmentationClass"
OBJECT_DIR = "SegmentationObject"
SEGMENTATION_SETS = "ImageSets/Segmentation"
VOID_INDEX = 255
VOID_COLOR: Color = (224, 224, 192)
#: the 20 PASCAL VOC classes, used when a dataset has no labelmap
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
    "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
_HEX = re.compile(r"^#([0-9a-fA-F]{6})$")


def voc_color(index: int) -> Color:
    """The PASCAL VOC colour of a class or instance index (bits of the index spread over r, g, b)."""
    r = g = b = 0
    for shift in range(7, -1, -1):
        r |= (index & 1) << shift
        g |= ((index >> 1) & 1) << shift
        b |= ((index >> 2) & 1) << shift
        index >>= 3
    return r, g, b


_VOC_PALETTE = [voc_color(i) for i in range(256)]
_VOC_PALETTE[VOID_INDEX] = VOID_COLOR


def class_colors(labels: Sequence[LabelSpec]) -> list[tuple[str, Color]]:
    """``(name, colour)`` per class index: background first, then the labels. A label keeps its own
    colour unless it is missing or taken; then the first free VOC colour is used."""
    entries: list[tuple[str, Color]] = [(BACKGROUND, (0, 0, 0))]
    used = {(0, 0, 0), VOID_COLOR}
    pending: list[str] = []
    for label in labels:
        if label.name == BACKGROUND:
            continue
        found = _HEX.match(label.color or "")
        color: Color | None = None
        if found:
            value = int(found.group(1), 16)
            color = (value >> 16, (value >> 8) & 0xFF, value & 0xFF)
        if color is None or color in used:
            pending.append(label.name)
            entries.append((label.name, (0, 0, 0)))
            continue
        used.add(color)
        entries.append((label.name, color))
    candidates = (voc_color(i) for i in range(1, 1 << 24))
    for index, (name, _) in enumerate(entries):
        if name in pending:
            color = next(c for c in candidates if c not in used)
            used.add(color)
            entries[index] = (name, color)
    return entries


def write_labelmap(output: Output, entries: Sequence[tuple[str, Color]]) -> None:
    with output.open_text(LABELMAP) as stream:
        stream.write("# label:color_rgb:parts:actions\n")
        for name, (r, g, b) in entries:
            stream.write(f"{name}:{r},{g},{b}::\n")


def read_labelmap(root: Path) -> list[tuple[str, Color | None]] | None:
    """The labelmap's ``(name, colour)`` lines, or None when the dataset has none."""
    path = root / LABELMAP
    if not path.is_file():
        return None
    entries: list[tuple[str, Color | None]] = []
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split(":")
            if len(fields) != 4:
                raise FormatError(
                    f"expected 4 ':'-separated fields, found {len(fields)}", file=LABELMAP, line=number
                )
            name, color_text = fields[0], fields[1]
            color: Color | None = None
            if color_text:
                try:
                    r, g, b = (int(v) for v in color_text.split(","))
                except ValueError:
                    raise FormatError(
                        f"bad colour {color_text!r}, expected r,g,b", file=LABELMAP, line=number
                    ) from None
                color = (r, g, b)
            if any(name == known for known, _ in entries):
                raise FormatError(f"label {name!r} is defined twice", file=LABELMAP, line=number)
            entries.append((name, color))
    return entries


def import_classes(root: Path, options: ImportOptions) -> tuple[list[LabelSpec], list[tuple[str, Color]]]:
    """The labels a VOC-style dataset declares and its class colours (background first).

    Without a labelmap the labels of the task imported into are used, else the 20 VOC classes."""
    known = {label.name: label for label in options.labels}
    entries = read_labelmap(root)
    if entries is None:
        names = [label.name for label in options.labels] or list(VOC_CLASSES)
        if BACKGROUND not in names:
            names.insert(0, BACKGROUND)
        entries = [(name, None) for name in names]
    else:
        names = [name for name, _ in entries]
        if BACKGROUND not in names:
            entries.insert(0, (BACKGROUND, (0, 0, 0)))
    # classes without colours get VOC colours by index, as the VOC colour map does
    colors = [
        (name, color if color is not None else voc_color(index))
        for index, (name, color) in enumerate(entries)
    ]
    labels = []
    for name, (r, g, b) in colors:
        if name == BACKGROUND:
            continue
        existing = known.get(name)
        labels.append(
            LabelSpec(
                name=name,
                type=existing.type if existing else "any",
                color=f"#{r:02x}{g:02x}{b:02x}",
                attributes=list(existing.attributes) if existing else [],
            )
        )
    return labels, colors


# --- export ------------------------------------------------------------------------------------

SEGMENT_TYPES = frozenset({"polygon", "mask"})


def has_segments(item: Item) -> bool:
    return any(shape.type in SEGMENT_TYPES and not shape.outside for shape in item.shapes)


def _size(item: Item) -> tuple[int, int]:
    if item.width and item.height:
        return item.width, item.height
    # without a known size, the canvas is made just large enough for the shapes
    width = height = 1
    for shape in item.shapes:
        if shape.type == "mask":
            _, _, right, bottom = masks.cvat_bbox(shape.points)
            width, height = max(width, right + 1), max(height, bottom + 1)
        elif shape.type == "polygon":
            width = max(width, int(max(shape.points[0::2])) + 1)
            height = max(height, int(max(shape.points[1::2])) + 1)
    return width, height


def rasterise(item: Item, class_index: dict[str, int]) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """The class and instance index maps of an item's polygons and masks."""
    width, height = _size(item)
    classes = np.zeros((height, width), dtype=np.uint8)
    instances = np.zeros((height, width), dtype=np.uint8)
    segments = [
        s for s in item.shapes if s.type in SEGMENT_TYPES and not s.outside and s.label in class_index
    ]
    segments.sort(key=lambda s: s.z_order)
    if len(segments) >= VOID_INDEX:
        raise ValidationError(
            f"Item {item.name!r} has {len(segments)} polygons and masks; "
            "the VOC instance PNG holds at most 254."
        )
    for number, shape in enumerate(segments, 1):
        if shape.type == "mask":
            bitmap = masks.cvat_to_bitmap(shape.points, width, height)
        else:
            bitmap = masks.polygons_to_bitmap([shape.points], width, height)
        classes[bitmap] = class_index[shape.label]
        instances[bitmap] = number
    return classes, instances


def _png(indices: NDArray[np.uint8], palette: Sequence[Color]) -> bytes:
    image = Image.fromarray(indices, mode="P")
    flat = [channel for color in palette for channel in color]
    image.putpalette(flat + [0] * (768 - len(flat)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_pngs(output: Output, item: Item, colors: Sequence[tuple[str, Color]]) -> None:
    """``SegmentationClass/<id>.png`` and ``SegmentationObject/<id>.png`` of an item."""
    class_index = {name: index for index, (name, _) in enumerate(colors)}
    classes, instances = rasterise(item, class_index)
    palette = [color for _, color in colors][:256]
    if len(palette) <= VOID_INDEX:
        palette = palette + [(0, 0, 0)] * (VOID_INDEX - len(palette)) + [VOID_COLOR]
    output.write(f"{CLASS_DIR}/{item.id}.png", _png(classes, palette))
    output.write(f"{OBJECT_DIR}/{item.id}.png", _png(instances, _VOC_PALETTE))


class SubsetLists:
    """Item ids per subset, buffered in temporary files until the lists are written at the end."""

    def __init__(self) -> None:
        self.files: dict[str, IO[str]] = {}

    def add(self, subset: str, line: str) -> None:
        stream = self.files.get(subset)
        if stream is None:
            stream = self.files[subset] = tempfile.TemporaryFile("w+", encoding="utf-8")
        stream.write(line + "\n")

    def lines(self, subset: str) -> Iterator[str]:
        stream = self.files[subset]
        stream.seek(0)
        for line in stream:
            yield line.rstrip("\n")

    def write(self, output: Output, directory: str) -> None:
        for subset in self.files:
            with output.open_text(f"{directory}/{subset}.txt") as target:
                for line in self.lines(subset):
                    target.write(line + "\n")

    def close(self) -> None:
        for stream in self.files.values():
            stream.close()


# --- import ------------------------------------------------------------------------------------


def _packed(rgb: NDArray[np.uint8]) -> NDArray[np.int64]:
    data = rgb.astype(np.int64)
    packed: NDArray[np.int64] = (data[..., 0] << 16) | (data[..., 1] << 8) | data[..., 2]
    return packed


def _indices(path: Path, root: Path, colors: Sequence[Color], what: str) -> NDArray[np.int64]:
    """The index of every pixel of a VOC PNG: its colour's position in ``colors`` (void is 255)."""
    name = path.relative_to(root).as_posix()
    try:
        with Image.open(path) as image:
            if image.mode in ("L", "I", "I;16") and what == "instance":
                return np.asarray(image, dtype=np.int64)
            rgb = np.asarray(image.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise FormatError(f"cannot read the {what} PNG: {exc}", file=name) from None
    lookup = {(r << 16) | (g << 8) | b: index for index, (r, g, b) in enumerate(colors)}
    lookup[(VOID_COLOR[0] << 16) | (VOID_COLOR[1] << 8) | VOID_COLOR[2]] = VOID_INDEX
    values, inverse = np.unique(_packed(rgb), return_inverse=True)
    mapped = np.empty(len(values), dtype=np.int64)
    for position, value in enumerate(values.tolist()):
        index = lookup.get(value)
        if index is None:
            color = (value >> 16, (value >> 8) & 0xFF, value & 0xFF)
            raise FormatError(f"the colour {color} is not a known {what} colour", file=name)
        mapped[position] = index
    return mapped[inverse].reshape(rgb.shape[:2])


def read_segments(
    root: Path, item_id: str, colors: Sequence[tuple[str, Color]], options: ImportOptions, group_start: int
) -> tuple[list[Shape], tuple[int, int] | None, int]:
    """The mask (or polygon) shapes of an item from its PNGs, the ``(width, height)`` of the PNGs,
    and the last group id used."""
    class_path = root / CLASS_DIR / f"{item_id}.png"
    object_path = root / OBJECT_DIR / f"{item_id}.png"
    palette = [color for _, color in colors]
    classes = _indices(class_path, root, palette, "class") if class_path.is_file() else None
    instances = _indices(object_path, root, _VOC_PALETTE, "instance") if object_path.is_file() else None
    reference = instances if instances is not None else classes
    if reference is None:
        return [], None, group_start
    if classes is not None and instances is not None and classes.shape != instances.shape:
        raise FormatError(
            f"the class PNG is {classes.shape[1]}x{classes.shape[0]}, "
            f"the instance PNG {instances.shape[1]}x{instances.shape[0]}",
            file=object_path.relative_to(root).as_posix(),
        )
    regions: list[tuple[int, NDArray[np.bool_]]] = []
    if instances is not None:
        for instance in np.unique(instances).tolist():
            if instance in (0, VOID_INDEX):
                continue
            bitmap = instances == instance
            label_index = 0
            if classes is not None:
                counts = np.bincount(classes[bitmap], minlength=len(palette))
                counts[0] = 0
                if len(counts) > VOID_INDEX:
                    counts[VOID_INDEX] = 0
                label_index = int(counts.argmax())
            if label_index == 0:
                raise FormatError(
                    f"instance {instance} has no class in {CLASS_DIR}/{item_id}.png",
                    file=object_path.relative_to(root).as_posix(),
                    annotation=instance,
                )
            regions.append((label_index, bitmap))
    else:
        assert classes is not None
        for label_index in np.unique(classes).tolist():
            if label_index not in (0, VOID_INDEX):
                regions.append((label_index, classes == label_index))
    shapes: list[Shape] = []
    group = group_start
    for label_index, bitmap in regions:
        label = colors[label_index][0]
        if options.conv_mask_to_poly:
            polygons = masks.bitmap_to_polygons(bitmap)
            shape_group = 0
            if len(polygons) > 1:
                group += 1
                shape_group = group
            shapes.extend(Shape(type="polygon", label=label, points=p, group=shape_group) for p in polygons)
        else:
            shapes.append(Shape(type="mask", label=label, points=masks.bitmap_to_cvat(bitmap)))
    height, width = reference.shape
    return shapes, (int(width), int(height)), group


def read_list(path: Path, root: Path) -> list[str]:
    """The ids of an ``ImageSets`` list (first field of each line)."""
    ids = []
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            line = line.strip()
            if line and not line.startswith("#"):
                ids.append(line.split()[0])
    return ids


__all__ = [
    "BACKGROUND",
    "CLASS_DIR",
    "LABELMAP",
    "OBJECT_DIR",
    "SEGMENTATION_SETS",
    "SubsetLists",
    "class_colors",
    "has_segments",
    "import_classes",
    "rasterise",
    "read_labelmap",
    "read_list",
    "read_segments",
    "voc_color",
    "write_labelmap",
    "write_pngs",
]
