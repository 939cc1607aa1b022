"""Where media, chunks and results are kept: the storage-backend interface and its registry.

The interface is shaped like an object store (S3, Azure Blob, GCS), not like a file system, so
that callers never learn which backend serves them. Objects are named by *keys*: ``/``-separated
relative names such as ``data/12/raw/frame_000001.jpg``. There are no directories, only key
prefixes; listing is by prefix, in key order, page by page.

Backends are plugins: the ``register_storage_backends`` hook registers a factory under a name
(``local``, ``s3`` …) and the ``storage`` setting picks the one the server uses.
"""

from __future__ import annotations

import abc
import datetime as dt
import inspect
import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from annota.core.errors import (
    ConfigError,
    InvalidObjectKey,
    ObjectNotFound,
    RangeNotSatisfiable,
    StorageError,
)

__all__ = [
    "CHUNK_SIZE",
    "InvalidObjectKey",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStream",
    "RangeNotSatisfiable",
    "StorageBackend",
    "StorageError",
    "StorageRegistry",
    "check_range",
    "validate_key",
    "validate_prefix",
]

#: How many bytes a backend hands out per chunk when streaming an object.
CHUNK_SIZE = 1024 * 1024

_BACKEND_NAME = re.compile(r"[a-z][a-z0-9_-]*\Z")


@dataclass(frozen=True)
class ObjectInfo:
    """What a backend knows about one stored object."""

    key: str
    size: int
    #: when the object was last written (timezone-aware, UTC)
    last_modified: dt.datetime
    #: identifies one version of the object: it changes with every write (quote it for an HTTP ETag)
    etag: str
    #: the media type given to ``put`` (or guessed); ``None`` when unknown, and in listings
    content_type: str | None = None


def _check_segments(segments: list[str], what: str, value: str) -> None:
    for segment in segments:
        if segment in ("", ".", ".."):
            raise InvalidObjectKey(f"{what} {value!r}: empty, '.' and '..' segments are not allowed")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a well-formed object key, else raise ``InvalidObjectKey``.

    A key is a non-empty, ``/``-separated relative name: no leading ``/``, no empty, ``.`` or
    ``..`` segments, no backslash and no NUL. Backends rely on this to keep every key inside
    their namespace (a ``local`` key can never name a file outside its root).
    """
    if not isinstance(key, str) or not key:
        raise InvalidObjectKey("an object key must be a non-empty string")
    if "\\" in key or "\x00" in key:
        raise InvalidObjectKey(f"object key {key!r}: backslashes and NUL characters are not allowed")
    if key.startswith("/"):
        raise InvalidObjectKey(f"object key {key!r}: keys are relative, without a leading '/'")
    _check_segments(key.split("/"), "object key", key)
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can begin a key (``""`` begins every key), else raise
    ``InvalidObjectKey``. A prefix is matched as a string: ``data/1`` matches ``data/1/a`` and
    ``data/10/a``; end it with ``/`` to mean one "folder"."""
    if prefix == "":
        return prefix
    if not isinstance(prefix, str) or "\\" in prefix or "\x00" in prefix or prefix.startswith("/"):
        raise InvalidObjectKey(f"key prefix {prefix!r} cannot begin an object key")
    segments = prefix.split("/")
    # the last segment may be partial, or empty after a trailing '/'
    _check_segments(segments[:-1], "key prefix", prefix)
    if segments[-1] in (".", ".."):
        raise InvalidObjectKey(f"key prefix {prefix!r}: '.' and '..' segments are not allowed")
    return prefix


def check_range(key: str, start: int, end: int | None, size: int) -> int:
    """Validate the byte range ``[start, end)`` of an object of ``size`` bytes and return its end.

    ``end=None`` means the end of the object. ``0 <= start <= end <= size`` must hold; the range
    may be empty (``start == end``). Anything else raises ``RangeNotSatisfiable``.
    """
    stop = size if end is None else end
    if start < 0 or stop < start or stop > size:
        raise RangeNotSatisfiable(f"bytes {start}..{end} are outside object {key!r} of {size} bytes")
    return stop


