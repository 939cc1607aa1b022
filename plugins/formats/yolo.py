"""YOLO 1.1 (Darknet) and the Ultralytics YOLO family: detection, segmentation, oriented boxes, pose,
classification, and detection with track ids (export only).

Both keep one ``<id>.txt`` per image with one object per line, coordinates normalised by the image
size, which is why every exported item needs ``width``/``height`` and every imported annotation
needs its image: sizes are read from the image file headers (no decoding). An import whose label
file has objects but whose image is not in the dataset fails with a ``FormatError`` naming the
item: the format has no other place that records the size.

Layouts (subset ``default`` is written as ``train``, as CVAT does; imported subsets keep the
names found in the files):

- YOLO 1.1: ``obj.names``, ``obj.data`` (``classes``, ``<subset> = data/<subset>.txt``,
  ``names = data/obj.names``, ``backup``), ``obj_<subset>_data/<id>.txt`` (and the images beside
  them), ``<subset>.txt`` listing ``data/obj_<subset>_data/<image>``. Boxes only; a rotated box is
  written as its unrotated box.
- Ultralytics: ``data.yaml`` (``path: .``, ``<subset>: <subset>.txt``, ``names: {0: a}``, and
  ``kpt_shape`` for pose), ``images/<subset>/<image>``, ``labels/<subset>/<id>.txt``,
  ``<subset>.txt`` listing ``images/<subset>/<image>``. Import also accepts ``<subset>/images``
  and ``<subset>/labels`` (Roboflow's order) and an optional integer track id ending a line.
- Ultralytics classification: ``<subset>/<label>/<image>`` plus ``<subset>/labels.json``
  (``{"names": [...], "items": {"<label>/<image>": "<item name>"}}``), which keeps the tags when
  the images are not saved. Items without tags have no place in this layout and are left out.

Every exported item gets a label file, empty when it has no objects, so it survives a round trip.
Coordinates outside the image are written and read as they are. Items are bound by file stem.
"""

from __future__ import annotations

import abc
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from annota.core import hookimpl
from annota.core.errors import FormatError
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.model import DEFAULT_SUBSET, Dataset, Item, LabelSpec, Shape, Tag
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, Format, ImportOptions
from annota.core.formats.source import inside

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".jfif"})
#: obj.data keys that are not subsets
_RESERVED = frozenset({"classes", "names", "backup"})
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


# --- shared helpers ------------------------------------------------------------------------------


def _subset_dir(subset: str) -> str:
    return "train" if not subset or subset == DEFAULT_SUBSET else subset


def _image_name(item: Item, dataset: Dataset) -> str:
    return f"{item.id}{dataset.image_extension(item)}"


def _scale(item: Item) -> tuple[float, float]:
    """1/width and 1/height, the factors every normalised coordinate needs."""
    if not item.width or not item.height or item.width <= 0 or item.height <= 0:
        raise FormatError("the image size is unknown, coordinates cannot be normalised", item=item.name)
    return 1.0 / item.width, 1.0 / item.height


def _top_names(labels: Sequence[LabelSpec]) -> list[str]:
    return [label.name for label in labels]


def _class_of(index: dict[str, int], shape: Shape, item: Item) -> int:
    try:
        return index[shape.label]
    except KeyError:
        raise FormatError(
            f"label {shape.label!r} is not among the dataset's labels", item=item.name
        ) from None


