"""Segmentation maps shared by the mask formats (PASCAL VOC, Segmentation mask, CamVid, Cityscapes,
KITTI, ICDAR Segmentation, MOTS): shapes painted into index maps on export, index maps read back
into masks or polygons on import, colour maps, and the PNGs that hold them.

On export the polygons, masks (and, where a format asks, rotated boxes) of a frame are painted in
``z_order`` order, later shapes on top, each one an instance of its own unless it shares a group
with an earlier one: an object entirely covered by another one is lost. On import each region
becomes one mask, or with ``conv_mask_to_poly`` its outer contours as polygons sharing a group.
"""

from __future__ import annotations

import io
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from annota.core.errors import FormatError
from annota.core.formats import masks
from annota.core.formats.model import Item, LabelSpec, Shape
from annota.core.formats.output import Output

Color = tuple[int, int, int]

BACKGROUND = "background"
SEGMENT_TYPES = frozenset({"polygon", "mask"})
_HEX = re.compile(r"^#([0-9a-fA-F]{6})$")


def voc_color(index: int) -> Color:
    """The PASCAL VOC colour map's colour of an index (bits of the index spread over r, g, b), which
    Datumaro also uses for classes without a colour."""
    r = g = b = 0
    for shift in range(7, -1, -1):
        r |= (index & 1) << shift
        g |= ((index >> 1) & 1) << shift
        b |= ((index >> 2) & 1) << shift
        index >>= 3
    return r, g, b


def label_color(label: LabelSpec) -> Color | None:
    """A label's ``#rrggbb`` colour, or None."""
    found = _HEX.match(label.color or "")
    if not found:
        return None
    value = int(found.group(1), 16)
    return value >> 16, (value >> 8) & 0xFF, value & 0xFF


def hex_color(color: Color) -> str:
    return "#{:02x}{:02x}{:02x}".format(*color)


def class_colors(labels: Sequence[LabelSpec], *, reserved: Iterable[Color] = ()) -> list[tuple[str, Color]]:
    """``(name, colour)`` per class index: background (black) first, then the labels. A label keeps
    its own colour unless it is missing or taken (or ``reserved``); then the first free VOC colour
    is used."""
    entries: list[tuple[str, Color]] = [(BACKGROUND, (0, 0, 0))]
    used = {(0, 0, 0), *reserved}
    pending: set[int] = set()
    for label in labels:
        if label.name == BACKGROUND:
            continue
        color = label_color(label)
        if color is None or color in used:
            pending.add(len(entries))
            entries.append((label.name, (0, 0, 0)))
            continue
        used.add(color)
        entries.append((label.name, color))
    candidates = (voc_color(i) for i in range(1, 1 << 24))
    for index in sorted(pending):
        color = next(c for c in candidates if c not in used)
        used.add(color)
        entries[index] = (entries[index][0], color)
    return entries


def labels_of_colors(
    entries: Sequence[tuple[str, Color]], known: Sequence[LabelSpec] = ()
) -> list[LabelSpec]:
    """The labels of a dataset's colour map (background left out), keeping the type and attributes
    of the task's labels of the same name."""
    by_name = {label.name: label for label in known}
    labels = []
    for name, color in entries:
        if name == BACKGROUND:
            continue
        existing = by_name.get(name)
        labels.append(
            LabelSpec(
                name=name,
                type=existing.type if existing else "any",
                color=hex_color(color),
                attributes=list(existing.attributes) if existing else [],
            )
        )
    return labels


# --- "r g b name" colour maps (label_colors.txt of CamVid, Cityscapes, KITTI) -----------------


def write_color_names(output: Output, path: str, colors: Sequence[tuple[str, Color]]) -> None:
    with output.open_text(path) as stream:
        stream.writelines(f"{r} {g} {b} {name}\n" for name, (r, g, b) in colors)


