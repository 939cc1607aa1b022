"""CamVid 1.0: the Cambridge-driving Labeled Video Database's semantic segmentation layout, as CVAT
reads and writes it.

- ``label_colors.txt``: ``r g b name`` per class; the class coloured black (``background``,
  CamVid's ``Void``) is the background. Without it the task's labels are the classes (background
  first), as CVAT does, else CamVid's 32 classes.
- ``<subset>.txt``: one line per image, ``/<subset>/<image> /<subset>annot/<id>.png`` (the mask is
  left out for an image without one; paths with spaces are quoted).
- ``<subset>annot/<id>.png``: the class of every pixel as its colour; ``<subset>/<image>``: the images.

Classes only, no instances: on export the polygons, masks and rectangles of a frame are painted in
``z_order`` order into one map (CVAT turns boxes into masks for this format too); on import each
class present becomes one mask (or polygons with ``conv_mask_to_poly``), the background left out.
Nothing else is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from annota.core import hookimpl
from annota.core.errors import FormatError
from annota.core.formats import segmentation
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.model import Dataset, Item, Shape
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, Format, ImportOptions
from annota.core.formats.segmentation import BACKGROUND, Color
from annota.core.formats.source import image_size, inside

LABEL_COLORS = "label_colors.txt"
MASKS_SUFFIX = "annot"
#: CamVid's own classes, used when a dataset has no label_colors.txt and the task no labels
CAMVID_CLASSES: tuple[tuple[str, Color], ...] = (
    ("Void", (0, 0, 0)), ("Animal", (64, 128, 64)), ("Archway", (192, 0, 128)), ("Bicyclist", (0, 128, 192)),
    ("Bridge", (0, 128, 64)), ("Building", (128, 0, 0)), ("Car", (64, 0, 128)),
    ("CartLuggagePram", (64, 0, 192)), ("Child", (192, 128, 64)), ("Column_Pole", (192, 192, 128)),
    ("Fence", (64, 64, 128)), ("LaneMkgsDriv", (128, 0, 192)), ("LaneMkgsNonDriv", (192, 0, 64)),
    ("Misc_Text", (128, 128, 64)), ("MotorcycycleScooter", (192, 0, 192)), ("OtherMoving", (128, 64, 64)),
    ("ParkingBlock", (64, 192, 128)), ("Pedestrian", (64, 64, 0)), ("Road", (128, 64, 128)),
    ("RoadShoulder", (128, 128, 192)), ("Sidewalk", (0, 0, 192)), ("SignSymbol", (192, 128, 128)),
    ("Sky", (128, 128, 128)), ("SUVPickupTruck", (64, 128, 192)), ("TrafficCone", (0, 0, 64)),
    ("TrafficLight", (0, 64, 64)), ("Train", (192, 64, 128)), ("Tree", (128, 128, 0)),
    ("Truck_Bus", (192, 128, 192)), ("Tunnel", (64, 0, 64)), ("VegetationMisc", (192, 192, 0)),
    ("Wall", (64, 192, 0)),
)  # fmt: skip
_BLACK: Color = (0, 0, 0)


def _quoted(path: str) -> str:
    return f'"{path}"' if len(path.split()) > 1 else path


def export_camvid(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    colors = segmentation.class_colors(list(dataset.labels))
    class_index = {name: index for index, (name, _) in enumerate(colors)}
    palette = [color for _, color in colors]
    lists = segmentation.SubsetLists()
    try:
        for item in dataset.items():
            suffix = PurePosixPath(item.name).suffix or dataset.image_extension(item)
            image_path = f"{item.subset}/{item.id}{suffix}"
            shapes = segmentation.segments(item, class_index, rectangles="all")
            if shapes:
                width, height = segmentation.canvas_size(item)
                instances, owners = segmentation.paint(shapes, width, height, limit=1 << 30, item=item.name)
                classes = np.asarray([0] + [class_index[s.label] for s in owners], dtype=np.int32)[instances]
                mask_path = f"{item.subset}{MASKS_SUFFIX}/{item.id}.png"
                output.write(mask_path, segmentation.rgb_png(classes, palette))
                lists.add(item.subset, f"{_quoted('/' + image_path)} {_quoted(mask_path)}")
            else:
                lists.add(item.subset, _quoted("/" + image_path))
            if options.save_images:
                data = dataset.image(item)
                if data is not None:
                    output.write(image_path, data)
        for subset in lists.files:
            with output.open_text(f"{subset}.txt") as stream:
                stream.writelines(line + "\n" for line in lists.lines(subset))
        segmentation.write_color_names(output, LABEL_COLORS, colors)
    finally:
        lists.close()


# --- import ------------------------------------------------------------------------------------


def _line(line: str, file: str, lineno: int) -> tuple[str, str | None]:
    """(image path, mask path or None) of a list line."""
    if '"' in line:
        parts = line.split('"')
        if len(parts) != 5 or parts[0].strip() or parts[2].strip() or parts[4].strip():
            raise FormatError('expected "<image>" "<mask>" with both paths quoted', file=file, line=lineno)
        fields = [parts[1], parts[3]]
    else:
        fields = line.split()
    if len(fields) > 2:
        raise FormatError(f"expected '<image> [<mask>]', found {len(fields)} fields", file=file, line=lineno)
    return fields[0], (fields[1] if len(fields) > 1 else None)


def _lists(base: Path) -> list[Path]:
    """The subset lists: every text file beside label_colors.txt."""
    return [p for p in sorted(base.glob("*.txt")) if p.is_file() and p.name != LABEL_COLORS]


def _looks_like_list(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as stream:
        for line in stream:
            if line.strip():
                first = line.strip().strip('"').split()[0]
                return "/" in first
    return False


def _dataset_root(root: Path) -> Path:
    for candidate in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        lists = _lists(candidate)
        if lists and ((candidate / LABEL_COLORS).is_file() or any(_looks_like_list(p) for p in lists)):
            return candidate
    raise FormatError("no <subset>.txt list of images and masks", file=root.name or ".")


def _background(entries: list[tuple[str, Color | None]]) -> None:
    """The class coloured black (else one named background, else a new one) first."""
    black = next((i for i, (_, color) in enumerate(entries) if color == _BLACK), None)
    if black is None:
        black = next((i for i, (name, _) in enumerate(entries) if name == BACKGROUND), None)
    entries.insert(0, entries.pop(black) if black is not None else (BACKGROUND, _BLACK))


def import_camvid(root: Path, options: ImportOptions) -> Dataset:
    base = _dataset_root(root)
    colors = segmentation.dataset_classes(
        base / LABEL_COLORS, LABEL_COLORS, options.labels, CAMVID_CLASSES, background=_background
    )
    labels = segmentation.labels_of_colors(colors[1:], options.labels)
    lookup = {color: index for index, (_, color) in reversed(list(enumerate(colors)))}

    def items() -> Iterator[Item]:
        group = 0
        for path in _lists(base):
            with open(path, encoding="utf-8-sig") as stream:
                for lineno, line in enumerate(stream, 1):
                    if line.strip():
                        item, group = _item(base, path, lineno, line.strip(), colors, lookup, options, group)
                        yield item

    return StreamedDataset(base.name or root.name, labels, items)


def _within(base: Path, listed: str) -> str:
    """A listed path relative to the dataset: as it is, or (SegNet's lists name their files from
    a root like ``/SegNet/CamVid/``) its shortest ending that names a file of the dataset."""
    path = listed.replace("\\", "/").lstrip("/")
    parts = PurePosixPath(path).parts
    for start in range(len(parts)):
        candidate = "/".join(parts[start:])
        if (base / candidate).is_file() and inside(base, base / candidate):
            return candidate
    return path


def _item(
    base: Path,
    listing: Path,
    lineno: int,
    line: str,
    colors: Sequence[tuple[str, Color]],
    lookup: dict[Color, int],
    options: ImportOptions,
    group: int,
) -> tuple[Item, int]:
    file = listing.name
    image_name, mask_name = _line(line, file, lineno)
    image_name = _within(base, image_name)
    parts = PurePosixPath(image_name).parts
    # the item id is the image path without its subset directory
    inner = PurePosixPath(*parts[1:]) if len(parts) > 1 else PurePosixPath(image_name)
    item_id = str(inner.with_suffix(""))
    image = base / image_name
    if not inside(base, image):
        raise FormatError(f"{image_name!r} is outside the dataset", file=file, line=lineno, item=item_id)
    size: tuple[int, int] | None = None
    shapes: list[Shape] = []
    if mask_name is not None:
        mask_name = _within(base, mask_name)
        mask = base / mask_name
        if not inside(base, mask):
            raise FormatError(f"{mask_name!r} is outside the dataset", file=file, line=lineno, item=item_id)
        if not mask.is_file():
            raise FormatError(f"the mask {mask_name!r} does not exist", file=file, line=lineno, item=item_id)
        classes = segmentation.read_colors(mask, mask_name, lookup, "class")
        regions = [(colors[index][0], classes == index) for index in np.unique(classes).tolist() if index]
        shapes, group = segmentation.region_shapes(regions, options.conv_mask_to_poly, group)
        size = (int(classes.shape[1]), int(classes.shape[0]))
    present = image.is_file()
    if present:
        size = image_size(image, image_name)
    return (
        Item(
            name=str(inner),
            subset=listing.stem,
            width=size[0] if size else None,
            height=size[1] if size else None,
            shapes=shapes,
            image=str(image) if present else None,
        ),
        group,
    )


def detect_camvid(root: Path) -> float:
    try:
        base = _dataset_root(root)
    except FormatError:
        return 0.0
    for path in _lists(base):
        with open(path, encoding="utf-8", errors="replace") as stream:
            for line in stream:
                if line.strip():
                    try:
                        _, mask = _line(line.strip(), path.name, 0)
                    except FormatError:
                        return 0.0
                    if mask is not None:
                        return 0.8 if (base / _within(base, mask)).is_file() else 0.2
    return 0.3 if (base / LABEL_COLORS).is_file() else 0.0


@hookimpl
def register_formats(register: Callable[[Format], None]) -> None:
    register(
        Format(
            "CamVid",
            "1.0",
            exporter=export_camvid,
            importer=import_camvid,
            carries=frozenset({"mask", "images"}),
            detect=detect_camvid,
            aliases=("camvid",),
            description="CamVid: <subset>.txt lists of images and class colour masks, label_colors.txt.",
        )
    )


__all__ = ["register_formats"]
