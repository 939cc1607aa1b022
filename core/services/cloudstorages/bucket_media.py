"""Tasks whose media stay in a cloud storage: which objects they are made of, read cheaply at
creation, and their chunks built from the bucket when first asked for.

At creation the images come from ``server_files`` (object keys, ``dir/`` prefixes, or one
manifest ``.jsonl`` in CVAT's format). Without a manifest each image's size is read from the
first bytes of the object (one ranged read); with a manifest nothing is read but one listing that
proves every image it names is in the bucket. Frames, segments and jobs are made as for any task,
but no chunk: a chunk is built the first time a client (or an export) needs it, from the
bucket, and kept in the server's own storage like any other chunk. An image that is gone from
the bucket, or whose size is not the one the manifest gave, fails that request naming the object.
"""

from __future__ import annotations

import asyncio
import fnmatch
import io
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from annota.core.cloud import CloudProviderRegistry
from annota.core.db.tables import CloudStorage, Data, Frame
from annota.core.errors import MediaError, NotFound, PermissionDenied, ValidationError
from annota.core.media import layout
from annota.core.media.chunks import build_chunk, member_name
from annota.core.media.encode import decode_image, encode_jpeg
from annota.core.media.images import is_image_name, probe_image
from annota.core.media.manifest import ManifestImage, read_images_manifest
from annota.core.schemas.data import DataRequest
from annota.core.services.cloudstorages import storages
from annota.core.storage import InvalidObjectKey, ObjectNotFound, StorageBackend, validate_key

#: bytes read from the start of an object to find an image's size; more only when that is not enough
HEADER_BYTES = 64 * 1024
#: objects read from a bucket at once
CONCURRENCY = 16
#: a manifest is read whole
MAX_MANIFEST_SIZE = 64 * 1024 * 1024


@dataclass(frozen=True)
class BucketImage:
    """One image of a task, as the bucket (or its manifest) describes it."""

    key: str
    width: int
    height: int


# --- which objects ---------------------------------------------------------------------------


def _check_entry(entry: str) -> str:
    name = entry.lstrip("/")
    try:
        if name and not name.endswith("/"):
            validate_key(name)
        elif name:
            validate_key(name.rstrip("/"))
    except InvalidObjectKey as exc:
        raise ValidationError.for_field("server_files", str(exc)) from None
    return name


def _excluded(key: str, exclude: Sequence[str]) -> bool:
    return any(key == item or (item.endswith("/") and key.startswith(item)) for item in exclude)


def with_storage_manifest(request: DataRequest, row: CloudStorage) -> DataRequest:
    """CVAT: a request naming no files (a ``filename_pattern`` alone) takes the cloud storage's
    first manifest."""
    manifests = storages.manifests_of(row)
    if request.server_files or not manifests:
        return request
    return msgspec.structs.replace(request, server_files=[manifests[0]])


def check_request(request: DataRequest) -> None:
    """What CVAT refuses about a task from a bucket, before any job starts."""
    if request.filename_pattern is not None and request.server_files_exclude:
        raise ValidationError.for_field(
            "filename_pattern", "filename_pattern cannot be combined with server_files_exclude."
        )
    if request.job_file_mapping is not None:
        raise ValidationError.for_field(
            "job_file_mapping", "job_file_mapping is not supported for cloud storage media."
        )
    if not request.server_files and request.filename_pattern is None:
        raise ValidationError.for_field(
            "server_files", "Name the files, prefixes or manifest to take from the cloud storage."
        )
    for entry in [*request.server_files, *request.server_files_exclude]:
        _check_entry(entry)
    manifests = [entry for entry in request.server_files if entry.endswith(".jsonl")]
    if manifests and len(request.server_files) > 1:
        raise ValidationError.for_field(
            "server_files", "Give either one manifest or files and prefixes, not both."
        )
    if request.filename_pattern is not None and not manifests:
        raise ValidationError.for_field(
            "filename_pattern", "filename_pattern needs a manifest in server_files."
        )


async def _probe(backend: StorageBackend, key: str, size: int) -> BucketImage:
    """The size of an image from its first bytes (the whole object if they are not enough)."""
    try:
        async with await backend.get_range(key, 0, min(size, HEADER_BYTES)) as stream:
            head = await stream.read()
        try:
            info = probe_image(io.BytesIO(head), key)
        except MediaError:
            if size <= HEADER_BYTES:
                raise
            info = probe_image(io.BytesIO(await backend.read(key)), key)
    except ObjectNotFound:
        raise MediaError(f"{key}: the object is not in the cloud storage") from None
    return BucketImage(key, info.width, info.height)


