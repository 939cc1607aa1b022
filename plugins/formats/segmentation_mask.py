"""Segmentation mask 1.1: the segmentation part of PASCAL VOC on its own.

``labelmap.txt``, ``ImageSets/Segmentation/<subset>.txt`` (every item), ``SegmentationClass/<id>.png``
and ``SegmentationObject/<id>.png`` for every item (all background when it has no polygon or mask),
and ``JPEGImages/<id>.<ext>`` when images are saved. Polygons and masks are painted in ``z_order``
order; each instance imports as one mask, or as polygons with ``conv_mask_to_poly`` (details in
``_voc_segmentation``). Nothing else (boxes, tags, attributes, tracks) is kept. Items without a
known size get a canvas just large enough for their shapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from annota.core.errors import FormatError
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.model import DEFAULT_SUBSET, Dataset, Item
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, Format, ImportOptions
from annota.plugins.formats import _voc_segmentation as seg

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def export(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    colors = seg.class_colors(list(dataset.labels))
    lists = seg.SubsetLists()
    try:
        for item in dataset.items():
            seg.write_pngs(output, item, colors)
            lists.add(item.subset, item.id)
            if options.save_images:
                data = dataset.image(item)
                if data is not None:
                    suffix = PurePosixPath(item.name).suffix or dataset.image_extension(item)
                    output.write(f"JPEGImages/{item.id}{suffix}", data)
        seg.write_labelmap(output, colors)
        if not lists.files:
            output.write(f"{seg.SEGMENTATION_SETS}/{DEFAULT_SUBSET}.txt", b"")
        lists.write(output, seg.SEGMENTATION_SETS)
    finally:
        lists.close()


def _image(root: Path, item_id: str) -> Path | None:
    directory = root / "JPEGImages"
    if directory.is_dir():
        for suffix in _IMAGE_SUFFIXES:
            candidate = directory / f"{item_id}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def load(root: Path, options: ImportOptions) -> Dataset:
    sets = root / seg.SEGMENTATION_SETS
    if not sets.is_dir() and not (root / seg.CLASS_DIR).is_dir() and not (root / seg.OBJECT_DIR).is_dir():
        raise FormatError(
            f"no {seg.SEGMENTATION_SETS}, {seg.CLASS_DIR} or {seg.OBJECT_DIR} directory",
            file=root.name or ".",
        )
    labels, colors = seg.import_classes(root, options)
    subsets = sorted(p.stem for p in sets.glob("*.txt")) if sets.is_dir() else []

    def listed() -> Iterator[tuple[str, list[str]]]:
        if subsets:
            for subset in subsets:
                yield subset, seg.read_list(sets / f"{subset}.txt")
            return
        # no lists: every PNG is an item
        found: set[str] = set()
        for directory in (root / seg.CLASS_DIR, root / seg.OBJECT_DIR):
            if directory.is_dir():
                found.update(
                    p.relative_to(directory).with_suffix("").as_posix() for p in directory.rglob("*.png")
                )
        yield DEFAULT_SUBSET, sorted(found)

    def items() -> Iterator[Item]:
        group = 0
        for subset, ids in listed():
            for item_id in ids:
                shapes, size, group = seg.read_segments(root, item_id, colors, options, group)
                image = _image(root, item_id)
                yield Item(
                    name=item_id + (image.suffix if image is not None else ""),
                    subset=subset,
                    width=size[0] if size else None,
                    height=size[1] if size else None,
                    shapes=shapes,
                    image=str(image) if image is not None else None,
                )

    return StreamedDataset(root.name, labels, items)


def detect(root: Path) -> float:
    sets = root / seg.SEGMENTATION_SETS
    has_pngs = (root / seg.CLASS_DIR).is_dir() or (root / seg.OBJECT_DIR).is_dir()
    if not has_pngs:
        return 0.0
    if (root / "Annotations").is_dir():
        # a full VOC dataset: the VOC format reads more of it
        return 0.3
    return 0.9 if sets.is_dir() else 0.5


#: registered by the PASCAL VOC plugin (``voc``), which shares the segmentation layout with it
SEGMENTATION_MASK = Format(
    name="Segmentation mask",
    version="1.1",
    exporter=export,
    importer=load,
    export_ext="ZIP",
    import_ext="ZIP",
    carries=frozenset({"mask", "images"}),
    detect=detect,
    aliases=("segmentation_mask", "voc_segmentation"),
    description="Class and instance segmentation PNGs (the PASCAL VOC segmentation layout).",
)