def read_color_names(path: Path, file: str) -> list[tuple[str, Color | None]]:
    """``r g b name`` lines (or ``name`` alone: a class without a colour)."""
    entries: list[tuple[str, Color | None]] = []
    with open(path, encoding="utf-8-sig") as stream:
        for lineno, line in enumerate(stream, 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            color: Color | None = None
            if len(fields) == 1:
                name = fields[0]
            else:
                try:
                    r, g, b = (int(v) for v in fields[:3])
                except ValueError:
                    raise FormatError(
                        f"expected 'r g b name', found {line.strip()!r}", file=file, line=lineno
                    ) from None
                if len(fields) < 4 or not all(0 <= v <= 255 for v in (r, g, b)):
                    raise FormatError(
                        f"expected 'r g b name', found {line.strip()!r}", file=file, line=lineno
                    )
                name, color = " ".join(fields[3:]), (r, g, b)
            if any(name == known for known, _ in entries):
                raise FormatError(f"label {name!r} is defined twice", file=file, line=lineno)
            entries.append((name, color))
    return entries


#: the Cityscapes classes (an id is a position), which KITTI's segmentation benchmark uses too
CITYSCAPES_CLASSES: tuple[tuple[str, Color], ...] = (
    ("unlabeled", (0, 0, 0)), ("egovehicle", (0, 0, 0)), ("rectificationborder", (0, 0, 0)),
    ("outofroi", (0, 0, 0)), ("static", (0, 0, 0)), ("dynamic", (111, 74, 0)), ("ground", (81, 0, 81)),
    ("road", (128, 64, 128)), ("sidewalk", (244, 35, 232)), ("parking", (250, 170, 160)),
    ("railtrack", (230, 150, 140)), ("building", (70, 70, 70)), ("wall", (102, 102, 156)),
    ("fence", (190, 153, 153)), ("guardrail", (180, 165, 180)), ("bridge", (150, 100, 100)),
    ("tunnel", (150, 120, 90)), ("pole", (153, 153, 153)), ("polegroup", (153, 153, 153)),
    ("trafficlight", (250, 170, 30)), ("trafficsign", (220, 220, 0)), ("vegetation", (107, 142, 35)),
    ("terrain", (152, 251, 152)), ("sky", (70, 130, 180)), ("person", (220, 20, 60)), ("rider", (255, 0, 0)),
    ("car", (0, 0, 142)), ("truck", (0, 0, 70)), ("bus", (0, 60, 100)), ("caravan", (0, 0, 90)),
    ("trailer", (0, 0, 110)), ("train", (0, 80, 100)), ("motorcycle", (0, 0, 230)),
    ("bicycle", (119, 11, 32)), ("licenseplate", (0, 0, 142)),
)  # fmt: skip


def dataset_classes(
    path: Path,
    file: str,
    labels: Sequence[LabelSpec],
    default: Sequence[tuple[str, Color]],
    *,
    background: Callable[[list[tuple[str, Color | None]]], None] | None = None,
) -> list[tuple[str, Color]]:
    """The classes of a dataset with an ``r g b name`` colour map at ``path``: the map's, else (as
    CVAT writes the task's map in) the task's ``labels`` with background first, else ``default``.
    ``background`` may reorder or extend the entries; classes without a colour get the VOC colour
    of their index."""
    entries: list[tuple[str, Color | None]]
    if path.is_file():
        entries = list(read_color_names(path, file))
    elif labels:
        entries = list(class_colors(labels))
    else:
        entries = list(default)
    if background is not None:
        background(entries)
    return [
        (name, color if color is not None else voc_color(index))
        for index, (name, color) in enumerate(entries)
    ]


# --- export ------------------------------------------------------------------------------------


def segments(item: Item, labels: Iterable[str] | None = None, *, rectangles: str = "") -> list[Shape]:
    """The shapes of an item that are painted, in painting order (``z_order``): polygons and masks
    not outside, of ``labels`` when given, and rectangles too: the rotated ones with
    ``rectangles="rotated"``, all with ``rectangles="all"``."""
    wanted = set(labels) if labels is not None else None

    def painted(shape: Shape) -> bool:
        if shape.type == "rectangle":
            return rectangles == "all" or rectangles == "rotated" and bool(shape.rotation)
        return shape.type in SEGMENT_TYPES

    found = [
        shape
        for shape in item.shapes
        if not shape.outside and painted(shape) and (wanted is None or shape.label in wanted)
    ]
    found.sort(key=lambda s: s.z_order)
    return found


def has_segments(item: Item) -> bool:
    return any(shape.type in SEGMENT_TYPES and not shape.outside for shape in item.shapes)


def _box_corners(shape: Shape) -> list[float]:
    x1, y1, x2, y2 = shape.points[:4]
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    angle = np.deg2rad(shape.rotation)
    cos, sin = float(np.cos(angle)), float(np.sin(angle))
    corners = []
    for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2)):
        dx, dy = x - cx, y - cy
        corners += [cx + dx * cos - dy * sin, cy + dx * sin + dy * cos]
    return corners