async def _bounded(coroutines: Sequence[Any]) -> list[Any]:
    limit = asyncio.Semaphore(CONCURRENCY)

    async def run(coroutine: Any) -> Any:
        async with limit:
            return await coroutine

    return list(await asyncio.gather(*(run(c) for c in coroutines)))


async def _from_listing(backend: StorageBackend, request: DataRequest) -> list[BucketImage]:
    keys: dict[str, int] = {}
    exclude = [_check_entry(item) for item in request.server_files_exclude]
    for entry in request.server_files:
        name = _check_entry(entry)
        if name and not name.endswith("/"):
            try:
                found = [(name, (await backend.stat(name)).size)]
            except ObjectNotFound:
                raise MediaError(f"{name}: the object is not in the cloud storage") from None
            if not is_image_name(name):
                raise MediaError(
                    f"{name}: unsupported media type (only images are taken from a cloud storage)"
                )
        else:
            found = [(info.key, info.size) async for info in backend.list(name) if is_image_name(info.key)]
        for key, size in found:
            if not _excluded(key, exclude) and "/related_images/" not in f"/{key}":
                keys.setdefault(key, size)
    return await _bounded([_probe(backend, key, size) for key, size in keys.items()])


async def read_manifest(backend: StorageBackend, manifest: str) -> list[ManifestImage]:
    """The images a CVAT manifest in the bucket lists (names relative to the manifest's folder)."""
    try:
        info = await backend.stat(manifest)
    except ObjectNotFound:
        raise MediaError(f"{manifest}: the manifest is not in the cloud storage") from None
    if info.size > MAX_MANIFEST_SIZE:
        raise MediaError(f"{manifest}: the manifest is larger than 64 MiB")
    return read_images_manifest(await backend.read(manifest), manifest)


async def _from_manifest(backend: StorageBackend, manifest: str, request: DataRequest) -> list[BucketImage]:
    folder = manifest.rpartition("/")[0]
    images = []
    for item in await read_manifest(backend, manifest):
        name = item.name + item.extension
        if request.filename_pattern is not None and not fnmatch.fnmatchcase(name, request.filename_pattern):
            continue
        key = f"{folder}/{name}" if folder else name
        try:
            validate_key(key)
        except InvalidObjectKey as exc:
            raise MediaError(f"{manifest}: {exc}") from None
        images.append(BucketImage(key, item.width, item.height))
    # one listing proves every image is there, where a request per image would cost as much as
    # reading their headers
    present = {entry.key async for entry in backend.list(f"{folder}/" if folder else "")}
    for image in images:
        if image.key not in present:
            raise MediaError(f"{manifest} lists {image.key}, which is not in the cloud storage")
    return images


async def images_of(backend: StorageBackend, request: DataRequest) -> list[BucketImage]:
    """The images a task from a bucket is made of, with their sizes, in name order."""
    check_request(request)
    manifests = [entry.lstrip("/") for entry in request.server_files if entry.endswith(".jsonl")]
    if manifests:
        found = await _from_manifest(backend, manifests[0], request)
    else:
        found = await _from_listing(backend, request)
    if not found:
        raise MediaError("No media data found")
    return found


async def read_checked(backend: StorageBackend, image: BucketImage) -> tuple[bytes, Any]:
    """An image's bytes and pixels; its size must be the one recorded at creation."""
    try:
        content = await backend.read(image.key)
    except ObjectNotFound:
        raise MediaError(f"{image.key}: the object is no longer in the cloud storage") from None
    pixels = await asyncio.to_thread(decode_image, content, image.key)
    if pixels.shape[0] != image.height or pixels.shape[1] != image.width:
        raise MediaError(
            f"{image.key}: the manifest says {image.width}x{image.height} but the image is "
            f"{pixels.shape[1]}x{pixels.shape[0]}"
        )
    return content, pixels


# --- using a cloud storage --------------------------------------------------------------------


