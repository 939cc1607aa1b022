"""Cityscapes 1.0: the Cityscapes fine annotation layout, as CVAT reads and writes it.

- ``label_colors.txt``: ``r g b name`` per class; a class's line number is its id (a
  ``background`` class is put first when no class is black). Without it the task's labels are the
  classes (background first), as CVAT does, else Cityscapes' own 35 classes.
- ``gtFine/<subset>/<id>_gtFine_instanceIds.png``: per pixel the class id, or ``class id * 1000 +
  instance`` for an instance of its class. ``_labelIds.png`` (class ids) and ``_color.png`` (class
  colours) are written alongside and not read.
- ``leftImg8bit/<subset>/<id>_leftImg8bit.<ext>``: the images.

Export paints polygons, masks and rectangles (CVAT turns boxes into masks for this format) in
``z_order`` order, shapes sharing a group as one instance. As in CVAT an instance is written as its
class alone unless its ``is_crowd`` attribute is false; then it gets an instance number. On import
each value of the instance map becomes one mask (polygons with ``conv_mask_to_poly``), with
``is_crowd`` false when it was numbered; the background (class 0 or named ``background``) is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from annota.core import hookimpl
from annota.core.errors import FormatError
from annota.core.formats import segmentation
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.model import Dataset, Item, Shape
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, Format, ImportOptions
from annota.core.formats.segmentation import BACKGROUND, Color
from annota.core.formats.source import IMAGE_EXTENSIONS, item_with_image

LABEL_COLORS = "label_colors.txt"
GT_DIR = "gtFine"
IMAGES_DIR = "leftImg8bit"
IMAGE_SUFFIX = "_leftImg8bit"
INSTANCES_SUFFIX = "_gtFine_instanceIds.png"
LABEL_IDS_SUFFIX = "_gtFine_labelIds.png"
COLOR_SUFFIX = "_gtFine_color.png"
IS_CROWD = "is_crowd"
#: instance values are ``class * INSTANCE_BASE + number``
INSTANCE_BASE = 1000
_FALSE = {"false", "0", "no"}


# --- export ------------------------------------------------------------------------------------


def export_cityscapes(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    colors = segmentation.class_colors(list(dataset.labels))
    class_index = {name: index for index, (name, _) in enumerate(colors)}
    palette = [color for _, color in colors]
    for item in dataset.items():
        suffix = PurePosixPath(item.name).suffix or dataset.image_extension(item)
        if options.save_images:
            data = dataset.image(item)
            if data is not None:
                output.write(f"{IMAGES_DIR}/{item.subset}/{item.id}{IMAGE_SUFFIX}{suffix}", data)
        shapes = segmentation.segments(item, class_index, rectangles="all")
        if not shapes:
            continue
        width, height = segmentation.canvas_size(item)
        instances, owners = segmentation.paint(
            shapes, width, height, limit=1 << 30, item=item.name, merge_groups=True
        )
        classes = np.asarray([0] + [class_index[s.label] for s in owners], dtype=np.int32)
        values = classes.copy()
        numbers: dict[str, int] = {}
        for position, owner in enumerate(owners, 1):
            if owner.attributes.get(IS_CROWD, "").strip().lower() in _FALSE:
                numbers[owner.label] = numbers.get(owner.label, 0) + 1
                if numbers[owner.label] >= INSTANCE_BASE:
                    raise FormatError(
                        f"more than {INSTANCE_BASE - 1} instances of {owner.label!r}", item=item.name
                    )
                values[position] = classes[position] * INSTANCE_BASE + numbers[owner.label]
        if int(values.max()) > 0xFFFF:
            raise FormatError("the instance values do not fit in the 16-bit instance map", item=item.name)
        base = f"{GT_DIR}/{item.subset}/{item.id}"
        output.write(base + INSTANCES_SUFFIX, segmentation.png(values[instances]))
        output.write(base + LABEL_IDS_SUFFIX, segmentation.png(classes[instances]))
        output.write(base + COLOR_SUFFIX, segmentation.rgb_png(classes[instances], palette))
    segmentation.write_color_names(output, LABEL_COLORS, colors)


# --- import ------------------------------------------------------------------------------------


def _dataset_root(root: Path) -> Path:
    for candidate in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        if (candidate / GT_DIR).is_dir() or (candidate / IMAGES_DIR).is_dir():
            return candidate
    raise FormatError(f"no {GT_DIR} or {IMAGES_DIR} directory", file=root.name or ".")


def _background(entries: list[tuple[str, Color | None]]) -> None:
    """A map without a black class gets a ``background`` class first."""
    if not any(color == (0, 0, 0) for _, color in entries) and all(n != BACKGROUND for n, _ in entries):
        entries.insert(0, (BACKGROUND, (0, 0, 0)))


def _subsets(base: Path) -> list[str]:
    names: set[str] = set()
    for top in (base / GT_DIR, base / IMAGES_DIR):
        if top.is_dir():
            names.update(p.name for p in top.iterdir() if p.is_dir())
    return sorted(names)


def _ids(base: Path, subset: str) -> list[str]:
    """Item ids: the instance maps', then those of images without one."""
    found: dict[str, None] = {}
    annotations = base / GT_DIR / subset
    if annotations.is_dir():
        for path in sorted(annotations.rglob(f"*{INSTANCES_SUFFIX}")):
            found.setdefault(path.relative_to(annotations).as_posix()[: -len(INSTANCES_SUFFIX)])
    images = base / IMAGES_DIR / subset
    if images.is_dir():
        for path in sorted(images.rglob(f"*{IMAGE_SUFFIX}.*")):
            if path.suffix in IMAGE_EXTENSIONS and path.stem.endswith(IMAGE_SUFFIX):
                found.setdefault(path.relative_to(images).with_suffix("").as_posix()[: -len(IMAGE_SUFFIX)])
    return list(found)


