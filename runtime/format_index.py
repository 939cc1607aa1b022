"""Which plugin provides which format name, remembered between runs of the offline commands.

``annota convert -if "COCO 1.0" -f "YOLO 1.1"`` needs two format plugins, but a format's names are
known only once its plugin has run ``register_formats``: importing every installed plugin to find
out costs more than a small conversion. The first full load writes the names -> plugin index to the
user's cache directory; later runs load just the plugins it names. The index is keyed by what
decides the entry points: every ``sys.path`` directory with its modification time and the
distributions installed in it (installing, removing or upgrading a package changes these), so it
never outlives the installation it describes. A hit is also checked after loading (the plugin must
really register the name), and any doubt falls back to loading every plugin.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

#: bump when the file's layout changes
_LAYOUT = 2
_FILE = "formats-index.json"
#: installations remembered (one per interpreter, virtual environment and ``sys.path``: the
#: ``annota`` script and ``python -m`` differ in their first entry)
_KEPT = 8


def _cache_dir() -> Path:
    # platformdirs' rule for Linux without importing it (this runs before any work)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "annota"


def fingerprint() -> str:
    """A digest of the installation: ``sys.path`` directories, their times and distributions."""
    digest = hashlib.sha256(f"{_LAYOUT}\0{sys.version}".encode())
    for entry in sys.path:
        try:
            stat = os.stat(entry or ".")
            names = sorted(
                name for name in os.listdir(entry or ".") if name.endswith((".dist-info", ".egg-info"))
            )
        except OSError:
            continue
        digest.update(f"\0{os.path.abspath(entry or '.')}\0{stat.st_mtime_ns}\0".encode())
        digest.update("\0".join(names).encode())
    return digest.hexdigest()


def _key(name: str) -> str:
    return " ".join(name.lower().split())


def lookup(names: Iterable[str], print_: str) -> dict[str, str] | None:
    """The plugins (entry-point name -> its value) that provide ``names``, or None when the index
    is missing, stale or does not know one of them."""
    data = _read().get(print_)
    if not isinstance(data, dict):
        return None
    formats, plugins = data.get("formats"), data.get("plugins")
    if not isinstance(formats, dict) or not isinstance(plugins, dict):
        return None
    needed: dict[str, str] = {}
    for name in names:
        plugin = formats.get(_key(name))
        if not isinstance(plugin, str):
            return None
        value = plugins.get(plugin)
        if not isinstance(value, str):
            return None
        needed[plugin] = value
    return needed


def store(print_: str, formats: Mapping[str, str], plugins: Mapping[str, str]) -> None:
    """Remember ``formats`` (any name or alias -> plugin) and ``plugins`` (name -> entry-point
    value). A cache that cannot be written is no error: the next run loads everything again."""
    directory = _cache_dir()
    entries = _read()
    entries.pop(print_, None)
    entries[print_] = {
        "formats": {_key(name): plugin for name, plugin in formats.items()},
        "plugins": dict(plugins),
    }
    kept = dict(list(entries.items())[-_KEPT:])
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{_FILE}.", dir=directory)
        try:
            with os.fdopen(handle, "w") as stream:
                json.dump({"layout": _LAYOUT, "entries": kept}, stream)
            os.replace(temporary, directory / _FILE)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    except OSError:
        pass


def _read() -> dict[str, object]:
    """The remembered installations by fingerprint, oldest first (empty when unreadable)."""
    try:
        data = json.loads((_cache_dir() / _FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("layout") != _LAYOUT:
        return {}
    entries = data.get("entries")
    return dict(entries) if isinstance(entries, dict) else {}


__all__ = ["fingerprint", "lookup", "store"]
