"""What a format plugin registers, and the registry the host fills through ``register_formats``.

A format is known by its exact CVAT display name, ``"<name> <version>"`` (``"COCO 1.0"``): that is
what ``GET /api/server/annotation/formats`` lists and what the ``format`` query parameter and
``annota convert`` take. Short aliases (``coco``) are accepted by the command line too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from annota.core.errors import ConfigError, ValidationError
from annota.core.formats.model import Dataset, LabelSpec
from annota.core.formats.output import Output

#: What a format may declare it carries (``Format.carries``).
CAPABILITIES = frozenset(
    {
        "tag", "rectangle", "polygon", "polyline", "points", "ellipse", "cuboid", "mask", "skeleton",
        "track", "attributes", "images", "rotation", "occluded", "z_order", "group", "source",
        "track_id", "score",
    }
)  # fmt: skip
DIMENSIONS = ("2d", "3d", "1d")


@dataclass(frozen=True)
class ExportOptions:
    #: write the frames' images into the dataset too
    save_images: bool = False


@dataclass(frozen=True)
class ImportOptions:
    #: turn masks into polygons (CVAT's ``conv_mask_to_poly``)
    conv_mask_to_poly: bool = False
    #: the labels of the task or project imported into, when there is one (formats that number
    #: their classes may need them); empty for ``annota convert``
    labels: Sequence[LabelSpec] = ()


class Exporter(Protocol):
    def __call__(self, dataset: Dataset, output: Output, options: ExportOptions, /) -> None: ...


class Importer(Protocol):
    """Read the dataset under ``root`` (a directory: an extracted archive, or holding the one
    uploaded file). Raise ``FormatError`` naming the file, line or pointer and annotation."""

    def __call__(self, root: Path, options: ImportOptions, /) -> Dataset: ...


@dataclass(frozen=True)
class Format:
    """A dataset format. ``detect(root)`` returns a confidence in 0..1 that ``root`` holds this
    format (0 when it surely does not)."""

    name: str
    version: str
    exporter: Exporter | None = None
    importer: Importer | None = None
    export_ext: str = "ZIP"
    import_ext: str = "ZIP"
    dimension: str = "2d"
    carries: frozenset[str] = frozenset()
    detect: Callable[[Path], float] | None = None
    aliases: tuple[str, ...] = ()
    description: str = ""
    #: set by the registry: the plugin that registered the format
    plugin: str = field(default="", compare=False)

    @property
    def display_name(self) -> str:
        return f"{self.name} {self.version}"


def _key(name: str) -> str:
    return " ".join(name.lower().split())


class FormatRegistry:
    """Formats by display name, in registration order."""

    def __init__(self) -> None:
        self.formats: dict[str, Format] = {}
        self._aliases: dict[str, str] = {}

    def register(self, plugin: str, fmt: Format) -> None:
        where = f"plugin {plugin}: format {fmt.display_name!r}"
        if not isinstance(fmt, Format):
            raise ConfigError(f"plugin {plugin}: register() takes an annota.core.formats.Format")
        if fmt.exporter is None and fmt.importer is None:
            raise ConfigError(f"{where} has neither an exporter nor an importer")
        unknown = fmt.carries - CAPABILITIES
        if unknown:
            raise ConfigError(f"{where} declares unknown capabilities {sorted(unknown)}")
        if fmt.dimension not in DIMENSIONS:
            raise ConfigError(f"{where} has unknown dimension {fmt.dimension!r}")
        names = [fmt.display_name, *fmt.aliases]
        for name in names:
            owner = self._aliases.get(_key(name))
            if owner is not None:
                taken = self.formats[owner]
                raise ConfigError(
                    f"{where}: the name {name!r} is already taken "
                    f"by format {owner!r} of plugin {taken.plugin}"
                )
        stored = Format(**{**fmt.__dict__, "plugin": plugin})
        self.formats[fmt.display_name] = stored
        for name in names:
            self._aliases[_key(name)] = fmt.display_name

    def find(self, name: str) -> Format | None:
        """A format by exact display name first, then case-insensitively or by alias."""
        if name in self.formats:
            return self.formats[name]
        display = self._aliases.get(_key(name))
        return self.formats[display] if display else None

    def get(self, name: str, *, direction: str, field: str = "format") -> Format:
        """The format named ``name`` that can ``direction`` (``import``/``export``), or a 400
        listing the names that can."""
        fmt = self.find(name)
        able = self.exporters() if direction == "export" else self.importers()
        if fmt is None or fmt not in able:
            known = ", ".join(repr(f.display_name) for f in able)
            what = "Unknown format" if fmt is None else f"Format {fmt.display_name!r} cannot {direction};"
            raise ValidationError.for_field(field, f"{what} {name!r}. Formats that can {direction}: {known}.")
        return fmt

    def exporters(self) -> list[Format]:
        return [fmt for fmt in self.formats.values() if fmt.exporter is not None]

    def importers(self) -> list[Format]:
        return [fmt for fmt in self.formats.values() if fmt.importer is not None]

    def detect(self, root: Path, candidates: Iterable[Format] | None = None) -> list[tuple[float, Format]]:
        """The importable formats that recognise ``root``, most confident first."""
        scores: list[tuple[float, Format]] = []
        for fmt in candidates if candidates is not None else self.importers():
            if fmt.detect is None:
                continue
            try:
                score = float(fmt.detect(root))
            except Exception:
                # a detector that trips over an unexpected layout simply does not recognise it
                score = 0.0
            if score > 0:
                scores.append((min(score, 1.0), fmt))
        scores.sort(key=lambda pair: -pair[0])
        return scores


__all__ = [
    "CAPABILITIES",
    "ExportOptions",
    "Exporter",
    "Format",
    "FormatRegistry",
    "ImportOptions",
    "Importer",
]
