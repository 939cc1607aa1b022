"""Open Images V6 1.0: the Open Images dataset's CSV layout, as CVAT reads and writes it.

Under ``annotations/`` (or the dataset's top directory):

- ``class-descriptions.csv`` (``LabelName,DisplayName`` without a header; also read:
  ``oidv*-class-descriptions.csv`` with one, ``class-descriptions-boxable.csv``): the labels, by
  ``LabelName``. Optional on import: without it the labels are those the other files name.
- ``bbox_labels_600_hierarchy.json``: written for readers that expect it, not read.
- ``<subset>-images-with-rotation.csv`` (or ``image_ids_and_rotation.csv``): ``ImageID`` and
  ``Subset`` of every image; the other columns are left empty and not read.
- ``<subset>-annotations-human-imagelabels.csv``: ``ImageID,Source,LabelName,Confidence``: a tag
  per row (whatever its confidence, as CVAT does).
- ``<subset>-annotations-bbox.csv``: boxes with coordinates normalised by the image size,
  ``Confidence`` (the shape's score) and the flags ``IsOccluded`` (the shape's occluded flag),
  ``IsTruncated``, ``IsGroupOf``, ``IsDepiction``, ``IsInside`` (attributes ``truncated``,
  ``is_group_of``, ``is_depiction``, ``is_inside``; -1 when unknown).
- ``<subset>-annotations-object-segmentation.csv``: ``MaskPath,ImageID,LabelName,BoxID,BoxXMin,
  BoxXMax,BoxYMin,BoxYMax,PredictedIoU,Clicks``: one binary PNG ``masks/<subset>/<MaskPath>`` per
  object (scaled to the image when smaller), attributes ``box_id`` and ``predicted_iou``; a mask
  whose box coordinates are those of a box of its label shares a group with it.
- ``images.meta``: ``<ImageID> <height> <width>`` per line, the sizes normalised coordinates need
  when the images are not in the dataset.

Images are ``images/<subset>/<ImageID>.<ext>``. On export polygons are painted into masks (shapes
sharing a group are one object, with the group's box as its box); rotated boxes are written
unrotated. Boxes and masks need the frame's size. The annotation files are keyed by image, in any
order: an import reads them whole before yielding items.
"""

from __future__ import annotations

import csv
import json
import re
import shlex
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

import numpy as np
from PIL import Image

from annota.core import hookimpl
from annota.core.errors import FormatError
from annota.core.formats import masks, segmentation
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.model import AttributeSpec, Dataset, Item, LabelSpec, Shape, Tag
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, Format, ImportOptions
from annota.core.formats.source import find_image

ANNOTATIONS_DIR = "annotations"
IMAGES_DIR = "images"
MASKS_DIR = "masks"
CLASSES_FILE = "class-descriptions.csv"
HIERARCHY_FILE = "bbox_labels_600_hierarchy.json"
IMAGE_META_FILE = "images.meta"
ALL_IMAGES_FILE = "image_ids_and_rotation.csv"
IMAGES_SUFFIXES = ("-images-with-rotation.csv", "-images-with-labels-with-rotation.csv")
LABELS_SUFFIX = "-annotations-human-imagelabels.csv"
BOXES_SUFFIX = "-annotations-bbox.csv"
MASKS_SUFFIX = "-annotations-object-segmentation.csv"
IMAGE_FIELDS = (
    "ImageID", "Subset", "OriginalURL", "OriginalLandingURL", "License", "AuthorProfileURL", "Author",
    "Title", "OriginalSize", "OriginalMD5", "Thumbnail300KURL", "Rotation",
)  # fmt: skip
LABEL_FIELDS = ("ImageID", "Source", "LabelName", "Confidence")
BOX_FIELDS = (
    "ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax", "IsOccluded",
    "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside",
)  # fmt: skip
MASK_FIELDS = (
    "MaskPath", "ImageID", "LabelName", "BoxID", "BoxXMin", "BoxXMax", "BoxYMin", "BoxYMax", "PredictedIoU",
    "Clicks",
)  # fmt: skip
#: box flags kept as attributes (IsOccluded is the shape's occluded flag)
FLAGS = (
    ("IsTruncated", "truncated"),
    ("IsGroupOf", "is_group_of"),
    ("IsDepiction", "is_depiction"),
    ("IsInside", "is_inside"),
)
#: a subset, mask path or box id must be one plain path component
_PLAIN = re.compile(r"^(?!\.\.?$)[^/\\\0]+$")
#: the attributes of labels the task does not already have
ATTRIBUTES = (*(name for _, name in FLAGS), "box_id", "predicted_iou")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _number(value: float) -> str:
    # the shortest text that reads back as the same float: normalised coordinates lose nothing
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "_"


