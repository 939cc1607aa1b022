"""Helpers for format plugin tests: export/import through the same registry the server and
``annota convert`` use."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.model import Dataset, Item, LabelSpec, Track
from annota.core.formats.output import open_output
from annota.core.formats.registry import ExportOptions, FormatRegistry, ImportOptions
from annota.core.formats.source import prepare_input
from annota.core.plugins import PluginManager
from annota.runtime.state import collect_formats


def installed_formats() -> FormatRegistry:
    """Every format of the installed plugins, loaded from entry points."""
    plugins = PluginManager()
    plugins.load_entry_points()
    return collect_formats(plugins)


def make_image(path: Path, width: int = 64, height: int = 48, seed: int = 0) -> Path:
    """A small random-noise image (JPEG or PNG by extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def block(left: int, top: int, right: int, bottom: int, width: int = 20, height: int = 10) -> np.ndarray:
    """A ``height x width`` bitmap true in ``[top:bottom, left:right]``."""
    bitmap = np.zeros((height, width), dtype=bool)
    bitmap[top:bottom, left:right] = True
    return bitmap


def dataset(
    items: Sequence[Item],
    labels: Sequence[LabelSpec],
    tracks: Sequence[Track] = (),
    name: str = "test",
) -> Dataset:
    """An in-memory dataset (for tests only: real ones stream)."""
    return StreamedDataset(name, labels, lambda: iter(items), lambda: iter(tracks), size=len(items))


def export(
    registry: FormatRegistry,
    format_name: str,
    source: Dataset,
    target: Path,
    *,
    save_images: bool = False,
) -> Path:
    """Export ``source`` with the format into ``target`` (a ``.zip`` file or a directory)."""
    fmt = registry.get(format_name, direction="export")
    assert fmt.exporter is not None
    with open_output(target) as output:
        fmt.exporter(source, output, ExportOptions(save_images=save_images))
    return target


def load(
    registry: FormatRegistry,
    format_name: str,
    path: Path,
    workdir: Path,
    *,
    labels: Sequence[LabelSpec] = (),
    conv_mask_to_poly: bool = False,
) -> Dataset:
    """Import ``path`` (archive, file or directory) with the format."""
    fmt = registry.get(format_name, direction="import")
    assert fmt.importer is not None
    workdir.mkdir(parents=True, exist_ok=True)
    root = prepare_input(path, workdir)
    return fmt.importer(root, ImportOptions(conv_mask_to_poly=conv_mask_to_poly, labels=labels))


def assert_detected(registry: FormatRegistry, format_name: str, exported: Path, elsewhere: Path) -> None:
    """``exported`` is detected as the format first, ``elsewhere`` (another layout) not at all."""
    fmt = registry.find(format_name)
    assert fmt is not None and fmt.detect is not None
    assert registry.detect(exported)[0][1] is fmt
    assert fmt.detect(elsewhere) == 0.0


def items_by_name(source: Dataset) -> dict[str, Item]:
    return {item.id: item for item in source.items()}


__all__ = [
    "assert_detected",
    "block",
    "dataset",
    "export",
    "installed_formats",
    "items_by_name",
    "load",
    "make_image",
]
