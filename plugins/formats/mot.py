"""MOT 1.1: the Multiple Object Tracking benchmark's ``gt/gt.txt``, as CVAT reads and writes it.

Layout: ``gt/gt.txt`` with lines ``frame_id, track_id, x, y, w, h, not_ignored, class_id,
visibility`` (``frame_id`` is the frame index + 1, ``class_id`` the 1-based line of
``gt/labels.txt``), and ``img1/<frame_id:06d>.<ext>`` when images are saved.

Export: rectangles only; a box of a track keeps its track id, a plain box gets a fresh id no track
uses. ``visibility`` is the shape's ``visibility`` attribute when it has a number there, else 0
for occluded boxes and 1 for the others; ``not_ignored`` is 0 when its ``ignored`` attribute is
true. MOT cannot say "outside", so such shapes are skipped. Rotation is lost.

Import: every line becomes a rectangle carrying its ``track_id`` (the server gathers them into
tracks), occluded when visibility is 0. As CVAT does, a track that skips frames gets an
``outside`` shape on the frame after each run of frames it appears on (and after its last one,
within the sequence), so gaps are not interpolated over. ``visibility`` and ``ignored`` become
attributes when the label being imported into declares them. Without ``labels.txt`` the MOT
challenge's 12 classes are used. Coordinates are kept as they are.

MOTS PNG 1.0 (tracks as instance maps) is in ``_mots``, registered here.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from annota.core import hookimpl
from annota.core.errors import FormatError
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.model import Dataset, Item, LabelSpec, Shape
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, Format, ImportOptions
from annota.core.formats.source import image_size
from annota.plugins.formats._mots import TrackIds, detect_mots, export_mots, import_mots

#: the classes of the MOT challenge, used when a dataset has no labels.txt
MOT_LABELS = (
    "pedestrian", "person on vehicle", "car", "bicycle", "motorbike", "non motorized vehicle",
    "static person", "distractor", "occluder", "occluder on the ground", "occluder full", "reflection",
)  # fmt: skip
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


def _number(value: float) -> str:
    """A coordinate without needless trailing zeros (``12`` rather than ``12.000000``)."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _visibility(shape: Shape) -> float:
    value = shape.attributes.get("visibility")
    if value is not None:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return number
    return 0.0 if shape.occluded else 1.0