def outline(shape: Shape) -> list[float]:
    """A polygon's points, or a rectangle's corners (rotated): what is painted for it."""
    return _box_corners(shape) if shape.type == "rectangle" else list(shape.points)


def canvas_size(item: Item) -> tuple[int, int]:
    """The item's ``(width, height)``; without a known size, a canvas just large enough for its
    polygons and masks."""
    if item.width and item.height:
        return item.width, item.height
    width = height = 1
    for shape in item.shapes:
        if shape.type == "mask":
            _, _, right, bottom = masks.cvat_bbox(shape.points)
            width, height = max(width, right + 1), max(height, bottom + 1)
        elif shape.type in ("polygon", "rectangle") and shape.points:
            points = outline(shape)
            width = max(width, int(max(points[0::2])) + 1)
            height = max(height, int(max(points[1::2])) + 1)
    return width, height


def bitmap(shape: Shape, width: int, height: int) -> masks.Bitmap:
    """The pixels a polygon, mask or rectangle covers on a ``width x height`` canvas."""
    if shape.type == "mask":
        return masks.cvat_to_bitmap(shape.points, width, height)
    return masks.polygons_to_bitmap([outline(shape)], width, height)


def paint(
    shapes: Sequence[Shape], width: int, height: int, *, limit: int, item: str, merge_groups: bool = False
) -> tuple[NDArray[np.int32], list[Shape]]:
    """An instance map (0 background, 1.. the instances in painting order) and the shape that
    started each instance. With ``merge_groups`` shapes sharing a non-zero group are one instance.
    More than ``limit`` instances is an error naming the item."""
    instances = np.zeros((height, width), dtype=np.int32)
    owners: list[Shape] = []
    by_group: dict[int, int] = {}
    for shape in shapes:
        number = by_group.get(shape.group) if merge_groups and shape.group else None
        if number is None:
            owners.append(shape)
            number = len(owners)
            if number > limit:
                raise FormatError(
                    f"more than {limit} polygons and masks: the format's instance map cannot hold them",
                    item=item,
                )
            if merge_groups and shape.group:
                by_group[shape.group] = number
        instances[bitmap(shape, width, height)] = number
    return instances, owners


def png(values: NDArray[np.integer], palette: Sequence[Color] | None = None) -> bytes:
    """A PNG of an index map: a palette PNG with ``palette``, else 8-bit grey when the values fit,
    16-bit grey otherwise."""
    if palette is not None:
        image = Image.fromarray(values.astype(np.uint8), mode="P")
        flat = [channel for color in palette[:256] for channel in color]
        image.putpalette(flat + [0] * (768 - len(flat)))
    elif values.size and int(values.max()) > 255:
        image = Image.fromarray(values.astype(np.uint16))  # 16-bit grey
    else:
        image = Image.fromarray(values.astype(np.uint8), mode="L")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def rgb_png(values: NDArray[np.integer], colors: Sequence[Color], *, image_format: str = "PNG") -> bytes:
    """An RGB PNG (or ``image_format``) of an index map coloured with ``colors`` (by index)."""
    table = np.zeros((max(len(colors), int(values.max(initial=0)) + 1), 3), dtype=np.uint8)
    table[: len(colors)] = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    buffer = io.BytesIO()
    Image.fromarray(table[values]).save(buffer, format=image_format)
    return buffer.getvalue()


