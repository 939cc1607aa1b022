"""The policy bundle in OPA's format: a gzip tar of every registered ``*.rego`` module plus a
``.manifest`` (``{"revision": <digest>, "roots": [...]}``).

An OPA server configured with ``services``/``bundles`` pointing at ``GET /api/auth/rules`` loads
exactly the policies the embedded evaluator runs, so moving decisions to OPA changes nothing else.
The archive is deterministic (fixed timestamps and owners), so one digest always gives the same bytes.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import threading
from collections.abc import Sequence

from annota.core.errors import ConfigError
from annota.core.policies import PolicyModule, PolicyRegistry

MANIFEST = ".manifest"
MEDIA_TYPE = "application/gzip"

_built: dict[str, bytes] = {}
_lock = threading.Lock()


def roots(packages: Sequence[str]) -> list[str]:
    """OPA's bundle roots: the data paths the bundle owns (``a.b`` → ``a/b``)."""
    return sorted(package.replace(".", "/") for package in packages)


def _add(archive: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(content))


def build(registry: PolicyRegistry) -> tuple[str, bytes]:
    """``(digest, archive)`` for the registry's modules, built once per digest."""
    digest = registry.digest()
    with _lock:
        archive = _built.get(digest)
        if archive is None:
            archive = _built[digest] = _archive(digest, registry.modules)
    return digest, archive


def _archive(digest: str, modules: Sequence[PolicyModule]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        manifest = {"revision": digest, "roots": roots([module.package for module in modules])}
        _add(archive, MANIFEST, json.dumps(manifest, sort_keys=True).encode())
        for module in sorted(modules, key=lambda m: m.name):
            _add(archive, module.name, module.source.encode())
    # mtime=0 keeps the gzip header, and so the bytes, the same for the same digest
    return gzip.compress(raw.getvalue(), mtime=0)


def read(archive: bytes, plugin: str = "bundle") -> tuple[dict[str, object], PolicyRegistry]:
    """The manifest and the modules of a bundle archive (what an OPA server does on download)."""
    registry = PolicyRegistry()
    manifest: dict[str, object] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for member in tar.getmembers():
                if not member.isfile():
                    continue
                extracted = tar.extractfile(member)
                assert extracted is not None  # a regular file always has content
                name = member.name.lstrip("/").rsplit("/", 1)[-1]
                content = extracted.read().decode("utf-8")
                if name == MANIFEST:
                    manifest = json.loads(content)
                elif name.endswith(".rego"):
                    registry.add(plugin, name, content)
    except (tarfile.TarError, OSError, EOFError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"not a policy bundle (gzip tar of .rego files): {exc}") from exc
    return manifest, registry