class ObjectStream:
    """An object's content, read chunk by chunk; ``info`` is known before the first chunk.

    Iterate it with ``async for`` and close it (``async with`` does) so the backend can release
    its file handle or connection; it also closes itself once exhausted::

        async with await storage.get("data/1/raw/a.jpg") as stream:
            size = stream.info.size
            async for chunk in stream:
                ...
    """

    def __init__(
        self,
        info: ObjectInfo,
        chunks: AsyncIterator[bytes],
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.info = info
        self._chunks = chunks
        self._close = close
        self._closed = False

    def __aiter__(self) -> ObjectStream:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        try:
            return await anext(self._chunks)
        except BaseException:
            # exhausted, failed or cancelled: nothing more will be read
            await self.aclose()
            raise

    async def read(self) -> bytes:
        """The remaining content as one ``bytes`` (only for objects known to be small)."""
        return b"".join([chunk async for chunk in self])

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        aclose = getattr(self._chunks, "aclose", None)
        try:
            if aclose is not None:
                await aclose()
        finally:
            if self._close is not None:
                await self._close()

    async def __aenter__(self) -> ObjectStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class StorageBackend(abc.ABC):
    """The interface every storage backend implements.

    All methods are coroutines and validate their keys (``validate_key``, ``validate_prefix``).
    Writes are atomic: a reader sees either the previous object or the complete new one, never a
    partial write, whichever process or machine writes. A missing object raises
    ``ObjectNotFound`` (HTTP 404).
    """

    @abc.abstractmethod
    async def put(
        self, key: str, data: bytes | AsyncIterable[bytes], *, content_type: str | None = None
    ) -> ObjectInfo:
        """Store ``data`` (bytes, or an async iterable of chunks streamed without buffering the
        whole object) under ``key``, replacing any object there. If the iterable raises, nothing
        is stored and the previous object, if any, stays.

        The result describes the version written: its size and etag are those ``stat`` gives, its
        content type the one given (or guessed); its ``last_modified`` may be the writer's clock
        at completion (a remote store answers a put without one), within a small skew of
        ``stat``'s rather than equal to it."""

    @abc.abstractmethod
    async def get(self, key: str) -> ObjectStream:
        """Open the object for streaming, in chunks of about ``CHUNK_SIZE`` bytes. Raises
        ``ObjectNotFound`` here, before any chunk is read."""

    @abc.abstractmethod
    async def get_range(self, key: str, start: int, end: int | None = None) -> ObjectStream:
        """Open bytes ``start`` (inclusive) to ``end`` (exclusive; ``None``: the end of the object)
        for streaming. The range may be empty; one outside the object raises
        ``RangeNotSatisfiable`` (see ``check_range``). ``stream.info`` describes the whole object."""

    @abc.abstractmethod
    async def stat(self, key: str) -> ObjectInfo:
        """Size, modification time, ETag and content type of the object."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object. Deleting a missing object is not an error (as in object stores)."""

    @abc.abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with ``prefix`` and return how many were removed.
        The empty prefix is refused (``InvalidObjectKey``): wiping a whole store is never what a
        caller means."""

    @abc.abstractmethod
    def list(
        self, prefix: str = "", *, page_size: int = 1000, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (matched as a string), in key order,
        beginning after the key ``start_after``. Backends fetch ``page_size`` objects at a time;
        to page through a listing across requests, pass the last key seen as ``start_after``."""

    async def read(self, key: str) -> bytes:
        """The whole object as ``bytes``; for small objects only (metadata, manifests)."""
        async with await self.get(key) as stream:
            return await stream.read()

    async def exists(self, key: str) -> bool:
        try:
            await self.stat(key)
        except ObjectNotFound:
            return False
        return True

    async def check(self) -> None:
        """Raise ``StorageError`` unless the backend can serve requests now (the volume is mounted,
        the bucket reachable); ``/api/server/health`` calls it. The default asks for an object."""
        await self.exists("health/probe")

    async def presigned_url(self, key: str, expires: dt.timedelta) -> str | None:
        """A URL through which a client may ``GET`` the object directly for ``expires``, or
        ``None`` when the backend cannot make one (then the server streams the object itself)."""
        validate_key(key)
        return None

    async def abandon_writes(self, key: str) -> None:
        """Remove what unfinished writes of ``key`` left behind (a process killed in the middle of
        ``put``); the object itself, if any, stays. Backends whose unfinished writes leave nothing
        a reader or a listing could see keep this default."""
        validate_key(key)

    async def close(self) -> None:
        """Release connections and handles; called once when the server or worker stops."""
        # a backend without connections or handles to release keeps this default
        return None


#: ``factory(config, settings)``: ``config`` is the owning plugin's validated configuration (or
#: ``None`` if it declares none), ``settings`` the core settings. May return an awaitable.
StorageFactory = Callable[[Any, Any], "StorageBackend | Awaitable[StorageBackend]"]


@dataclass(frozen=True)
class StorageBackendDefinition:
    name: str
    factory: StorageFactory
    plugin: str


class StorageRegistry:
    """Storage backends by name, filled through the ``register_storage_backends`` hook."""

    def __init__(self) -> None:
        self.backends: dict[str, StorageBackendDefinition] = {}

    def register(self, plugin: str, name: str, factory: StorageFactory) -> None:
        if not isinstance(name, str) or not _BACKEND_NAME.match(name):
            raise ConfigError(
                f"plugin {plugin}: storage backend name {name!r} must be lower-case letters, "
                "digits, '-' and '_', starting with a letter"
            )
        if not callable(factory):
            raise ConfigError(f"plugin {plugin}: storage backend {name!r} needs a callable factory")
        if name in self.backends:
            raise ConfigError(
                f"plugin {plugin}: storage backend {name!r} is already registered "
                f"by plugin {self.backends[name].plugin}"
            )
        self.backends[name] = StorageBackendDefinition(name, factory, plugin)

    def get(self, name: str) -> StorageBackendDefinition:
        try:
            return self.backends[name]
        except KeyError:
            known = ", ".join(sorted(self.backends)) or "none"
            raise ConfigError(
                f"storage: no storage backend named {name!r} is registered (known: {known})"
            ) from None

    async def create(self, name: str, config: Any, settings: Any) -> StorageBackend:
        """Build backend ``name`` with its plugin's ``config`` and the core ``settings``."""
        definition = self.get(name)
        backend = definition.factory(config, settings)
        if inspect.isawaitable(backend):
            backend = await backend
        if not isinstance(backend, StorageBackend):
            raise ConfigError(
                f"plugin {definition.plugin}: storage backend {name!r} factory returned "
                f"{type(backend).__name__}, not a StorageBackend"
            )
        return backend
