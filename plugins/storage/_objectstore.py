"""What the obstore-based storage backends (``s3``, ``azure``) share: one ``StorageBackend`` over
an obstore store.

obstore (Rust ``object_store`` with an async Python API) speaks S3 and Azure Blob through the same
calls, so the backends differ only in how they build the store and name their container; this
module holds the rest. It is not a plugin: the backend plugins in this package import it (a
private helper, like ``plugins/formats/_voc_segmentation.py``), and it imports obstore only when a
backend is created, so the server starts without obstore unless such a backend is selected.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from annota.core.cloud import BucketForbidden, BucketNotFound
from annota.core.errors import ConfigError
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

#: How many keys one batch delete request removes (the S3 maximum; obstore splits further).
DELETE_BATCH = 1000


def import_obstore(missing_extra: str) -> Any:
    """The obstore package, or a ``ConfigError`` saying which extra installs it."""
    try:
        import obstore
        import obstore.exceptions
        import obstore.store
    except ImportError as exc:
        raise ConfigError(missing_extra) from exc
    return obstore


def describe(exc: BaseException) -> str:
    """obstore's message without the Rust debug dump it appends."""
    return str(exc).split("\n\nDebug source:", 1)[0].strip()


def _when(value: Any) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]
    return value.astimezone(dt.UTC)  # type: ignore[no-any-return]


