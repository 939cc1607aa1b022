"""WiderFace 1.0: the WIDER Face detection benchmark's layout, as CVAT reads and writes it.

Layout: ``labels.txt`` (one label per line), ``wider_face_split/wider_face_<subset>_bbx_gt.txt``
and, with images, ``WIDER_<subset>/images/<dir>/<image>``. Each annotation file is a sequence of
records: the image path (``<dir>/<image>``), the number of boxes, then one line per box
``x y w h [blur expression illumination occluded pose invalid] [label]`` where ``-`` stands for a
missing attribute and the label is left out for ``face``.

Export: rectangles (unrotated; outside shapes skipped) and the frame's first tag, which names the
image directory ``<label index>--<label>`` (``no_label`` without a tag). As CVAT does, every box
carries the attribute block, with ``occluded`` from the shape's flag; a frame without boxes has
no count line. Labels and attribute values cannot contain whitespace there, so such values are
refused.

Import: a count of 0 may be followed by the benchmark's line of zeros; box lines of 4, 5, 10 or 11
values are read as above, other lengths of at least 4 values keep their box and, from 10 values
on, their attributes (as CVAT does). ``True``/``False`` attribute values become ``true``/``false``;
``occluded`` becomes the shape's flag. The image directory ``<n>--<label>`` gives a tag when the
label is known. Without ``labels.txt`` the labels are ``face`` and the image directories' labels.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from annota.core import hookimpl
from annota.core.errors import FormatError
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.model import Dataset, Item, LabelSpec, Shape, Tag
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, Format, ImportOptions
from annota.core.formats.source import first_file, image_size
from annota.core.formats.spools import SubsetSpools

SPLIT_DIR = "wider_face_split"
LABELS_FILE = "labels.txt"
DEFAULT_LABEL = "face"
NO_LABEL = "no_label"
ATTRIBUTES = ("blur", "expression", "illumination", "occluded", "pose", "invalid")
_SUBSET = re.compile(r"wider_face_(\S+?)(?:_bbx_gt|_filelist)")


def _number(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _attribute_value(value: str, input_type: str) -> str:
    """The value as CVAT writes it: checkboxes as Python booleans, numbers as floats."""
    if input_type == "checkbox":
        return "True" if value.lower() == "true" else "False"
    if input_type == "number":
        try:
            return str(float(value))
        except ValueError:
            return value
    return value


def export_widerface(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    labels = {label.name: label for label in dataset.labels}
    index = {name: i for i, name in enumerate(labels)}
    with output.open_text(LABELS_FILE) as stream:
        stream.write("\n".join(labels))
    # a ZIP takes one open member at a time: each subset's records wait in a spooled file while
    # images are written
    with SubsetSpools() as spools:
        for item in dataset.items():
            spool = spools.get(item.subset)
            tag = next((tag.label for tag in item.tags), None)
            if tag is not None and tag not in index:
                raise FormatError(f"label {tag!r} is not among the dataset's labels", item=item.name)
            directory = f"{index[tag]}--{tag}" if tag is not None else NO_LABEL
            path = f"{directory}/{item.id}{dataset.image_extension(item)}"
            if any(char.isspace() for char in path):
                raise FormatError("WiderFace image paths cannot contain whitespace", item=item.name)
            spool.write(path + "\n")
            boxes = [s for s in item.shapes if s.type == "rectangle" and not s.outside]
            if boxes:
                spool.write(f"{len(boxes)}\n")
            for number, shape in enumerate(boxes):
                spool.write(_box_line(shape, labels, item.name, number) + "\n")
            if options.save_images:
                data = dataset.image(item)
                if data is not None:
                    output.write(f"WIDER_{item.subset}/images/{path}", data)
        spools.copy_to(output, lambda subset: f"{SPLIT_DIR}/wider_face_{subset}_bbx_gt.txt")


def _box_line(shape: Shape, labels: dict[str, LabelSpec], item: str, number: int) -> str:
    spec = labels.get(shape.label)
    if spec is None:
        raise FormatError(
            f"label {shape.label!r} is not among the dataset's labels", item=item, annotation=number
        )
    x1, y1, x2, y2 = shape.points[:4]
    values = [_number(x1), _number(y1), _number(x2 - x1), _number(y2 - y1)]
    for name in ATTRIBUTES:
        if name == "occluded":
            values.append(str(shape.occluded))
            continue
        value = shape.attributes.get(name)
        attribute = spec.attribute(name)
        if value is None or value == "":
            values.append("-")
            continue
        written = _attribute_value(value, attribute.input_type if attribute else "text")
        if any(char.isspace() for char in written):
            raise FormatError(
                f"attribute {name!r} value {value!r} contains whitespace, which WiderFace cannot hold",
                item=item,
                annotation=number,
            )
        values.append(written)
    if shape.label != DEFAULT_LABEL:
        if any(char.isspace() for char in shape.label):
            raise FormatError(
                f"label {shape.label!r} contains whitespace, which WiderFace cannot hold",
                item=item,
                annotation=number,
            )
        values.append(shape.label)
    return " ".join(values)


def _split_dir(root: Path) -> Path:
    for candidate in (root / SPLIT_DIR, *sorted(root.glob(f"*/{SPLIT_DIR}"))):
        if candidate.is_dir() and any(candidate.glob("*.txt")):
            return candidate
    raise FormatError(f"no annotation file {SPLIT_DIR}/wider_face_<subset>_bbx_gt.txt", file=SPLIT_DIR)


def _subset(path: Path) -> str:
    match = _SUBSET.fullmatch(path.stem)
    return match.group(1) if match else path.stem


def _dir_label(directory: str) -> str:
    return directory.split("--", 1)[1] if "--" in directory else directory


def _labels(base: Path, subsets: list[str]) -> list[str]:
    path = base / LABELS_FILE
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines()
        return list(dict.fromkeys(line.strip() for line in lines if line.strip()))
    names = [DEFAULT_LABEL]
    for subset in subsets:
        images = base / f"WIDER_{subset}" / "images"
        if images.is_dir():
            for directory in sorted(p.name for p in images.iterdir() if p.is_dir()):
                if directory != NO_LABEL and _dir_label(directory) not in names:
                    names.append(_dir_label(directory))
    return names


def _is_int(text: str) -> bool:
    return text.strip().lstrip("-").isdigit()


def _numbers_only(text: str) -> bool:
    try:
        [float(value) for value in text.split()]
    except ValueError:
        return False
    return bool(text.split())


class _Lines:
    """The non-empty lines of a file with their numbers, one line of look-ahead."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines = ((n, line.strip()) for n, line in enumerate(stream, 1) if line.strip())
        self._next: tuple[int, str] | None = None

    def peek(self) -> tuple[int, str] | None:
        if self._next is None:
            self._next = next(self._lines, None)
        return self._next

    def take(self) -> tuple[int, str] | None:
        line = self.peek()
        self._next = None
        return line