class SubsetLists:
    """Lines per subset, buffered in temporary files until the lists are written at the end."""

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


#: the PNG modes of index maps: 1, 8 or 16 bits of grey, or palette indices
_SINGLE_CHANNEL = frozenset({"1", "L", "P", "I", "I;16", "I;16B", "I;16L"})


def read_values(path: Path, file: str, what: str) -> NDArray[np.int64]:
    """The values of a single-channel PNG (8 or 16 bits; a palette PNG gives its indices)."""
    try:
        with Image.open(path) as image:
            if image.mode not in _SINGLE_CHANNEL:
                raise FormatError(
                    f"the {what} PNG is in {image.mode}, a single channel of values is expected", file=file
                )
            return np.asarray(image, dtype=np.int64)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise FormatError(f"cannot read the {what} PNG: {exc}", file=file) from None


def read_colors(
    path: Path, file: str, colors: dict[Color, int], what: str, *, palette_indices: bool = False
) -> NDArray[np.int64]:
    """The index of every pixel of a colour-coded PNG: its colour's value in ``colors``. A colour
    not in ``colors`` is an error naming the file. With ``palette_indices`` a palette or grey PNG
    gives its indices directly."""
    try:
        with Image.open(path) as image:
            if palette_indices and image.mode in ("L", "I", "I;16"):
                return np.asarray(image, dtype=np.int64)
            rgb = np.asarray(image.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise FormatError(f"cannot read the {what} PNG: {exc}", file=file) from None
    lookup = {(r << 16) | (g << 8) | b: index for (r, g, b), index in colors.items()}
    values, inverse = np.unique(_packed(rgb), return_inverse=True)
    mapped = np.empty(len(values), dtype=np.int64)
    for position, value in enumerate(values.tolist()):
        index = lookup.get(value)
        if index is None:
            color = (value >> 16, (value >> 8) & 0xFF, value & 0xFF)
            raise FormatError(f"the colour {color} is not a known {what} colour", file=file)
        mapped[position] = index
    return mapped[inverse].reshape(rgb.shape[:2])


def region_shapes(
    regions: Iterable[tuple[str, masks.Bitmap]],
    conv_mask_to_poly: bool,
    group_start: int,
    *,
    track_id: int | None = None,
    attributes: dict[str, str] | None = None,
) -> tuple[list[Shape], int]:
    """Shapes of ``(label, bitmap)`` regions: one mask each, or with ``conv_mask_to_poly`` the
    outer contours as polygons (sharing a new group when there are several), all with
    ``track_id`` and ``attributes``. Returns the shapes and the last group used."""
    extra = attributes or {}
    shapes: list[Shape] = []
    group = group_start
    for label, region in regions:
        if conv_mask_to_poly:
            polygons = masks.bitmap_to_polygons(region)
            shape_group = 0
            if len(polygons) > 1:
                group += 1
                shape_group = group
            shapes.extend(
                Shape(
                    type="polygon",
                    label=label,
                    points=p,
                    group=shape_group,
                    track_id=track_id,
                    attributes=dict(extra),
                )
                for p in polygons
            )
        elif region.any():
            points = masks.bitmap_to_cvat(region)
            shapes.append(
                Shape(type="mask", label=label, points=points, track_id=track_id, attributes=dict(extra))
            )
    return shapes, group


def read_list(path: Path) -> list[str]:
    """The ids of a list file (first field of each line; ``#`` comments and blank lines skipped)."""
    ids = []
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            line = line.strip()
            if line and not line.startswith("#"):
                ids.append(line.split()[0])
    return ids


__all__ = [
    "BACKGROUND",
    "CITYSCAPES_CLASSES",
    "SEGMENT_TYPES",
    "Color",
    "SubsetLists",
    "bitmap",
    "canvas_size",
    "class_colors",
    "dataset_classes",
    "has_segments",
    "hex_color",
    "label_color",
    "labels_of_colors",
    "outline",
    "paint",
    "png",
    "read_color_names",
    "read_colors",
    "read_list",
    "read_values",
    "region_shapes",
    "rgb_png",
    "segments",
    "voc_color",
    "write_color_names",
]
