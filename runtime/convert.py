"""Offline dataset conversion: ``annota convert``, ``annota detect-format`` and ``annota formats``.

The commands use the same format plugins as the server, loaded from entry points, but no database,
storage or web stack: they start fast and run where the server is not installed or configured.
Heavy modules (numpy, PIL, the database layer) are imported only when a conversion needs them, so
``annota convert --help`` stays quick.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from annota.core.errors import AnnotaError, ConfigError, FormatError

if TYPE_CHECKING:
    from annota.core.formats.model import Dataset, Item, LabelSpec, Track
    from annota.core.formats.registry import Format, FormatRegistry
    from annota.core.plugins import PluginManager

#: ``-if`` may be left out when the best detected format is at least this confident...
DETECT_THRESHOLD = 0.5
#: ...and this far ahead of the next one (otherwise the user is asked to choose)
DETECT_MARGIN = 0.2
#: the package whose modules are the built-in format plugins
BUILTIN_FORMATS_PACKAGE = "annota.plugins.formats."


# --- loading formats -------------------------------------------------------------------------


def _config_path() -> str | None:
    """The ``--config`` given to ``annota`` (the group stores it on ``ctx.obj``), if any."""
    ctx = click.get_current_context(silent=True)
    return getattr(ctx.obj, "config", None) if ctx is not None else None


def _settings_disabled(config: str | None) -> list[str]:
    """The plugins ``annota.toml`` disables."""
    from annota.runtime.settings import load_settings

    try:
        return list(load_settings(config).disabled_plugins)
    except ConfigError as exc:
        raise click.ClickException(str(exc.detail)) from exc


def _entry_points(disabled: list[str]) -> dict[str, str]:
    """Every plugin's entry-point value by name; adds to ``disabled`` the built-in plugins that
    register no formats.

    The built-in plugins outside ``annota.plugins.formats`` serve the HTTP API (authentication,
    storage) and import the database layer: loading them would double a small conversion's
    start-up. Plugins of other packages are all loaded, since any of them may register formats.
    """
    import importlib.metadata

    from annota.core import PROJECT_NAME
    from annota.core.plugins import ENTRY_POINT_GROUP

    values: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        values.setdefault(ep.name, ep.value)
        dist = ep.dist.metadata["Name"] if ep.dist is not None else None
        if dist == PROJECT_NAME and not ep.value.startswith(BUILTIN_FORMATS_PACKAGE):
            disabled.append(ep.name)
    return values


def _collect(manager: PluginManager) -> FormatRegistry:
    from annota.core.formats.registry import FormatRegistry

    registry = FormatRegistry()
    manager.collect("register_formats", registry.register)
    return registry


def _load_named(needs: Sequence[tuple[str, str]], disabled: list[str], print_: str) -> FormatRegistry | None:
    """The formats of just the plugins the index says provide ``needs`` (format name, direction),
    or None when the index cannot tell or was wrong (the caller then loads every plugin, so that
    errors list every format)."""
    from annota.core.plugins import PluginManager
    from annota.runtime import format_index

    needed = format_index.lookup([name for name, _ in needs], print_)
    if needed is None or set(needed) & set(disabled):
        return None
    manager = PluginManager()
    manager.load_named(needed)
    try:
        registry = _collect(manager)
    except ConfigError:
        return None
    for name, direction in needs:
        fmt = registry.find(name)
        if fmt is None or (fmt.exporter if direction == "export" else fmt.importer) is None:
            return None
    return registry


def load_formats(config: str | None = None, needs: Sequence[tuple[str, str]] = ()) -> FormatRegistry:
    """The formats of the installed (and enabled) plugins; with ``needs`` (format name,
    ``import``/``export``), possibly only those of the plugins that provide them (``format_index``)."""
    from annota.core.plugins import PluginManager
    from annota.runtime import format_index

    disabled = _settings_disabled(config)
    print_ = format_index.fingerprint()
    if needs:
        found = _load_named(needs, disabled, print_)
        if found is not None:
            return found
    values = _entry_points(disabled)
    manager = PluginManager()
    manager.load_entry_points(disabled=disabled)
    try:
        registry = _collect(manager)
    except ConfigError as exc:
        raise click.ClickException(str(exc.detail)) from exc
    provided = {
        name: fmt.plugin
        for fmt in registry.formats.values()
        if fmt.plugin in values
        for name in (fmt.display_name, *fmt.aliases)
    }
    format_index.store(print_, provided, {plugin: values[plugin] for plugin in set(provided.values())})
    return registry


def error_message(exc: AnnotaError) -> str:
    """One line for the user: the located message of a ``FormatError``, the field messages of a
    ``ValidationError`` (``-f: Unknown format ...``)."""
    if isinstance(exc, FormatError):
        located: str = exc.located()
        return located
    detail = exc.detail
    if isinstance(detail, Mapping):
        parts = []
        for field, messages in detail.items():
            for message in messages if isinstance(messages, list) else [messages]:
                parts.append(f"{field}: {message}")
        return "\n".join(parts)
    return str(detail)


def _find(registry: FormatRegistry, name: str, direction: str, option: str) -> Format:
    try:
        return registry.get(name, direction=direction, field=option)
    except AnnotaError as exc:
        raise click.ClickException(error_message(exc)) from exc


# --- progress --------------------------------------------------------------------------------


class Progress:
    """A one-line item counter on a terminal, redrawn at most every ``interval`` seconds."""

    def __init__(self, stream: IO[str], total: int | None, label: str, interval: float = 0.1) -> None:
        self.stream = stream
        self.total = total
        self.label = label
        self.interval = interval
        self._drawn_at = 0.0
        self._drawn = False

    def update(self, count: int) -> None:
        now = time.monotonic()
        if now - self._drawn_at >= self.interval:
            self._drawn_at = now
            self._draw(count)

    def finish(self, count: int) -> None:
        if self._drawn or count:
            self._draw(count)
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, count: int) -> None:
        if self.total:
            text = f"{self.label}: {count}/{self.total} items ({min(100, 100 * count // self.total)}%)"
        else:
            text = f"{self.label}: {count} items"
        self.stream.write("\r" + text)
        self.stream.flush()
        self._drawn = True


class ConvertedDataset:
    """The imported dataset as the exporter reads it: counts the items it iterates (driving the
    progress line), and fills in what an export from the server always has and an importer may
    not know: the frame index (the item's position) and the image size (read from the image)."""

    def __init__(self, inner: Dataset, on_item: Callable[[int], None] | None = None) -> None:
        self.inner = inner
        self.on_item = on_item
        self.count = 0
        self.name: str = inner.name
        self.labels: Sequence[LabelSpec] = inner.labels
        self.size: int | None = inner.size
        self.meta: Mapping[str, Any] = inner.meta

    def items(self, *, tracks: bool = False) -> Iterator[Item]:
        # counted per pass: an exporter that reads twice restarts the progress
        self.count = 0
        for position, item in enumerate(self.inner.items(tracks=tracks)):
            if item.frame is None:
                item.frame = position
            if (item.width is None or item.height is None) and item.image:
                _fill_size(item)
            self.count += 1
            if self.on_item is not None:
                self.on_item(self.count)
            yield item

    def tracks(self) -> Iterator[Track]:
        yield from self.inner.tracks()

    def image(self, item: Item) -> bytes | None:
        data: bytes | None = self.inner.image(item)
        return data

    def image_extension(self, item: Item) -> str:
        extension: str = self.inner.image_extension(item)
        return extension


def _fill_size(item: Item) -> None:
    """Read the size from the image header; an unreadable image leaves it unknown (the exporter
    decides whether it needs it)."""
    from PIL import Image, UnidentifiedImageError

    assert item.image is not None
    try:
        with Image.open(item.image) as image:
            item.width, item.height = image.size
    except (OSError, UnidentifiedImageError):
        pass


# --- output placement ------------------------------------------------------------------------


def _is_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip"


def _check_output(output: Path, overwrite: bool) -> None:
    if _is_zip(output):
        if output.is_dir():
            raise click.ClickException(f"{output} is a directory; a .zip output must be a file.")
        if output.exists() and not overwrite:
            raise click.ClickException(f"{output} already exists (use --overwrite to replace it).")
        return
    if output.exists() and not output.is_dir():
        raise click.ClickException(f"{output} exists and is not a directory.")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise click.ClickException(f"{output} is not empty (use --overwrite to replace its contents).")


def _partial_path(output: Path) -> Path:
    """Where the export is written before it is moved to ``output``: next to it, so the move is a
    rename, and hidden, so a failed or interrupted conversion never looks like a result."""
    output.parent.mkdir(parents=True, exist_ok=True)
    if _is_zip(output):
        handle, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".partial.zip", dir=output.parent)
        os.close(handle)
        return Path(name)
    return Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _publish(partial: Path, output: Path) -> None:
    """Move the finished export into place, replacing what ``--overwrite`` allowed to replace."""
    if _is_zip(output) or not output.exists():
        os.replace(partial, output)
        return
    # rename(2) replaces only an empty directory: move the old one aside first
    aside = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".old", dir=output.parent))
    os.replace(output, aside)
    try:
        os.replace(partial, output)
    except OSError:
        os.replace(aside, output)
        raise
    shutil.rmtree(aside, ignore_errors=True)


