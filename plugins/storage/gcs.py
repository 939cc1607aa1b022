"""The ``gcs`` storage backend: objects in a Google Cloud Storage bucket.

It talks to GCS through Google's own client, google-cloud-storage, not obstore: obstore speaks
GCS's XML API, and no GCS emulator available to the tests accepts its uploads (one answers 501 to
every call, the other refuses its PUT), so an obstore backend could not be tested; the Google
client works fully against both. The client is synchronous: every call runs in this backend's
thread pool (``max_concurrency`` threads), so the event loop never blocks. It is an optional
dependency (``pip install 'annota[gcs]'``), imported only when this backend is created.

Configuration (``[plugins.gcs]`` or ``ANNOTA_GCS_*``); secrets may be ``{env = "VAR"}`` or
``{file = "/path"}``:

* ``bucket`` (required), ``prefix`` (a key prefix inside the bucket), ``project``;
* credentials, one of: ``service_account_key`` (the JSON key itself, best given as a secret) or
  ``service_account_key_file`` (its path); ``bearer_token`` (an OAuth access token);
  ``anonymous = true`` (a public bucket); or none, to use Application Default Credentials
  (``GOOGLE_APPLICATION_CREDENTIALS``, workload identity, the metadata server);
* ``endpoint_url``: another API endpoint (an emulator, a private endpoint);
* ``timeout`` (seconds per request), ``max_retries`` and ``max_concurrency``.

Writes are atomic: bytes go in one request, streams through a resumable upload that makes the
object visible only when it is finalized; a stream that fails or is cancelled cancels its upload
session. Presigned URLs are V4 signed URLs, made when the credentials can sign (a service-account
key); otherwise ``presigned_url`` answers ``None`` and the server streams objects itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import importlib
import json
import mimetypes
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import quote

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

MISSING_EXTRA = (
    "storage = 'gcs' needs the optional dependency google-cloud-storage: "
    "install it with pip install 'annota[gcs]'"
)

#: resumable uploads send parts of this size (a multiple of the 256 KiB GCS requires)
UPLOAD_PART = 8 * CHUNK_SIZE

T = TypeVar("T")


class Config(msgspec.Struct, forbid_unknown_fields=True):
    bucket: str = ""
    #: a key prefix inside the bucket, so that one bucket can hold several servers' objects
    prefix: str = ""
    project: str = ""
    service_account_key: str = ""
    service_account_key_file: str = ""
    bearer_token: str = ""
    anonymous: bool = False
    endpoint_url: str = ""
    timeout: float = 30.0
    max_retries: int = 3
    max_concurrency: int = 16


def _import_storage() -> Any:
    try:
        return importlib.import_module("google.cloud.storage")
    except ImportError as exc:
        raise ConfigError(MISSING_EXTRA) from exc


def _when(value: dt.datetime | None) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class GCSStorage(StorageBackend):
    """Objects in ``bucket`` under ``prefix``: key ``a/b.jpg`` is the object ``<prefix>/a/b.jpg``."""

    def __init__(self, client: Any, *, bucket: str, prefix: str = "", config: Config | None = None) -> None:
        from google.api_core import exceptions

        config = config or Config(bucket=bucket)
        self.client = client
        self.bucket_name = bucket
        self.bucket = client.bucket(bucket)
        self.prefix = prefix.rstrip("/") + "/" if prefix.rstrip("/") else ""
        self.exceptions = exceptions
        self.timeout = config.timeout
        self.retry = _retry(config)
        self.executor = ThreadPoolExecutor(max(1, config.max_concurrency), thread_name_prefix="annota-gcs")
        self.concurrency = max(1, config.max_concurrency)

    # --- helpers ----------------------------------------------------------------------------

    async def _call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: function(*args, **kwargs))

    def _name(self, key: str) -> str:
        return self.prefix + key

    def _error(self, exc: Exception, key: str, action: str) -> Exception:
        if (
            isinstance(exc, self.exceptions.NotFound)
            and action == "read"
            and "bucket" not in str(exc).lower()
        ):
            return ObjectNotFound(f"no object {key!r}")
        return StorageError(f"gcs bucket {self.bucket_name!r}: cannot {action} {key!r}: {exc}")

    def _info(self, key: str, blob: Any, content_type: bool = True) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=int(blob.size or 0),
            last_modified=_when(blob.updated),
            # the generation changes with every write, where a fake server's ETag may follow content
            etag=str(blob.generation or blob.etag or ""),
            content_type=(blob.content_type or None) if content_type else None,
        )

    # --- writing ----------------------------------------------------------------------------

    async def put(
        self, key: str, data: bytes | AsyncIterable[bytes], *, content_type: str | None = None
    ) -> ObjectInfo:
        validate_key(key)
        content_type = content_type or mimetypes.guess_type(key, strict=False)[0]
        blob = self.bucket.blob(self._name(key))
        if not isinstance(data, bytes | bytearray | memoryview):
            await self._put_stream(key, blob, data, content_type)
            info = await self.stat(key)
            return ObjectInfo(info.key, info.size, info.last_modified, info.etag, content_type)
        try:
            await self._call(
                blob.upload_from_string,
                bytes(data),
                content_type=content_type or "application/octet-stream",
                timeout=self.timeout,
                retry=self.retry,
            )
        except self.exceptions.GoogleAPIError as exc:
            raise self._error(exc, key, "store") from exc
        # the upload answers with the stored object's metadata: no second request
        info = self._info(key, blob)
        return ObjectInfo(info.key, info.size, info.last_modified, info.etag, content_type)

    async def _put_stream(
        self, key: str, blob: Any, data: AsyncIterable[bytes], content_type: str | None
    ) -> None:
        writer = blob.open(
            "wb",
            chunk_size=UPLOAD_PART,
            content_type=content_type or "application/octet-stream",
            ignore_flush=True,
            timeout=self.timeout,
            retry=self.retry,
        )
        try:
            async for chunk in data:
                await self._call(writer.write, chunk)
            await self._call(writer.close)
        except self.exceptions.GoogleAPIError as exc:
            await self._cancel_upload(writer)
            raise self._error(exc, key, "store") from exc
        except BaseException:
            # the caller's data failed, or the put was cancelled: the object must not appear
            await asyncio.shield(self._cancel_upload(writer))
            raise

    async def _cancel_upload(self, writer: Any) -> None:
        """End the resumable upload session (once a part was sent there is one) unfinished."""
        # a writer closes itself when garbage-collected, and closing finalizes the upload with
        # what was written so far: this one must never close
        writer.close = _never
        session = getattr(writer, "_upload_and_transport", None)
        url = getattr(session[0], "resumable_url", None) if session else None
        if url is None:
            return
        try:
            await self._call(self.client._http.request, "DELETE", url, timeout=self.timeout)
        except Exception:
            return

    # --- reading ----------------------------------------------------------------------------

    async def _chunks(self, key: str, info: ObjectInfo, start: int, stop: int) -> AsyncIterator[bytes]:
        blob = self.bucket.blob(self._name(key), generation=int(info.etag) if info.etag.isdigit() else None)
        for offset in range(start, stop, CHUNK_SIZE):
            end = min(offset + CHUNK_SIZE, stop)
            try:
                yield await self._call(
                    blob.download_as_bytes,
                    start=offset,
                    end=end - 1,
                    checksum=None,
                    timeout=self.timeout,
                    retry=self.retry,
                )
            except self.exceptions.GoogleAPIError as exc:
                raise self._error(exc, key, "read") from exc

    async def get(self, key: str) -> ObjectStream:
        validate_key(key)
        # one streamed media download whose headers describe the object, where stat and then a
        # download would be two requests; the client's authorized session adds its credentials
        url = f"{self.client._connection.API_BASE_URL}/download/storage/v1/b/{self.bucket_name}/o/"
        url += quote(self._name(key), safe="") + "?alt=media"
        try:
            response = await self._call(
                self.client._http.request, "GET", url, stream=True, timeout=self.timeout
            )
        except Exception as exc:  # the transport's errors: connection refused, timeouts
            raise StorageError(f"gcs bucket {self.bucket_name!r}: cannot read {key!r}: {exc}") from exc
        if response.status_code != 200:
            text = response.text
            response.close()
            if response.status_code == 404 and "bucket" not in text.lower():
                raise ObjectNotFound(f"no object {key!r}")
            raise StorageError(
                f"gcs bucket {self.bucket_name!r}: cannot read {key!r}: {response.status_code} {text[:200]}"
            )
        headers = response.headers
        info = ObjectInfo(
            key=key,
            size=int(headers.get("X-Goog-Stored-Content-Length") or headers.get("Content-Length") or 0),
            last_modified=_http_date(headers.get("Last-Modified")),
            etag=headers.get("X-Goog-Generation") or headers.get("ETag", "").strip('"'),
            content_type=headers.get("Content-Type"),
        )
        pieces = response.iter_content(CHUNK_SIZE)

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                try:
                    piece = await self._call(next, pieces, None)
                except Exception as exc:
                    raise StorageError(
                        f"gcs bucket {self.bucket_name!r}: cannot read {key!r}: {exc}"
                    ) from exc
                if piece is None:
                    return
                yield piece

        async def close() -> None:
            await self._call(response.close)

        return ObjectStream(info, chunks(), close)

    async def get_range(self, key: str, start: int, end: int | None = None) -> ObjectStream:
        info = await self.stat(key)
        stop = check_range(key, start, end, info.size)
        return ObjectStream(info, self._chunks(key, info, start, stop))

    async def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        blob = self.bucket.blob(self._name(key))
        try:
            await self._call(blob.reload, timeout=self.timeout, retry=self.retry)
        except self.exceptions.GoogleAPIError as exc:
            raise self._error(exc, key, "read") from exc
        return self._info(key, blob)

    # --- deleting ---------------------------------------------------------------------------

    async def delete(self, key: str) -> None:
        validate_key(key)
        await self._delete_name(self._name(key), key)

    async def _delete_name(self, name: str, key: str) -> None:
        try:
            await self._call(self.bucket.delete_blob, name, timeout=self.timeout, retry=self.retry)
        except self.exceptions.NotFound:
            return
        except self.exceptions.GoogleAPIError as exc:
            raise self._error(exc, key, "delete") from exc

    async def delete_prefix(self, prefix: str) -> int:
        if validate_prefix(prefix) == "":
            raise InvalidObjectKey("refusing to delete every object: give a non-empty prefix")
        keys = [info.key async for info in self.list(prefix)]
        gate = asyncio.Semaphore(self.concurrency)

        async def one(key: str) -> None:
            async with gate:
                await self._delete_name(self._name(key), key)

        await asyncio.gather(*(one(key) for key in keys))
        return len(keys)

    # --- listing ----------------------------------------------------------------------------

    async def list(
        self, prefix: str = "", *, page_size: int = 1000, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        if page_size < 1:
            raise ValueError(f"page_size must be positive, got {page_size}")
        listing = self.client.list_blobs(
            self.bucket_name,
            prefix=self._name(prefix),
            # the offset is inclusive: the key itself is skipped below
            start_offset=self._name(start_after) if start_after is not None else None,
            page_size=page_size,
            timeout=self.timeout,
            retry=self.retry,
        )
        pages = iter(listing.pages)

        def next_page() -> list[Any] | None:
            # a page may be empty while more follow: only the end of the pages ends the listing
            page = next(pages, None)
            return None if page is None else list(page)

        while True:
            try:
                page = await self._call(next_page)
            except self.exceptions.GoogleAPIError as exc:
                raise self._error(exc, prefix, "list") from exc
            if page is None:
                return
            for blob in page:
                key = blob.name[len(self.prefix) :]
                if start_after is None or key > start_after:
                    yield self._info(key, blob, content_type=False)

    # --- health and direct access -----------------------------------------------------------

    async def check(self) -> None:
        # listing one key needs the bucket to exist and the credentials to be accepted
        try:
            await self._call(
                lambda: list(
                    self.client.list_blobs(
                        self.bucket_name,
                        prefix="health/",
                        max_results=1,
                        timeout=self.timeout,
                        retry=self.retry,
                    )
                )
            )
        except self.exceptions.NotFound as exc:
            raise BucketNotFound(
                f"gcs bucket {self.bucket_name!r} is not reachable: it does not exist ({exc})"
            ) from exc
        except (self.exceptions.Forbidden, self.exceptions.Unauthorized) as exc:
            raise BucketForbidden(
                f"gcs bucket {self.bucket_name!r} is not reachable: the credentials are refused ({exc})"
            ) from exc
        except self.exceptions.GoogleAPIError as exc:
            raise StorageError(f"gcs bucket {self.bucket_name!r} is not reachable: {exc}") from exc
        except Exception as exc:  # the transport's own errors: connection refused, timeouts
            raise StorageError(f"gcs bucket {self.bucket_name!r} is not reachable: {exc}") from exc

    async def presigned_url(self, key: str, expires: dt.timedelta) -> str | None:
        validate_key(key)
        credentials = self.client._credentials
        if not hasattr(credentials, "sign_bytes") or not getattr(credentials, "service_account_email", None):
            return None  # only a service-account key can sign here
        blob = self.bucket.blob(self._name(key))
        endpoint = self.client._connection.API_BASE_URL
        url: str = blob.generate_signed_url(
            version="v4",
            expiration=expires,
            method="GET",
            credentials=credentials,
            api_access_endpoint=endpoint,
        )
        return url

    async def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.client.close()  # its HTTP session's pooled connections


def _http_date(value: str | None) -> dt.datetime:
    if not value:
        return dt.datetime.now(dt.UTC)
    return _when(email.utils.parsedate_to_datetime(value))


def _never() -> None:
    return None


def _retry(config: Config) -> Any:
    if config.max_retries <= 0:
        return None
    from google.cloud.storage.retry import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(config.timeout * (config.max_retries + 1))


def _credentials(config: Config) -> tuple[Any, str]:
    """The credentials ``config`` names (``None``: Application Default Credentials) and the
    project they belong to, if they say."""
    given = [
        name
        for name, value in (
            ("service_account_key", config.service_account_key.strip()),
            ("service_account_key_file", config.service_account_key_file),
            ("bearer_token", config.bearer_token.strip()),
            ("anonymous", config.anonymous),
        )
        if value
    ]
    if len(given) > 1:
        raise ConfigError(f"plugins.gcs: give one of {', '.join(given)}, not several")
    if config.service_account_key.strip() or config.service_account_key_file:
        # google-auth is untyped: its modules are Any here
        service_account: Any = importlib.import_module("google.oauth2.service_account")
        where = "service_account_key" if config.service_account_key.strip() else "service_account_key_file"
        try:
            if config.service_account_key.strip():
                info = json.loads(config.service_account_key)
            else:
                with open(config.service_account_key_file, encoding="utf-8") as handle:
                    info = json.load(handle)
            credentials = service_account.Credentials.from_service_account_info(
                info, scopes=["https://www.googleapis.com/auth/devstorage.read_write"]
            )
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"plugins.gcs.{where}: not a usable service-account key: {exc}") from exc
        return credentials, str(info.get("project_id", ""))
    if config.bearer_token.strip():
        oauth2: Any = importlib.import_module("google.oauth2.credentials")
        return oauth2.Credentials(token=config.bearer_token.strip()), ""
    if config.anonymous:
        auth: Any = importlib.import_module("google.auth.credentials")
        return auth.AnonymousCredentials(), ""
    return None, ""


def build_client(config: Config) -> Any:
    """The google-cloud-storage client that ``config`` describes."""
    storage = _import_storage()
    if not config.bucket:
        raise ConfigError("plugins.gcs.bucket: storage = 'gcs' needs a bucket name")
    if config.prefix:
        validate_prefix(config.prefix)
    credentials, key_project = _credentials(config)
    options = {"api_endpoint": config.endpoint_url.rstrip("/")} if config.endpoint_url else None
    # a project is needed only to create or list buckets; naming one keeps the client from
    # asking the environment (or a metadata server) for it
    project = config.project or key_project or ("annota" if credentials is not None else None)
    try:
        return storage.Client(project=project, credentials=credentials, client_options=options)
    except Exception as exc:  # google.auth's DefaultCredentialsError and friends
        raise ConfigError(f"plugins.gcs: no credentials: {exc}") from exc


def create(config: Config, settings: Any) -> GCSStorage:
    return GCSStorage(build_client(config), bucket=config.bucket, prefix=config.prefix, config=config)


def open_bucket(
    resource: str, credentials: CloudCredentials, attributes: Mapping[str, str], settings: Any
) -> GCSStorage:
    """A CVAT ``GOOGLE_CLOUD_STORAGE`` cloud storage as a backend: a service-account key file or
    anonymous access to a public bucket; ``prefix``, ``project`` and ``endpoint_url`` from its
    attributes."""
    config = Config(
        bucket=resource,
        prefix=attributes.get("prefix", ""),
        project=attributes.get("project", ""),
        endpoint_url=attributes.get("endpoint_url", ""),
        max_retries=1,
        max_concurrency=4,
    )
    if credentials.type == "KEY_FILE_PATH":
        config.service_account_key = credentials.key_file
    elif credentials.type == "ANONYMOUS_ACCESS":
        config.anonymous = True
    else:
        raise ValidationError.for_field(
            "credentials_type", f"GOOGLE_CLOUD_STORAGE does not take {credentials.type}."
        )
    try:
        return create(config, settings)
    except ConfigError as exc:
        raise ValidationError.for_field("credentials", str(exc).replace("plugins.gcs", "gcs")) from exc


@hookimpl
def register_cloud_providers(register: Any) -> None:
    register("GOOGLE_CLOUD_STORAGE", open_bucket)


@hookimpl
def register_config(register: Any) -> None:
    register(Config)


@hookimpl
def register_storage_backends(register: Any) -> None:
    register("gcs", create)
