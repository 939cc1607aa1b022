"""Market-1501 1.0: the person re-identification dataset, as CVAT reads and writes it.

Market-1501 has no annotation file: what is known of an image is in its name,
``<person>_c<camera>s<track>_<frame:06d>_<box:02d>.jpg``, and in its directory,
``bounding_box_<subset>/`` or ``query/``; ``images_<subset>.txt`` lists a subset's images. As in
CVAT, a frame carries this as a tag of the label ``market-1501`` with the attributes
``person_id``, ``camera_id`` (0-based: the name's camera number minus 1), ``track_id``,
``frame_id``, ``bbox_id`` and ``query``.

Export: a frame whose name already follows the pattern keeps it; one with a ``person_id`` gets a
name built from its attributes (track 1 and box 0 by default; without ``frame_id``, the next
frame number of that person, camera and track, so that names never collide); any other frame
keeps its name. ``query`` true puts the image under ``query/``. Other annotations are not
carried.

Import: the lists ``images_<subset>.txt`` when there are any, else the images under
``bounding_box_<subset>/`` and ``query/`` (subset ``query``); ``query`` is true for images under
``query/``. Images whose names do not follow the pattern come without a tag. The item name is
the image's file name (a listed image may be missing: the item then has no image).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from annota.core import hookimpl
from annota.core.errors import FormatError
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.model import AttributeSpec, Dataset, Item, LabelSpec, Tag
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, Format, ImportOptions
from annota.core.formats.source import image_size, inside
from annota.core.formats.spools import SubsetSpools

LABEL = "market-1501"
QUERY_DIR = "query"
BOX_DIR_PREFIX = "bounding_box_"
LIST_PREFIX = "images_"
PATTERN = re.compile(r"^(-?\d+)_c(\d+)s(\d+)_(\d+)_(\d+)(.*)")
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
ATTRIBUTES = [
    AttributeSpec(name="query", input_type="checkbox", values=["false"], default_value="false"),
    *(AttributeSpec(name=name) for name in ("person_id", "camera_id", "track_id", "frame_id", "bbox_id")),
]


def _integer(attributes: dict[str, str], name: str, default: int | None, item: str) -> int | None:
    value = attributes.get(name, "").strip()
    if not value:
        return default
    try:
        return int(float(value))
    except ValueError:
        raise FormatError(f"attribute {name!r} value {value!r} is not a number", item=item) from None


def export_market1501(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    used_frames: dict[tuple[int, int, int], int] = {}
    with SubsetSpools() as spools:
        for item in dataset.items():
            spool = spools.get(item.subset)
            attributes: dict[str, str] = {}
            for tag in item.tags:
                if tag.label == LABEL:
                    attributes.update(tag.attributes)
            query = attributes.get("query", "").strip().lower() == "true"
            directory = QUERY_DIR if query else f"{BOX_DIR_PREFIX}{item.subset}"
            name = _image_name(item, attributes, used_frames)
            path = f"{directory}/{name}{dataset.image_extension(item)}"
            spool.write(path + "\n")
            if options.save_images:
                data = dataset.image(item)
                if data is not None:
                    output.write(path, data)
        spools.copy_to(output, lambda subset: f"{LIST_PREFIX}{subset}.txt")


def _image_name(item: Item, attributes: dict[str, str], used_frames: dict[tuple[int, int, int], int]) -> str:
    match = PATTERN.fullmatch(item.id)
    person = _integer(attributes, "person_id", None, item.name)
    if match:
        key = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
        used_frames[key] = max(used_frames.get(key, -1), int(match.group(4)))
        return item.id
    if person is None:
        return item.id
    camera = (_integer(attributes, "camera_id", 0, item.name) or 0) + 1
    track = _integer(attributes, "track_id", 1, item.name) or 0
    box = _integer(attributes, "bbox_id", 0, item.name) or 0
    key = (person, camera, track)
    frame = _integer(attributes, "frame_id", None, item.name)
    if frame is None:
        frame = used_frames.get(key, -1) + 1
    used_frames[key] = max(used_frames.get(key, -1), frame)
    parent = str(PurePosixPath(item.id).parent)
    # the person id is written as given ("0001", "-1" for distractors), a number like "1.0" as 1
    written = attributes["person_id"].strip()
    if not re.fullmatch(r"-?\d+", written):
        written = str(person)
    name = f"{written}_c{camera}s{track}_{frame:06d}_{box:02d}"
    return name if parent == "." else f"{parent}/{name}"


def _subsets(root: Path) -> dict[str, Path]:
    """Each subset's list file or, when there are no lists, its image directory."""
    found: dict[str, Path] = {}
    for path in sorted(root.glob(f"{LIST_PREFIX}*.txt")):
        if path.is_file() and len(path.stem) > len(LIST_PREFIX):
            found[path.stem[len(LIST_PREFIX) :]] = path
    if found:
        # the lists name every image, those under query/ included
        return found
    for path in sorted(root.iterdir()):
        if path.is_dir() and path.name.startswith(BOX_DIR_PREFIX) and len(path.name) > len(BOX_DIR_PREFIX):
            found.setdefault(path.name[len(BOX_DIR_PREFIX) :], path)
        elif path.is_dir() and path.name == QUERY_DIR:
            found.setdefault(QUERY_DIR, path)
    return found


