"""VGGFace2 1.0: the VGGFace2 face dataset's layout, as CVAT reads and writes it.

Layout: ``labels.txt`` (one label per line, the first word counts),
``bb_landmark/loose_landmark_<subset>.csv`` (``NAME_ID,P1X,P1Y,...,P5Y``: five facial landmarks),
``bb_landmark/loose_bb_<subset>.csv`` (``NAME_ID,X,Y,W,H``) and, with images,
``<subset>/<label>/<image>``. ``NAME_ID`` is ``<label>/<image without extension>``
(``no_label/...`` for an image without one).

Export: at most one box (a rectangle) and one set of landmarks (a points shape) per frame, as
CVAT requires; a frame with more is refused. Landmarks other than five points keep only their
label; each tag is a landmark row without points; a frame without any of these is a
``no_label`` row. The image is stored once per label of its annotations.

Import: a landmark row with all ten coordinates is a points shape, one without them a tag; a box
row with X, Y, W and H a rectangle; both take the label of ``NAME_ID``'s directory. Extra columns
are ignored. As CVAT does for tasks, the label directory is dropped from the item name. Without
``labels.txt`` the labels are the image directories, else the ``NAME_ID`` directories. The rows of
one image must be next to each other in each file; the two files are read side by side, so files
in the same order (as the dataset and CVAT write them) are never held in memory.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from annota.core import hookimpl
from annota.core.errors import FormatError
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.model import Dataset, Item, LabelSpec, Shape, Tag
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, Format, ImportOptions
from annota.core.formats.source import first_file, image_size

ANNOTATION_DIR = "bb_landmark"
BOXES_PREFIX = "loose_bb_"
LANDMARKS_PREFIX = "loose_landmark_"
LABELS_FILE = "labels.txt"
NO_LABEL = "no_label"
LANDMARK_COLUMNS = ("P1X", "P1Y", "P2X", "P2Y", "P3X", "P3Y", "P4X", "P4Y", "P5X", "P5Y")
BOX_COLUMNS = ("X", "Y", "W", "H")
#: a landmark row without points still has its ten (empty) columns, as readers expect
_EMPTY = [""] * len(LANDMARK_COLUMNS)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".JPG", ".PNG")


def _number(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _name_id(item: Item, label: str) -> str:
    parts = item.id.split("/")
    if len(parts) > 1 and parts[0] == label:
        return item.id
    return f"{label}/{item.id}"


class _Subset:
    """The two CSV tables of a subset, spooled while images go into the ZIP."""

    def __init__(self) -> None:
        self.landmarks = tempfile.SpooledTemporaryFile(
            max_size=8 << 20, mode="w+", encoding="utf-8", newline=""
        )
        self.boxes = tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+", encoding="utf-8", newline="")
        self.landmark_rows = csv.writer(self.landmarks, lineterminator="\n")
        self.box_rows = csv.writer(self.boxes, lineterminator="\n")
        self.landmark_rows.writerow(["NAME_ID", *LANDMARK_COLUMNS])
        self.box_rows.writerow(["NAME_ID", *BOX_COLUMNS])
        self.has_boxes = False

    def close(self) -> None:
        self.landmarks.close()
        self.boxes.close()


def export_vggface2(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    known = {label.name for label in dataset.labels}
    with output.open_text(LABELS_FILE) as stream:
        stream.writelines(f"{label.name}\n" for label in dataset.labels)
    subsets: dict[str, _Subset] = {}
    try:
        for item in dataset.items():
            subset = subsets.get(item.subset)
            if subset is None:
                subset = subsets[item.subset] = _Subset()
            used = _write_rows(item, subset, known)
            if options.save_images:
                data = dataset.image(item)
                if data is not None:
                    file_name = item.id + dataset.image_extension(item)
                    for label in used or [NO_LABEL]:
                        if len(item.id.split("/")) > 1 and item.id.split("/")[0] == label:
                            output.write(f"{item.subset}/{file_name}", data)
                        else:
                            output.write(f"{item.subset}/{label}/{file_name}", data)
        for name, subset in subsets.items():
            for stream, prefix, wanted in (
                (subset.landmarks, LANDMARKS_PREFIX, True),
                (subset.boxes, BOXES_PREFIX, subset.has_boxes),
            ):
                if not wanted:
                    continue
                stream.seek(0)
                with output.open_text(f"{ANNOTATION_DIR}/{prefix}{name}.csv") as target:
                    shutil.copyfileobj(stream, target)
    finally:
        for subset in subsets.values():
            subset.close()


def _write_rows(item: Item, subset: _Subset, known: set[str]) -> list[str]:
    """Write the item's rows; return the labels of its annotations, in order."""
    shapes = [s for s in item.shapes if not s.outside and s.type in ("rectangle", "points")]
    for number, shape in enumerate(shapes):
        if shape.label not in known:
            raise FormatError(
                f"label {shape.label!r} is not among the dataset's labels", item=item.name, annotation=number
            )
    boxes = [s for s in shapes if s.type == "rectangle"]
    landmarks = [s for s in shapes if s.type == "points"]
    for kind, found in (("box", boxes), ("set of landmarks", landmarks)):
        if len(found) > 1:
            raise FormatError(f"VGGFace2 holds one {kind} per image, found {len(found)}", item=item.name)
    used: list[str] = []
    if landmarks:
        shape = landmarks[0]
        used.append(shape.label)
        values = [_number(v) for v in shape.points] if len(shape.points) == 10 else _EMPTY
        subset.landmark_rows.writerow([_name_id(item, shape.label), *values])
    if boxes:
        shape = boxes[0]
        used.append(shape.label)
        x1, y1, x2, y2 = shape.points[:4]
        subset.has_boxes = True
        subset.box_rows.writerow(
            [_name_id(item, shape.label), _number(x1), _number(y1), _number(x2 - x1), _number(y2 - y1)]
        )
    for tag in dict.fromkeys(tag.label for tag in item.tags):
        if tag not in known:
            raise FormatError(f"label {tag!r} is not among the dataset's labels", item=item.name)
        used.append(tag)
        subset.landmark_rows.writerow([_name_id(item, tag), *_EMPTY])
    if not used:
        subset.landmark_rows.writerow([_name_id(item, NO_LABEL), *_EMPTY])
    return list(dict.fromkeys(used))


