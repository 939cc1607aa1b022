"""The ``s3`` storage backend: objects in an S3 bucket, or any S3-compatible service.

It talks to S3 through obstore (Rust ``object_store`` with an async Python API), which moved
objects about three times faster than boto3 against an S3 emulator here. obstore is an optional
dependency (``pip install 'annota[s3]'``); this module imports it only when the backend is
created, so the server starts without it as long as ``storage`` is not ``s3``.

Configuration (``[plugins.s3]`` or ``ANNOTA_S3_*``):

* ``bucket`` (required), ``region``, ``prefix`` (a key prefix inside the bucket);
* ``endpoint_url``: any S3-compatible endpoint (MinIO, Ceph, R2 …); ``addressing_style``:
  ``virtual`` or ``path`` (default ``virtual`` on AWS, ``path`` with an ``endpoint_url``);
* ``access_key_id``, ``secret_access_key``, ``session_token``: secrets (``{env = "VAR"}`` or
  ``{file = "/path"}`` work); without them the provider's default chain is used (environment,
  web identity, instance profile);
* ``timeout`` (seconds per request) and ``max_retries``.

The plugin also serves CVAT's ``AWS_S3_BUCKET`` cloud storages (``register_cloud_providers``):
a bucket with a key pair or anonymous (unsigned) access, ``region``, ``endpoint_url`` and
``prefix`` from the storage's attributes.

Writes are atomic because S3 makes an object visible only once its upload (single or multipart)
completes; an upload that fails is aborted and leaves the previous object as it was.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, Literal

import msgspec

from annota.core import hookimpl
from annota.core.cloud import BucketForbidden, BucketNotFound, CloudCredentials
from annota.core.errors import ConfigError, ValidationError
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

#: How many keys one batch delete request removes (the S3 maximum).
DELETE_BATCH = 1000

MISSING_EXTRA = (
    "storage = 's3' needs the optional dependency obstore: install it with pip install 'annota[s3]'"
)


class Config(msgspec.Struct, forbid_unknown_fields=True):
    bucket: str = ""
    region: str = ""
    #: a key prefix inside the bucket, so that one bucket can hold several servers' objects
    prefix: str = ""
    endpoint_url: str = ""
    #: ``virtual`` (bucket.host) or ``path`` (host/bucket); empty: path with an endpoint_url
    addressing_style: Literal["", "virtual", "path"] = ""
    access_key_id: str = ""
    secret_access_key: str = ""
    session_token: str = ""
    timeout: float = 30.0
    max_retries: int = 3


def _import_obstore() -> Any:
    try:
        import obstore
        import obstore.exceptions
        import obstore.store
    except ImportError as exc:
        raise ConfigError(MISSING_EXTRA) from exc
    return obstore


def _describe(exc: BaseException) -> str:
    """obstore's message without the Rust debug dump it appends."""
    return str(exc).split("\n\nDebug source:", 1)[0].strip()


def _when(value: Any) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]
    return value.astimezone(dt.UTC)  # type: ignore[no-any-return]


class S3Storage(StorageBackend):
    """Objects in ``bucket`` under ``prefix``: key ``a/b.jpg`` is the S3 key ``<prefix>a/b.jpg``."""

    def __init__(self, store: Any, *, bucket: str, prefix: str = "") -> None:
        self.obstore = _import_obstore()
        self.errors = self.obstore.exceptions
        # obstore raises its own errors, and Python's FileNotFoundError for a missing object
        self.failures = (self.errors.BaseError, OSError)
        self.store = store
        self.bucket = bucket
        self.prefix = prefix

    # --- helpers ----------------------------------------------------------------------------

    def _error(self, exc: Exception, key: str, action: str) -> Exception:
        missing = isinstance(exc, self.errors.NotFoundError | FileNotFoundError)
        # a missing bucket also answers 404: that is a broken server, not a missing object
        if missing and action == "read" and "NoSuchBucket" not in str(exc):
            return ObjectNotFound(f"no object {key!r}")
        return StorageError(f"s3 bucket {self.bucket!r}: cannot {action} {key!r}: {_describe(exc)}")

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
            await self.obstore.put_async(
                self.store, key, body, attributes=attributes, chunk_size=5 * CHUNK_SIZE
            )
        except self.failures as exc:
            if source is not None and source.error is not None:
                # the caller's data failed, not S3: let the caller see its own error
                raise source.error from None
            raise self._error(exc, key, "store") from exc
        info = await self.stat(key)
        return ObjectInfo(info.key, info.size, info.last_modified, info.etag, content_type)

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
            # S3 refuses empty ranges: an empty read needs no request
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
                    if key.startswith(prefix):
                        yield self._info(key, meta, None)
                    elif key > prefix:
                        return  # keys come in order: nothing further can match
        except self.failures as exc:
            raise self._error(exc, prefix, "list") from exc

    # --- health and direct access -----------------------------------------------------------

    async def check(self) -> None:
        # listing one key needs the bucket to exist and the credentials to be accepted, where a
        # HEAD of a missing object would answer 404 for a missing bucket too
        try:
            stream = self.obstore.list(self.store, "health", chunk_size=1)
            await anext(aiter(stream), None)
        except self.failures as exc:
            message = f"s3 bucket {self.bucket!r} is not reachable: {_describe(exc)}"
            # cloud storages report these apart (CVAT's NOT_FOUND and FORBIDDEN); both stay StorageErrors
            if isinstance(exc, self.errors.PermissionDeniedError | self.errors.UnauthenticatedError):
                raise BucketForbidden(message) from exc
            if "NoSuchBucket" in str(exc) or isinstance(exc, self.errors.NotFoundError):
                raise BucketNotFound(message) from exc
            if "403" in str(exc) or "AccessDenied" in str(exc) or "InvalidAccessKeyId" in str(exc):
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
    """The data of a put, remembering an error it raised (obstore wraps it in its own)."""

    def __init__(self, data: AsyncIterable[bytes]) -> None:
        self.data = data
        self.error: BaseException | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.data:
                yield chunk
        except BaseException as exc:
            self.error = exc
            raise