async def usable_storage(session: AsyncSession, cloud_storage_id: int) -> CloudStorage:
    row = await session.get(CloudStorage, cloud_storage_id)
    if row is None:
        raise ValidationError.for_field(
            "cloud_storage_id", f"The specified cloud storage {cloud_storage_id} does not exist."
        )
    return row


def check_same_context(row: CloudStorage, organization_id: int | None) -> None:
    """CVAT: an organization's tasks take media only from its cloud storages, sandbox tasks only
    from sandbox ones."""
    if row.organization_id != organization_id:
        raise PermissionDenied(f"Cloud storage {row.id} is not in the task's organization.")


# --- chunks on demand ----------------------------------------------------------------------------


class BucketChunks:
    """Builds the chunks of tasks whose media are in a bucket, into the server's storage."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], providers: CloudProviderRegistry, settings: Any
    ) -> None:
        self.sessionmaker = sessionmaker
        self.providers = providers
        self.settings = settings
        self._locks: weakref.WeakValueDictionary[tuple[int, int], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    async def ensure(self, storage: StorageBackend, data: Data, number: int) -> None:
        """Task chunk ``number`` (both qualities, with their indexes) is in ``storage``."""
        if await storage.exists(layout.chunk_index(data.id, "compressed", number)):
            return
        lock = self._locks.setdefault((data.id, number), asyncio.Lock())
        async with lock:
            if await storage.exists(layout.chunk_index(data.id, "compressed", number)):
                return
            await self._build(storage, data, number)

    async def _build(self, storage: StorageBackend, data: Data, number: int) -> None:
        size = data.chunk_size or max(data.size, 1)
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Frame.frame, Frame.path, Frame.width, Frame.height)
                    .where(
                        Frame.data_id == data.id,
                        Frame.frame >= number * size,
                        Frame.frame < (number + 1) * size,
                    )
                    .order_by(Frame.frame)
                )
            ).all()
            row = await session.get(CloudStorage, data.cloud_storage_id) if data.cloud_storage_id else None
        if row is None:
            raise NotFound(
                "The cloud storage holding this task's media was deleted: its frames cannot be read."
            )
        images = [BucketImage(path, width, height) for _, path, width, height in rows]
        async with storages.opened(self.providers, row, self.settings) as backend:
            read = await _bounded([read_checked(backend, image) for image in images])
        quality = data.image_quality
        compressed = await _bounded([asyncio.to_thread(encode_jpeg, pixels, quality) for _, pixels in read])
        frames = [frame for frame, *_ in rows]
        extensions = [PurePosixPath(path).suffix.lower() or ".jpg" for _, path, *_ in rows]
        original = build_chunk(
            (f, member_name(f, ext), content)
            for f, ext, (content, _) in zip(frames, extensions, read, strict=True)
        )
        small = build_chunk(
            (f, member_name(f, ".jpg"), jpeg) for f, jpeg in zip(frames, compressed, strict=True)
        )
        built: tuple[tuple[layout.Quality, Any], ...] = (("original", original), ("compressed", small))
        # chunks first, their indexes last: an index is what says the chunk is ready
        for quality_name, chunk in built:
            key = layout.chunk(data.id, quality_name, number)
            await storage.put(key, chunk.content, content_type="application/zip")
        for quality_name, chunk in built:
            key = layout.chunk_index(data.id, quality_name, number)
            await storage.put(key, chunk.index, content_type="application/json")


_chunk_builders: weakref.WeakKeyDictionary[StorageBackend, BucketChunks] = weakref.WeakKeyDictionary()


def install(storage: StorageBackend, builder: BucketChunks) -> None:
    """Let readers of ``storage`` (the server's or a worker's) build bucket chunks with ``builder``."""
    _chunk_builders[storage] = builder


async def ensure_chunk(storage: StorageBackend, data: Data, number: int) -> None:
    """Make sure task chunk ``number`` of ``data`` is stored; only bucket media need building."""
    if data.storage != "cloud_storage":
        return
    builder = _chunk_builders.get(storage)
    if builder is None:
        raise MediaError("This process cannot read cloud storage media (no cloud providers are loaded).")
    await builder.ensure(storage, data, number)


__all__ = [
    "BucketChunks",
    "BucketImage",
    "check_request",
    "check_same_context",
    "ensure_chunk",
    "images_of",
    "install",
    "read_checked",
    "read_manifest",
    "usable_storage",
    "with_storage_manifest",
]