def export_mot(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    names = [label.name for label in dataset.labels]
    classes = {name: i + 1 for i, name in enumerate(names)}
    ids = TrackIds({track.id for track in dataset.tracks() if track.id > 0})
    with output.open_text("gt/labels.txt") as stream:
        stream.writelines(f"{name}\n" for name in names)
    if options.save_images:
        # a ZIP takes one open member at a time: the lines wait in a spooled file while images are written
        with tempfile.SpooledTemporaryFile(max_size=16 << 20, mode="w+", encoding="utf-8") as spool:
            _write_lines(dataset, output, options, spool, classes, ids)
            spool.seek(0)
            with output.open_text("gt/gt.txt") as stream:
                shutil.copyfileobj(spool, stream)
    else:
        with output.open_text("gt/gt.txt") as stream:
            _write_lines(dataset, output, options, stream, classes, ids)


def _write_lines(
    dataset: Dataset,
    output: Output,
    options: ExportOptions,
    lines: IO[str],
    classes: dict[str, int],
    ids: TrackIds,
) -> None:
    for index, item in enumerate(dataset.items()):
        frame = (item.frame if item.frame is not None else index) + 1
        for shape in item.shapes:
            if shape.type != "rectangle" or shape.outside:
                continue
            if shape.label not in classes:
                raise FormatError(f"label {shape.label!r} is not among the dataset's labels", item=item.name)
            track = ids.of_track(shape.track_id) if shape.track_id is not None else ids.fresh()
            x1, y1, x2, y2 = shape.points
            ignored = shape.attributes.get("ignored", "").lower() == "true"
            lines.write(
                f"{frame},{track},{_number(x1)},{_number(y1)},{_number(x2 - x1)},{_number(y2 - y1)},"
                f"{0 if ignored else 1},{classes[shape.label]},{_number(_visibility(shape))}\n"
            )
        if options.save_images:
            data = dataset.image(item)
            if data is not None:
                output.write(f"img1/{frame:06d}{dataset.image_extension(item)}", data)


def _gt_path(root: Path) -> Path:
    for candidate in (root / "gt" / "gt.txt", *sorted(root.glob("*/gt/gt.txt")), root / "gt.txt"):
        if candidate.is_file():
            return candidate
    raise FormatError("gt/gt.txt is missing", file="gt/gt.txt")


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _labels(gt: Path) -> list[str]:
    path = gt.parent / "labels.txt"
    if not path.is_file():
        return list(MOT_LABELS)
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _read_gt(gt: Path, root: Path, names: list[str]) -> dict[int, list[tuple[int, Shape, float, bool]]]:
    """Per frame index: (track id, box, visibility, ignored) for every line of gt.txt."""
    file = _rel(gt, root)
    frames: dict[int, list[tuple[int, Shape, float, bool]]] = {}
    with open(gt, encoding="utf-8") as stream:
        for lineno, line in enumerate(stream, 1):
            if not line.strip():
                continue
            fields = [field.strip() for field in line.split(",")]
            if len(fields) < 8:
                raise FormatError(
                    "expected frame, track, x, y, w, h, not_ignored, class[, visibility], "
                    f"found {len(fields)} values",
                    file=file,
                    line=lineno,
                )
            try:
                frame_id, track_id, class_id = int(fields[0]), int(float(fields[1])), int(float(fields[7]))
                x, y, w, h, flag = (float(v) for v in fields[2:7])
                visibility = float(fields[8]) if len(fields) > 8 and fields[8] else 1.0
            except ValueError:
                bad = next(v for v in fields[:9] if not _numeric(v))
                raise FormatError(f"{bad!r} is not a number", file=file, line=lineno) from None
            if frame_id < 1:
                raise FormatError(
                    f"frame id {frame_id} is not positive (MOT frames start at 1)", file=file, line=lineno
                )
            if not 1 <= class_id <= len(names):
                raise FormatError(
                    f"class id {class_id} is not a line of labels.txt (1..{len(names)})",
                    file=file,
                    line=lineno,
                )
            if w < 0 or h < 0:
                raise FormatError("the box has a negative size", file=file, line=lineno)
            shape = Shape(
                type="rectangle",
                label=names[class_id - 1],
                points=[x, y, x + w, y + h],
                occluded=visibility <= 0.0,
                track_id=track_id,
            )
            frames.setdefault(frame_id - 1, []).append((track_id, shape, visibility, flag == 0))
    return frames


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _add_outside(frames: dict[int, list[tuple[int, Shape, float, bool]]], last_frame: int) -> None:
    """Close each run of frames a track appears on with an ``outside`` shape (see the docstring)."""
    seen: dict[int, dict[int, Shape]] = {}
    for frame, entries in frames.items():
        for track_id, shape, _, _ in entries:
            seen.setdefault(track_id, {})[frame] = shape
    for track_id, shapes in seen.items():
        for frame in sorted(shapes):
            after = frame + 1
            if after in shapes or after > last_frame:
                continue
            last = shapes[frame]
            outside = Shape(
                type="rectangle", label=last.label, points=list(last.points), outside=True, track_id=track_id
            )
            frames.setdefault(after, []).append((track_id, outside, 1.0, False))


def import_mot(root: Path, options: ImportOptions) -> Dataset:
    gt = _gt_path(root)
    names = _labels(gt)
    image_dir = gt.parent.parent / "img1"
    declared = {label.name: {a.name for a in label.attributes} for label in options.labels}

    def images() -> dict[int, Path]:
        found: dict[int, Path] = {}
        if image_dir.is_dir():
            for path in sorted(image_dir.iterdir()):
                if path.suffix.lower() in IMAGE_EXTENSIONS and path.stem.isdigit():
                    found[int(path.stem) - 1] = path
        return found

    def items() -> Iterator[Item]:
        frames = _read_gt(gt, root, names)
        files = images()
        last = max([*files, *frames], default=-1)
        _add_outside(frames, last)
        for frame in sorted(set(files) | set(frames)):
            shapes = []
            for _, shape, visibility, ignored in frames.get(frame, []):
                wanted = declared.get(shape.label, set())
                if not shape.outside:
                    if "visibility" in wanted:
                        shape.attributes = {**shape.attributes, "visibility": f"{visibility:g}"}
                    if "ignored" in wanted:
                        shape.attributes = {**shape.attributes, "ignored": "true" if ignored else "false"}
                shapes.append(shape)
            image = files.get(frame)
            width = height = None
            if image is not None:
                width, height = image_size(image, _rel(image, root))
            yield Item(
                name=image.name if image else f"{frame + 1:06d}",
                frame=frame,
                width=width,
                height=height,
                shapes=shapes,
                image=str(image) if image else None,
            )

    return StreamedDataset(root.name, [LabelSpec(name=name) for name in names], items)


def detect_mot(root: Path) -> float:
    for gt, confident in ((root / "gt" / "gt.txt", 0.95), (root / "gt.txt", 0.5)):
        if not gt.is_file():
            continue
        with open(gt, encoding="utf-8", errors="replace") as stream:
            for line in stream:
                if line.strip():
                    return confident if len(line.split(",")) >= 8 else 0.0
        return confident * 0.6
    return 0.0


@hookimpl
def register_formats(register: Callable[[Format], None]) -> None:
    register(
        Format(
            "MOT",
            "1.1",
            exporter=export_mot,
            importer=import_mot,
            carries=frozenset({"rectangle", "track", "track_id", "occluded", "images"}),
            detect=detect_mot,
            aliases=("mot", "mot_seq"),
            description="MOT challenge sequence: gt/gt.txt, gt/labels.txt and img1/ frames.",
        )
    )
    register(
        Format(
            "MOTS PNG",
            "1.0",
            exporter=export_mots,
            importer=import_mots,
            carries=frozenset({"mask", "track", "track_id", "images"}),
            detect=detect_mots,
            aliases=("mots", "mots_png"),
            description="MOTS: <subset>/instances/<id>.png maps of class * 1000 + track, labels.txt.",
        )
    )


__all__ = ["MOT_LABELS", "register_formats"]