class ObjectStoreStorage(StorageBackend):
    """Objects in one container (bucket) under ``prefix``: key ``a/b.jpg`` is ``<prefix>a/b.jpg``.

    Subclasses name the service (``provider``, ``container_kind``), the extra that installs
    obstore, and the error codes with which the service says the container itself is missing.
    """

    provider = "object store"
    container_kind = "bucket"
    missing_extra = "this storage backend needs obstore"
    #: error codes meaning "no such container": a 404 carrying one is a broken server, not a missing object
    missing_container_codes: tuple[str, ...] = ()

    def __init__(self, store: Any, *, container: str, prefix: str = "") -> None:
        self.obstore = import_obstore(self.missing_extra)
        self.errors = self.obstore.exceptions
        # obstore raises its own errors, and Python's FileNotFoundError for a missing object
        self.failures = (self.errors.BaseError, OSError)
        self.store = store
        self.container = container
        self.prefix = prefix

    @property
    def where(self) -> str:
        return f"{self.provider} {self.container_kind} {self.container!r}"

    # --- helpers ----------------------------------------------------------------------------

    def _error(self, exc: Exception, key: str, action: str) -> Exception:
        missing = isinstance(exc, self.errors.NotFoundError | FileNotFoundError)
        container_gone = any(code in str(exc) for code in self.missing_container_codes)
        if missing and action == "read" and not container_gone:
            return ObjectNotFound(f"no object {key!r}")
        return StorageError(f"{self.where}: cannot {action} {key!r}: {describe(exc)}")

    def _info(self, key: str, meta: Any, content_type: str | None) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=int(meta["size"]),
            last_modified=_when(meta["last_modified"]),
            etag=(meta.get("e_tag") or "").strip('"'),
            content_type=content_type,
        )

    # --- writing ----------------------------------------------------------------------------

    async def put(
        self, key: str, data: bytes | AsyncIterable[bytes], *, content_type: str | None = None
    ) -> ObjectInfo:
        validate_key(key)
        content_type = content_type or mimetypes.guess_type(key, strict=False)[0]
        attributes = {"Content-Type": content_type} if content_type else None
        source = _Source(data) if not isinstance(data, bytes | bytearray | memoryview) else None
        body: Any = bytes(data) if source is None else source  # type: ignore[arg-type]
        try:
            result = await self.obstore.put_async(
                self.store, key, body, attributes=attributes, chunk_size=5 * CHUNK_SIZE
            )
        except self.failures as exc:
            if source is not None and source.error is not None:
                # the caller's data failed, not the service: let the caller see its own error
                raise source.error from None
            raise self._error(exc, key, "store") from exc
        etag = (result.get("e_tag") or "").strip('"')
        if not etag:
            # a service that answers a put without an ETag: only a stat names the version written
            info = await self.stat(key)
            return ObjectInfo(info.key, info.size, info.last_modified, info.etag, content_type)
        # the put's answer names the version written (a later stat might see another writer's);
        # it carries no modification time, so the writer's clock stands in for it, rather than
        # a second request per object
        size = len(body) if source is None else source.size
        return ObjectInfo(key, size, dt.datetime.now(dt.UTC), etag, content_type)

    # --- reading ----------------------------------------------------------------------------

    async def _open(self, key: str, options: dict[str, Any] | None) -> Any:
        try:
            return await self.obstore.get_async(self.store, key, options=options)
        except self.failures as exc:
            raise self._error(exc, key, "read") from exc

    async def _chunks(self, result: Any, key: str) -> AsyncIterator[bytes]:
        # the HTTP body arrives in pieces of any size: hand them out as CHUNK_SIZE pieces
        buffer = bytearray()
        try:
            async for piece in result.stream(min_chunk_size=CHUNK_SIZE):
                buffer += memoryview(piece)
                while len(buffer) >= CHUNK_SIZE:
                    yield bytes(buffer[:CHUNK_SIZE])
                    del buffer[:CHUNK_SIZE]
        except self.failures as exc:
            raise self._error(exc, key, "read") from exc
        if buffer:
            yield bytes(buffer)

    def _result_info(self, key: str, result: Any) -> ObjectInfo:
        content_type = result.attributes.get("Content-Type")
        return self._info(key, result.meta, content_type)

    async def get(self, key: str) -> ObjectStream:
        validate_key(key)
        result = await self._open(key, None)
        return ObjectStream(self._result_info(key, result), self._chunks(result, key))

    async def get_range(self, key: str, start: int, end: int | None = None) -> ObjectStream:
        info = await self.stat(key)
        stop = check_range(key, start, end, info.size)
        if stop == start:
            # S3 refuses empty ranges, and an empty read needs no request anyway
            return ObjectStream(info, _no_chunks())
        result = await self._open(key, {"range": (start, stop)})
        return ObjectStream(info, self._chunks(result, key))

    async def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        # a HEAD through get() keeps the Content-Type, which obstore's head() drops
        result = await self._open(key, {"head": True})
        return self._result_info(key, result)

    # --- deleting ---------------------------------------------------------------------------

    async def delete(self, key: str) -> None:
        validate_key(key)
        try:
            await self.obstore.delete_async(self.store, key)
        except (self.errors.NotFoundError, FileNotFoundError):
            return
        except self.failures as exc:
            raise self._error(exc, key, "delete") from exc

    async def delete_prefix(self, prefix: str) -> int:
        if validate_prefix(prefix) == "":
            raise InvalidObjectKey("refusing to delete every object: give a non-empty prefix")
        keys = [info.key async for info in self.list(prefix)]
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            try:
                await self.obstore.delete_async(self.store, batch)
            except self.failures as exc:
                raise self._error(exc, prefix, "delete the objects under") from exc
        return len(keys)

    # --- listing ----------------------------------------------------------------------------

    async def list(
        self, prefix: str = "", *, page_size: int = 1000, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        if page_size < 1:
            raise ValueError(f"page_size must be positive, got {page_size}")
        # object_store lists whole path segments ("data/1" means "data/1/…"), so list the
        # enclosing "folder" and match the last, partial segment as a string here
        folder = prefix.rpartition("/")[0]
        stream = self.obstore.list(self.store, folder or None, offset=start_after, chunk_size=page_size)
        try:
            async for page in stream:
                for meta in page:
                    key = meta["path"]
                    if start_after is not None and key <= start_after:
                        # Azure has no list offset: obstore (or Azurite) may ignore it
                        continue
                    if key.startswith(prefix):
                        yield self._info(key, meta, None)
                    elif key > prefix:
                        return  # keys come in order: nothing further can match
        except self.failures as exc:
            raise self._error(exc, prefix, "list") from exc

    # --- health and direct access -----------------------------------------------------------

    async def check(self) -> None:
        # listing one key needs the container to exist and the credentials to be accepted, where a
        # HEAD of a missing object would answer 404 for a missing container too
        try:
            stream = self.obstore.list(self.store, "health", chunk_size=1)
            await anext(aiter(stream), None)
        except self.failures as exc:
            message = f"{self.where} is not reachable: {describe(exc)}"
            # cloud storages report these apart (CVAT's NOT_FOUND and FORBIDDEN); both stay StorageErrors
            text = str(exc)
            if isinstance(exc, self.errors.PermissionDeniedError | self.errors.UnauthenticatedError):
                raise BucketForbidden(message) from exc
            if isinstance(exc, self.errors.NotFoundError) or any(
                code in text for code in self.missing_container_codes
            ):
                raise BucketNotFound(message) from exc
            if any(
                sign in text for sign in ("403", "AccessDenied", "InvalidAccessKeyId", "AuthenticationFailed")
            ):
                raise BucketForbidden(message) from exc
            raise StorageError(message) from exc

    async def presigned_url(self, key: str, expires: dt.timedelta) -> str | None:
        validate_key(key)
        try:
            url: str = await self.obstore.sign_async(self.store, "GET", key, expires)
        except self.failures as exc:
            raise self._error(exc, key, "sign a URL for") from exc
        return url


class _Source:
    """The data of a put, counting its bytes and remembering an error it raised (obstore wraps
    it in its own)."""

    def __init__(self, data: AsyncIterable[bytes]) -> None:
        self.data = data
        self.error: BaseException | None = None
        #: bytes handed to obstore so far: the size of the object once the put succeeds
        self.size = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.data:
                self.size += memoryview(chunk).nbytes
                yield chunk
        except BaseException as exc:
            self.error = exc
            raise


async def _no_chunks() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator
