"""Installed distributions in a temporary directory on ``sys.path``, for tests of entry-point
discovery that must not touch the environment the rest of the suite runs in.

A ``PluginSite`` is what ``pip install --target DIR`` leaves behind: modules plus
``<name>-<version>.dist-info`` folders whose ``entry_points.txt`` ``importlib.metadata`` reads.
"""

from __future__ import annotations

import importlib
import re
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest


class PluginSite:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)

    def activate(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Put the site first on ``sys.path`` until the test ends."""
        monkeypatch.syspath_prepend(str(self.path))

    def add(
        self,
        distribution: str,
        modules: Mapping[str, str],
        entry_points: Mapping[str, str],
        version: str = "1.0",
    ) -> None:
        """Install ``modules`` (name -> source) as ``distribution`` with ``annota`` entry points
        (plugin name -> module)."""
        for name, source in modules.items():
            (self.path / f"{name}.py").write_text(textwrap.dedent(source))
        dist_info = self.path / f"{re.sub(r'[-_.]+', '_', distribution)}-{version}.dist-info"
        dist_info.mkdir()
        metadata = f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
        (dist_info / "METADATA").write_text(metadata)
        lines = [f"{name} = {target}" for name, target in entry_points.items()]
        (dist_info / "entry_points.txt").write_text("[annota]\n" + "\n".join(lines) + "\n")
        # the import system caches directory listings; new files must be seen now
        importlib.invalidate_caches()

    def forget_modules(self) -> None:
        """Drop the site's modules from ``sys.modules``, so no later test sees them."""
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", None) or "").startswith(str(self.path)):
                del sys.modules[name]
