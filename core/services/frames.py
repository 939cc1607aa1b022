"""The frame provider: a task's or job's chunks, frames, context images and previews, read from storage.

Task chunks are stored at task creation, each with an index of where its members lie, so one frame is
one ranged read of its chunk. A job whose frames do not line up with task chunks (segment sizes that
are not multiples of the chunk size, overlaps) gets chunks assembled from task chunk members, without
re-encoding, and kept in storage for the next reader.

Checksums (``X-Checksum``) are CRC-32 of the complete body, as CVAT computes them. Bodies built in
memory are hashed directly; a stored object is hashed the first time it is served (it is then served
from memory) and the value kept per process, keyed by the object's storage ETag, which changes with
every write.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import mimetypes
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.db.tables import Data, Frame, Job, Segment, Task
from annota.core.errors import MediaError, NotFound, StorageError, ValidationError
from annota.core.media import layout
from annota.core.media.chunks import ChunkMember, build_chunk, decode_index
from annota.core.services.cloudstorages.bucket_media import ensure_chunk
from annota.core.storage import ObjectNotFound, StorageBackend

Quality = layout.Quality

ZIP_MEDIA_TYPE = "application/zip"
JPEG_MEDIA_TYPE = "image/jpeg"

#: a job preview's longest side, and its JPEG quality
PREVIEW_SIDE = 256
PREVIEW_QUALITY = 80

_frames_decoder = msgspec.json.Decoder(list[int])
_names_decoder = msgspec.json.Decoder(list[str])

K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """A small least-recently-used map (per process; entries are immutable facts)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)


#: decoded chunk indexes by (data id, quality, chunk number, chunks_updated_date)
_indexes: _Lru[tuple[int, str, int, dt.datetime], list[ChunkMember]] = _Lru(256)
#: CRC-32 of stored objects by (key, storage ETag)
_checksums: _Lru[tuple[str, str], int] = _Lru(4096)


# --- bodies -----------------------------------------------------------------------------------


def checksum(content: bytes) -> int:
    return zlib.crc32(content)


@dataclass(frozen=True)
class MemoryBody:
    """A body already in memory."""

    content: bytes
    media_type: str
    #: the stored object this is the whole content of, if any (a client may be sent there)
    key: str | None = None

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def checksum(self) -> int:
        return checksum(self.content)


@dataclass(frozen=True)
class StoredBody:
    """A stored object served as is, streamed from storage."""

    key: str
    size: int
    checksum: int
    media_type: str


Body = MemoryBody | StoredBody


async def _stored(storage: StorageBackend, key: str, media_type: str) -> Body:
    """The object under ``key``: streamed when its checksum is known, else read once and hashed."""
    info = await storage.stat(key)
    known = _checksums.get((key, info.etag))
    if known is not None:
        return StoredBody(key, info.size, known, media_type)
    async with await storage.get(key) as stream:
        content = await stream.read()
        _checksums.put((key, stream.info.etag), checksum(content))
    return MemoryBody(content, media_type, key)


def media_type_of(name: str) -> str:
    """The media type of a frame file by its extension."""
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