def _dataset_root(root: Path) -> Path:
    for candidate in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        if _subsets(candidate):
            return candidate
    raise FormatError(
        f"no {LIST_PREFIX}<subset>.txt, {BOX_DIR_PREFIX}<subset>/ or {QUERY_DIR}/ found", file=root.name
    )


def _images(base: Path, subset: str, source: Path) -> Iterator[tuple[Path, str, int | None]]:
    """(image path, its path relative to the dataset, line number in the list)."""
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
                yield path, path.relative_to(base).as_posix(), None
        return
    with open(source, encoding="utf-8") as stream:
        for lineno, line in enumerate(stream, 1):
            relative = line.strip().replace("\\", "/")
            if not relative:
                continue
            path = base / relative
            if not inside(base, path):
                raise FormatError(f"{relative!r} is outside the dataset", file=source.name, line=lineno)
            yield path, relative, lineno


def import_market1501(root: Path, options: ImportOptions) -> Dataset:
    base = _dataset_root(root)
    subsets = _subsets(base)

    def items() -> Iterator[Item]:
        for subset, source in subsets.items():
            for path, relative, lineno in _images(base, subset, source):
                yield _item(path, relative, lineno, subset, source.name)

    return StreamedDataset(base.name, [LabelSpec(name=LABEL, attributes=list(ATTRIBUTES))], items)


def _item(path: Path, relative: str, lineno: int | None, subset: str, source: str) -> Item:
    parts = PurePosixPath(relative).parts
    inner = PurePosixPath(*parts[1:]) if len(parts) > 1 else PurePosixPath(parts[0])
    tags = []
    name = inner.as_posix()
    match = PATTERN.search(inner.stem)
    if match:
        person, camera, track, frame, box, custom = match.groups()
        tags.append(
            Tag(
                label=LABEL,
                attributes={
                    "person_id": person,
                    "camera_id": str(int(camera) - 1),
                    "track_id": str(int(track)),
                    "frame_id": str(int(frame)),
                    "bbox_id": str(int(box)),
                    "query": "true" if parts[0] == QUERY_DIR else "false",
                },
            )
        )
        if custom:
            parent = inner.parent.as_posix()
            name = (custom if parent == "." else f"{parent}/{custom}") + inner.suffix
    width = height = None
    image = None
    if path.is_file():
        image = str(path)
        width, height = image_size(path, relative)
    elif lineno is None:
        raise FormatError("the image cannot be read", file=relative)
    return Item(name=name, subset=subset, width=width, height=height, tags=tags, image=image)


def detect_market1501(root: Path) -> float:
    subsets = _subsets(root)
    if any(p.is_file() for p in subsets.values()):
        return 0.8
    for source in subsets.values():
        if any(PATTERN.match(p.stem) for p in source.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS):
            return 0.7
    return 0.0


@hookimpl
def register_formats(register: Callable[[Format], None]) -> None:
    register(
        Format(
            "Market-1501",
            "1.0",
            exporter=export_market1501,
            importer=import_market1501,
            carries=frozenset({"tag", "attributes", "images"}),
            detect=detect_market1501,
            aliases=("market1501", "market-1501"),
            description="Market-1501: person, camera, track, frame and box in the image names.",
        )
    )


__all__ = ["register_formats"]
