"""KITTI 1.0: the KITTI object detection and semantic/instance segmentation layouts, as CVAT reads
and writes them (one format for both).

- ``label_colors.txt``: ``r g b name`` per class, ``background`` first; its order gives the class
  indices. Without it the task's labels are the classes (background first), as CVAT does, else
  Cityscapes' classes (KITTI's).
- ``<subset>/label_2/<id>.txt``: one box per line, ``type truncated occluded alpha x1 y1 x2 y2 h w l
  x y z rotation_y [score]`` (15 or 16 values; only the type, the flags and the box are used).
  ``truncated`` becomes an attribute (``true`` when not 0), ``occluded`` the shape's flag.
- ``<subset>/instance/<id>.png``: 16-bit, ``class index * 256 + instance`` per pixel (instance 0:
  the class's pixels that belong to no instance). ``semantic/<id>.png`` (class indices) and
  ``semantic_rgb/<id>.png`` (class colours) are written alongside and not read.
- ``<subset>/image_2/<id>.<ext>``: the images.

Export: unrotated rectangles go to ``label_2``; polygons, masks and rotated rectangles are painted
into the segmentation maps (shapes sharing a group are one instance, at most 255 per frame). On
import the regions become masks, or polygons with ``conv_mask_to_poly``; the background class is
left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from annota.core import hookimpl
from annota.core.errors import FormatError
from annota.core.formats import segmentation
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.model import Dataset, Item, LabelSpec, Shape
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, Format, ImportOptions
from annota.core.formats.segmentation import BACKGROUND, Color
from annota.core.formats.source import IMAGE_EXTENSIONS, item_with_image

LABEL_COLORS = "label_colors.txt"
IMAGES_DIR = "image_2"
LABELS_DIR = "label_2"
INSTANCES_DIR = "instance"
SEMANTIC_DIR = "semantic"
SEMANTIC_RGB_DIR = "semantic_rgb"
TRUNCATED = "truncated"
_TRUE = {"true", "1", "yes"}


def _number(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


# --- export ------------------------------------------------------------------------------------


def _box_line(shape: Shape) -> str:
    x1, y1, x2, y2 = shape.points[:4]
    truncated = shape.attributes.get(TRUNCATED, "")
    try:
        amount = float(truncated)
    except ValueError:
        amount = 1.0 if truncated.lower() in _TRUE else 0.0
    box = " ".join(_number(v) for v in (x1, y1, x2, y2))
    # alpha, the 3D dimensions, location and rotation_y are unknown: -1, as CVAT writes them
    unknown = " ".join(["-1"] * 7)
    return f"{shape.label} {_number(amount)} {int(shape.occluded)} -1 {box} {unknown} {_number(shape.score)}"


def export_kitti(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    colors = segmentation.class_colors(list(dataset.labels))
    class_index = {name: index for index, (name, _) in enumerate(colors)}
    palette = [color for _, color in colors]
    for item in dataset.items():
        boxes = [
            s for s in item.shapes if s.type == "rectangle" and not s.outside and not s.rotation and s.points
        ]
        if boxes:
            with output.open_text(f"{item.subset}/{LABELS_DIR}/{item.id}.txt") as stream:
                stream.writelines(_box_line(shape) + "\n" for shape in boxes)
        shapes = segmentation.segments(item, class_index, rectangles="rotated")
        if shapes:
            width, height = segmentation.canvas_size(item)
            instances, owners = segmentation.paint(
                shapes, width, height, limit=255, item=item.name, merge_groups=True
            )
            classes = np.asarray([0] + [class_index[s.label] for s in owners], dtype=np.int32)[instances]
            # each instance is numbered within its class, as KITTI's maps expect
            numbers = np.zeros(len(owners) + 1, dtype=np.int32)
            seen: dict[str, int] = {}
            for position, owner in enumerate(owners, 1):
                seen[owner.label] = seen.get(owner.label, 0) + 1
                numbers[position] = seen[owner.label]
            encoded = np.where(instances > 0, classes * 256 + numbers[instances], 0)
            base = f"{item.subset}/{{}}/{item.id}.png"
            output.write(base.format(INSTANCES_DIR), segmentation.png(encoded.astype(np.uint16)))
            output.write(base.format(SEMANTIC_DIR), segmentation.png(classes))
            output.write(base.format(SEMANTIC_RGB_DIR), segmentation.rgb_png(classes, palette))
        if options.save_images:
            data = dataset.image(item)
            if data is not None:
                suffix = PurePosixPath(item.name).suffix or dataset.image_extension(item)
                output.write(f"{item.subset}/{IMAGES_DIR}/{item.id}{suffix}", data)
    segmentation.write_color_names(output, LABEL_COLORS, colors)


# --- import ------------------------------------------------------------------------------------


def _subsets(root: Path) -> list[Path]:
    return [
        p
        for p in sorted(root.iterdir())
        if p.is_dir() and ((p / LABELS_DIR).is_dir() or (p / INSTANCES_DIR).is_dir())
    ]


def _dataset_root(root: Path) -> Path:
    for candidate in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        if _subsets(candidate):
            return candidate
    raise FormatError(
        f"no <subset>/{LABELS_DIR} or <subset>/{INSTANCES_DIR} directory", file=root.name or "."
    )


def _read_boxes(path: Path, file: str, item: str) -> list[Shape]:
    shapes: list[Shape] = []
    with open(path, encoding="utf-8-sig") as stream:
        for lineno, line in enumerate(stream, 1):
            fields = line.split()
            if not fields:
                continue
            number = len(shapes)
            if len(fields) not in (15, 16):
                raise FormatError(
                    f"expected 15 or 16 values, found {len(fields)}",
                    file=file,
                    line=lineno,
                    item=item,
                    annotation=number,
                )
            try:
                truncated = float(fields[1])
                occluded = int(float(fields[2]))
                x1, y1, x2, y2 = (float(v) for v in fields[4:8])
                score = float(fields[15]) if len(fields) == 16 else 1.0
            except ValueError:
                raise FormatError(
                    "truncated, occluded, the box and the score must be numbers",
                    file=file,
                    line=lineno,
                    item=item,
                    annotation=number,
                ) from None
            if x2 < x1 or y2 < y1:
                raise FormatError(
                    "the box's second corner is above or left of its first",
                    file=file,
                    line=lineno,
                    item=item,
                    annotation=number,
                )
            shapes.append(
                Shape(
                    type="rectangle",
                    label=fields[0],
                    points=[x1, y1, x2, y2],
                    occluded=occluded != 0,
                    score=score,
                    attributes={TRUNCATED: "true" if truncated != 0 else "false"},
                )
            )
    return shapes


def _read_instances(
    path: Path, file: str, colors: Sequence[tuple[str, Color]], options: ImportOptions, group: int
) -> tuple[list[Shape], tuple[int, int], int]:
    values = segmentation.read_values(path, file, "instance")
    regions = []
    for value in np.unique(values).tolist():
        index = value >> 8
        if index >= len(colors):
            raise FormatError(
                f"class index {index} (pixel value {value}) is not in {LABEL_COLORS}",
                file=file,
                annotation=value,
            )
        name = colors[index][0]
        if name != BACKGROUND:
            regions.append((name, values == value))
    shapes, group = segmentation.region_shapes(regions, options.conv_mask_to_poly, group)
    return shapes, (int(values.shape[1]), int(values.shape[0])), group


def import_kitti(root: Path, options: ImportOptions) -> Dataset:
    base = _dataset_root(root)
    colors = segmentation.dataset_classes(
        base / LABEL_COLORS, LABEL_COLORS, options.labels, segmentation.CITYSCAPES_CLASSES
    )
    names: dict[str, None] = dict.fromkeys(name for name, _ in colors if name != BACKGROUND)
    subsets = _subsets(base)
    # the detection files may name labels the colour map lacks: they are read before the labels are known
    for directory in subsets:
        for path in sorted((directory / LABELS_DIR).rglob("*.txt")):
            with open(path, encoding="utf-8-sig", errors="replace") as stream:
                for line in stream:
                    fields = line.split()
                    if fields:
                        names.setdefault(fields[0])
    by_color = dict(colors)
    known = {label.name: label for label in options.labels}
    labels = [
        LabelSpec(
            name=name,
            type=known[name].type if name in known else "any",
            color=segmentation.hex_color(by_color[name]) if name in by_color else "",
            attributes=list(known[name].attributes) if name in known else [],
        )
        for name in names
    ]

    def items() -> Iterator[Item]:
        group = 0
        for directory in subsets:
            ids: dict[str, None] = {}
            for folder, suffixes in (
                (LABELS_DIR, (".txt",)),
                (INSTANCES_DIR, (".png",)),
                (IMAGES_DIR, IMAGE_EXTENSIONS),
            ):
                top = directory / folder
                if top.is_dir():
                    ids.update(
                        (p.relative_to(top).with_suffix("").as_posix(), None)
                        for p in sorted(top.rglob("*"))
                        if p.suffix in suffixes and p.is_file()
                    )
            for item_id in ids:
                item, group = _item(base, directory, item_id, colors, options, group)
                yield item

    return StreamedDataset(base.name or root.name, labels, items)


def _item(
    base: Path,
    directory: Path,
    item_id: str,
    colors: Sequence[tuple[str, Color]],
    options: ImportOptions,
    group: int,
) -> tuple[Item, int]:
    shapes: list[Shape] = []
    boxes = directory / LABELS_DIR / f"{item_id}.txt"
    if boxes.is_file():
        shapes += _read_boxes(boxes, boxes.relative_to(base).as_posix(), item_id)
    size: tuple[int, int] | None = None
    instances = directory / INSTANCES_DIR / f"{item_id}.png"
    if instances.is_file():
        masks, size, group = _read_instances(
            instances, instances.relative_to(base).as_posix(), colors, options, group
        )
        shapes += masks
    return item_with_image(
        base, directory / IMAGES_DIR / item_id, item_id, directory.name, shapes, size
    ), group


def detect_kitti(root: Path) -> float:
    try:
        base = _dataset_root(root)
    except FormatError:
        return 0.0
    subsets = _subsets(base)
    if any((p / LABELS_DIR).is_dir() for p in subsets):
        for directory in subsets:
            for path in (directory / LABELS_DIR).rglob("*.txt"):
                with open(path, encoding="utf-8", errors="replace") as stream:
                    first = stream.readline().split()
                return 0.9 if len(first) in (0, 15, 16) else 0.0
    return 0.8 if (base / LABEL_COLORS).is_file() else 0.6


@hookimpl
def register_formats(register: Callable[[Format], None]) -> None:
    register(
        Format(
            "KITTI",
            "1.0",
            exporter=export_kitti,
            importer=import_kitti,
            carries=frozenset({"rectangle", "mask", "attributes", "occluded", "images"}),
            detect=detect_kitti,
            aliases=("kitti", "kitti_detection", "kitti_segmentation"),
            description="KITTI: <subset>/label_2 boxes, <subset>/instance PNGs and label_colors.txt.",
        )
    )


__all__ = ["register_formats"]