# --- what is read -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Media:
    """A task's media as seen through a task or one of its jobs."""

    data: Data
    #: the task-relative frames visible: all of the task's, or those of the job's segment
    frames: Sequence[int]
    #: the job's segment, ``None`` for the task itself
    segment_id: int | None = None
    #: "task 3" or "job 7", for messages
    subject: str = ""
    #: the frames were picked one by one (a ground-truth job), not a range of the task
    picked: bool = False

    @property
    def chunk_size(self) -> int:
        return self.data.chunk_size or max(self.data.size, 1)

    @property
    def chunk_count(self) -> int:
        return -(-len(self.frames) // self.chunk_size)

    def updated_date(self) -> dt.datetime:
        return self.data.chunks_updated_date


def segment_frames(segment: Segment) -> list[int]:
    """The task-relative frames of a segment, in order."""
    if segment.type == "specific_frames":
        return sorted(_frames_decoder.decode(segment.frames or "[]"))
    return list(range(segment.start_frame, segment.stop_frame + 1))


async def task_data(session: AsyncSession, task: Task) -> Data:
    data = await session.get(Data, task.data_id) if task.data_id is not None else None
    if data is None or not task.media_type:
        raise NotFound(f"Task {task.id} has no data yet: upload its media first.")
    return data


async def task_media(session: AsyncSession, task: Task) -> Media:
    data = await task_data(session, task)
    return Media(data, range(data.size), None, f"task {task.id}")


async def job_media(session: AsyncSession, job: Job) -> Media:
    task = await session.get(Task, job.task_id)
    segment = await session.get(Segment, job.segment_id)
    if task is None or segment is None:
        raise NotFound(f"Job {job.id} not found.")
    data = await task_data(session, task)
    picked = segment.type == "specific_frames"
    return Media(data, segment_frames(segment), segment.id, f"job {job.id}", picked)


def check_frame(media: Media, number: int, field: str = "number") -> None:
    if number not in media.frames:
        first, last = (media.frames[0], media.frames[-1]) if media.frames else (0, -1)
        raise ValidationError.for_field(
            field, f"Frame {number} is not a frame of {media.subject} (frames {first}..{last})."
        )


def check_chunk(media: Media, number: int, field: str = "number") -> None:
    if not 0 <= number < media.chunk_count:
        raise ValidationError.for_field(
            field,
            f"Chunk {number} does not exist in {media.subject}: it has {media.chunk_count} chunk(s), "
            f"numbered from 0.",
        )


# --- chunks and frames ------------------------------------------------------------------------


async def chunk_index(
    storage: StorageBackend, data: Data, quality: Quality, number: int
) -> list[ChunkMember]:
    """Where the members of task chunk ``number`` lie, decoded once per process."""
    cache_key = (data.id, quality, number, data.chunks_updated_date)
    index = _indexes.get(cache_key)
    if index is None:
        await ensure_chunk(storage, data, number)
        index = decode_index(await storage.read(layout.chunk_index(data.id, quality, number)))
        _indexes.put(cache_key, index)
    return index


def _member(index: list[ChunkMember], frame: int, key: str) -> ChunkMember:
    for member in index:
        if member.frame == frame:
            return member
    raise StorageError(f"Frame {frame} is missing from the index of chunk {key!r}.")


async def _members_content(
    storage: StorageBackend, data: Data, quality: Quality, number: int, frames: Sequence[int]
) -> list[tuple[int, str, bytes]]:
    """``frames`` of task chunk ``number``, read in one ranged read spanning them."""
    key = layout.chunk(data.id, quality, number)
    index = await chunk_index(storage, data, quality, number)
    members = [_member(index, frame, key) for frame in frames]
    start = min(m.offset for m in members)
    end = max(m.offset + m.size for m in members)
    async with await storage.get_range(key, start, end) as stream:
        span = await stream.read()
    return [(m.frame, m.name, span[m.offset - start : m.offset - start + m.size]) for m in members]


async def frame(storage: StorageBackend, media: Media, quality: Quality, number: int) -> MemoryBody:
    """One frame's file: the member of its task chunk (for images, ``original`` is the uploaded file)."""
    check_frame(media, number)
    ((_, name, content),) = await _members_content(
        storage, media.data, quality, number // media.chunk_size, [number]
    )
    return MemoryBody(content, media_type_of(name))


async def original_frame_key(session: AsyncSession, media: Media, number: int) -> str | None:
    """The stored object that is frame ``number`` in ``original`` quality: the uploaded image
    (``None`` for video, whose frames exist only inside chunks)."""
    check_frame(media, number)
    if media.data.media_kind != "images":
        return None
    path = await session.scalar(
        select(Frame.path).where(Frame.data_id == media.data.id, Frame.frame == number)
    )
    return layout.raw_file(media.data.id, path) if path else None


async def frames_content(
    storage: StorageBackend, media: Media, quality: Quality, numbers: Sequence[int]
) -> list[tuple[int, str, bytes]]:
    """``(frame, name, file)`` of several frames, one ranged read per task chunk they span."""
    for number in numbers:
        check_frame(media, number)
    found: list[tuple[int, str, bytes]] = []
    for chunk_number, group in itertools.groupby(numbers, key=lambda n: n // media.chunk_size):
        found += await _members_content(storage, media.data, quality, chunk_number, list(group))
    return found


async def chunk(
    storage: StorageBackend, media: Media, quality: Quality, number: int, field: str = "number"
) -> Body:
    """Chunk ``number`` of the task, or of the job (numbered from the job's first frame)."""
    check_chunk(media, number, field)
    size = media.chunk_size
    frames = list(media.frames[number * size : (number + 1) * size])
    task_chunk = frames[0] // size
    if frames == list(range(task_chunk * size, min((task_chunk + 1) * size, media.data.size))):
        await ensure_chunk(storage, media.data, task_chunk)
        return await _stored(storage, layout.chunk(media.data.id, quality, task_chunk), ZIP_MEDIA_TYPE)
    assert media.segment_id is not None
    key = layout.segment_chunk(media.data.id, media.segment_id, quality, number)
    try:
        info = await storage.stat(key)
    except ObjectNotFound:
        info = None
    if info is not None and info.last_modified >= media.data.chunks_updated_date:
        return await _stored(storage, key, ZIP_MEDIA_TYPE)
    parts: list[tuple[int, str, bytes]] = []
    for source, group in itertools.groupby(frames, key=lambda f: f // size):
        parts += await _members_content(storage, media.data, quality, source, list(group))
    built = await asyncio.to_thread(build_chunk, parts)
    stored = await storage.put(key, built.content, content_type=ZIP_MEDIA_TYPE)
    _checksums.put((key, stored.etag), checksum(built.content))
    return MemoryBody(built.content, ZIP_MEDIA_TYPE, key)


def task_chunk_range(media: Media) -> tuple[int, int]:
    """The first and last task chunks holding frames of ``media``."""
    size = media.chunk_size
    return media.frames[0] // size, media.frames[-1] // size


async def task_chunk_of_job(storage: StorageBackend, media: Media, quality: Quality, number: int) -> Body:
    """Task chunk ``number`` as a job sees it: only the frames of the job's segment (the job's
    ``number`` of older clients, which count chunks as the task does)."""
    first, last = task_chunk_range(media) if media.frames else (0, -1)
    if not first <= number <= last:
        raise ValidationError.for_field(
            "number",
            f"Chunk {number} is not a chunk of {media.subject}: task chunks {first}..{last} hold its frames.",
        )
    size = media.chunk_size
    frames = [frame for frame in media.frames if frame // size == number]
    if frames == list(range(number * size, min((number + 1) * size, media.data.size))):
        await ensure_chunk(storage, media.data, number)
        return await _stored(storage, layout.chunk(media.data.id, quality, number), ZIP_MEDIA_TYPE)
    parts = await _members_content(storage, media.data, quality, number, frames)
    built = await asyncio.to_thread(build_chunk, parts)
    return MemoryBody(built.content, ZIP_MEDIA_TYPE)


# --- context images ---------------------------------------------------------------------------


async def context_names(session: AsyncSession, media: Media, number: int) -> list[str]:
    """The names of a frame's context images, in their stored order."""
    check_frame(media, number)
    related = await session.scalar(
        select(Frame.related_files).where(Frame.data_id == media.data.id, Frame.frame == number)
    )
    names = _names_decoder.decode(related or "[]")
    if not names:
        raise NotFound(f"Frame {number} of {media.subject} has no context images.")
    return names


async def context_images(storage: StorageBackend, media: Media, number: int, names: list[str]) -> MemoryBody:
    """A ZIP of the frame's context images, members named as the images and in their order."""
    parts = [
        (number, name, await storage.read(layout.context_image(media.data.id, number, name)))
        for name in names
    ]
    built = await asyncio.to_thread(build_chunk, parts)
    return MemoryBody(built.content, ZIP_MEDIA_TYPE)


# --- previews ---------------------------------------------------------------------------------


#: CVAT's answers when a task or project has no media to preview
TASK_PREVIEW_NOT_FOUND = "Task image preview not found"
PROJECT_PREVIEW_NOT_FOUND = "Project image preview not found"


async def task_preview_data(session: AsyncSession, task: Task) -> Data:
    """The task's media for its preview; a task without media has none, as in CVAT."""
    try:
        return await task_data(session, task)
    except NotFound:
        raise NotFound(TASK_PREVIEW_NOT_FOUND) from None


async def task_preview(storage: StorageBackend, data: Data, subject: str) -> Body:
    try:
        return await _stored(storage, layout.preview(data.id), JPEG_MEDIA_TYPE)
    except ObjectNotFound:
        raise NotFound(f"The preview of {subject} is not available.") from None


def thumbnail(image: bytes, name: str) -> bytes:
    """A JPEG of ``image`` scaled down to at most ``PREVIEW_SIDE`` pixels on its longest side."""
    import cv2
    import numpy as np

    # OpenCV asserts on an empty buffer (an error, not the None it gives for other junk)
    decoded = cv2.imdecode(np.frombuffer(image, dtype=np.uint8), cv2.IMREAD_COLOR) if image else None
    if decoded is None:
        raise MediaError(f"The image of {name} cannot be decoded.")
    height, width = decoded.shape[:2]
    scale = PREVIEW_SIDE / max(height, width)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        decoded = cv2.resize(decoded, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", decoded, [cv2.IMWRITE_JPEG_QUALITY, PREVIEW_QUALITY])
    if not ok:
        raise MediaError(f"The preview of {name} cannot be encoded.")
    return bytes(encoded.tobytes())


async def job_preview(storage: StorageBackend, media: Media) -> Body:
    """A thumbnail of the job's first frame, made from its compressed frame on first use."""
    assert media.segment_id is not None
    if not media.frames:
        raise NotFound(f"{media.subject.capitalize()} has no frames to preview.")
    key = layout.segment_preview(media.data.id, media.segment_id)
    try:
        info = await storage.stat(key)
    except ObjectNotFound:
        info = None
    if info is not None and info.last_modified >= media.data.chunks_updated_date:
        return await _stored(storage, key, JPEG_MEDIA_TYPE)
    first = await frame(storage, media, "compressed", media.frames[0])
    content = await asyncio.to_thread(thumbnail, first.content, f"frame {media.frames[0]} of {media.subject}")
    stored = await storage.put(key, content, content_type=JPEG_MEDIA_TYPE)
    _checksums.put((key, stored.etag), checksum(content))
    return MemoryBody(content, JPEG_MEDIA_TYPE, key)


async def project_preview_data(session: AsyncSession, project_id: int) -> Data:
    """The media of the project's first task (lowest id) that has any."""
    task = await session.scalar(
        select(Task)
        .where(Task.project_id == project_id, Task.data_id.is_not(None), Task.media_type != "")
        .order_by(Task.id)
        .limit(1)
    )
    if task is None:
        raise NotFound(PROJECT_PREVIEW_NOT_FOUND)
    return await task_data(session, task)


__all__ = [
    "JPEG_MEDIA_TYPE",
    "PROJECT_PREVIEW_NOT_FOUND",
    "TASK_PREVIEW_NOT_FOUND",
    "ZIP_MEDIA_TYPE",
    "Body",
    "Media",
    "MemoryBody",
    "StoredBody",
    "check_chunk",
    "check_frame",
    "checksum",
    "chunk",
    "chunk_index",
    "task_chunk_of_job",
    "task_chunk_range",
    "context_images",
    "context_names",
    "frame",
    "job_media",
    "job_preview",
    "media_type_of",
    "project_preview_data",
    "segment_frames",
    "task_data",
    "task_media",
    "task_preview",
    "task_preview_data",
    "thumbnail",
]