def _read_box(text: str, names: list[str], file: str, lineno: int, item: str, number: int) -> Shape:
    values = text.split()
    if len(values) < 4:
        raise FormatError(
            f"a box needs x, y, w and h, found {len(values)} values",
            file=file,
            line=lineno,
            item=item,
            annotation=number,
        )
    try:
        x, y, w, h = (float(value) for value in values[:4])
    except ValueError:
        bad = next(v for v in values[:4] if not _numbers_only(v))
        raise FormatError(
            f"{bad!r} is not a number", file=file, line=lineno, item=item, annotation=number
        ) from None
    if w < 0 or h < 0:
        raise FormatError("the box has a negative size", file=file, line=lineno, item=item, annotation=number)
    label = values[-1] if len(values) in (5, 11) else DEFAULT_LABEL
    if label not in names:
        raise FormatError(
            f"label {label!r} is not among the labels ({', '.join(names)})",
            file=file,
            line=lineno,
            item=item,
            annotation=number,
        )
    attributes: dict[str, str] = {}
    occluded = False
    if len(values) >= 10:
        for name, value in zip(ATTRIBUTES, values[4:10], strict=True):
            if value == "-":
                continue
            if value in ("True", "False"):
                value = value.lower()
            if name == "occluded":
                occluded = value.lower() in ("true", "1")
                continue
            attributes[name] = value
    return Shape(
        type="rectangle", label=label, points=[x, y, x + w, y + h], occluded=occluded, attributes=attributes
    )


