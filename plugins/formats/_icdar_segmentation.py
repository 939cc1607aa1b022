"""ICDAR Segmentation 1.0: ICDAR's text segmentation layout, as CVAT reads and writes it.

Not a plugin itself: the ICDAR plugin (``icdar``) registers it with its two other formats.

Per image: ``<subset>/<id>_GT.txt`` with one line per character, ``R G B cx cy x1 y1 x2 y2 "c"`` (its
colour in the mask, its centre, its box and the character; a blank line ends a word, ``#`` starts
the line of a space character), ``<subset>/<id>_GT.bmp`` (each character's pixels in its colour,
the rest white) and ``<subset>/images/<id>.<ext>``.

In annota every character is a shape of the label ``icdar`` with the attributes ``index`` (its
line), ``color`` (``R G B``), ``center`` (``cx cy``) and ``text`` (the character); the characters
of a word share a group. Export paints polygons, masks and rectangles by ``index`` (then order)
with their ``color`` or a free one; a text holding white space other than one space cannot be
written. Import gives masks (polygons with ``conv_mask_to_poly``); a text file without its mask
gives no shapes, as in CVAT.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from annota.core.errors import FormatError
from annota.core.formats import masks, segmentation
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.model import AttributeSpec, Dataset, Item, LabelSpec, Shape
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, ImportOptions
from annota.core.formats.segmentation import Color
from annota.core.formats.source import item_with_image, subset_dirs

LABEL = "icdar"
IMAGES_DIR = "images"
SUFFIX = "_GT"
MASK_EXT = ".bmp"
WHITE: Color = (255, 255, 255)
ATTRIBUTES = ("index", "color", "center", "text")
PAINTED = frozenset({"polygon", "mask", "rectangle"})


def labels() -> list[LabelSpec]:
    return [
        LabelSpec(
            name=LABEL,
            attributes=[
                AttributeSpec(name="index", input_type="number", values=["0", "1000000", "1"]),
                *(AttributeSpec(name=name) for name in ATTRIBUTES[1:]),
            ],
        )
    ]


# --- export ------------------------------------------------------------------------------------


def _index(shape: Shape, position: int) -> int:
    try:
        return int(float(shape.attributes.get("index", "")))
    except ValueError:
        return position


def _color(shape: Shape, item: str, number: int) -> Color | None:
    text = shape.attributes.get("color", "").strip()
    if not text:
        return None
    try:
        r, g, b = (int(v) for v in text.split())
    except ValueError:
        raise FormatError(f"the color {text!r} is not 'R G B'", item=item, annotation=number) from None
    if not all(0 <= v <= 255 for v in (r, g, b)):
        raise FormatError(f"the color {text!r} is not 'R G B' in 0..255", item=item, annotation=number)
    return r, g, b


def export_segmentation(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    for item in dataset.items():
        candidates = [
            (position, shape)
            for position, shape in enumerate(item.shapes)
            if shape.type in PAINTED and not shape.outside
        ]
        candidates.sort(key=lambda pair: _index(pair[1], pair[0]))
        lines: list[str] = []
        if candidates:
            width, height = segmentation.canvas_size(item)
            colors = [WHITE]
            chosen = [_color(shape, item.name, position) for position, shape in candidates]
            used = {WHITE, *(color for color in chosen if color is not None)}
            free = (segmentation.voc_color(i) for i in range(1, 1 << 24))
            classes = np.zeros((height, width), dtype=np.int32)
            previous_group: int | None = None
            for number, ((position, shape), color) in enumerate(zip(candidates, chosen, strict=True), 1):
                if color is None or color in colors:
                    color = next(c for c in free if c not in used)
                    used.add(color)
                colors.append(color)
                painted = segmentation.bitmap(shape, width, height)
                classes[painted] = number
                lines.extend(_line(shape, painted, color, previous_group, item.name, position))
                previous_group = shape.group
            mask = segmentation.rgb_png(classes, colors, image_format="BMP")
            output.write(f"{item.subset}/{item.id}{SUFFIX}{MASK_EXT}", mask)
        with output.open_text(f"{item.subset}/{item.id}{SUFFIX}.txt") as stream:
            stream.writelines(lines)
        if options.save_images:
            data = dataset.image(item)
            if data is not None:
                output.write(f"{item.subset}/{IMAGES_DIR}/{item.id}{dataset.image_extension(item)}", data)


def _line(
    shape: Shape, painted: masks.Bitmap, color: Color, previous: int | None, item: str, number: int
) -> list[str]:
    """The lines of a character; a blank line first ends the word before it (``previous`` is the
    group of the character before, None for the first one)."""
    text = shape.attributes.get("text", "")
    if text != " " and any(c.isspace() for c in text):
        raise FormatError(
            f"the text {text!r} holds white space, which an ICDAR segmentation line cannot",
            item=item,
            annotation=number,
        )
    box = masks.bbox_of_bitmap(painted)
    x, y, w, h = box if box is not None else (0.0, 0.0, 0.0, 0.0)
    center = shape.attributes.get("center", "").split()
    center_text = " ".join(center) if len(center) == 2 else "- -"
    # a character without a group is a word of its own
    ends_word = previous is not None and (not shape.group or shape.group != previous)
    lines = ["\n"] if ends_word else []
    prefix = "#" if text == " " else ""
    r, g, b = color
    lines.append(f'{prefix}{r} {g} {b} {center_text} {int(x)} {int(y)} {int(x + w)} {int(y + h)} "{text}"\n')
    return lines


# --- import ------------------------------------------------------------------------------------


@dataclass
class _Character:
    color: Color
    center: str
    text: str
    word: int
    attributes: dict[str, str] = field(default_factory=dict)


def _characters(path: Path, file: str, item: str) -> list[_Character]:
    found: list[_Character] = []
    word = 1
    in_word = 0
    with open(path, encoding="utf-8-sig") as stream:
        for lineno, line in enumerate(stream, 1):
            line = line.strip()
            if not line:
                if in_word == 1:
                    found[-1].word = 0
                if in_word:
                    word += 1
                in_word = 0
                continue
            fields = line.split()
            if fields[0].startswith("#"):
                # a space character: its quoted text was split in two
                fields = [fields[0][1:], *fields[1:9], '" "']
            if len(fields) != 10:
                raise FormatError(
                    f'expected 10 values (R G B cx cy x1 y1 x2 y2 "c"), found {len(fields)}',
                    file=file,
                    line=lineno,
                    item=item,
                    annotation=len(found),
                )
            try:
                r, g, b = (int(v) for v in fields[:3])
            except ValueError:
                raise FormatError(
                    "the colour must be three integers",
                    file=file,
                    line=lineno,
                    item=item,
                    annotation=len(found),
                ) from None
            text = fields[9]
            if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
                text = text[1:-1]
            found.append(_Character(color=(r, g, b), center=f"{fields[3]} {fields[4]}", text=text, word=word))
            in_word += 1
    if in_word == 1:
        found[-1].word = 0
    return found


def import_segmentation(root: Path, options: ImportOptions) -> Dataset:
    base, subsets = subset_dirs(root, lambda p: any(p.rglob(f"*{SUFFIX}.txt")))
    if not subsets:
        raise FormatError(f"no <subset>/<image>{SUFFIX}.txt file", file=root.name or ".")

    def items() -> Iterator[Item]:
        group = 0
        for directory in subsets:
            for path in sorted(directory.rglob(f"*{SUFFIX}.txt")):
                if path.is_file() and IMAGES_DIR not in path.relative_to(directory).parts[:1]:
                    item, group = _item(base, directory, path, options, group)
                    yield item

    return StreamedDataset(base.name or root.name, labels(), items)


def _item(base: Path, directory: Path, path: Path, options: ImportOptions, group: int) -> tuple[Item, int]:
    relative = path.relative_to(directory)
    item_id = relative.with_name(relative.stem[: -len(SUFFIX)]).as_posix()
    characters = _characters(path, path.relative_to(base).as_posix(), item_id)
    mask_path = path.with_name(path.stem + MASK_EXT)
    size: tuple[int, int] | None = None
    shapes: list[Shape] = []
    if mask_path.is_file():
        file = mask_path.relative_to(base).as_posix()
        lookup = {WHITE: 0}
        for number, character in enumerate(characters, 1):
            lookup.setdefault(character.color, number)
        try:
            classes = segmentation.read_colors(mask_path, file, lookup, "character")
        except FormatError as error:
            # an unknown colour means the text file lacks a character: both are named
            text = path.relative_to(base).as_posix()
            raise FormatError(
                f"{error.message} (the characters are in {text})", file=file, item=item_id
            ) from None
        words: dict[int, int] = {}
        for number in np.unique(classes).tolist():
            if not number:
                continue
            character = characters[number - 1]
            attributes = {
                "index": str(number - 1),
                "color": " ".join(map(str, character.color)),
                "center": character.center,
                "text": character.text,
            }
            region, group = segmentation.region_shapes(
                [(LABEL, classes == number)], options.conv_mask_to_poly, group, attributes=attributes
            )
            if character.word:
                if character.word not in words:
                    group += 1
                    words[character.word] = group
                for shape in region:
                    shape.group = words[character.word]
            shapes.extend(region)
        size = (int(classes.shape[1]), int(classes.shape[0]))
    images = directory / IMAGES_DIR
    return item_with_image(base, images / item_id, item_id, directory.name, shapes, size), group


def detect_segmentation(root: Path) -> float:
    _, subsets = subset_dirs(root, lambda p: any(p.glob(f"*{SUFFIX}.txt")))
    for directory in subsets:
        for path in directory.glob(f"*{SUFFIX}.txt"):
            return 0.9 if path.with_name(path.stem + MASK_EXT).is_file() else 0.6
    return 0.0


__all__ = ["detect_segmentation", "export_segmentation", "import_segmentation", "labels"]
