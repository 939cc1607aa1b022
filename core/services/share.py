"""``server_files``: files named inside the server's share directory (CVAT's ``share``).

Clients name files and directories relative to the share root; nothing they name may lead out
of it, neither with ``..`` nor through a symbolic link.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from annota.core.errors import ValidationError

FIELD = "server_files"


def _refuse(entry: str, reason: str) -> ValidationError:
    return ValidationError.for_field(FIELD, f"{entry!r} {reason}.")


def _relative(entry: str) -> str:
    """The entry as a relative POSIX name; ``""`` is the root."""
    if "\x00" in entry:
        raise _refuse(entry, "is not a valid path")
    # a leading "/" means the share root, as CVAT's clients send it
    return "/".join(part for part in entry.replace("\\", "/").split("/") if part not in ("", "."))


def _inside(root: Path, path: Path) -> bool:
    return path == root or root in path.parents


def _files_of(root: Path, directory: Path, name: str, entry: str) -> list[tuple[str, Path]]:
    """Every file under ``directory`` (named ``name`` relative to the root), sorted by name."""
    found: list[tuple[str, Path]] = []
    visited: set[Path] = set()
    for current, dirs, files in os.walk(directory, followlinks=True):
        real = Path(current).resolve()
        relative = Path(current).relative_to(directory).as_posix()
        if not _inside(root, real):
            raise _refuse(entry, f"leads outside the share through {relative!r}")
        if real in visited:
            # a link cycle: this directory was listed already
            dirs[:] = []
            continue
        visited.add(real)
        dirs.sort()
        for file in files:
            path = (Path(current) / file).resolve()
            member = "/".join(part for part in (name, relative, file) if part and part != ".")
            if not _inside(root, path):
                raise _refuse(entry, f"leads outside the share through {member!r}")
            if path.is_file():
                found.append((member, path))
    return sorted(found)


def _excluded(name: str, exclude: set[str]) -> bool:
    return any(name == item or name.startswith(item + "/") for item in exclude)


def resolve(share_dir: str, paths: Sequence[str], exclude: Sequence[str] = ()) -> list[tuple[str, Path]]:
    """``(relative name, absolute path)`` of every file the entries name, directories expanded."""
    root = Path(share_dir).resolve()
    excluded = {_relative(item) for item in exclude} - {""}
    result: list[tuple[str, Path]] = []
    seen: set[str] = set()
    for entry in paths:
        name = _relative(entry)
        candidate = root / name if name else root
        real = candidate.resolve()
        if not _inside(root, real):
            raise _refuse(entry, "is outside the share")
        if real.is_dir():
            files = _files_of(root, candidate, name, entry)
        elif real.is_file():
            files = [(name, real)]
        else:
            raise _refuse(entry, "does not exist in the share")
        for member, path in files:
            if member not in seen and not _excluded(member, excluded):
                seen.add(member)
                result.append((member, path))
    return result


__all__ = ["resolve"]