def image_size(path: Path, root: Path) -> tuple[int, int]:
    """(width, height) from the image file header."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception as exc:  # PIL raises many types for unreadable files
        raise FormatError(f"cannot read the image size: {exc}", file=_rel(path, root)) from None
    return int(width), int(height)


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _images_under(folder: Path) -> dict[str, Path]:
    """Image files under ``folder`` by id (relative path without extension)."""
    found: dict[str, Path] = {}
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
                found.setdefault(path.relative_to(folder).with_suffix("").as_posix(), path)
    return found


def _floats(parts: list[str], file: str, line: int) -> list[float]:
    try:
        return [float(part) for part in parts]
    except ValueError:
        bad = next(part for part in parts if not _is_float(part))
        raise FormatError(f"{bad!r} is not a number", file=file, line=line) from None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _class_index(text: str, count: int, file: str, line: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise FormatError(f"the class index {text!r} is not an integer", file=file, line=line) from None
    if not 0 <= value < count:
        raise FormatError(
            f"class index {value} is not a declared class (0..{count - 1})", file=file, line=line
        )
    return value


def _track_id(text: str, file: str, line: int) -> int:
    try:
        return int(text)
    except ValueError:
        raise FormatError(f"the track id {text!r} is not an integer", file=file, line=line) from None


def _box(
    cx: float, cy: float, w: float, h: float, size: tuple[int, int], file: str, line: int
) -> list[float]:
    if w < 0 or h < 0:
        raise FormatError("the box has a negative size", file=file, line=line)
    width, height = size
    return [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]


# --- YOLO 1.1 ----------------------------------------------------------------------------------


#: printf-style: measurably faster than an f-string with format specs on this hot path
_BOX_LINE = "%d %.6f %.6f %.6f %.6f\n"


def _box_lines(item: Item, index: dict[str, int], with_tracks: bool = False) -> str:
    # the hot path of YOLO exports: one dict lookup per box and one format call per item
    values: list[float] = []
    track_ids: list[int | None] = []
    hx = hy = sx = sy = 0.0
    for shape in item.shapes:
        if shape.type != "rectangle" or shape.outside:
            continue
        if not sx:
            sx, sy = _scale(item)
            hx, hy = sx * 0.5, sy * 0.5
        label = index.get(shape.label)
        if label is None:
            label = _class_of(index, shape, item)
        x1, y1, x2, y2 = shape.points
        values += (label, (x1 + x2) * hx, (y1 + y2) * hy, (x2 - x1) * sx, (y2 - y1) * sy)
        if with_tracks:
            track_ids.append(shape.track_id)
    if not with_tracks:
        return (_BOX_LINE * (len(values) // 5)) % tuple(values)
    lines = []
    for position, track_id in enumerate(track_ids):
        line = _BOX_LINE % tuple(values[5 * position : 5 * position + 5])
        lines.append(line if track_id is None else f"{line[:-1]} {track_id}\n")
    return "".join(lines)


def export_yolo(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    names = _top_names(dataset.labels)
    index = {name: i for i, name in enumerate(names)}
    lists: dict[str, list[str]] = {}
    for item in dataset.items():
        subset = _subset_dir(item.subset)
        if subset in _RESERVED:
            raise FormatError(f"the subset name {subset!r} is reserved in obj.data", item=item.name)
        folder = f"obj_{subset}_data"
        image_name = _image_name(item, dataset)
        if options.save_images:
            data = dataset.image(item)
            if data is not None:
                output.write(f"{folder}/{image_name}", data)
        lists.setdefault(subset, []).append(f"data/{folder}/{image_name}\n")
        output.write(f"{folder}/{item.id}.txt", _box_lines(item, index).encode())
    with output.open_text("obj.names") as stream:
        stream.writelines(f"{name}\n" for name in names)
    for subset, paths in lists.items():
        with output.open_text(f"{subset}.txt") as stream:
            stream.writelines(paths)
    with output.open_text("obj.data") as stream:
        stream.write(f"classes = {len(names)}\n")
        for subset in lists:
            stream.write(f"{subset} = data/{subset}.txt\n")
        stream.write("names = data/obj.names\nbackup = backup/\n")


def _localize(path: str) -> str:
    """A path from obj.data or a subset list, relative to the dataset root (``data/`` dropped)."""
    path = path.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path[5:] if path.startswith("data/") else path


def _parse_obj_data(path: Path, root: Path) -> dict[str, str]:
    config: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise FormatError("expected 'key = value'", file=_rel(path, root), line=lineno)
        config[key.strip()] = value.strip()
    return config


def _read_names(path: Path, root: Path) -> list[str]:
    if not path.is_file():
        raise FormatError("the class names file is missing", file=_rel(path, root))
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _parse_boxes(path: Path, root: Path, count: int, size: Callable[[], tuple[int, int]]) -> list[Shape]:
    """The boxes of a YOLO label file (``class cx cy w h``); ``size`` is asked only when needed."""
    shapes: list[Shape] = []
    width = height = 0
    with open(path, encoding="utf-8") as stream:
        for lineno, line in enumerate(stream, 1):
            parts = line.split()
            if not parts:
                continue
            # the hot path of YOLO imports: conversions inline, helpers only to explain an error
            try:
                label, cx, cy, w, h = (
                    int(parts[0]),
                    float(parts[1]),
                    float(parts[2]),
                    float(parts[3]),
                    float(parts[4]),
                )
            except (ValueError, IndexError):
                _reject_box_line(parts, count, _rel(path, root), lineno)
            if len(parts) != 5 or not 0 <= label < count or w < 0 or h < 0:
                _reject_box_line(parts, count, _rel(path, root), lineno)
            if not width:
                width, height = size()
            shapes.append(
                Shape(
                    type="rectangle",
                    label=str(label),
                    points=[
                        (cx - w / 2) * width,
                        (cy - h / 2) * height,
                        (cx + w / 2) * width,
                        (cy + h / 2) * height,
                    ],
                )
            )
    return shapes


def _reject_box_line(parts: list[str], count: int, file: str, line: int) -> NoReturn:
    """Raise the ``FormatError`` that says what is wrong with a ``class cx cy w h`` line."""
    if len(parts) != 5:
        raise FormatError(f"expected 5 values (class cx cy w h), found {len(parts)}", file=file, line=line)
    _class_index(parts[0], count, file, line)
    cx, cy, w, h = _floats(parts[1:], file, line)
    _box(cx, cy, w, h, (1, 1), file, line)
    raise FormatError("malformed box line", file=file, line=line)


def _find_file(root: Path, name: str) -> Path | None:
    if (root / name).is_file():
        return root / name
    for path in sorted(root.rglob(name)):
        if path.is_file():
            return path
    return None


def import_yolo(root: Path, options: ImportOptions) -> Dataset:
    config_path = _find_file(root, "obj.data")
    if config_path is None:
        raise FormatError("obj.data is missing", file="obj.data")
    base = config_path.parent
    config = _parse_obj_data(config_path, root)
    names_path = base / _localize(config.get("names", "obj.names"))
    subsets = [(key, base / _localize(value)) for key, value in config.items() if key not in _RESERVED]
    for path in [names_path, *(list_path for _, list_path in subsets)]:
        if not inside(root, path):
            raise FormatError(
                f"the path {_rel(path, root)!r} leads outside the dataset", file=_rel(config_path, root)
            )
    names = _read_names(names_path, root)
    for _, list_path in subsets:
        if not list_path.is_file():
            raise FormatError("the subset list named in obj.data is missing", file=_rel(list_path, root))

    def items() -> Iterator[Item]:
        for subset, list_path in subsets:
            list_file = _rel(list_path, root)
            lines = list_path.read_text(encoding="utf-8").splitlines()
            for lineno, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                relative = _localize(line)
                image_path = base / relative
                if not inside(root, image_path):
                    raise FormatError("the image path leads outside the dataset", file=list_file, line=lineno)
                parts = relative.split("/", 1)
                name = parts[1] if len(parts) > 1 else parts[0]
                label_path = image_path.with_suffix(".txt")
                if not label_path.is_file():
                    raise FormatError(
                        f"the label file {_rel(label_path, root)} is missing", file=list_file, line=lineno
                    )
                yield _item(name, subset, image_path, label_path, root, names, _parse_boxes)

    return StreamedDataset(root.name, [LabelSpec(name=n) for n in names], items)


def _item(
    name: str,
    subset: str,
    image_path: Path | None,
    label_path: Path | None,
    root: Path,
    names: list[str],
    parse: Callable[[Path, Path, int, Callable[[], tuple[int, int]]], list[Shape]],
) -> Item:
    has_image = image_path is not None and image_path.is_file()
    sizes: list[tuple[int, int]] = []

    def size() -> tuple[int, int]:
        if not has_image:
            raise FormatError(
                "the image is not in the dataset, so its size (needed to read normalised coordinates) "
                "is unknown",
                file=_rel(label_path, root) if label_path else None,
                item=name,
            )
        if not sizes:
            assert image_path is not None
            sizes.append(image_size(image_path, root))
        return sizes[0]

    shapes = parse(label_path, root, len(names), size) if label_path is not None else []
    for shape in shapes:
        shape.label = names[int(shape.label)]
    width, height = sizes[0] if sizes else (size() if has_image else (None, None))
    return Item(
        name=name,
        subset=subset,
        width=width,
        height=height,
        shapes=shapes,
        image=str(image_path) if has_image else None,
    )


def detect_yolo(root: Path) -> float:
    if (root / "obj.data").is_file():
        return 0.95
    if (root / "obj.names").is_file() and any(root.glob("obj_*_data")):
        return 0.7
    return 0.0


# --- data.yaml ----------------------------------------------------------------------------------


def parse_data_yaml(text: str, file: str) -> dict[str, Any]:
    """An Ultralytics ``data.yaml``, parsed safely (no tags, no objects); it must be a mapping."""
    # imported here: YOLO 1.1 never needs it, and it is a tenth of a conversion's start-up
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.context_mark or exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise FormatError(str(exc.problem or exc), file=file, line=line, column=column) from None
    except yaml.YAMLError as exc:
        raise FormatError(str(exc), file=file) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FormatError("expected a mapping of keys to values", file=file)
    return data


def _yaml_text(value: Any) -> str:
    if isinstance(value, str):
        return (
            value
            if re.fullmatch(r"[A-Za-z0-9_./-]+", value) and not _NUMBER.match(value)
            else json.dumps(value)
        )
    return json.dumps(value)


# --- Ultralytics export --------------------------------------------------------------------------


class _UltralyticsWriter(abc.ABC):
    """Writes images, label files and subset lists; subclasses say what a label file holds."""

    def __init__(self, dataset: Dataset, output: Output, options: ExportOptions) -> None:
        self.dataset = dataset
        self.output = output
        self.options = options
        self.names = self.class_names()
        self.index = {name: i for i, name in enumerate(self.names)}
        self.lists: dict[str, list[str]] = {}

    def class_names(self) -> list[str]:
        return _top_names(self.dataset.labels)

    @abc.abstractmethod
    def lines(self, item: Item) -> str: ...

    def extra_yaml(self) -> str:
        return ""

    def run(self) -> None:
        output, dataset = self.output, self.dataset
        for item in dataset.items():
            subset = _subset_dir(item.subset)
            image_name = _image_name(item, dataset)
            if self.options.save_images:
                data = dataset.image(item)
                if data is not None:
                    output.write(f"images/{subset}/{image_name}", data)
            self.lists.setdefault(subset, []).append(f"images/{subset}/{image_name}\n")
            output.write(f"labels/{subset}/{item.id}.txt", self.lines(item).encode())
        for subset, paths in self.lists.items():
            with output.open_text(f"{subset}.txt") as stream:
                stream.writelines(paths)
        with output.open_text("data.yaml") as stream:
            stream.write("path: .\n")
            for subset in self.lists:
                stream.write(f"{_yaml_text(subset)}: {_yaml_text(subset + '.txt')}\n")
            stream.write(self.extra_yaml())
            stream.write("names:\n")
            for i, name in enumerate(self.names):
                stream.write(f"  {i}: {json.dumps(name, ensure_ascii=False)}\n")


class _DetectionWriter(_UltralyticsWriter):
    tracks = False

    def lines(self, item: Item) -> str:
        return _box_lines(item, self.index, self.tracks)


class _TrackWriter(_DetectionWriter):
    tracks = True


def _normalised(points: Sequence[float], sx: float, sy: float) -> str:
    return " ".join(f"{points[i] * sx:.6f} {points[i + 1] * sy:.6f}" for i in range(0, len(points) - 1, 2))


class _SegmentationWriter(_UltralyticsWriter):
    def lines(self, item: Item) -> str:
        shapes = [s for s in item.shapes if s.type in ("polygon", "mask") and not s.outside]
        if not shapes:
            return ""
        sx, sy = _scale(item)
        lines: list[str] = []
        for shape in shapes:
            label = _class_of(self.index, shape, item)
            if shape.type == "polygon":
                polygons = [shape.points]
            else:
                from annota.core.formats.masks import bitmap_to_polygons, cvat_to_bitmap

                assert item.width and item.height
                bitmap = cvat_to_bitmap(shape.points, item.width, item.height)
                polygons = bitmap_to_polygons(bitmap)
            lines.extend(f"{label} {_normalised(polygon, sx, sy)}\n" for polygon in polygons)
        return "".join(lines)


def rectangle_corners(points: Sequence[float], rotation: float) -> list[float]:
    """The 4 corners (top-left, top-right, bottom-right, bottom-left before rotation) of a box
    rotated by ``rotation`` degrees around its centre."""
    x1, y1, x2, y2 = points
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    angle = math.radians(rotation)
    cos, sin = math.cos(angle), math.sin(angle)
    corners = []
    for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2)):
        dx, dy = x - cx, y - cy
        corners += [cx + dx * cos - dy * sin, cy + dx * sin + dy * cos]
    return corners


def rectangle_from_corners(corners: Sequence[float]) -> tuple[list[float], float]:
    """The box and rotation (degrees in [0, 360)) whose ``rectangle_corners`` are ``corners``."""
    xs, ys = corners[0::2], corners[1::2]
    cx, cy = sum(xs) / 4, sum(ys) / 4
    width = math.hypot(xs[1] - xs[0], ys[1] - ys[0])
    height = math.hypot(xs[2] - xs[1], ys[2] - ys[1])
    rotation = math.degrees(math.atan2(ys[1] - ys[0], xs[1] - xs[0])) % 360.0
    if rotation > 360.0 - 1e-9:
        rotation = 0.0
    return [cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2], rotation


class _OrientedWriter(_UltralyticsWriter):
    def lines(self, item: Item) -> str:
        shapes = [s for s in item.shapes if s.type == "rectangle" and not s.outside]
        if not shapes:
            return ""
        sx, sy = _scale(item)
        lines = []
        for shape in shapes:
            corners = rectangle_corners(shape.points, shape.rotation)
            lines.append(f"{_class_of(self.index, shape, item)} {_normalised(corners, sx, sy)}\n")
        return "".join(lines)


class _PoseWriter(_UltralyticsWriter):
    def class_names(self) -> list[str]:
        self.skeletons = {label.name: label for label in self.dataset.labels if label.type == "skeleton"}
        self.points = max((len(label.sublabels) for label in self.skeletons.values()), default=0)
        return list(self.skeletons)

    def extra_yaml(self) -> str:
        return f"kpt_shape: [{self.points}, 3]\n"

    def lines(self, item: Item) -> str:
        shapes = [s for s in item.shapes if s.type == "skeleton" and not s.outside]
        if not shapes:
            return ""
        sx, sy = _scale(item)
        lines: list[str] = []
        for shape in shapes:
            label = _class_of(self.index, shape, item)
            order = {sub.name: i for i, sub in enumerate(self.skeletons[shape.label].sublabels)}
            values = ["0.000000 0.000000 0"] * self.points
            placed = [e for e in shape.elements if e.label in order and len(e.points) >= 2]
            for element in placed:
                visibility = 0 if element.outside else 1 if element.occluded else 2
                x, y = element.points[0], element.points[1]
                values[order[element.label]] = f"{x * sx:.6f} {y * sy:.6f} {visibility}"
            visible = [e for e in placed if not e.outside] or placed
            if visible:
                xs = [e.points[0] for e in visible]
                ys = [e.points[1] for e in visible]
                left, top, right, bottom = min(xs), min(ys), max(xs), max(ys)
                box = (
                    f"{(left + right) * 0.5 * sx:.6f} {(top + bottom) * 0.5 * sy:.6f} "
                    f"{(right - left) * sx:.6f} {(bottom - top) * sy:.6f}"
                )
            else:
                box = "0.000000 0.000000 0.000000 0.000000"
            lines.append(f"{label} {box} {' '.join(values)}\n")
        return "".join(lines)


def _writer(
    cls: Callable[[Dataset, Output, ExportOptions], _UltralyticsWriter],
) -> Callable[[Dataset, Output, ExportOptions], None]:
    def export(dataset: Dataset, output: Output, options: ExportOptions) -> None:
        cls(dataset, output, options).run()

    return export


def export_classification(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    names = _top_names(dataset.labels)
    entries: dict[str, dict[str, str]] = {}
    for item in dataset.items():
        labels = list(dict.fromkeys(tag.label for tag in item.tags))
        if not labels:
            continue
        subset = _subset_dir(item.subset)
        image_name = _image_name(item, dataset)
        data = dataset.image(item) if options.save_images else None
        for label in labels:
            if label not in names:
                raise FormatError(f"label {label!r} is not among the dataset's labels", item=item.name)
            if data is not None:
                output.write(f"{subset}/{label}/{image_name}", data)
            entries.setdefault(subset, {})[f"{label}/{image_name}"] = item.name
    for subset, mapping in entries.items():
        document = {"names": names, "items": mapping}
        output.write(f"{subset}/labels.json", json.dumps(document, ensure_ascii=False, indent=1).encode())


# --- Ultralytics import --------------------------------------------------------------------------


def _read_data_yaml(root: Path) -> tuple[Path, dict[str, Any]]:
    for candidate in [root / "data.yaml", root / "data.yml", *sorted(root.glob("*.yaml"))]:
        if candidate.is_file():
            return candidate, parse_data_yaml(candidate.read_text(encoding="utf-8"), _rel(candidate, root))
    raise FormatError("data.yaml is missing", file="data.yaml")


def _scalar_names(values: list[Any], file: str) -> list[str]:
    for index, value in enumerate(values):
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise FormatError(
                f"class {index}: a class name must be text, not {type(value).__name__}", file=file
            )
    return [str(value) for value in values]


def _class_names(config: dict[str, Any], file: str) -> list[str]:
    names = config.get("names")
    if isinstance(names, list):
        return _scalar_names(names, file)
    if isinstance(names, dict):
        try:
            keys = sorted(int(key) for key in names)
        except (TypeError, ValueError):
            raise FormatError("'names' keys must be class indices", file=file) from None
        if keys != list(range(len(keys))):
            raise FormatError("'names' must number the classes 0..n-1 without gaps", file=file)
        return _scalar_names([names[key] if key in names else names[str(key)] for key in keys], file)
    raise FormatError("'names' (the class names) is missing", file=file)


def _subset_layout(root: Path) -> list[tuple[str, Path, Path]]:
    """(subset, labels dir, images dir) for ``labels/<subset>`` and ``<subset>/labels`` layouts."""
    found: dict[str, tuple[Path, Path]] = {}
    for top in ("labels", "images"):
        if (root / top).is_dir():
            for child in sorted((root / top).iterdir()):
                if child.is_dir():
                    found.setdefault(child.name, (root / "labels" / child.name, root / "images" / child.name))
    for child in sorted(root.iterdir()):
        if child.is_dir() and child.name not in ("labels", "images") and (child / "labels").is_dir():
            found.setdefault(child.name, (child / "labels", child / "images"))
    return [(subset, labels, images) for subset, (labels, images) in found.items()]


def _ultralytics_parser(parse_line: Callable[..., Shape]) -> Callable[..., list[Shape]]:
    def parse(path: Path, root: Path, count: int, size: Callable[[], tuple[int, int]]) -> list[Shape]:
        file = _rel(path, root)
        shapes = []
        with open(path, encoding="utf-8") as stream:
            for lineno, line in enumerate(stream, 1):
                parts = line.split()
                if not parts:
                    continue
                label = _class_index(parts[0], count, file, lineno)
                shape = parse_line(parts[1:], size, file, lineno)
                shape.label = str(label)
                shapes.append(shape)
        return shapes

    return parse


def _detection_line(values: list[str], size: Callable[[], tuple[int, int]], file: str, line: int) -> Shape:
    if len(values) not in (4, 5):
        raise FormatError(
            f"expected class cx cy w h [track id], found {len(values) + 1} values", file=file, line=line
        )
    cx, cy, w, h = _floats(values[:4], file, line)
    track = _track_id(values[4], file, line) if len(values) == 5 else None
    return Shape(type="rectangle", label="", points=_box(cx, cy, w, h, size(), file, line), track_id=track)


def _segmentation_line(values: list[str], size: Callable[[], tuple[int, int]], file: str, line: int) -> Shape:
    if len(values) in (4, 5):
        # ``class cx cy w h [track id]`` in a segmentation file is a box, as Ultralytics and CVAT read it
        return _detection_line(values, size, file, line)
    track = None
    if len(values) % 2:
        track = _track_id(values[-1], file, line)
        values = values[:-1]
    if len(values) < 6:
        raise FormatError("a polygon needs at least 3 points", file=file, line=line)
    coords = _floats(values, file, line)
    width, height = size()
    points = [value * (width if i % 2 == 0 else height) for i, value in enumerate(coords)]
    return Shape(type="polygon", label="", points=points, track_id=track)


def _oriented_line(values: list[str], size: Callable[[], tuple[int, int]], file: str, line: int) -> Shape:
    if len(values) not in (8, 9):
        raise FormatError(
            f"expected class x1 y1 ... x4 y4 [track id], found {len(values) + 1} values", file=file, line=line
        )
    coords = _floats(values[:8], file, line)
    track = _track_id(values[8], file, line) if len(values) == 9 else None
    width, height = size()
    corners = [value * (width if i % 2 == 0 else height) for i, value in enumerate(coords)]
    points, rotation = rectangle_from_corners(corners)
    return Shape(type="rectangle", label="", points=points, rotation=rotation, track_id=track)


def _import_ultralytics(parse_line: Callable[..., Shape]) -> Callable[[Path, ImportOptions], Dataset]:
    parse = _ultralytics_parser(parse_line)

    def load(root: Path, options: ImportOptions) -> Dataset:
        config_path, config = _read_data_yaml(root)
        names = _class_names(config, _rel(config_path, root))
        labels = [LabelSpec(name=n) for n in names]
        return StreamedDataset(root.name, labels, _ultralytics_items(root, names, parse))

    return load


def _ultralytics_items(
    root: Path, names: list[str], parse: Callable[..., list[Shape]]
) -> Callable[[], Iterator[Item]]:
    layout = _subset_layout(root)

    def items() -> Iterator[Item]:
        for subset, labels_dir, images_dir in layout:
            images = _images_under(images_dir)
            label_files = (
                {p.relative_to(labels_dir).with_suffix("").as_posix(): p for p in labels_dir.rglob("*.txt")}
                if labels_dir.is_dir()
                else {}
            )
            for item_id in sorted(set(images) | set(label_files)):
                image = images.get(item_id)
                name = image.relative_to(images_dir).as_posix() if image else item_id
                yield _item(name, subset, image, label_files.get(item_id), root, names, parse)

    return items


def _import_pose(root: Path, options: ImportOptions) -> Dataset:
    config_path, config = _read_data_yaml(root)
    file = _rel(config_path, root)
    names = _class_names(config, file)
    shape_value = config.get("kpt_shape")
    if (
        not isinstance(shape_value, list)
        or len(shape_value) != 2
        or not all(isinstance(v, int) for v in shape_value)
        or shape_value[1] not in (2, 3)
        or shape_value[0] < 0
    ):
        raise FormatError("'kpt_shape' must be [number of keypoints, 2 or 3]", file=file)
    count, dims = shape_value
    known = {label.name: label for label in options.labels if label.type == "skeleton"}
    labels = []
    for name in names:
        spec = known.get(name)
        if spec is None or not spec.sublabels:
            spec = LabelSpec(
                name=name,
                type="skeleton",
                sublabels=[LabelSpec(name=str(i + 1), type="points") for i in range(count)],
            )
        labels.append(spec)
    sublabels = [[sub.name for sub in spec.sublabels] for spec in labels]

    def pose_line(values: list[str], size: Callable[[], tuple[int, int]], file: str, line: int) -> Shape:
        expected = 4 + count * dims
        if len(values) not in (expected, expected + 1):
            raise FormatError(
                f"expected class cx cy w h and {count} keypoints of {dims} values, "
                f"found {len(values) + 1} values",
                file=file,
                line=line,
            )
        coords = _floats(values[:expected], file, line)
        track = _track_id(values[expected], file, line) if len(values) > expected else None
        width, height = size()
        if coords[2] < 0 or coords[3] < 0:
            raise FormatError("the box has a negative size", file=file, line=line)
        points = []
        for k in range(count):
            x, y = coords[4 + k * dims], coords[5 + k * dims]
            visibility = int(coords[6 + k * dims]) if dims == 3 else (0 if x == 0 and y == 0 else 2)
            points.append((x * width, y * height, visibility))
        # elements are labelled by keypoint index here; items() below names them
        elements = [
            Shape(type="points", label=str(k), points=[x, y], outside=v == 0, occluded=v == 1)
            for k, (x, y, v) in enumerate(points)
        ]
        return Shape(type="skeleton", label="", points=[], track_id=track, elements=elements)

    parse = _ultralytics_parser(pose_line)
    base_items = _ultralytics_items(root, names, parse)

    def items() -> Iterator[Item]:
        for item in base_items():
            for index, shape in enumerate(item.shapes):
                subs = sublabels[names.index(shape.label)]
                kept = []
                for element in shape.elements:
                    k = int(element.label)
                    if k < len(subs):
                        element.label = subs[k]
                        kept.append(element)
                    elif not element.outside:
                        raise FormatError(
                            f"keypoint {k + 1} is visible but {shape.label!r} has {len(subs)} points",
                            item=item.name,
                            annotation=index,
                        )
                shape.elements = kept
            yield item

    return StreamedDataset(root.name, labels, items)


def _read_labels_json(path: Path, root: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FormatError(exc.msg, file=_rel(path, root), line=exc.lineno, column=exc.colno) from None
    names, items = (
        (document.get("names"), document.get("items")) if isinstance(document, dict) else (None, None)
    )
    if (
        not isinstance(names, list)
        or not all(isinstance(name, str) for name in names)
        or not isinstance(items, dict)
        or not all(isinstance(value, str) for value in items.values())
    ):
        raise FormatError(
            "expected an object with 'names' (a list of class names) and an 'items' object of names",
            file=_rel(path, root),
            pointer="",
        )
    return dict(document)


def _classified(subset: Path) -> tuple[dict[str, list[str]], dict[str, Path]]:
    """Labels and image file of each ``<label>/<image>`` under a subset directory, by image path."""
    tags: dict[str, list[str]] = {}
    images: dict[str, Path] = {}
    for label_dir in sorted(p for p in subset.iterdir() if p.is_dir()):
        for path in sorted(label_dir.rglob("*")):
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
                relative = path.relative_to(label_dir).as_posix()
                tags.setdefault(relative, []).append(label_dir.name)
                images.setdefault(relative, path)
    return tags, images


def _import_classification(root: Path, options: ImportOptions) -> Dataset:
    subsets = sorted(p for p in root.iterdir() if p.is_dir())
    names: list[str] = []
    declared: dict[str, dict[str, Any]] = {}
    for subset in subsets:
        if (subset / "labels.json").is_file():
            declared[subset.name] = _read_labels_json(subset / "labels.json", root)
            names += [str(n) for n in declared[subset.name].get("names", []) if str(n) not in names]
        names += [p.name for p in sorted(subset.iterdir()) if p.is_dir() and p.name not in names]

    def items() -> Iterator[Item]:
        for subset in subsets:
            tags, images = _classified(subset)
            renamed: dict[str, str] = {}
            for key, name in declared.get(subset.name, {}).get("items", {}).items():
                label, _, relative = str(key).partition("/")
                if label not in names or not relative:
                    raise FormatError(
                        f"{key!r} is not <label>/<image>",
                        file=_rel(subset / "labels.json", root),
                        pointer=f"/items/{key}",
                    )
                if label not in tags.setdefault(relative, []):
                    tags[relative].append(label)
                renamed[relative] = str(name)
            for relative in sorted(tags):
                image = images.get(relative)
                width, height = image_size(image, root) if image is not None else (None, None)
                yield Item(
                    name=renamed.get(relative, relative),
                    subset=subset.name,
                    width=width,
                    height=height,
                    tags=[Tag(label=label) for label in tags[relative]],
                    image=str(image) if image else None,
                )

    return StreamedDataset(root.name, [LabelSpec(name=n) for n in names], items)


# --- detection -----------------------------------------------------------------------------------


def _first_line_fields(root: Path) -> int | None:
    """The number of values on the first non-empty line of the first label files, or None."""
    for labels_dir in [root / "labels", *sorted(root.glob("*/labels"))]:
        if not labels_dir.is_dir():
            continue
        for count, path in enumerate(sorted(labels_dir.rglob("*.txt"))):
            if count >= 20:
                return None
            with open(path, encoding="utf-8", errors="replace") as stream:
                for line in stream:
                    if line.strip():
                        return len(line.split())
    return None


def _ultralytics_config(root: Path) -> dict[str, Any] | None:
    path = root / "data.yaml"
    if not path.is_file():
        return None
    try:
        return parse_data_yaml(path.read_text(encoding="utf-8"), "data.yaml")
    except (FormatError, UnicodeDecodeError):
        return None


def _detector(kind: str) -> Callable[[Path], float]:
    def detect(root: Path) -> float:
        config = _ultralytics_config(root)
        if config is None:
            return 0.0
        if "kpt_shape" in config:
            return 0.95 if kind == "pose" else 0.0
        if kind == "pose":
            return 0.0
        fields = _first_line_fields(root)
        if fields is None:
            return 0.5 if kind == "detection" else 0.4
        if kind == "detection":
            return 0.9 if fields in (5, 6) else 0.0
        if kind == "oriented_boxes":
            return 0.9 if fields in (9, 10) else 0.0
        if fields == 9:
            return 0.5
        return 0.85 if fields >= 7 and fields not in (9, 10) else 0.0

    return detect


def _detect_classification(root: Path) -> float:
    """Only ``<subset>/labels.json`` and ``<subset>/<label>/<image>`` may be there."""
    children = list(root.iterdir())
    if not children or any(not child.is_dir() for child in children):
        return 0.0
    declared = images = False
    for subset in children:
        for entry in subset.iterdir():
            if entry.name == "labels.json" and entry.is_file():
                declared = True
            elif not entry.is_dir() or any(
                not p.is_dir() and p.suffix.lower() not in IMAGE_EXTENSIONS for p in entry.iterdir()
            ):
                return 0.0
            else:
                images = True
    return 0.9 if declared else 0.3 if images else 0.0


# --- registration --------------------------------------------------------------------------------


@hookimpl
def register_formats(register: Callable[[Format], None]) -> None:
    register(
        Format(
            "YOLO",
            "1.1",
            exporter=export_yolo,
            importer=import_yolo,
            carries=frozenset({"rectangle", "images"}),
            detect=detect_yolo,
            aliases=("yolo",),
            description="Darknet YOLO: obj.data, obj.names and one normalised box file per image.",
        )
    )
    family = [
        ("Detection", _DetectionWriter, _import_ultralytics(_detection_line), {"rectangle"}, "detection"),
        ("Segmentation", _SegmentationWriter, _import_ultralytics(_segmentation_line), {"polygon", "mask"},
         "segmentation"),
        ("Oriented Bounding Boxes", _OrientedWriter, _import_ultralytics(_oriented_line),
         {"rectangle", "rotation"}, "oriented_boxes"),
        ("Pose", _PoseWriter, _import_pose, {"skeleton"}, "pose"),
    ]  # fmt: skip
    for kind, writer, importer, carries, short in family:
        register(
            Format(
                f"Ultralytics YOLO {kind}",
                "1.0",
                exporter=_writer(writer),
                importer=importer,
                carries=frozenset({*carries, "images"}),
                detect=_detector(short),
                aliases=(f"ultralytics_{short}", f"yolov8_{short}"),
                description=f"Ultralytics YOLO {kind.lower()} dataset (data.yaml, images/, labels/).",
            )
        )
    register(
        Format(
            "Ultralytics YOLO Classification",
            "1.0",
            exporter=export_classification,
            importer=_import_classification,
            carries=frozenset({"tag", "images"}),
            detect=_detect_classification,
            aliases=("ultralytics_classification", "yolov8_classification"),
            description="Ultralytics YOLO classification: <subset>/<label>/<image>.",
        )
    )
    register(
        Format(
            "Ultralytics YOLO Detection Track",
            "1.0",
            exporter=_writer(_TrackWriter),
            carries=frozenset({"rectangle", "track_id", "images"}),
            aliases=("ultralytics_detection_track", "yolov8_detection_track"),
            description="Ultralytics YOLO detection with the track id ending each line of a tracked box.",
        )
    )


__all__ = ["image_size", "parse_data_yaml", "rectangle_corners", "rectangle_from_corners", "register_formats"]