def import_cityscapes(root: Path, options: ImportOptions) -> Dataset:
    base = _dataset_root(root)
    colors = segmentation.dataset_classes(
        base / LABEL_COLORS,
        LABEL_COLORS,
        options.labels,
        segmentation.CITYSCAPES_CLASSES,
        background=_background,
    )
    labels = segmentation.labels_of_colors(colors[1:], options.labels)

    def items() -> Iterator[Item]:
        group = 0
        for subset in _subsets(base):
            for item_id in _ids(base, subset):
                item, group = _item(base, subset, item_id, colors, options, group)
                yield item

    return StreamedDataset(base.name or root.name, labels, items)


def _regions(
    path: Path, file: str, colors: Sequence[tuple[str, Color]], options: ImportOptions, group: int
) -> tuple[list[Shape], tuple[int, int], int]:
    values = segmentation.read_values(path, file, "instance")
    shapes: list[Shape] = []
    for value in np.unique(values).tolist():
        index = value // INSTANCE_BASE if value >= INSTANCE_BASE else value
        if index >= len(colors):
            raise FormatError(
                f"class id {index} (pixel value {value}) is not in {LABEL_COLORS}",
                file=file,
                annotation=value,
            )
        name = colors[index][0]
        if index == 0 or name == BACKGROUND:
            continue
        attributes = {IS_CROWD: "false"} if value >= INSTANCE_BASE else {}
        found, group = segmentation.region_shapes(
            [(name, values == value)], options.conv_mask_to_poly, group, attributes=attributes
        )
        shapes += found
    return shapes, (int(values.shape[1]), int(values.shape[0])), group


def _item(
    base: Path,
    subset: str,
    item_id: str,
    colors: Sequence[tuple[str, Color]],
    options: ImportOptions,
    group: int,
) -> tuple[Item, int]:
    shapes: list[Shape] = []
    size: tuple[int, int] | None = None
    instances = base / GT_DIR / subset / f"{item_id}{INSTANCES_SUFFIX}"
    if instances.is_file():
        file = instances.relative_to(base).as_posix()
        shapes, size, group = _regions(instances, file, colors, options, group)
    images = base / IMAGES_DIR / subset
    return item_with_image(base, images / f"{item_id}{IMAGE_SUFFIX}", item_id, subset, shapes, size), group


def detect_cityscapes(root: Path) -> float:
    try:
        base = _dataset_root(root)
    except FormatError:
        return 0.0
    annotations = base / GT_DIR
    if annotations.is_dir() and next(annotations.rglob(f"*{INSTANCES_SUFFIX}"), None) is not None:
        return 0.9
    images = base / IMAGES_DIR
    if images.is_dir() and next(images.rglob(f"*{IMAGE_SUFFIX}.*"), None) is not None:
        return 0.5
    return 0.0


@hookimpl
def register_formats(register: Callable[[Format], None]) -> None:
    register(
        Format(
            "Cityscapes",
            "1.0",
            exporter=export_cityscapes,
            importer=import_cityscapes,
            carries=frozenset({"mask", "attributes", "images"}),
            detect=detect_cityscapes,
            aliases=("cityscapes",),
            description="Cityscapes: gtFine/<subset>/<id>_gtFine_instanceIds.png maps, label_colors.txt.",
        )
    )


__all__ = ["register_formats"]
