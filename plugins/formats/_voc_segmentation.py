"""The segmentation part of the PASCAL VOC layout, shared by "PASCAL VOC 1.1" and "Segmentation mask 1.1".

Not a plugin itself: both format plugins read and write the same files through it.

- ``labelmap.txt``: ``# label:color_rgb:parts:actions`` then one ``name:r,g,b::`` line per label,
  ``background`` first (the Datumaro/CVAT convention). Its order gives the class indices.
- ``SegmentationClass/<id>.png``: the class of every pixel, ``SegmentationObject/<id>.png``: the
  instance (1, 2, ...; 0 background, 255 void), both palette PNGs. Class PNGs are coloured with the
  labelmap colours, instance PNGs with the VOC colour map; RGB PNGs (as Datumaro writes them) are
  read through the same colours.
- ``ImageSets/Segmentation/<subset>.txt``: the ids of the items with segmentation PNGs.

Painting and reading the maps is ``core.formats.segmentation``'s: on import each instance becomes
one mask (or polygons sharing a group with ``conv_mask_to_poly``), labelled with the class most of
its pixels have.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from annota.core.errors import FormatError
from annota.core.formats import segmentation
from annota.core.formats.model import Item, LabelSpec, Shape
from annota.core.formats.output import Output
from annota.core.formats.registry import ImportOptions
from annota.core.formats.segmentation import (
    BACKGROUND,
    Color,
    SubsetLists,
    has_segments,
    read_list,
    voc_color,
)

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

_VOC_PALETTE = [voc_color(i) for i in range(256)]
_VOC_PALETTE[VOID_INDEX] = VOID_COLOR


def class_colors(labels: Sequence[LabelSpec]) -> list[tuple[str, Color]]:
    """``(name, colour)`` per class index: background first, then the labels (void's colour kept free)."""
    return segmentation.class_colors(labels, reserved=[VOID_COLOR])


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
    return segmentation.labels_of_colors(colors, options.labels), colors


# --- export ------------------------------------------------------------------------------------


def rasterise(item: Item, class_index: dict[str, int]) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """The class and instance index maps of an item's polygons and masks."""
    width, height = segmentation.canvas_size(item)
    shapes = segmentation.segments(item, class_index)
    instances, owners = segmentation.paint(shapes, width, height, limit=VOID_INDEX - 1, item=item.name)
    lookup = np.asarray([0] + [class_index[shape.label] for shape in owners], dtype=np.int32)
    return lookup[instances], instances


def write_pngs(output: Output, item: Item, colors: Sequence[tuple[str, Color]]) -> None:
    """``SegmentationClass/<id>.png`` and ``SegmentationObject/<id>.png`` of an item."""
    class_index = {name: index for index, (name, _) in enumerate(colors)}
    classes, instances = rasterise(item, class_index)
    palette = [color for _, color in colors][:256]
    if len(palette) <= VOID_INDEX:
        palette = palette + [(0, 0, 0)] * (VOID_INDEX - len(palette)) + [VOID_COLOR]
    output.write(f"{CLASS_DIR}/{item.id}.png", segmentation.png(classes, palette))
    output.write(f"{OBJECT_DIR}/{item.id}.png", segmentation.png(instances, _VOC_PALETTE))


# --- import ------------------------------------------------------------------------------------


def _indices(path: Path, root: Path, colors: Sequence[Color], what: str) -> NDArray[np.int64]:
    """The index of every pixel of a VOC PNG: its colour's position in ``colors`` (void is 255)."""
    lookup = {color: index for index, color in enumerate(colors)}
    lookup[VOID_COLOR] = VOID_INDEX
    name = path.relative_to(root).as_posix()
    return segmentation.read_colors(path, name, lookup, what, palette_indices=what == "instance")


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
    shapes, group = segmentation.region_shapes(
        ((colors[index][0], region) for index, region in regions), options.conv_mask_to_poly, group_start
    )
    height, width = reference.shape
    return shapes, (int(width), int(height)), group


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
