"""MOTS PNG 1.0: the Multi-Object Tracking and Segmentation PNG layout, as CVAT reads and writes it,
and the track numbering it shares with MOT 1.1.

Not a plugin itself: the MOT plugin (``mot``) registers it with MOT 1.1.

Per subset: ``<subset>/instances/<id>.png``, 16-bit, each pixel ``1000 * class + track`` (0 the
background; ``class`` is the 1-based line of ``<subset>/instances/labels.txt``, and 10 is
``ignored`` when there are fewer classes), and ``<subset>/images/<id>.<ext>``. Without labels.txt
the classes are MOTS': 1 ``car``, 2 ``pedestrian``, 10 ``ignored``.

Export: the polygons, masks and rectangles of tracks are painted in ``z_order`` order with their
track id (below 1000); a plain shape gets an id no track uses. Every item gets a map. Import:
every value of a map is a mask carrying its track id, so the masks of a track come back as one
track (a track with the same id in another class, subset or directory of maps gets another id); as
for MOT, a track gets an ``outside`` mask on the item after each run of items it appears on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np

from annota.core.errors import FormatError
from annota.core.formats import masks, segmentation
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.model import Dataset, Item, LabelSpec, Shape
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, ImportOptions
from annota.core.formats.source import IMAGE_EXTENSIONS, item_with_image

INSTANCES_DIR = "instances"
IMAGES_DIR = "images"
LABELS_FILE = "labels.txt"
#: a pixel is ``MAX_INSTANCES * class + track``
MAX_INSTANCES = 1000
IGNORED_CLASS = 10
IGNORED = "ignored"
#: the classes of MOTS (KITTI MOTS and MOTSChallenge), used without labels.txt
MOTS_CLASSES = {1: "car", 2: "pedestrian", IGNORED_CLASS: IGNORED}


class TrackIds:
    """Track ids in an export: tracks keep theirs, plain shapes get ids no track uses, even
    tracks met later."""

    def __init__(self, known: set[int]) -> None:
        self.used: set[int] = set(known)
        self.next = max(known, default=0) + 1
        self.remapped: dict[int, int] = {}
        self.plain: set[int] = set()

    def fresh(self) -> int:
        while self.next in self.used:
            self.next += 1
        self.used.add(self.next)
        self.plain.add(self.next)
        return self.next

    def of_track(self, track_id: int) -> int:
        if track_id in self.remapped:
            return self.remapped[track_id]
        if track_id <= 0 or track_id in self.plain:
            # ids are positive, and a plain shape may already hold this one
            self.remapped[track_id] = self.fresh()
            self.plain.discard(self.remapped[track_id])
            return self.remapped[track_id]
        self.used.add(track_id)
        return track_id


# --- export ------------------------------------------------------------------------------------


def export_mots(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    names = [label.name for label in dataset.labels]
    classes = {name: index + 1 for index, name in enumerate(names)}
    ids = TrackIds({track.id for track in dataset.tracks() if track.id > 0})
    subsets: set[str] = set()
    for item in dataset.items():
        subsets.add(item.subset)
        shapes = segmentation.segments(item, classes, rectangles="all")
        # every item gets a map, empty ones too: the item after a run of a track must exist for
        # the track to end there when read back
        width, height = segmentation.canvas_size(item)
        values = np.zeros((height, width), dtype=np.int32)
        for number, shape in enumerate(shapes):
            track = ids.of_track(shape.track_id) if shape.track_id is not None else ids.fresh()
            if track >= MAX_INSTANCES:
                raise FormatError(
                    f"track id {track}: MOTS holds at most {MAX_INSTANCES - 1} tracks",
                    item=item.name,
                    annotation=number,
                )
            values[segmentation.bitmap(shape, width, height)] = MAX_INSTANCES * classes[shape.label] + track
        if int(values.max(initial=0)) > 0xFFFF:
            raise FormatError("the class ids do not fit in the 16-bit instance map", item=item.name)
        output.write(
            f"{item.subset}/{INSTANCES_DIR}/{item.id}.png", segmentation.png(values.astype(np.uint16))
        )
        if options.save_images:
            data = dataset.image(item)
            if data is not None:
                suffix = PurePosixPath(item.name).suffix or dataset.image_extension(item)
                output.write(f"{item.subset}/{IMAGES_DIR}/{item.id}{suffix}", data)
    for subset in sorted(subsets):
        with output.open_text(f"{subset}/{INSTANCES_DIR}/{LABELS_FILE}") as stream:
            stream.writelines(f"{name}\n" for name in names)


# --- import ------------------------------------------------------------------------------------


def _subsets(root: Path) -> list[tuple[str, Path]]:
    if (root / INSTANCES_DIR).is_dir():
        return [("default", root)]
    return [(p.name, p) for p in sorted(root.iterdir()) if p.is_dir() and (p / INSTANCES_DIR).is_dir()]


def _classes(directory: Path, base: Path) -> dict[int, str]:
    path = directory / INSTANCES_DIR / LABELS_FILE
    if not path.is_file():
        return dict(MOTS_CLASSES)
    with open(path, encoding="utf-8-sig") as stream:
        names = [line.strip() for line in stream if line.strip()]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise FormatError(f"label {name!r} is listed twice", file=path.relative_to(base).as_posix())
        seen.add(name)
    classes = {index + 1: name for index, name in enumerate(names)}
    if len(names) < IGNORED_CLASS:
        classes[IGNORED_CLASS] = IGNORED
    return classes


class _Tracks:
    """Track ids of the imported (sequence, class, track) triples: the file's track id when no
    other triple holds it. A sequence is a subset, or a directory of maps in it."""

    def __init__(self) -> None:
        self.ids: dict[tuple[tuple[str, str], int, int], int] = {}
        self.taken: set[int] = set()
        self.next = MAX_INSTANCES

    def of(self, sequence: tuple[str, str], label: int, track: int) -> int:
        key = (sequence, label, track)
        found = self.ids.get(key)
        if found is None:
            if track in self.taken:
                while self.next in self.taken:
                    self.next += 1
                track = self.next
            found = self.ids[key] = track
            self.taken.add(track)
        return found


def import_mots(root: Path, options: ImportOptions) -> Dataset:
    base = root
    subsets = _subsets(root)
    if not subsets:
        children = [p for p in sorted(root.iterdir()) if p.is_dir()]
        if len(children) == 1:
            base, subsets = children[0], _subsets(children[0])
    if not subsets:
        raise FormatError(
            f"no {INSTANCES_DIR} directory (or <subset>/{INSTANCES_DIR})", file=root.name or "."
        )
    classes = {subset: _classes(directory, base) for subset, directory in subsets}
    names: dict[str, None] = {}
    for mapping in classes.values():
        names.update(dict.fromkeys(mapping.values()))
    labels = [LabelSpec(name=name) for name in names]

    def items() -> Iterator[Item]:
        tracks = _Tracks()
        for subset, directory in subsets:
            yield from _subset_items(base, subset, directory, classes[subset], tracks)

    return StreamedDataset(base.name or root.name, labels, items)


def _ids(directory: Path) -> list[str]:
    found: set[str] = set()
    for folder, suffixes in ((INSTANCES_DIR, (".png",)), (IMAGES_DIR, IMAGE_EXTENSIONS)):
        top = directory / folder
        if top.is_dir():
            found.update(
                p.relative_to(top).with_suffix("").as_posix()
                for p in top.rglob("*")
                if p.suffix in suffixes and p.is_file()
            )
    return sorted(found)


def _subset_items(
    base: Path, subset: str, directory: Path, classes: dict[int, str], tracks: _Tracks
) -> Iterator[Item]:
    # the shape each track had on the item before, to close its run with an outside copy
    previous: dict[int, Shape] = {}
    sequence = (subset, "")
    for item_id in _ids(directory):
        # KITTI MOTS keeps a sequence per directory (instances/0000/000000.png): its own tracks
        if str(PurePosixPath(item_id).parent) != sequence[1]:
            sequence = (subset, str(PurePosixPath(item_id).parent))
            previous = {}
        shapes: list[Shape] = []
        size: tuple[int, int] | None = None
        path = directory / INSTANCES_DIR / f"{item_id}.png"
        if path.is_file():
            file = path.relative_to(base).as_posix()
            values = segmentation.read_values(path, file, "instance")
            size = (int(values.shape[1]), int(values.shape[0]))
            for value in np.unique(values).tolist():
                label, track = divmod(int(value), MAX_INSTANCES)
                if label == 0:
                    continue
                if label not in classes:
                    raise FormatError(
                        f"class {label} (pixel value {value}) is not in {LABELS_FILE}",
                        file=file,
                        annotation=value,
                    )
                track_id = tracks.of(sequence, label, track)
                points = masks.bitmap_to_cvat(values == value)
                z_order = 1 if label == IGNORED_CLASS and classes[label] == IGNORED else 0
                shapes.append(
                    Shape(
                        type="mask", label=classes[label], points=points, z_order=z_order, track_id=track_id
                    )
                )
        present = {shape.track_id: shape for shape in shapes if shape.track_id is not None}
        for track_id, last in previous.items():
            if track_id not in present:
                shapes.append(
                    Shape(
                        type="mask",
                        label=last.label,
                        points=list(last.points),
                        outside=True,
                        track_id=track_id,
                    )
                )
        previous = present
        images = directory / IMAGES_DIR
        yield item_with_image(base, images / item_id, item_id, subset, shapes, size)


def detect_mots(root: Path) -> float:
    subsets = _subsets(root)
    if not subsets:
        children = [p for p in root.iterdir() if p.is_dir()]
        subsets = _subsets(children[0]) if len(children) == 1 else []
    for _, directory in subsets:
        instances = directory / INSTANCES_DIR
        if next(instances.rglob("*.png"), None) is not None:
            return 0.9 if (instances / LABELS_FILE).is_file() else 0.7
    return 0.0


__all__ = ["TrackIds", "detect_mots", "export_mots", "import_mots"]
