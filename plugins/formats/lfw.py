"""LFW 1.0: the Labeled Faces in the Wild layout, as CVAT reads and writes it.

Per subset: ``<subset>/annotations/pairs.txt``, ``people.txt`` and ``landmarks.txt``, and with images
``<subset>/images/<person>/<image>``. An archive holding ``annotations/`` alone (no subset
directory) is the ``default`` subset.

- ``pairs.txt``: tab-separated lines. ``<person> <n1> <n2>`` is a matched pair (the images
  ``<person>_<n1 as 0001>`` and ``<person>_<n2>``), ``<person1> <n1> <person2> <n2>`` a mismatched
  one (``-`` for a second image without a person), ``<person>/<image>`` or ``<image>`` an image on
  its own. LFW's own header line (two numbers) is skipped.
- ``people.txt``: ``<person> <image count>`` per line (a line with a count alone is LFW's header).
- ``landmarks.txt``: ``<person>/<image>.<ext> x1 y1 x2 y2 ...``.

In annota the person is a tag whose label is the person's name, with the text attributes
``positive_pairs`` and ``negative_pairs`` (image names separated by commas), and landmarks are a
points shape labelled by their directory (the person's, or for an image without a person the
shape's own label). On export an item's first tag names its person; items without a tag are listed
alone; points shapes are written as landmarks, everything else is left out. Only pairs.txt gives
an image its person.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from annota.core import hookimpl
from annota.core.errors import FormatError
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.model import DEFAULT_SUBSET, AttributeSpec, Dataset, Item, LabelSpec, Shape, Tag
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, Format, ImportOptions
from annota.core.formats.source import find_image, inside
from annota.core.formats.spools import SubsetSpools

ANNOTATIONS_DIR = "annotations"
IMAGES_DIR = "images"
PAIRS_FILE = "pairs.txt"
PEOPLE_FILE = "people.txt"
LANDMARKS_FILE = "landmarks.txt"
POSITIVE = "positive_pairs"
NEGATIVE = "negative_pairs"
#: an image of a person as LFW names it: ``<person>_<number>``
_NUMBERED = re.compile(r"^(.+)_(-?\d+)$")


def _number(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _pair_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _image_number(person: str, image: str) -> str:
    """How pairs.txt names an image of ``person``: its number, or its name when it has none."""
    match = _NUMBERED.match(image)
    if match and match.group(1) == person:
        return str(int(match.group(2)))
    return image


# --- export ------------------------------------------------------------------------------------


def export_lfw(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    people: dict[str, dict[str, int]] = {}
    with SubsetSpools() as positive, SubsetSpools() as negative, SubsetSpools() as alone:
        with SubsetSpools() as landmarks:
            for item in dataset.items():
                if item.subset not in people:
                    people[item.subset] = dict.fromkeys((label.name for label in dataset.labels), 0)
                counts = people[item.subset]
                _export_item(dataset, item, output, options, counts, positive, negative, alone, landmarks)
            for subset, counts in people.items():
                base = f"{subset}/{ANNOTATIONS_DIR}"
                with output.open_text(f"{base}/{PAIRS_FILE}") as stream:
                    for spools in (positive, negative, alone):
                        spools.write_subset(subset, stream)
                with output.open_text(f"{base}/{PEOPLE_FILE}") as stream:
                    stream.writelines(f"{person}\t{count}\n" for person, count in counts.items())
            landmarks.copy_to(output, lambda subset: f"{subset}/{ANNOTATIONS_DIR}/{LANDMARKS_FILE}")


def _export_item(
    dataset: Dataset,
    item: Item,
    output: Output,
    options: ExportOptions,
    counts: dict[str, int],
    positive: SubsetSpools,
    negative: SubsetSpools,
    alone: SubsetSpools,
    landmarks: SubsetSpools,
) -> None:
    tag = item.tags[0] if item.tags else None
    person = tag.label if tag is not None else None
    extension = PurePosixPath(item.name).suffix or dataset.image_extension(item)
    if person is not None:
        counts[person] = counts.get(person, 0) + 1
        number = _image_number(person, item.id)
        matched = _pair_names(tag.attributes.get(POSITIVE, "")) if tag else []
        mismatched = _pair_names(tag.attributes.get(NEGATIVE, "")) if tag else []
        for other in matched:
            positive.get(item.subset).write(f"{person}\t{number}\t{_image_number(person, other)}\n")
        for other in mismatched:
            match = _NUMBERED.match(other)
            second = f"{match.group(1)}\t{int(match.group(2))}" if match else f"-\t{other}"
            negative.get(item.subset).write(f"{person}\t{number}\t{second}\n")
        if not matched and not mismatched:
            alone.get(item.subset).write(f"{person}/{item.id}\n")
    else:
        alone.get(item.subset).write(f"{item.id}\n")
    prefix = f"{person}/" if person is not None else ""
    for shape in item.shapes:
        if shape.type == "points" and not shape.outside:
            # the directory names the landmarks' label: the person's, or the shape's own
            values = "\t".join(_number(v) for v in shape.points)
            name = f"{prefix or shape.label + '/'}{item.id}{extension}"
            landmarks.get(item.subset).write(f"{name}\t{values}\n")
    if options.save_images:
        data = dataset.image(item)
        if data is not None:
            output.write(f"{item.subset}/{IMAGES_DIR}/{prefix}{item.id}{extension}", data)


# --- import ------------------------------------------------------------------------------------


@dataclass
class _Entry:
    """What the annotation files say about one image."""

    person: str | None = None
    #: the directory under images/ the landmarks name (the person's, when known from pairs.txt)
    folder: str | None = None
    positive: list[str] = field(default_factory=list)
    negative: list[str] = field(default_factory=list)
    points: list[Shape] = field(default_factory=list)


def _subsets(root: Path) -> list[tuple[str, Path]]:
    """``(subset, its annotations directory)``: ``<subset>/annotations/pairs.txt`` under ``root``
    or its only child, or ``annotations/pairs.txt`` alone (the default subset)."""
    for base in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        found = [
            (directory.name, directory / ANNOTATIONS_DIR)
            for directory in sorted(base.iterdir())
            if directory.is_dir() and (directory / ANNOTATIONS_DIR / PAIRS_FILE).is_file()
        ]
        if found:
            return found
        if (base / ANNOTATIONS_DIR / PAIRS_FILE).is_file():
            return [(DEFAULT_SUBSET, base / ANNOTATIONS_DIR)]
    return []


def _fields(line: str) -> list[str]:
    return line.split("\t") if "\t" in line else line.split()


def _image_id(person: str, image: str) -> str:
    """The item id of ``image`` (a number or a name) of ``person`` in pairs.txt."""
    try:
        return f"{person}_{int(image):04d}"
    except ValueError:
        return image


def _split_person(name: str, known: dict[str, None]) -> tuple[str | None, str]:
    """``<person>/<image>`` as (person, image); a name without a directory has no person."""
    person, slash, image = name.partition("/")
    if slash and person and image:
        known.setdefault(person)
        return person, image
    return None, name


def _read_people(path: Path, file: str, known: dict[str, None]) -> None:
    with open(path, encoding="utf-8-sig") as stream:
        for lineno, line in enumerate(stream, 1):
            fields = _fields(line.strip())
            if not fields or len(fields) == 1 and fields[0].isdigit():
                continue
            if len(fields) != 2:
                raise FormatError(
                    f"expected '<person> <count>', found {line.strip()!r}", file=file, line=lineno
                )
            known.setdefault(fields[0])


def _read_pairs(path: Path, file: str, known: dict[str, None]) -> dict[str, _Entry]:
    entries: dict[str, _Entry] = {}

    def entry(item: str, person: str | None) -> _Entry:
        found = entries.setdefault(item, _Entry())
        if person is not None:
            known.setdefault(person)
            found.person = found.person or person
        return found

    with open(path, encoding="utf-8-sig") as stream:
        for lineno, line in enumerate(stream, 1):
            fields = _fields(line.strip())
            if not fields:
                continue
            if len(fields) == 1:
                person, image = _split_person(fields[0], known)
                entry(image, person)
            elif len(fields) == 2 and all(f.isdigit() for f in fields):
                continue  # LFW's header: the number of folds and of pairs per fold
            elif len(fields) == 3:
                person, first, second = fields
                other = _image_id(person, second)
                entry(_image_id(person, first), person).positive.append(other)
                entry(other, person)
            elif len(fields) == 4:
                person, first, other_person, second = fields
                first_entry = entry(_image_id(person, first), person)
                if other_person == "-":
                    other = second
                    entry(other, None)
                else:
                    other = _image_id(other_person, second)
                    entry(other, other_person)
                first_entry.negative.append(other)
            else:
                raise FormatError(
                    f"expected 1, 3 or 4 tab-separated fields, found {len(fields)}", file=file, line=lineno
                )
    return entries


def _read_landmarks(path: Path, file: str, entries: dict[str, _Entry], known: dict[str, None]) -> None:
    with open(path, encoding="utf-8-sig") as stream:
        for lineno, line in enumerate(stream, 1):
            fields = _fields(line.strip())
            if not fields:
                continue
            name = str(PurePosixPath(fields[0].replace("\\", "/")).with_suffix(""))
            person, image = _split_person(name, known)
            found = entries.setdefault(image, _Entry())
            # landmarks give their points a label; only pairs.txt gives an image its person
            found.folder = found.folder or person
            label = person or found.person
            try:
                values = [float(v) for v in fields[1:]]
            except ValueError:
                raise FormatError(
                    "landmark coordinates must be numbers", file=file, line=lineno, item=image
                ) from None
            if not values or len(values) % 2:
                raise FormatError(
                    f"expected x y pairs of coordinates, found {len(values)} values",
                    file=file,
                    line=lineno,
                    item=image,
                    annotation=len(found.points),
                )
            if label is None:
                raise FormatError(
                    "the landmarks name no person (<person>/<image>) and the image has none in pairs.txt",
                    file=file,
                    line=lineno,
                    item=image,
                    annotation=len(found.points),
                )
            found.points.append(Shape(type="points", label=label, points=values))


def _item(base: Path, subset: str, directory: Path, image: str, entry: _Entry) -> Item:
    images = directory.parent / IMAGES_DIR
    stems = [images / folder / image for folder in (entry.person, entry.folder) if folder]
    stems.append(images / image)
    path, size = find_image(base, *stems)
    width, height = size if size else (None, None)
    tags = []
    if entry.person is not None:
        attributes = {}
        if entry.positive:
            attributes[POSITIVE] = ",".join(entry.positive)
        if entry.negative:
            attributes[NEGATIVE] = ",".join(entry.negative)
        tags.append(Tag(label=entry.person, attributes=attributes))
    return Item(
        name=image + (path.suffix if path else ""),
        subset=subset,
        width=width,
        height=height,
        tags=tags,
        shapes=entry.points,
        image=str(path) if path else None,
    )


def import_lfw(root: Path, options: ImportOptions) -> Dataset:
    subsets = _subsets(root)
    if not subsets:
        raise FormatError(f"no {ANNOTATIONS_DIR}/{PAIRS_FILE} file", file=root.name or ".")
    base = root
    known: dict[str, None] = {}
    read: list[tuple[str, Path, dict[str, _Entry]]] = []
    # the pairs name images across lines (a matched pair gives both images their person), so a
    # subset's files are read whole before its items are known: LFW's lists are small
    for subset, directory in subsets:
        if not inside(base, directory):
            continue
        name = directory.relative_to(base).as_posix()
        people = directory / PEOPLE_FILE
        if people.is_file():
            _read_people(people, f"{name}/{PEOPLE_FILE}", known)
        entries = _read_pairs(directory / PAIRS_FILE, f"{name}/{PAIRS_FILE}", known)
        landmarks = directory / LANDMARKS_FILE
        if landmarks.is_file():
            _read_landmarks(landmarks, f"{name}/{LANDMARKS_FILE}", entries, known)
        read.append((subset, directory, entries))
    attributes = [AttributeSpec(name=POSITIVE), AttributeSpec(name=NEGATIVE)]
    labels = [LabelSpec(name=person, attributes=list(attributes)) for person in known]

    def items() -> Iterator[Item]:
        for subset, directory, entries in read:
            for image, entry in entries.items():
                yield _item(base, subset, directory, image, entry)

    return StreamedDataset(root.name, labels, items)


def detect_lfw(root: Path) -> float:
    return 0.9 if _subsets(root) else 0.0


@hookimpl
def register_formats(register: Callable[[Format], None]) -> None:
    register(
        Format(
            "LFW",
            "1.0",
            exporter=export_lfw,
            importer=import_lfw,
            carries=frozenset({"tag", "points", "attributes", "images"}),
            detect=detect_lfw,
            aliases=("lfw",),
            description="LFW faces: <subset>/annotations/pairs.txt, people.txt and landmarks.txt.",
        )
    )


__all__ = ["register_formats"]
