"""The Rego policy bundle: every plugin's ``*.rego`` modules, collected by ``register_policies``.

Core only gathers and checks the sources (unique file names and packages, one package per file);
evaluating them is the authorization plugin's business, in-process or on an OPA server.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from annota.core.errors import ConfigError

_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][A-Za-z0-9_.]*)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class PolicyModule:
    plugin: str
    #: the file name, unique in the bundle (``tasks.rego``)
    name: str
    package: str
    source: str


@dataclass
class PolicyRegistry:
    modules: list[PolicyModule] = field(default_factory=list)

    def register(self, plugin: str, path: str | Path) -> None:
        """Add a directory of ``*.rego`` files (tests left out) or a single file."""
        path = Path(path)
        if path.is_dir():
            files = sorted(p for p in path.glob("*.rego") if not p.name.endswith("_test.rego"))
        elif path.is_file() and path.suffix == ".rego":
            files = [path]
        else:
            raise ConfigError(f"plugin {plugin}: {path} is neither a .rego file nor a directory")
        for file in files:
            self.add(plugin, file.name, file.read_text(encoding="utf-8"))

    def add(self, plugin: str, name: str, source: str) -> None:
        packages = _PACKAGE.findall(source)
        if len(packages) != 1:
            raise ConfigError(f"plugin {plugin}: {name} must declare exactly one package")
        for known in self.modules:
            if known.name == name:
                raise ConfigError(
                    f"plugin {plugin}: policy file {name} is already registered by {known.plugin}"
                )
            if known.package == packages[0]:
                raise ConfigError(
                    f"plugin {plugin}: policy package {packages[0]} is already registered by {known.plugin}"
                )
        self.modules.append(PolicyModule(plugin, name, packages[0], source))

    @property
    def packages(self) -> list[str]:
        return [module.package for module in self.modules]

    def digest(self) -> str:
        """A content hash of the whole bundle (its ETag, and the key of compiled copies)."""
        hasher = hashlib.sha256()
        for module in sorted(self.modules, key=lambda m: m.name):
            hasher.update(module.name.encode() + b"\0" + module.source.encode() + b"\0")
        return hasher.hexdigest()