# --- export ------------------------------------------------------------------------------------


class _Tables:
    """A subset's CSV tables, spooled until the images are written."""

    def __init__(self) -> None:
        self.files: dict[str, IO[str]] = {}
        self.writers: dict[str, csv.DictWriter[str]] = {}

    def row(self, name: str, fields: tuple[str, ...], values: dict[str, str]) -> None:
        writer = self.writers.get(name)
        if writer is None:
            stream = tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+", encoding="utf-8", newline="")
            self.files[name] = stream
            writer = self.writers[name] = csv.DictWriter(stream, fields, lineterminator="\n")
            writer.writeheader()
        writer.writerow(values)

    def copy_to(self, output: Output) -> None:
        for name, stream in self.files.items():
            stream.seek(0)
            with output.open_text(f"{ANNOTATIONS_DIR}/{name}") as target:
                shutil.copyfileobj(stream, target)

    def close(self) -> None:
        for stream in self.files.values():
            stream.close()


def _flag(shape: Shape, attribute: str) -> str:
    value = shape.attributes.get(attribute, "").strip().lower()
    return "1" if value in _TRUE else "0" if value in _FALSE else "-1"


def export_open_images(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    with output.open_text(f"{ANNOTATIONS_DIR}/{CLASSES_FILE}") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        for label in dataset.labels:
            writer.writerow([label.name, label.name])
    with output.open_text(f"{ANNOTATIONS_DIR}/{HIERARCHY_FILE}") as stream:
        json.dump({"LabelName": "/m/0", "Subcategory": []}, stream, indent=4)
        stream.write("\n")
    tables = _Tables()
    sizes: list[str] = []
    try:
        for item in dataset.items():
            if not _PLAIN.match(item.subset):
                raise FormatError(f"the subset {item.subset!r} cannot be a directory name", item=item.name)
            tables.row(
                f"{item.subset}{IMAGES_SUFFIXES[0]}",
                IMAGE_FIELDS,
                {"ImageID": item.id, "Subset": item.subset},
            )
            for tag in item.tags:
                row = {"ImageID": item.id, "Source": "", "LabelName": tag.label, "Confidence": "1"}
                tables.row(f"{item.subset}{LABELS_SUFFIX}", LABEL_FIELDS, row)
            if _export_shapes(item, output, tables):
                sizes.append(f"{shlex.quote(item.id)} {item.height} {item.width}")
            if options.save_images:
                data = dataset.image(item)
                if data is not None:
                    suffix = PurePosixPath(item.name).suffix or dataset.image_extension(item)
                    output.write(f"{IMAGES_DIR}/{item.subset}/{item.id}{suffix}", data)
        tables.copy_to(output)
    finally:
        tables.close()
    if sizes:
        with output.open_text(f"{ANNOTATIONS_DIR}/{IMAGE_META_FILE}") as stream:
            stream.write("# <image name> <height> <width>\n\n")
            stream.writelines(line + "\n" for line in sizes)


def _export_shapes(item: Item, output: Output, tables: _Tables) -> bool:
    """Write the boxes and masks of an item; whether it has any."""
    boxes = [s for s in item.shapes if s.type == "rectangle" and not s.outside]
    painted = segmentation.segments(item)
    if not boxes and not painted:
        return False
    if not (item.width and item.height):
        raise FormatError("the frame's size is unknown: boxes and masks cannot be normalised", item=item.name)
    width, height = item.width, item.height
    box_of_group: dict[int, Shape] = {}
    for shape in boxes:
        x1, y1, x2, y2 = shape.points[:4]
        row = {
            "ImageID": item.id,
            "Source": "",
            "LabelName": shape.label,
            "Confidence": _number(shape.score),
            "XMin": _number(x1 / width),
            "XMax": _number(x2 / width),
            "YMin": _number(y1 / height),
            "YMax": _number(y2 / height),
            "IsOccluded": "1" if shape.occluded else "0",
            **{column: _flag(shape, attribute) for column, attribute in FLAGS},
        }
        tables.row(f"{item.subset}{BOXES_SUFFIX}", BOX_FIELDS, row)
        if shape.group:
            box_of_group.setdefault(shape.group, shape)
    instances, owners = segmentation.paint(
        painted, width, height, limit=1 << 30, item=item.name, merge_groups=True
    )
    used = {s.attributes["box_id"] for s in owners if s.attributes.get("box_id")}
    counter = 0
    for number, owner in enumerate(owners, 1):
        box_id = owner.attributes.get("box_id", "")
        if not box_id:
            while format(counter, "08x") in used:
                counter += 1
            box_id = format(counter, "08x")
            used.add(box_id)
        elif not _PLAIN.match(box_id):
            raise FormatError(f"the box_id {box_id!r} cannot be part of a file name", item=item.name)
        mask_path = f"{_file_name(item.id)}_{_file_name(owner.label)}_{box_id}.png"
        row = {"MaskPath": mask_path, "ImageID": item.id, "LabelName": owner.label, "BoxID": box_id,
               "PredictedIoU": owner.attributes.get("predicted_iou", ""), "Clicks": ""}  # fmt: skip
        box = box_of_group.get(owner.group) if owner.group else None
        if box is not None:
            x1, y1, x2, y2 = box.points[:4]
            row.update(
                BoxXMin=_number(x1 / width),
                BoxXMax=_number(x2 / width),
                BoxYMin=_number(y1 / height),
                BoxYMax=_number(y2 / height),
            )
        tables.row(f"{item.subset}{MASKS_SUFFIX}", MASK_FIELDS, row)
        bitmap = (instances == number).astype(np.uint8) * 255
        output.write(f"{MASKS_DIR}/{item.subset}/{mask_path}", segmentation.png(bitmap))
    return True


# --- import ------------------------------------------------------------------------------------


class _Reader:
    """The annotation files of a dataset and what they say, read whole."""

    def __init__(self, base: Path, annotations: Path, options: ImportOptions) -> None:
        self.base = base
        self.annotations = annotations
        self.options = options
        self.labels: dict[str, None] = {}
        self.declared: set[str] | None = None
        self.items: dict[str, Item] = {}
        self.sizes: dict[str, tuple[int, int]] = {}
        self.group = 0

    def name(self, path: Path) -> str:
        return path.relative_to(self.base).as_posix()

    def files(self, suffix: str) -> list[Path]:
        return sorted(p for p in self.annotations.glob(f"*{suffix}") if p.is_file())

    def rows(self, path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
        file = self.name(path)
        with open(path, encoding="utf-8-sig", newline="") as stream:
            reader = csv.DictReader(stream)
            missing = [f for f in required if f not in (reader.fieldnames or [])]
            if missing:
                raise FormatError(f"the header lacks the columns {', '.join(missing)}", file=file, line=1)
            for row in reader:
                yield reader.line_num, row

    def read_classes(self) -> None:
        headed = sorted(self.annotations.glob("oidv*-class-descriptions.csv"))
        plain = [self.annotations / n for n in ("class-descriptions-boxable.csv", CLASSES_FILE)]
        path = next((p for p in [*headed, *plain] if p.is_file()), None)
        if path is None:
            return
        self.declared = set()
        with open(path, encoding="utf-8-sig", newline="") as stream:
            rows = csv.reader(stream)
            for number, row in enumerate(rows, 1):
                if path in headed and number == 1 or not row:
                    continue
                name = row[0].strip()
                if not name:
                    raise FormatError("the row has no LabelName", file=self.name(path), line=number)
                self.labels.setdefault(name)
                self.declared.add(name)

    def label(self, name: str, file: str, line: int, item: str) -> str:
        if self.declared is not None and name not in self.declared:
            raise FormatError(
                f"unknown label {name!r}: it is not in the class descriptions",
                file=file,
                line=line,
                item=item,
            )
        self.labels.setdefault(name)
        return name

    def read_sizes(self) -> None:
        path = self.annotations / IMAGE_META_FILE
        if not path.is_file():
            return
        with open(path, encoding="utf-8") as stream:
            for number, line in enumerate(stream, 1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                try:
                    image_id, height, width = shlex.split(line)
                    self.sizes[image_id] = (int(width), int(height))
                except ValueError:
                    raise FormatError(
                        "expected '<image id> <height> <width>'", file=self.name(path), line=number
                    ) from None

    def item(self, image_id: str, subset: str, file: str, line: int) -> Item:
        found = self.items.get(image_id)
        if found is not None:
            return found
        if not image_id:
            raise FormatError("the row has no ImageID", file=file, line=line)
        if not _PLAIN.match(subset):
            raise FormatError(
                f"the subset {subset!r} is not a directory name", file=file, line=line, item=image_id
            )
        image, size = find_image(self.base, self.base / IMAGES_DIR / subset / image_id)
        size = size or self.sizes.get(image_id)
        width, height = size if size else (None, None)
        found = Item(
            name=image_id + (image.suffix if image else ""),
            subset=subset,
            width=width,
            height=height,
            tags=[],
            shapes=[],
            image=str(image) if image else None,
        )
        self.items[image_id] = found
        return found

    def read_images(self) -> None:
        paths = [self.annotations / ALL_IMAGES_FILE]
        if not paths[0].is_file():
            paths = sorted({p for suffix in IMAGES_SUFFIXES for p in self.files(suffix)})
        for path in paths:
            file = self.name(path)
            for line, row in self.rows(path, ("ImageID", "Subset")):
                image_id = row["ImageID"] or ""
                if image_id in self.items:
                    raise FormatError(
                        f"the image {image_id!r} is listed twice", file=file, line=line, item=image_id
                    )
                self.item(image_id, row["Subset"] or "", file, line)

    @staticmethod
    def subset_of(path: Path) -> str:
        parts = path.name.split("-")
        return parts[1] if parts[0].startswith("oidv") and len(parts) > 1 else parts[0]

    def size(self, item: Item, file: str, line: int) -> tuple[int, int]:
        if not (item.width and item.height):
            raise FormatError(
                f"the image is not in the dataset nor in {IMAGE_META_FILE}, so its size (needed to read "
                "normalised coordinates) is unknown",
                file=file,
                line=line,
                item=item.name,
            )
        return item.width, item.height

    def read_tags(self) -> None:
        for path in self.files(LABELS_SUFFIX):
            file = self.name(path)
            for line, row in self.rows(path, ("ImageID", "LabelName")):
                item = self.item(row["ImageID"] or "", self.subset_of(path), file, line)
                item.tags.append(Tag(label=self.label(row["LabelName"] or "", file, line, item.name)))

    def read_boxes(self) -> dict[int, tuple[float, float, float, float]]:
        normalised: dict[int, tuple[float, float, float, float]] = {}
        for path in self.files(BOXES_SUFFIX):
            file = self.name(path)
            for line, row in self.rows(path, ("ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax")):
                item = self.item(row["ImageID"] or "", self.subset_of(path), file, line)
                number = len(item.shapes)
                label = self.label(row["LabelName"] or "", file, line, item.name)
                try:
                    coords = tuple(float(row[f] or "") for f in ("XMin", "XMax", "YMin", "YMax"))
                    score = float(row.get("Confidence") or 1)
                    flags = {f: int(row.get(f) or -1) for f in ("IsOccluded", *(c for c, _ in FLAGS))}
                except ValueError:
                    raise FormatError(
                        "the coordinates, Confidence and flags must be numbers",
                        file=file,
                        line=line,
                        item=item.name,
                        annotation=number,
                    ) from None
                x_min, x_max, y_min, y_max = coords
                if x_max < x_min or y_max < y_min:
                    raise FormatError(
                        "XMax or YMax is below XMin or YMin",
                        file=file,
                        line=line,
                        item=item.name,
                        annotation=number,
                    )
                width, height = self.size(item, file, line)
                attributes = {name: "true" if flags[c] else "false" for c, name in FLAGS if flags[c] >= 0}
                shape = Shape(
                    type="rectangle",
                    label=label,
                    score=score,
                    occluded=flags["IsOccluded"] == 1,
                    points=_pixels((x_min * width, y_min * height, x_max * width, y_max * height)),
                    attributes=attributes,
                )
                item.shapes.append(shape)
                normalised[id(shape)] = (x_min, x_max, y_min, y_max)
        return normalised

    def read_masks(self, normalised: dict[int, tuple[float, float, float, float]]) -> None:
        for path in self.files(MASKS_SUFFIX):
            file = self.name(path)
            for line, row in self.rows(path, ("MaskPath", "ImageID", "LabelName")):
                item = self.item(row["ImageID"] or "", self.subset_of(path), file, line)
                number = len(item.shapes)
                label = self.label(row["LabelName"] or "", file, line, item.name)
                mask_path, box_id = row["MaskPath"] or "", row.get("BoxID") or ""
                for what, value in (("MaskPath", mask_path), ("BoxID", box_id)):
                    if value and not _PLAIN.match(value) or what == "MaskPath" and not value:
                        raise FormatError(
                            f"{what} {value!r} is not a plain file name",
                            file=file,
                            line=line,
                            item=item.name,
                            annotation=number,
                        )
                source = self.base / MASKS_DIR / item.subset / mask_path
                if not source.is_file():
                    raise FormatError(
                        f"the mask {MASKS_DIR}/{item.subset}/{mask_path} does not exist",
                        file=file,
                        line=line,
                        item=item.name,
                        annotation=number,
                    )
                width, height = self.size(item, file, line)
                bitmap = _read_mask(source, self.name(source), width, height)
                attributes = {"box_id": box_id} if box_id else {}
                if row.get("PredictedIoU"):
                    attributes["predicted_iou"] = row["PredictedIoU"] or ""
                box = _box(row, item, label, normalised)
                shapes, self.group = segmentation.region_shapes(
                    [(label, bitmap)], self.options.conv_mask_to_poly, self.group, attributes=attributes
                )
                if box is not None:
                    if not box.group:
                        self.group += 1
                        box.group = self.group
                    for shape in shapes:
                        shape.group = box.group
                item.shapes.extend(shapes)


def _pixels(values: tuple[float, ...]) -> list[float]:
    """Pixel coordinates of normalised ones: ``x / w * w`` may miss ``x`` by a rounding error,
    which a millionth of a pixel hides."""
    return [round(v, 6) + 0.0 for v in values]


def _box(
    row: dict[str, str], item: Item, label: str, normalised: dict[int, tuple[float, float, float, float]]
) -> Shape | None:
    """The box of the item a mask row names by its coordinates (same label), if any."""
    fields = ("BoxXMin", "BoxXMax", "BoxYMin", "BoxYMax")
    if not all(row.get(f) for f in fields):
        return None
    try:
        coords = np.asarray([float(row[f]) for f in fields])
    except ValueError:
        return None
    for shape in item.shapes:
        if shape.type == "rectangle" and shape.label == label and id(shape) in normalised:
            if np.allclose(coords, normalised[id(shape)], rtol=0, atol=1e-6):
                return shape
    return None


def _read_mask(path: Path, file: str, width: int, height: int) -> masks.Bitmap:
    try:
        with Image.open(path) as image:
            grey = image.convert("L")
            if grey.size != (width, height):
                # Open Images masks are often smaller than their images: scaled as CVAT does
                grey = grey.resize((width, height), Image.Resampling.NEAREST)
            return np.asarray(grey) > 0
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise FormatError(f"cannot read the mask: {exc}", file=file) from None


def _annotations_dir(root: Path) -> tuple[Path, Path] | None:
    """(dataset directory, its annotations directory), ``root`` or its only child."""
    patterns = (
        ALL_IMAGES_FILE,
        *(f"*{s}" for s in (*IMAGES_SUFFIXES, LABELS_SUFFIX, BOXES_SUFFIX, MASKS_SUFFIX)),
    )
    for base in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        for directory in (base / ANNOTATIONS_DIR, base):
            if directory.is_dir() and any(any(directory.glob(p)) for p in patterns):
                return base, directory
    return None


def import_open_images(root: Path, options: ImportOptions) -> Dataset:
    found = _annotations_dir(root)
    if found is None:
        raise FormatError(
            f"no {ANNOTATIONS_DIR}/<subset>{IMAGES_SUFFIXES[0]} or <subset>{BOXES_SUFFIX}-like file",
            file=root.name or ".",
        )
    base, annotations = found
    reader = _Reader(base, annotations, options)
    reader.read_classes()
    reader.read_sizes()
    reader.read_images()
    reader.read_tags()
    reader.read_masks(reader.read_boxes())
    known = {label.name: label for label in options.labels}
    labels = [
        LabelSpec(
            name=name,
            type=known[name].type if name in known else "any",
            attributes=list(known[name].attributes)
            if name in known
            else [AttributeSpec(name=n) for n in ATTRIBUTES],
        )
        for name in reader.labels
    ]
    items = list(reader.items.values())
    return StreamedDataset(base.name or root.name, labels, lambda: iter(items), size=len(items))


def detect_open_images(root: Path) -> float:
    found = _annotations_dir(root)
    if found is None:
        return 0.0
    _, annotations = found
    if (annotations / CLASSES_FILE).is_file() or any(annotations.glob("oidv*-class-descriptions.csv")):
        return 0.9
    return 0.7


@hookimpl
def register_formats(register: Callable[[Format], None]) -> None:
    register(
        Format(
            "Open Images V6",
            "1.0",
            exporter=export_open_images,
            importer=import_open_images,
            carries=frozenset({"tag", "rectangle", "mask", "attributes", "occluded", "group", "images"}),
            detect=detect_open_images,
            aliases=("open_images", "openimages"),
            description="Open Images V6: annotations/*.csv (images, labels, boxes, masks), masks/<subset>/.",
        )
    )


__all__ = ["register_formats"]
