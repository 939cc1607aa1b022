"""ICDAR Recognition 1.0 and ICDAR Localization 1.0: the ICDAR text datasets, as CVAT reads and writes them.

Both keep text in a ``text`` attribute of the label ``icdar`` (imported annotations all take that
label; exported ones may have any label).

Recognition: ``<subset>/gt.txt`` with lines ``<image>, "<text>"`` (one line per text; an image
without text is ``<image>,``) and ``<subset>/images/<image>``. A frame's texts are the ``text``
attributes of its tags and shapes; they import as tags. ``\\`` escapes a quote or backslash.

Localization: ``<subset>/gt_<image id>.txt`` per frame with lines ``x1 y1 x2 y2 "text"`` for
rectangles and ``x1,y1,...,x4,y4,"text"`` for polygons (the ICDAR 2015 form
``x1,y1,...,x4,y4,text`` without quotes is read too), and ``<subset>/images/<image>``.
Rectangles are written unrotated, polygons need at least four points and texts cannot contain
quotes; outside shapes and other types are left out.

Segmentation: characters as coloured masks, in ``_icdar_segmentation`` (registered here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from annota.core import hookimpl
from annota.core.errors import FormatError
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.model import AttributeSpec, Dataset, Item, LabelSpec, Shape, Tag
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, Format, ImportOptions
from annota.core.formats.source import first_file, image_size, subset_dirs
from annota.core.formats.spools import SubsetSpools
from annota.plugins.formats import _icdar_segmentation as segmentation

LABEL = "icdar"
TEXT = "text"
IMAGES_DIR = "images"
RECOGNITION_FILE = "gt.txt"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".JPG", ".PNG")


def _labels() -> list[LabelSpec]:
    return [LabelSpec(name=LABEL, attributes=[AttributeSpec(name=TEXT)])]


def _number(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


# --- Recognition -------------------------------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _unescape(text: str) -> str:
    out: list[str] = []
    chars = iter(text)
    for char in chars:
        out.append(next(chars, "") if char == "\\" else char)
    return "".join(out)


def export_recognition(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    with SubsetSpools() as spools:
        for item in dataset.items():
            spool = spools.get(item.subset)
            file_name = item.id + dataset.image_extension(item)
            texts = [t.attributes[TEXT] for t in item.tags if TEXT in t.attributes]
            texts += [s.attributes[TEXT] for s in item.shapes if TEXT in s.attributes and not s.outside]
            for text in texts:
                spool.write(f'{file_name}, "{_escape(text)}"\n')
            if not texts:
                spool.write(f"{file_name},\n")
            if options.save_images:
                data = dataset.image(item)
                if data is not None:
                    output.write(f"{item.subset}/{IMAGES_DIR}/{file_name}", data)
        spools.copy_to(output, lambda subset: f"{subset}/{RECOGNITION_FILE}")


def _recognition_line(line: str, file: str, lineno: int) -> tuple[str, str | None]:
    """(image file name, text or ``None``) of a gt.txt line."""
    name, separator, rest = line.partition(",")
    name, rest = name.strip(), rest.strip()
    if not name:
        raise FormatError("the line has no image name", file=file, line=lineno)
    if not separator or not rest:
        return name, None
    if len(rest) < 2 or rest[0] != '"' or rest[-1] != '"' or rest[-2:] == '\\"' and rest[-3:] != '\\\\"':
        raise FormatError(f'the text {rest!r} is not between quotes ("...")', file=file, line=lineno)
    return name, _unescape(rest[1:-1])


def import_recognition(root: Path, options: ImportOptions) -> Dataset:
    base, subsets = subset_dirs(root, lambda p: (p / RECOGNITION_FILE).is_file())
    if not subsets:
        raise FormatError(f"no <subset>/{RECOGNITION_FILE} file", file=RECOGNITION_FILE)

    def items() -> Iterator[Item]:
        for directory in subsets:
            yield from _read_recognition(base, directory)

    return StreamedDataset(base.name or root.name, _labels(), items)


def _read_recognition(base: Path, directory: Path) -> Iterator[Item]:
    path = directory / RECOGNITION_FILE
    file = path.relative_to(base).as_posix()
    current: Item | None = None
    with open(path, encoding="utf-8-sig") as stream:
        for lineno, line in enumerate(stream, 1):
            if not line.strip():
                continue
            name, text = _recognition_line(line.strip(), file, lineno)
            name = name.replace("\\", "/")
            if current is None or current.name != name:
                if current is not None:
                    yield current
                image = first_file(base, [directory / IMAGES_DIR / name])
                width, height = (
                    image_size(image, image.relative_to(base).as_posix()) if image else (None, None)
                )
                current = Item(
                    name=name,
                    subset=directory.name,
                    width=width,
                    height=height,
                    tags=[],
                    image=str(image) if image else None,
                )
            if text is not None:
                current.tags.append(Tag(label=LABEL, attributes={TEXT: text}))
    if current is not None:
        yield current


# --- Localization ------------------------------------------------------------------------------


def export_localization(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    for item in dataset.items():
        lines = []
        for number, shape in enumerate(item.shapes):
            if shape.outside or shape.type not in ("rectangle", "polygon"):
                continue
            text = shape.attributes.get(TEXT)
            if text is not None and '"' in text:
                raise FormatError(
                    f"the text {text!r} contains a quote, which ICDAR cannot hold",
                    item=item.name,
                    annotation=number,
                )
            if shape.type == "rectangle":
                line = " ".join(_number(v) for v in shape.points[:4])
                lines.append(line + (f' "{text}"' if text is not None else ""))
            else:
                if len(shape.points) < 8:
                    raise FormatError(
                        "ICDAR polygons need at least four points", item=item.name, annotation=number
                    )
                line = ",".join(_number(v) for v in shape.points)
                lines.append(line + (f',"{text}"' if text is not None else ""))
        parent, _, stem = item.id.rpartition("/")
        name = f"{parent}/gt_{stem}.txt" if parent else f"gt_{stem}.txt"
        with output.open_text(f"{item.subset}/{name}") as stream:
            stream.writelines(f"{line}\n" for line in lines)
        if options.save_images:
            data = dataset.image(item)
            if data is not None:
                output.write(f"{item.subset}/{IMAGES_DIR}/{item.id}{dataset.image_extension(item)}", data)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _localization_line(line: str, file: str, lineno: int, item: str, number: int) -> Shape:
    text: str | None = None
    if '"' in line:
        first, last = line.index('"'), line.rindex('"')
        if first == last:
            raise FormatError("unbalanced quotes around the text", file=file, line=lineno, item=item)
        text, line = line[first + 1 : last], line[:first]
        tokens = [t for t in line.replace(",", " ").split() if t]
    elif "," in line:
        parts = [part.strip() for part in line.split(",")]
        count = 8 if len(parts) >= 8 and all(_is_number(p) for p in parts[:8]) else 4
        tokens = parts[:count]
        if len(parts) > count:
            text = ",".join(parts[count:])
    else:
        tokens = line.split()
    numbers = [t for t in tokens if _is_number(t)]
    extra = tokens[len(numbers) :]
    if any(not _is_number(t) for t in tokens[: len(numbers)]) or len(extra) > 1:
        raise FormatError(f"unexpected values {' '.join(extra)!r}", file=file, line=lineno, item=item)
    if extra and text is None:
        text = extra[0]
    values = [float(t) for t in numbers]
    attributes = {TEXT: text} if text is not None else {}
    if len(values) >= 8 and len(values) % 2 == 0:
        return Shape(type="polygon", label=LABEL, points=values, attributes=attributes)
    if len(values) == 4:
        x1, y1, x2, y2 = values
        if x2 < x1 or y2 < y1:
            raise FormatError(
                "the box's second corner is above or left of its first", file=file, line=lineno, item=item
            )
        return Shape(type="rectangle", label=LABEL, points=values, attributes=attributes)
    raise FormatError(
        f"expected 4 box coordinates or at least 8 polygon coordinates, found {len(values)}",
        file=file,
        line=lineno,
        item=item,
        annotation=number,
    )


def import_localization(root: Path, options: ImportOptions) -> Dataset:
    base, subsets = subset_dirs(root, lambda p: any(p.rglob("gt_*.txt")))
    if not subsets:
        raise FormatError("no <subset>/gt_<image>.txt file", file=root.name or ".")

    def items() -> Iterator[Item]:
        for directory in subsets:
            for path in sorted(directory.rglob("gt_*.txt")):
                if path.is_file() and IMAGES_DIR not in path.relative_to(directory).parts[:1]:
                    yield _localization_item(base, directory, path)

    return StreamedDataset(base.name or root.name, _labels(), items)


def _localization_item(base: Path, directory: Path, path: Path) -> Item:
    relative = path.relative_to(directory)
    item_id = relative.with_name(relative.stem[3:]).as_posix()
    file = path.relative_to(base).as_posix()
    shapes: list[Shape] = []
    with open(path, encoding="utf-8-sig") as stream:
        for lineno, line in enumerate(stream, 1):
            if line.strip():
                shapes.append(_localization_line(line.strip(), file, lineno, item_id, len(shapes)))
    images = directory / IMAGES_DIR
    image = first_file(base, [images / (item_id + ext) for ext in IMAGE_EXTENSIONS])
    width, height = image_size(image, image.relative_to(base).as_posix()) if image else (None, None)
    return Item(
        name=item_id + (image.suffix if image else ""),
        subset=directory.name,
        width=width,
        height=height,
        shapes=shapes,
        image=str(image) if image else None,
    )


# --- detection and registration ----------------------------------------------------------------


def detect_recognition(root: Path) -> float:
    _, subsets = subset_dirs(root, lambda p: (p / RECOGNITION_FILE).is_file())
    for directory in subsets:
        with open(directory / RECOGNITION_FILE, encoding="utf-8-sig", errors="replace") as stream:
            for line in stream:
                if line.strip():
                    name = line.partition(",")[0].strip()
                    return 0.8 if Path(name).suffix.lower() in IMAGE_EXTENSIONS else 0.0
        return 0.3
    return 0.0


def detect_localization(root: Path) -> float:
    _, subsets = subset_dirs(root, lambda p: any(p.glob("gt_*.txt")))
    return 0.8 if subsets else 0.0


@hookimpl
def register_formats(register: Callable[[Format], None]) -> None:
    register(
        Format(
            "ICDAR Recognition",
            "1.0",
            exporter=export_recognition,
            importer=import_recognition,
            carries=frozenset({"tag", "attributes", "images"}),
            detect=detect_recognition,
            aliases=("icdar_word_recognition",),
            description='ICDAR word recognition: <subset>/gt.txt lines <image>, "<text>".',
        )
    )
    register(
        Format(
            "ICDAR Localization",
            "1.0",
            exporter=export_localization,
            importer=import_localization,
            carries=frozenset({"rectangle", "polygon", "attributes", "images"}),
            detect=detect_localization,
            aliases=("icdar_text_localization",),
            description="ICDAR text localization: <subset>/gt_<image>.txt, boxes or quadrangles with text.",
        )
    )
    register(
        Format(
            "ICDAR Segmentation",
            "1.0",
            exporter=segmentation.export_segmentation,
            importer=segmentation.import_segmentation,
            carries=frozenset({"mask", "attributes", "group", "images"}),
            detect=segmentation.detect_segmentation,
            aliases=("icdar_text_segmentation",),
            description="ICDAR text segmentation: <subset>/<image>_GT.txt characters and _GT.bmp masks.",
        )
    )


__all__ = ["register_formats"]
