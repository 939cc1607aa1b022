"""Safe extraction of uploaded ZIP and tar archives.

An archive is untrusted input: member names can point outside the destination, links can
redirect later writes, and declared sizes can lie. Every member is checked before it is written,
expanded bytes are counted as they are written, and a refused archive leaves nothing behind.

Zip bombs are stopped by two limits checked while bytes stream out, so a refusal costs at most
what the limit allows: the total expanded size, and the compression ratio. JPEG and video barely
compress and annotation XML/JSON compresses 10-30x, while a bomb compresses 1000x and more; the
ratio is only enforced once more than ``ratio_floor`` bytes came out, so small, highly repetitive
files (an all-empty mask, a degenerate JSON) are never refused for their ratio alone.
"""

from __future__ import annotations

import lzma
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from annota.core.errors import MediaError

ARCHIVE_SUFFIXES: tuple[str, ...] = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")

#: small enough that the compressed bytes read ahead of the output stay small
_BLOCK_SIZE = 256 * 1024
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


#: An archive, and each of its members, may expand to this many times its compressed size...
DEFAULT_MAX_RATIO = 100.0
#: ...once more than this many bytes came out of it.
DEFAULT_RATIO_FLOOR = 128 * 1024 * 1024


@dataclass(frozen=True)
class ArchiveLimits:
    max_total_size: int
    max_members: int
    #: expanded bytes per compressed byte, for the archive and for each member (0: no limit)
    max_ratio: float = DEFAULT_MAX_RATIO
    #: expanded bytes below which the ratio is not enforced
    ratio_floor: int = DEFAULT_RATIO_FLOOR

    @classmethod
    def from_settings(cls, settings: Any) -> ArchiveLimits:
        """The limits the ``max_archive_*`` settings give."""
        return cls(
            max_total_size=settings.max_archive_expanded_size,
            max_members=settings.max_archive_members,
            max_ratio=settings.max_archive_compression_ratio,
            ratio_floor=settings.archive_ratio_floor,
        )

    def ratio_exceeded(self, expanded: int, compressed: int) -> bool:
        return bool(self.max_ratio) and expanded > self.ratio_floor and expanded > self.max_ratio * compressed


def extract_archive(path: Path, name: str, dest: Path, limits: ArchiveLimits) -> list[str]:
    """Extract the regular files of an archive under ``dest``; their POSIX relative paths in
    archive order. ``name`` is the archive's user-facing name, used in messages."""
    writer = _Writer(dest, name, limits, archive_size=path.stat().st_size)
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
    #: the archive file's size: the compressed size of everything in it
    archive_size: int
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

    def check_declared(self, sizes: Iterator[int]) -> None:
        """Refuse at once an archive whose own directory announces more than the limit (the
        sizes may lie, so the bytes are still counted while written)."""
        declared = sum(sizes)
        if declared > self.limits.max_total_size:
            raise self.error(
                f"the archive declares {declared} expanded bytes, more than the limit of "
                f"{self.limits.max_total_size} bytes (max_archive_expanded_size)"
            )

    def write(self, relative: str, member: str, source: IO[bytes], compressed: Callable[[], int]) -> None:
        """Copy ``source`` to the member's path; ``compressed`` tells how many compressed bytes
        the member has used so far (for its ratio)."""
        target = self.dest.joinpath(*relative.split("/"))
        try:
            self._make_parents(target.parent)
            output = target.open("xb")
        except OSError as error:
            raise self.error(f"member '{member}' cannot be extracted ({error.strerror})") from error
        self._created_files.append(target)
        written = 0
        with output:
            while True:
                try:
                    block = source.read(_BLOCK_SIZE)
                except _READ_ERRORS as error:
                    raise self.error(f"member '{member}' is corrupt ({error})") from error
                if not block:
                    break
                self.total_size += len(block)
                written += len(block)
                self._check_limits(member, written, compressed())
                output.write(block)
        self.extracted.append(relative)

    def _check_limits(self, member: str, member_size: int, member_compressed: int) -> None:
        limits = self.limits
        if self.total_size > limits.max_total_size:
            raise self.error(
                f"the archive expands to more than {limits.max_total_size} bytes "
                f"(max_archive_expanded_size), at member '{member}'"
            )
        if limits.ratio_exceeded(member_size, member_compressed):
            raise self.error(
                f"member '{member}' expands to more than {limits.max_ratio:g} times its compressed "
                f"size ({member_size} bytes out of {member_compressed}; max_archive_compression_ratio)"
            )
        if limits.ratio_exceeded(self.total_size, self.archive_size):
            raise self.error(
                f"the archive expands to more than {limits.max_ratio:g} times its size of "
                f"{self.archive_size} bytes (max_archive_compression_ratio), at member '{member}'"
            )

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
    with path.open("rb") as raw:
        try:
            archive = zipfile.ZipFile(raw)
        except _READ_ERRORS as error:
            raise writer.error(f"not a readable ZIP archive ({error})") from error
        with archive:
            _extract_zip_members(archive, raw, writer)


def _extract_zip_members(archive: zipfile.ZipFile, raw: IO[bytes], writer: _Writer) -> None:
    writer.check_declared(info.file_size for info in archive.infolist())
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
        # the file is read in order: from here on, its position is in the member's compressed data
        with source:
            writer.write(relative, info.filename, source, _read_since(raw, raw.tell()))


def _extract_tar(path: Path, writer: _Writer) -> None:
    with path.open("rb") as raw:
        try:
            archive = tarfile.open(fileobj=raw, mode="r:*")
        except _READ_ERRORS as error:
            raise writer.error(f"not a readable tar archive ({error})") from error
        with archive:
            _extract_tar_members(archive, raw, writer)


def _extract_tar_members(archive: tarfile.TarFile, raw: IO[bytes], writer: _Writer) -> None:
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
        # a compressed tar is one stream: a member used what was read of the file meanwhile
        start = raw.tell()
        with source:
            writer.write(relative, member.name, source, _read_since(raw, start))


def _read_since(raw: IO[bytes], start: int) -> Callable[[], int]:
    """How many bytes of the archive file were read since ``start``: a member's compressed size
    so far (decompressors read ahead by at most one block, which only makes the ratio lower)."""
    return lambda: max(raw.tell() - start, 1)


def _tar_members(archive: tarfile.TarFile, writer: _Writer) -> Iterator[tarfile.TarInfo]:
    while True:
        try:
            member = archive.next()
        except _READ_ERRORS as error:
            raise writer.error(f"the archive is corrupt or truncated ({error})") from error
        if member is None:
            return
        yield member
