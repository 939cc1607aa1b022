"""Safe extraction of uploaded ZIP and tar archives.

An archive is untrusted input: member names can point outside the destination, links can
redirect later writes, and declared sizes can lie. Every member is checked before it is written,
expanded bytes are counted as they are written, and a refused archive leaves nothing behind.
"""

from __future__ import annotations

import lzma
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from annota.core.errors import MediaError

ARCHIVE_SUFFIXES: tuple[str, ...] = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")

_BLOCK_SIZE = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
#: What reading a damaged archive raises, depending on where the damage is.
_READ_ERRORS = (
    zipfile.BadZipFile,
    tarfile.TarError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    OSError,
    NotImplementedError,
    RuntimeError,
)


def is_archive_name(name: str) -> bool:
    lowered = name.lower()
    return any(lowered.endswith(suffix) for suffix in ARCHIVE_SUFFIXES)


@dataclass(frozen=True)
class ArchiveLimits:
    max_total_size: int
    max_members: int


def extract_archive(path: Path, name: str, dest: Path, limits: ArchiveLimits) -> list[str]:
    """Extract the regular files of an archive under ``dest``; their POSIX relative paths in
    archive order. ``name`` is the archive's user-facing name, used in messages."""
    writer = _Writer(dest, name, limits)
    try:
        if name.lower().endswith(".zip"):
            _extract_zip(path, writer)
        else:
            _extract_tar(path, writer)
    except BaseException:
        writer.remove_written()
        raise
    return writer.extracted


@dataclass
class _Writer:
    """Writes checked members under ``dest`` and remembers what it created, to undo it."""

    dest: Path
    archive: str
    limits: ArchiveLimits
    extracted: list[str] = field(default_factory=list)
    members_seen: int = 0
    total_size: int = 0
    _paths: set[str] = field(default_factory=set)
    _created_files: list[Path] = field(default_factory=list)
    _created_dirs: list[Path] = field(default_factory=list)

    def error(self, message: str) -> MediaError:
        return MediaError(f"{self.archive}: {message}")

    def count_member(self) -> None:
        self.members_seen += 1
        if self.members_seen > self.limits.max_members:
            raise self.error(f"the archive has more than {self.limits.max_members} members")

    def check_name(self, member: str) -> str | None:
        """The member's normalized relative path, or None for macOS metadata and bare directories."""
        if "\\" in member or "\x00" in member or _DRIVE.match(member):
            raise self.error(f"member '{member}' has an unsupported path")
        if member.startswith("/"):
            raise self.error(f"member '{member}' has an absolute path")
        parts = [part for part in member.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise self.error(f"member '{member}' points outside the archive")
        if not parts:
            return None
        if parts[0] == "__MACOSX" or parts[-1].startswith("._"):
            return None
        relative = "/".join(parts)
        if relative in self._paths:
            raise self.error(f"member '{member}' appears more than once")
        self._paths.add(relative)
        return relative

    def write(self, relative: str, member: str, source: IO[bytes]) -> None:
        target = self.dest.joinpath(*relative.split("/"))
        try:
            self._make_parents(target.parent)
            output = target.open("xb")
        except OSError as error:
            raise self.error(f"member '{member}' cannot be extracted ({error.strerror})") from error
        self._created_files.append(target)
        with output:
            while True:
                try:
                    block = source.read(_BLOCK_SIZE)
                except _READ_ERRORS as error:
                    raise self.error(f"member '{member}' is corrupt ({error})") from error
                if not block:
                    break
                self.total_size += len(block)
                if self.total_size > self.limits.max_total_size:
                    raise self.error(
                        f"the archive expands to more than {self.limits.max_total_size} bytes "
                        f"(at member '{member}')"
                    )
                output.write(block)
        self.extracted.append(relative)

    def _make_parents(self, directory: Path) -> None:
        missing: list[Path] = []
        while directory != self.dest and not directory.exists():
            missing.append(directory)
            directory = directory.parent
        for created in reversed(missing):
            created.mkdir()
            self._created_dirs.append(created)

    def remove_written(self) -> None:
        for file in self._created_files:
            file.unlink(missing_ok=True)
        for directory in reversed(self._created_dirs):
            shutil.rmtree(directory, ignore_errors=True)


def _extract_zip(path: Path, writer: _Writer) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except _READ_ERRORS as error:
        raise writer.error(f"not a readable ZIP archive ({error})") from error
    with archive:
        for info in archive.infolist():
            writer.count_member()
            if info.is_dir():
                continue
            relative = writer.check_name(info.filename)
            if relative is None:
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise writer.error(f"member '{info.filename}' is a symbolic link")
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                raise writer.error(f"member '{info.filename}' is not a regular file")
            if info.flag_bits & 0x1:
                raise writer.error(f"member '{info.filename}' is encrypted")
            try:
                source = archive.open(info)
            except _READ_ERRORS as error:
                raise writer.error(f"member '{info.filename}' is corrupt ({error})") from error
            with source:
                writer.write(relative, info.filename, source)


def _extract_tar(path: Path, writer: _Writer) -> None:
    try:
        archive = tarfile.open(path, mode="r:*")
    except _READ_ERRORS as error:
        raise writer.error(f"not a readable tar archive ({error})") from error
    with archive:
        for member in _tar_members(archive, writer):
            writer.count_member()
            if member.isdir():
                continue
            relative = writer.check_name(member.name)
            if relative is None:
                continue
            if member.issym() or member.islnk():
                raise writer.error(f"member '{member.name}' is a link")
            if not member.isreg():
                raise writer.error(f"member '{member.name}' is not a regular file")
            try:
                source = archive.extractfile(member)
            except _READ_ERRORS as error:
                raise writer.error(f"member '{member.name}' is corrupt ({error})") from error
            if source is None:
                raise writer.error(f"member '{member.name}' is not a regular file")
            with source:
                writer.write(relative, member.name, source)


def _tar_members(archive: tarfile.TarFile, writer: _Writer) -> Iterator[tarfile.TarInfo]:
    while True:
        try:
            member = archive.next()
        except _READ_ERRORS as error:
            raise writer.error(f"the archive is corrupt or truncated ({error})") from error
        if member is None:
            return
        yield member
