"""Where an exporter writes: a ZIP archive (the server's result, or ``annota convert -o out.zip``) or
a directory. Files are written one at a time as streams, so an export never needs the whole
dataset in memory; text formats should write through ``open_text``.
"""

from __future__ import annotations

import abc
import io
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Protocol

from annota.core.errors import ValidationError

#: already-compressed payloads are stored, not deflated again
_STORED_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".zip", ".gz", ".mp4", ".avi", ".mkv", ".webm"}
)


def _safe(path: str) -> str:
    if (
        path
        and path[0] != "/"
        and path[-1] != "/"
        and "\\" not in path
        and "//" not in path
        and "/." not in "/" + path
    ):
        # already normal and inside (no absolute path, no dot component): the common case,
        # without PurePosixPath's parsing on every file of an export
        return path
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts or "\\" in path:
        raise ValidationError(f"An exporter tried to write outside its output: {path!r}")
    return str(pure)


class Output(Protocol):
    def open(self, path: str) -> IO[bytes]:
        """A binary stream writing the file ``path`` (relative, ``/``-separated); close it to finish."""
        ...

    def write(self, path: str, data: bytes) -> None: ...

    def open_text(self, path: str) -> IO[str]:
        """A UTF-8 text stream writing ``path`` (``\\n`` line ends)."""
        ...


class _Base(abc.ABC):
    @abc.abstractmethod
    def open(self, path: str) -> IO[bytes]: ...

    def write(self, path: str, data: bytes) -> None:
        with self.open(path) as stream:
            stream.write(data)

    def open_text(self, path: str) -> IO[str]:
        return _TextStream(self.open(path))


class _TextStream(io.TextIOWrapper):
    def __init__(self, raw: IO[bytes]) -> None:
        buffered = io.BufferedWriter(_Raw(raw), buffer_size=1 << 20)  # type: ignore[type-var]
        super().__init__(buffered, encoding="utf-8", newline="\n")


class _Raw(io.RawIOBase):
    """Adapts a zipfile member stream (not a RawIOBase) for TextIOWrapper."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.target.write(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self.target.close()
        super().close()


class ZipOutput(_Base):
    """Writes a ZIP archive; call ``close()`` (or use ``with``) to finish it."""

    def __init__(self, target: str | os.PathLike[str] | IO[bytes], compresslevel: int = 1) -> None:
        self.zip = zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel)
        self.names: set[str] = set()

    def open(self, path: str) -> IO[bytes]:
        name = _safe(path)
        if name in self.names:
            raise ValidationError(f"An exporter wrote {name!r} twice.")
        self.names.add(name)
        info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
        suffix = PurePosixPath(name).suffix.lower()
        info.compress_type = zipfile.ZIP_STORED if suffix in _STORED_SUFFIXES else zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return self.zip.open(info, "w", force_zip64=True)

    def close(self) -> None:
        self.zip.close()

    def __enter__(self) -> ZipOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DirectoryOutput(_Base):
    """Writes files under a directory (created as needed).

    Exports write thousands of small files (an image and a label file per item): ``write`` goes
    straight to ``os.open``/``os.write`` and each folder is created once, so a file costs about
    three system calls and no Python file object."""

    #: open(2) flags: create or replace, like ``open(path, "wb")``
    _FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._base = os.fspath(self.root)
        self._folders: set[str] = set()

    def _target(self, path: str) -> str:
        name = _safe(path)
        folder, _, _ = name.rpartition("/")
        if folder not in self._folders:
            os.makedirs(os.path.join(self._base, folder), exist_ok=True)
            self._folders.add(folder)
        return os.path.join(self._base, name)

    def open(self, path: str) -> IO[bytes]:
        return open(self._target(path), "wb")

    def write(self, path: str, data: bytes) -> None:
        handle = os.open(self._target(path), self._FLAGS, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(handle, view) :]
        finally:
            os.close(handle)

    def close(self) -> None:
        pass

    def __enter__(self) -> DirectoryOutput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def open_output(path: str | os.PathLike[str]) -> Iterator[ZipOutput | DirectoryOutput]:
    """A ZIP when ``path`` ends in ``.zip``, a directory otherwise."""
    target = Path(path)
    output: ZipOutput | DirectoryOutput
    if target.suffix.lower() == ".zip":
        target.parent.mkdir(parents=True, exist_ok=True)
        output = ZipOutput(target)
    else:
        output = DirectoryOutput(target)
    try:
        yield output
    finally:
        output.close()


__all__ = ["DirectoryOutput", "Output", "ZipOutput", "open_output"]