def import_widerface(root: Path, options: ImportOptions) -> Dataset:
    split = _split_dir(root)
    base = split.parent
    files = sorted(split.glob("*.txt"))
    names = _labels(base, [_subset(path) for path in files])

    def items() -> Iterator[Item]:
        for path in files:
            yield from _read_file(path, base, names)

    return StreamedDataset(base.name or root.name, [LabelSpec(name=name) for name in names], items)


def _read_file(path: Path, base: Path, names: list[str]) -> Iterator[Item]:
    file = path.relative_to(base).as_posix()
    subset = _subset(path)
    images = base / f"WIDER_{subset}" / "images"
    with open(path, encoding="utf-8") as stream:
        lines = _Lines(stream)
        while (entry := lines.take()) is not None:
            lineno, image_path = entry
            if _numbers_only(image_path):
                raise FormatError(f"expected an image path, found {image_path!r}", file=file, line=lineno)
            image_path = image_path.replace("\\", "/")
            directory, _, name = image_path.rpartition("/")
            first = image_path.split("/", 1)[0] if directory else ""
            item_name = image_path[len(first) + 1 :] if first else image_path
            tags = []
            if first and first != NO_LABEL and _dir_label(first) in names:
                tags.append(Tag(label=_dir_label(first)))
            shapes: list[Shape] = []
            count_line = lines.peek()
            if count_line is not None and _is_int(count_line[1]):
                lines.take()
                count = int(count_line[1])
                if count < 0:
                    raise FormatError(
                        f"negative box count {count}", file=file, line=count_line[0], item=item_name
                    )
                for number in range(count):
                    box = lines.take()
                    if box is None or not _numbers_only(box[1].split()[0]):
                        raise FormatError(
                            f"the image has {count} boxes, found {number}",
                            file=file,
                            line=box[0] if box else count_line[0],
                            item=item_name,
                        )
                    shapes.append(_read_box(box[1], names, file, box[0], item_name, number))
                following = lines.peek()
                if count == 0 and following is not None and _numbers_only(following[1]):
                    # the benchmark writes a line of zeros after a count of 0
                    lines.take()
            image = first_file(base, [images / image_path])
            width = height = None
            if image is not None:
                width, height = image_size(image, image.relative_to(base).as_posix())
            yield Item(
                name=item_name,
                subset=subset,
                width=width,
                height=height,
                tags=tags,
                shapes=shapes,
                image=str(image) if image else None,
            )


def detect_widerface(root: Path) -> float:
    for split in (root / SPLIT_DIR, *root.glob(f"*/{SPLIT_DIR}")):
        if split.is_dir() and any(split.glob("wider_face_*.txt")):
            return 0.95
        if split.is_dir() and any(split.glob("*.txt")):
            return 0.7
    return 0.0


@hookimpl
def register_formats(register: Callable[[Format], None]) -> None:
    register(
        Format(
            "WiderFace",
            "1.0",
            exporter=export_widerface,
            importer=import_widerface,
            carries=frozenset({"rectangle", "tag", "attributes", "occluded", "images"}),
            detect=detect_widerface,
            aliases=("widerface", "wider_face"),
            description="WIDER Face: wider_face_split/wider_face_<subset>_bbx_gt.txt, WIDER_<subset>/images/",
        )
    )


__all__ = ["register_formats"]