async def _no_chunks() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


def build_store(config: Config, *, anonymous: bool = False) -> Any:
    """The obstore ``S3Store`` that ``config`` describes; ``anonymous`` sends unsigned requests
    (a public bucket) instead of looking for credentials."""
    obstore = _import_obstore()
    if not config.bucket:
        raise ConfigError("plugins.s3.bucket: storage = 's3' needs a bucket name")
    if config.prefix:
        validate_prefix(config.prefix)
    options: dict[str, Any] = {}
    if config.region:
        options["region"] = config.region
    if config.endpoint_url:
        options["endpoint"] = config.endpoint_url
    style = config.addressing_style or ("path" if config.endpoint_url else "virtual")
    options["virtual_hosted_style_request"] = style == "virtual"
    if config.access_key_id or config.secret_access_key:
        if not (config.access_key_id and config.secret_access_key):
            raise ConfigError(
                "plugins.s3: give both access_key_id and secret_access_key, or neither "
                "(to use the provider's default credential chain)"
            )
        options["access_key_id"] = config.access_key_id
        options["secret_access_key"] = config.secret_access_key
        if config.session_token:
            options["token"] = config.session_token
    elif anonymous:
        options["skip_signature"] = True
    client_options = {
        "allow_http": config.endpoint_url.startswith("http://"),
        "timeout": f"{config.timeout}s",
        "connect_timeout": f"{min(config.timeout, 10.0)}s",
    }
    retry = {"max_retries": config.max_retries, "retry_timeout": dt.timedelta(seconds=config.timeout)}
    try:
        return obstore.store.S3Store(
            config.bucket,
            prefix=config.prefix.rstrip("/") or None,
            client_options=client_options,
            retry_config=retry,
            **options,
        )
    except obstore.exceptions.BaseError as exc:
        raise ConfigError(f"plugins.s3: {_describe(exc)}") from exc


def create(config: Config, settings: Any) -> S3Storage:
    return S3Storage(build_store(config), bucket=config.bucket, prefix=config.prefix)


def open_bucket(resource: str, credentials: CloudCredentials, attributes: Any, settings: Any) -> S3Storage:
    """A CVAT ``AWS_S3_BUCKET`` cloud storage as a backend: ``region``, ``endpoint_url`` and
    ``prefix`` from its attributes, a key pair or anonymous (unsigned) access."""
    config = Config(
        bucket=resource,
        region=attributes.get("region", "") or ("us-east-1" if attributes.get("endpoint_url") else ""),
        prefix=attributes.get("prefix", ""),
        endpoint_url=attributes.get("endpoint_url", ""),
        max_retries=1,
        timeout=30.0,
    )
    if credentials.type == "KEY_SECRET_KEY_PAIR":
        config.access_key_id = credentials.key
        config.secret_access_key = credentials.secret_key
        config.session_token = credentials.session_token
    elif credentials.type != "ANONYMOUS_ACCESS":
        raise ValidationError.for_field(
            "credentials_type", f"AWS_S3_BUCKET does not take {credentials.type}."
        )
    store = build_store(config, anonymous=credentials.type == "ANONYMOUS_ACCESS")
    return S3Storage(store, bucket=resource, prefix=config.prefix)


@hookimpl
def register_cloud_providers(register: Any) -> None:
    register("AWS_S3_BUCKET", open_bucket)


@hookimpl
def register_config(register: Any) -> None:
    register(Config)


@hookimpl
def register_storage_backends(register: Any) -> None:
    register("s3", create)