class _Row:
    def __init__(self, name_id: str, lineno: int, values: dict[str, str | None]) -> None:
        self.name_id = name_id
        self.lineno = lineno
        self.values = values


def _rows(path: Path, file: str) -> Iterator[_Row]:
    with open(path, encoding="utf-8", newline="") as stream:
        reader = csv.DictReader(stream)
        if reader.fieldnames is None or "NAME_ID" not in reader.fieldnames:
            raise FormatError("the header has no NAME_ID column", file=file, line=1)
        for row in reader:
            name_id = (row.get("NAME_ID") or "").strip().replace("\\", "/")
            if not name_id:
                raise FormatError("NAME_ID is empty", file=file, line=reader.line_num)
            yield _Row(name_id, reader.line_num, {k: v for k, v in row.items() if isinstance(k, str)})


def _groups(rows: Iterator[_Row]) -> Iterator[list[_Row]]:
    group: list[_Row] = []
    for row in rows:
        if group and row.name_id != group[0].name_id:
            yield group
            group = []
        group.append(row)
    if group:
        yield group


def _coordinates(row: _Row, columns: tuple[str, ...], file: str) -> list[float] | None:
    """The row's coordinates, or ``None`` when some are missing (a label-only row)."""
    texts = [(row.values.get(column) or "").strip() for column in columns]
    if not all(texts):
        return None
    try:
        return [float(text) for text in texts]
    except ValueError:
        bad = next(t for t in texts if not _is_number(t))
        raise FormatError(f"{bad!r} is not a number", file=file, line=row.lineno, item=row.name_id) from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _annotation_dir(root: Path) -> Path:
    for candidate in (root / ANNOTATION_DIR, *sorted(root.glob(f"*/{ANNOTATION_DIR}"))):
        if candidate.is_dir() and _tables(candidate):
            return candidate
    raise FormatError(
        f"no annotation file {ANNOTATION_DIR}/{LANDMARKS_PREFIX}<subset>.csv or {BOXES_PREFIX}<subset>.csv",
        file=ANNOTATION_DIR,
    )


def _tables(directory: Path) -> dict[str, dict[str, Path]]:
    """Per subset, its ``landmarks`` and ``boxes`` files."""
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(directory.glob("*.csv")):
        for prefix, kind in ((LANDMARKS_PREFIX, "landmarks"), (BOXES_PREFIX, "boxes")):
            if path.name.startswith(prefix) and len(path.stem) > len(prefix):
                found.setdefault(path.stem[len(prefix) :], {})[kind] = path
    return found


def _labels(base: Path, tables: dict[str, dict[str, Path]]) -> list[str]:
    path = base / LABELS_FILE
    if path.is_file():
        words = (line.split() for line in path.read_text(encoding="utf-8").splitlines())
        return list(dict.fromkeys(parts[0] for parts in words if parts))
    names: dict[str, None] = {}
    for subset in tables:
        directory = base / subset
        if directory.is_dir():
            names.update((p.name, None) for p in sorted(directory.iterdir()) if p.is_dir())
    if not names:
        for files in tables.values():
            for path in files.values():
                for row in _rows(path, path.name):
                    if "/" in row.name_id:
                        names[row.name_id.split("/", 1)[0]] = None
    names.pop(NO_LABEL, None)
    return list(names)


def import_vggface2(root: Path, options: ImportOptions) -> Dataset:
    directory = _annotation_dir(root)
    base = directory.parent
    tables = _tables(directory)
    names = _labels(base, tables)

    def items() -> Iterator[Item]:
        for subset, files in tables.items():
            yield from _read_subset(base, subset, files, names)

    return StreamedDataset(base.name or root.name, [LabelSpec(name=name) for name in names], items)


class _Boxes:
    """The box rows of a subset, read as far as needed to find a given image's."""

    def __init__(self, path: Path | None, file: str) -> None:
        self.rows = _groups(_rows(path, file)) if path is not None else iter(())
        self.file = file
        self.waiting: dict[str, list[_Row]] = {}

    def take(self, name_id: str) -> list[_Row]:
        if name_id in self.waiting:
            return self.waiting.pop(name_id)
        for group in self.rows:
            if group[0].name_id == name_id:
                return group
            if group[0].name_id in self.waiting:
                raise FormatError(
                    "the rows of an image must be next to each other",
                    file=self.file,
                    line=group[0].lineno,
                    item=group[0].name_id,
                )
            self.waiting[group[0].name_id] = group
        return []

    def rest(self) -> Iterator[list[_Row]]:
        yield from self.waiting.values()
        self.waiting = {}
        yield from self.rows


def _read_subset(base: Path, subset: str, files: dict[str, Path], names: list[str]) -> Iterator[Item]:
    landmarks_path = files.get("landmarks")
    boxes_path = files.get("boxes")
    landmarks_file = landmarks_path.relative_to(base).as_posix() if landmarks_path else ""
    boxes = _Boxes(boxes_path, boxes_path.relative_to(base).as_posix() if boxes_path else "")
    seen: set[str] = set()
    groups = _groups(_rows(landmarks_path, landmarks_file)) if landmarks_path else iter(())
    for group in groups:
        name_id = group[0].name_id
        if name_id in seen:
            raise FormatError(
                "the rows of an image must be next to each other",
                file=landmarks_file,
                line=group[0].lineno,
                item=name_id,
            )
        seen.add(name_id)
        yield _item(base, subset, name_id, group, landmarks_file, boxes.take(name_id), boxes.file, names)
    for group in boxes.rest():
        name_id = group[0].name_id
        if name_id in seen:
            raise FormatError(
                "the rows of an image must be next to each other",
                file=boxes.file,
                line=group[0].lineno,
                item=name_id,
            )
        seen.add(name_id)
        yield _item(base, subset, name_id, [], landmarks_file, group, boxes.file, names)


