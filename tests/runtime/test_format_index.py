"""``annota convert`` loads only the format plugins it names: which plugin provides which name is
remembered in the user's cache, follows the installed plugins, and any doubt loads them all."""

from __future__ import annotations

from pathlib import Path

import pytest

from annota.core.formats.registry import FormatRegistry
from annota.runtime import format_index
from annota.runtime.convert import load_formats
from tests.plugin_site import PluginSite

NAMES_PLUGIN = """
from annota.core import hookimpl
from annota.core.formats.registry import Format


def export_names(dataset, output, options):
    with output.open_text("names.txt") as stream:
        stream.writelines(item.name + "\\n" for item in dataset.items())


@hookimpl
def register_formats(register):
    register(Format(name="Names", version="1.0", exporter=export_names, aliases=("names",)))
"""

COCO_TO_YOLO = [("YOLO 1.1", "export"), ("coco", "import")]


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "annota"


def plugins(registry: FormatRegistry) -> set[str]:
    return {fmt.plugin for fmt in registry.formats.values()}


def test_named_formats_load_only_the_plugins_providing_them(cache: Path) -> None:
    first = load_formats(None, COCO_TO_YOLO)
    assert {"coco", "yolo", "pascal-voc", "cvat"} <= plugins(first)
    assert (cache / "formats-index.json").is_file()

    assert plugins(load_formats(None, COCO_TO_YOLO)) == {"coco", "yolo"}
    # a name nobody provides, or a direction the format cannot: every plugin, for the error's list
    assert "cvat" in plugins(load_formats(None, [("Nothing 9.9", "export")]))
    import_only = load_formats(None, [("CVAT 1.1", "export")])
    assert {"cvat", "coco"} <= plugins(import_only)


def test_index_follows_the_installed_plugins(plugin_site: PluginSite) -> None:
    load_formats(None, COCO_TO_YOLO)
    plugin_site.add("annota-names", {"annota_names": NAMES_PLUGIN}, {"names": "annota_names"})

    found = load_formats(None, [("Names 1.0", "export")])
    assert found.get("names", direction="export").plugin == "names"
    assert plugins(load_formats(None, [("NAMES 1.0", "export")])) == {"names"}


def test_a_wrong_index_falls_back_to_every_plugin() -> None:
    load_formats(None, COCO_TO_YOLO)
    # an index that says YOLO's plugin provides COCO (a stale one would)
    format_index.store(
        format_index.fingerprint(), {"COCO 1.0": "yolo"}, {"yolo": "annota.plugins.formats.yolo"}
    )

    registry = load_formats(None, [("COCO 1.0", "import")])
    assert registry.get("COCO 1.0", direction="import").plugin == "coco"
    assert "cvat" in plugins(registry)


def test_disabled_plugin_stays_unloaded_although_indexed(tmp_path: Path) -> None:
    load_formats(None, COCO_TO_YOLO)
    config = tmp_path / "annota.toml"
    config.write_text('[plugins]\ndisabled = ["yolo"]\n')

    registry = load_formats(str(config), COCO_TO_YOLO)
    assert registry.find("YOLO 1.1") is None and "yolo" not in plugins(registry)