# --- commands --------------------------------------------------------------------------------


def _candidates_text(candidates: Sequence[tuple[float, Format]]) -> str:
    return ", ".join(f"{fmt.display_name!r} ({score:.2f})" for score, fmt in candidates)


def _choose_detected(candidates: Sequence[tuple[float, Format]], source: Path) -> tuple[float, Format]:
    if not candidates:
        raise click.ClickException(f"No known format recognises {source}; name the input format with -if.")
    best_score, best = candidates[0]
    second = candidates[1][0] if len(candidates) > 1 else 0.0
    if best_score < DETECT_THRESHOLD or best_score - second < DETECT_MARGIN:
        raise click.ClickException(
            f"Cannot tell the format of {source} for sure; name it with -if. "
            f"Candidates: {_candidates_text(candidates)}."
        )
    return best_score, best


@click.command()
@click.option(
    "-if", "--input-format", "input_format", metavar="NAME", help="Input format (default: detected)."
)
@click.option(
    "-i",
    "--input",
    "source",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="The dataset: a directory, an archive or a single annotation file.",
)
@click.option("-f", "--format", "output_format", required=True, metavar="NAME", help="Output format.")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="Where to write: a .zip archive, otherwise a directory.",
)
@click.option("--save-images", is_flag=True, help="Copy the images the input contains into the output.")
@click.option("--conv-mask-to-poly", is_flag=True, help="Turn masks into polygons on import.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary on stderr.")
def convert(
    input_format: str | None,
    source: Path,
    output_format: str,
    output: Path,
    save_images: bool,
    conv_mask_to_poly: bool,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Convert a dataset from one format to another, without a server.

    Formats are named as the server lists them ("COCO 1.0", "PASCAL VOC 1.1") or by alias
    (coco, voc), case-insensitively; `annota formats` lists them.

    \b
      annota convert -i coco/ -f "YOLO 1.1" -o yolo.zip
      annota convert -if "COCO 1.0" -i instances.json -f voc -o voc/ --save-images
    """
    from annota.core.formats.output import open_output
    from annota.core.formats.registry import ExportOptions, ImportOptions
    from annota.core.formats.source import prepare_input

    # only the plugins of the formats named (the input's detection needs them all)
    needs = [(output_format, "export"), (input_format, "import")] if input_format else []
    registry = load_formats(_config_path(), needs)
    target = _find(registry, output_format, "export", "-f/--format")
    reader = _find(registry, input_format, "import", "-if/--input-format") if input_format else None
    if source.is_dir() and output.resolve().is_relative_to(source.resolve()):
        # importers that list the input directory would read the files being written
        raise click.ClickException(f"The output {output} is inside the input directory {source}.")
    _check_output(output, overwrite)
    partial: Path | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="annota-convert-") as workdir:
            root = prepare_input(source, Path(workdir))
            if reader is None:
                score, reader = _choose_detected(registry.detect(root), source)
                if not quiet:
                    click.echo(f"Detected {reader.display_name} (confidence {score:.2f}).", err=True)
            assert reader.importer is not None and target.exporter is not None
            dataset = reader.importer(root, ImportOptions(conv_mask_to_poly=conv_mask_to_poly))
            progress = (
                Progress(sys.stderr, dataset.size, "Converting")
                if not quiet and sys.stderr.isatty()
                else None
            )
            converted = ConvertedDataset(dataset, progress.update if progress else None)
            partial = _partial_path(output)
            try:
                with open_output(partial) as writer:
                    target.exporter(converted, writer, ExportOptions(save_images=save_images))
            finally:
                if progress is not None:
                    progress.finish(converted.count)
            _publish(partial, output)
            partial = None
    except AnnotaError as exc:
        raise click.ClickException(error_message(exc)) from exc
    except OSError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if partial is not None:
            _remove(partial)
    if not quiet:
        what = f"{converted.count} items from {reader.display_name} to {target.display_name}"
        click.echo(f"Converted {what}: {output}", err=True)


@click.command("detect-format")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def detect_format(path: Path, as_json: bool) -> None:
    """Tell which formats a dataset (directory, archive or file) looks like, most likely first."""
    from annota.core.formats.source import prepare_input

    registry = load_formats(_config_path())
    try:
        with tempfile.TemporaryDirectory(prefix="annota-detect-") as workdir:
            candidates = registry.detect(prepare_input(path, Path(workdir)))
    except AnnotaError as exc:
        raise click.ClickException(error_message(exc)) from exc
    if as_json:
        rows = [{"format": fmt.display_name, "confidence": round(score, 3)} for score, fmt in candidates]
        click.echo(json.dumps(rows, indent=2))
    else:
        for score, fmt in candidates:
            click.echo(f"{score:.2f}  {fmt.display_name}")
    if not candidates:
        raise click.ClickException(f"No known format recognises {path}.")


@click.command("formats")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def formats_command(as_json: bool) -> None:
    """List the dataset formats: import/export, file types and what each carries."""
    registry = load_formats(_config_path())
    listed = list(registry.formats.values())
    if as_json:
        rows: list[dict[str, Any]] = [
            {
                "name": fmt.display_name,
                "aliases": list(fmt.aliases),
                "import": fmt.importer is not None,
                "export": fmt.exporter is not None,
                "import_ext": fmt.import_ext if fmt.importer else None,
                "export_ext": fmt.export_ext if fmt.exporter else None,
                "dimension": fmt.dimension,
                "carries": sorted(fmt.carries),
                "plugin": fmt.plugin,
            }
            for fmt in listed
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    table = [("NAME", "IMPORT", "EXPORT", "ALIASES", "CARRIES")]
    for fmt in listed:
        table.append(
            (
                fmt.display_name,
                fmt.import_ext if fmt.importer else "-",
                fmt.export_ext if fmt.exporter else "-",
                ", ".join(fmt.aliases) or "-",
                ", ".join(sorted(fmt.carries)),
            )
        )
    widths = [max(len(row[column]) for row in table) for column in range(4)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        click.echo("  ".join([*cells, row[4]]).rstrip())


__all__ = [
    "ConvertedDataset",
    "Progress",
    "convert",
    "detect_format",
    "error_message",
    "formats_command",
    "load_formats",
]
