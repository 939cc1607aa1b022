"""The ``local`` storage backend: objects as files under one POSIX directory.

By default the directory is ``<data_dir>/storage``. It may equally be an EFS/NFS mount shared by
many API servers and workers, so nothing here relies on in-process locks: every write goes to a
unique temporary file in the target's directory and is renamed over the target, which POSIX makes
atomic. Concurrent writers of one key never produce a torn file (the last rename wins) and readers
see either the old or the new object, never part of one.

Configuration (``[plugins.local]`` or ``ANNOTA_LOCAL_*``):

* ``root``: the directory (default: ``<data_dir>/storage``);
* ``fsync``: flush file and directory to disk before a write returns (default ``true``; turn it
  off only for throw-away data).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import mimetypes
import os
import re
import stat as stat_module
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from annota.core import hookimpl
from annota.core.storage import (
    CHUNK_SIZE,
    InvalidObjectKey,
    ObjectInfo,
    ObjectNotFound,
    ObjectStream,
    StorageBackend,
    StorageError,
    check_range,
    validate_key,
    validate_prefix,
)

#: Temporary files of writes in progress: ``.<name>.<32 hex digits>.tmp`` next to the target.
TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{32}\.tmp\Z", re.DOTALL)

#: The extended attribute that keeps an object's content type, where the file system has them;
#: elsewhere the content type is guessed from the key's extension.
CONTENT_TYPE_XATTR = "user.annota.content_type"


class Config(msgspec.Struct, forbid_unknown_fields=True):
    #: the directory holding the objects (default: ``<data_dir>/storage``)
    root: str = ""
    #: fsync each file and its directory before a write returns
    fsync: bool = True


def _guess_content_type(key: str) -> str | None:
    return mimetypes.guess_type(key, strict=False)[0]


def _read_content_type(file: int | str, key: str) -> str | None:
    if hasattr(os, "getxattr"):
        try:
            return os.getxattr(file, CONTENT_TYPE_XATTR).decode()
        except OSError:
            pass
    return _guess_content_type(key)


def _info(key: str, st: os.stat_result, content_type: str | None) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=st.st_size,
        last_modified=dt.datetime.fromtimestamp(st.st_mtime_ns / 1e9, dt.UTC),
        # a rename gives every write a new inode, so two writes in one clock tick still differ
        etag=f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}",
        content_type=content_type,
    )


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError:
        # some network file systems refuse fsync on directories; their renames are durable anyway
        pass
    finally:
        os.close(fd)


class LocalStorage(StorageBackend):
    """Objects as files under ``root``: key ``a/b/c.jpg`` is the file ``root/a/b/c.jpg``.

    Unlike an object store, a file system cannot hold both an object ``a`` and an object
    ``a/b``; storing the second refuses with ``InvalidObjectKey``. Symbolic links inside the root
    are followed as long as they lead to somewhere inside the root; listings do not descend into
    linked directories (so a link cycle cannot loop). ``presigned_url`` is always ``None``.
    """

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self.fsync = fsync

    async def check(self) -> None:
        # a missing mount shows as a root that is no longer a writable directory
        if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageError(f"the storage directory {self.root} is not a writable directory")

    # --- paths ------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        validate_key(key)
        if TEMP_NAME.match(key.rpartition("/")[2]):
            raise InvalidObjectKey(f"object key {key!r}: names like '.<name>.<hex>.tmp' are reserved")
        return self.root.joinpath(*key.split("/"))

    def _is_inside(self, path: Path | str) -> bool:
        real = os.path.realpath(path)
        root = str(self.root)
        return real == root or real.startswith(root + os.sep)

    def _check_inside(self, key: str, path: Path) -> None:
        if not self._is_inside(path):
            raise InvalidObjectKey(f"object key {key!r} leads outside the storage root")

    # --- writing ----------------------------------------------------------------------------

    def _open_temp(self, key: str, path: Path) -> tuple[BinaryIO, Path]:
        parent = path.parent
        self._check_inside(key, parent)
        temp = parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
        for _ in range(5):
            try:
                parent.mkdir(parents=True, exist_ok=True)
                return open(temp, "xb"), temp
            except FileNotFoundError:
                # a concurrent delete removed the (then empty) directory: make it again
                continue
            except (FileExistsError, NotADirectoryError) as exc:
                raise InvalidObjectKey(f"object key {key!r}: a part of it is already an object") from exc
        raise StorageError(f"cannot create a file for object {key!r} in {parent}")

    def _commit(
        self, key: str, handle: BinaryIO, temp: Path, path: Path, content_type: str | None
    ) -> ObjectInfo:
        handle.flush()
        if content_type and hasattr(os, "setxattr"):
            try:
                os.setxattr(handle.fileno(), CONTENT_TYPE_XATTR, content_type.encode())
            except OSError:
                pass  # no extended attributes here: stat will guess from the key
        if self.fsync:
            os.fsync(handle.fileno())
        # the inode keeps its size and mtime through the rename: this describes what we wrote
        st = os.fstat(handle.fileno())
        handle.close()
        try:
            os.replace(temp, path)
        except IsADirectoryError as exc:
            raise InvalidObjectKey(f"object key {key!r} is the prefix of other objects") from exc
        if self.fsync:
            _fsync_directory(path.parent)
        return _info(key, st, content_type or _guess_content_type(key))

    async def put(
        self, key: str, data: bytes | AsyncIterable[bytes], *, content_type: str | None = None
    ) -> ObjectInfo:
        path = self._path(key)
        handle, temp = await asyncio.to_thread(self._open_temp, key, path)
        try:
            if isinstance(data, bytes | bytearray | memoryview):
                await asyncio.to_thread(handle.write, data)
            else:
                # gather small chunks (an upload arrives in ~64 KiB pieces) into fewer thread hops
                buffer = bytearray()
                async for chunk in data:
                    buffer += chunk
                    if len(buffer) >= CHUNK_SIZE:
                        await asyncio.to_thread(handle.write, bytes(buffer))
                        buffer.clear()
                if buffer:
                    await asyncio.to_thread(handle.write, bytes(buffer))
            return await asyncio.to_thread(self._commit, key, handle, temp, path, content_type)
        except BaseException:
            # failed or cancelled: leave the previous object as it was and no temporary file behind
            handle.close()
            temp.unlink(missing_ok=True)
            raise

    # --- reading ----------------------------------------------------------------------------

    def _open_read(self, key: str, path: Path) -> tuple[BinaryIO, ObjectInfo]:
        self._check_inside(key, path)
        try:
            handle = open(path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(f"no object {key!r}") from None
        try:
            st = os.fstat(handle.fileno())
            if not stat_module.S_ISREG(st.st_mode):
                raise ObjectNotFound(f"no object {key!r}")
            return handle, _info(key, st, _read_content_type(handle.fileno(), key))
        except BaseException:
            handle.close()
            raise

    async def _chunks(self, handle: BinaryIO, length: int) -> AsyncIterator[bytes]:
        remaining = length
        while remaining > 0:
            data = await asyncio.to_thread(handle.read, min(CHUNK_SIZE, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data

    def _open_at(
        self, key: str, path: Path, start: int, end: int | None
    ) -> tuple[BinaryIO, ObjectInfo, int, bytes | None]:
        """The open file at ``start``, its info, the range's end, and the range's bytes when it
        fits in one chunk: a frame is then read by the same trip to the thread pool that opens it."""
        handle, info = self._open_read(key, path)
        try:
            stop = check_range(key, start, end, info.size)
            if start:
                handle.seek(start)
            content = handle.read(stop - start) if stop - start <= CHUNK_SIZE else None
        except BaseException:
            handle.close()
            raise
        return handle, info, stop, content

    async def _open_stream(self, key: str, start: int, end: int | None) -> ObjectStream:
        path = self._path(key)
        handle, info, stop, content = await asyncio.to_thread(self._open_at, key, path, start, end)

        async def close() -> None:
            handle.close()

        chunks = _already_read(content) if content is not None else self._chunks(handle, stop - start)
        return ObjectStream(info, chunks, close)

    async def get(self, key: str) -> ObjectStream:
        return await self._open_stream(key, 0, None)

    async def get_range(self, key: str, start: int, end: int | None = None) -> ObjectStream:
        return await self._open_stream(key, start, end)

    def _stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        self._check_inside(key, path)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(f"no object {key!r}") from None
        if not stat_module.S_ISREG(st.st_mode):
            raise ObjectNotFound(f"no object {key!r}")
        return _info(key, st, _read_content_type(str(path), key))

    async def stat(self, key: str) -> ObjectInfo:
        return await asyncio.to_thread(self._stat, key)

    # --- deleting ---------------------------------------------------------------------------

    def _prune(self, directory: Path) -> None:
        """Remove directories left empty, up to the root. A writer that loses its directory this
        way makes it again (``_open_temp``)."""
        while directory != self.root and self._is_inside(directory):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    def _delete(self, key: str) -> None:
        path = self._path(key)
        self._check_inside(key, path.parent)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return
        self._prune(path.parent)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)

    def _delete_prefix(self, prefix: str) -> int:
        deleted = 0
        directories: set[Path] = set()
        for key, _ in self._walk(prefix, None):
            path = self.root.joinpath(*key.split("/"))
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            deleted += 1
            directories.add(path.parent)
        if prefix.endswith("/"):
            # the temporary files of writes that never finished (a killed process) go too
            directories |= self._delete_partial_writes(self.root.joinpath(*prefix.rstrip("/").split("/")))
        # deepest first, so a parent is empty by the time it is tried
        for directory in sorted(directories, key=lambda d: len(d.parts), reverse=True):
            self._prune(directory)
        return deleted

    def _abandon_writes(self, key: str) -> None:
        path = self._path(key)
        self._check_inside(key, path.parent)
        start = f".{path.name}."
        try:
            names = os.listdir(path.parent)
        except (FileNotFoundError, NotADirectoryError):
            return
        for name in names:
            if name.startswith(start) and TEMP_NAME.match(name):
                Path(path.parent, name).unlink(missing_ok=True)
        self._prune(path.parent)

    async def abandon_writes(self, key: str) -> None:
        await asyncio.to_thread(self._abandon_writes, key)

    def _delete_partial_writes(self, directory: Path) -> set[Path]:
        """Remove the temporary files under ``directory``; returns the directories they were in."""
        if not self._is_inside(directory) or directory.is_symlink():
            return set()
        emptied: set[Path] = set()
        for parent, _, names in os.walk(directory):
            for name in names:
                if TEMP_NAME.match(name):
                    Path(parent, name).unlink(missing_ok=True)
                    emptied.add(Path(parent))
        return emptied

    async def delete_prefix(self, prefix: str) -> int:
        if validate_prefix(prefix) == "":
            raise InvalidObjectKey("refusing to delete every object: give a non-empty prefix")
        return await asyncio.to_thread(self._delete_prefix, prefix)

    # --- listing ----------------------------------------------------------------------------

    def _walk(self, prefix: str, after: str | None) -> Iterator[tuple[str, os.stat_result]]:
        """Objects under ``prefix`` with keys after ``after``, in key order."""
        base, _, name_start = prefix.rpartition("/")
        directory = self.root.joinpath(*base.split("/")) if base else self.root
        if not self._is_inside(directory):
            return
        yield from self._walk_directory(directory, base + "/" if base else "", name_start, after)

    def _walk_directory(
        self, directory: Path, key_base: str, name_start: str, after: str | None
    ) -> Iterator[tuple[str, os.stat_result]]:
        try:
            with os.scandir(directory) as scan:
                entries = [
                    entry
                    for entry in scan
                    if entry.name.startswith(name_start) and not TEMP_NAME.match(entry.name)
                ]
        except (FileNotFoundError, NotADirectoryError):
            return
        # sorting a directory's names with '/' after each subdirectory's puts whole keys in order:
        # every key under "a" starts with "a/", which sorts after "a-b" and before "a0"
        named = sorted(
            ((entry.name + "/" if entry.is_dir(follow_symlinks=False) else entry.name), entry)
            for entry in entries
        )
        for name, entry in named:
            key = key_base + name
            if name.endswith("/"):
                # skip a subtree whose keys all sort before ``after``
                if after is None or key > after or after.startswith(key):
                    yield from self._walk_directory(Path(entry.path), key, "", after)
                continue
            if after is not None and key <= after:
                continue
            if entry.is_symlink() and not self._is_inside(entry.path):
                continue
            try:
                st = entry.stat()
            except OSError:
                continue  # deleted meanwhile, or a dangling link
            if stat_module.S_ISREG(st.st_mode):
                yield key, st

    def _list_page(self, prefix: str, after: str | None, page_size: int) -> list[ObjectInfo]:
        page: list[ObjectInfo] = []
        for key, st in self._walk(prefix, after):
            # listings leave the content type out, as object stores' listings do
            page.append(_info(key, st, None))
            if len(page) == page_size:
                break
        return page

    async def list(
        self, prefix: str = "", *, page_size: int = 1000, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        if page_size < 1:
            raise ValueError(f"page_size must be positive, got {page_size}")
        after = start_after
        while True:
            page = await asyncio.to_thread(self._list_page, prefix, after, page_size)
            for info in page:
                yield info
            if len(page) < page_size:
                return
            after = page[-1].key


def create(config: Config, settings: Any) -> LocalStorage:
    root = Path(config.root).expanduser() if config.root else Path(settings.data_dir) / "storage"
    return LocalStorage(root, fsync=config.fsync)


@hookimpl
def register_config(register: Any) -> None:
    register(Config)


@hookimpl
def register_storage_backends(register: Any) -> None:
    register("local", create)


async def _already_read(content: bytes) -> AsyncIterator[bytes]:
    if content:
        yield content