def _label(name_id: str, names: list[str], file: str, row: _Row, what: str) -> str | None:
    if "/" not in name_id:
        return None
    label = name_id.split("/", 1)[0]
    if label == NO_LABEL:
        return None
    if label not in names:
        raise FormatError(
            f"label {label!r} of the {what} is not among the labels ({', '.join(names)})",
            file=file,
            line=row.lineno,
            item=name_id,
        )
    return label


def _item(
    base: Path,
    subset: str,
    name_id: str,
    landmark_rows: list[_Row],
    landmarks_file: str,
    box_rows: list[_Row],
    boxes_file: str,
    names: list[str],
) -> Item:
    tags: list[Tag] = []
    shapes: list[Shape] = []
    for row in landmark_rows:
        label = _label(name_id, names, landmarks_file, row, "landmarks")
        points = _coordinates(row, LANDMARK_COLUMNS, landmarks_file)
        if points is not None:
            if any(s.type == "points" for s in shapes):
                raise FormatError(
                    "an image can have only one set of landmarks",
                    file=landmarks_file,
                    line=row.lineno,
                    item=name_id,
                )
            if label is None:
                raise FormatError(
                    "landmarks need a label", file=landmarks_file, line=row.lineno, item=name_id
                )
            shapes.append(Shape(type="points", label=label, points=points))
        elif label is not None and all(tag.label != label for tag in tags):
            tags.append(Tag(label=label))
    for row in box_rows:
        label = _label(name_id, names, boxes_file, row, "box")
        box = _coordinates(row, BOX_COLUMNS, boxes_file)
        if box is None:
            continue
        if any(s.type == "rectangle" for s in shapes):
            raise FormatError(
                "an image can have only one box", file=boxes_file, line=row.lineno, item=name_id
            )
        if label is None:
            raise FormatError("a box needs a label", file=boxes_file, line=row.lineno, item=name_id)
        x, y, w, h = box
        if w < 0 or h < 0:
            raise FormatError("the box has a negative size", file=boxes_file, line=row.lineno, item=name_id)
        shapes.append(Shape(type="rectangle", label=label, points=[x, y, x + w, y + h]))
    image = first_file(base, [base / subset / (name_id + ext) for ext in IMAGE_EXTENSIONS])
    # as CVAT does for tasks, the label directory is not part of the frame's name
    name = name_id.split("/", 1)[1] if "/" in name_id else name_id
    width = height = None
    if image is not None:
        name += image.suffix
        width, height = image_size(image, image.name)
    return Item(
        name=name,
        subset=subset,
        width=width,
        height=height,
        tags=tags,
        shapes=shapes,
        image=str(image) if image else None,
    )


def detect_vggface2(root: Path) -> float:
    for directory in (root / ANNOTATION_DIR, *root.glob(f"*/{ANNOTATION_DIR}")):
        if directory.is_dir() and _tables(directory):
            return 0.95
    return 0.0


@hookimpl
def register_formats(register: Callable[[Format], None]) -> None:
    register(
        Format(
            "VGGFace2",
            "1.0",
            exporter=export_vggface2,
            importer=import_vggface2,
            carries=frozenset({"rectangle", "points", "tag", "images"}),
            detect=detect_vggface2,
            aliases=("vggface2", "vgg_face2"),
            description="VGGFace2: bb_landmark/loose_bb_<subset>.csv and loose_landmark_<subset>.csv.",
        )
    )


__all__ = ["register_formats"]
