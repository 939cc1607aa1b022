"""The frame provider over stored chunks: frames by ranged reads, job chunks assembled and cached."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import zipfile
import zlib

import cv2
import numpy as np
import pytest

from annota.core.db.tables import Data
from annota.core.errors import NotFound, ValidationError
from annota.core.media import layout
from annota.core.media.chunks import build_chunk, member_name
from annota.core.services import frames as provider
from annota.core.storage import ObjectStream
from tests.memory_storage import MemoryStorage

SIZE, CHUNK = 7, 3


class CountingStorage(MemoryStorage):
    """Counts whole and ranged reads, to show which reads a request costs."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0
        self.ranges = 0

    async def get(self, key: str) -> ObjectStream:
        self.gets += 1
        return await super().get(key)

    async def get_range(self, key: str, start: int, end: int | None = None) -> ObjectStream:
        self.ranges += 1
        return await super().get_range(key, start, end)


def content(frame: int, quality: str) -> bytes:
    return f"{quality}-frame-{frame}".encode() * (frame + 1)


def gray_jpeg(value: int, width: int = 640, height: int = 320) -> bytes:
    ok, encoded = cv2.imencode(".jpg", np.full((height, width, 3), value, np.uint8))
    assert ok
    return bytes(encoded.tobytes())


def make_media(storage: MemoryStorage, data_id: int = 1, compressed: dict[int, bytes] | None = None) -> Data:
    data = Data(id=data_id, size=SIZE, chunk_size=CHUNK, deleted_frames="[]", media_kind="images",
                chunks_updated_date=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))  # fmt: skip

    async def store() -> None:
        for quality in layout.QUALITIES:
            for number in range(-(-SIZE // CHUNK)):
                frames = range(number * CHUNK, min((number + 1) * CHUNK, SIZE))
                built = build_chunk(
                    (f, member_name(f, ".jpg"), (compressed or {}).get(f) or content(f, quality))
                    for f in frames
                )
                await storage.put(layout.chunk(data_id, quality, number), built.content)
                await storage.put(layout.chunk_index(data_id, quality, number), built.index)

    asyncio.run(store())
    return data


def members(body: provider.Body) -> list[tuple[str, bytes]]:
    assert isinstance(body, provider.MemoryBody)
    with zipfile.ZipFile(io.BytesIO(body.content)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def test_frame_is_one_ranged_read_with_cached_index() -> None:
    storage = CountingStorage()
    data = make_media(storage, data_id=11)
    media = provider.Media(data, range(SIZE), None, "task 1")
    body = asyncio.run(provider.frame(storage, media, "original", 4))
    assert body.content == content(4, "original") and body.media_type == "image/jpeg"
    assert body.checksum == zlib.crc32(body.content)
    reads = (storage.gets, storage.ranges)
    again = asyncio.run(provider.frame(storage, media, "compressed", 5))
    assert again.content == content(5, "compressed")
    # the compressed index is read once, then only the member is
    assert (storage.gets, storage.ranges) == (reads[0] + 1, reads[1] + 1)
    asyncio.run(provider.frame(storage, media, "compressed", 3))
    assert (storage.gets, storage.ranges) == (reads[0] + 1, reads[1] + 2)


def test_frames_outside_the_media_are_refused() -> None:
    storage = MemoryStorage()
    data = make_media(storage, data_id=12)
    job = provider.Media(data, [2, 3, 4], 5, "job 5")
    with pytest.raises(ValidationError) as error:
        asyncio.run(provider.frame(storage, job, "original", 5))
    assert "number" in error.value.detail and "job 5" in str(error.value.detail)
    with pytest.raises(ValidationError):
        asyncio.run(provider.chunk(storage, job, "original", 1))


def test_task_chunk_is_the_stored_object_and_streams_once_its_checksum_is_known() -> None:
    storage = MemoryStorage()
    data = make_media(storage, data_id=13)
    media = provider.Media(data, range(SIZE), None, "task 1")
    first = asyncio.run(provider.chunk(storage, media, "original", 2))
    stored = storage.objects[layout.chunk(13, "original", 2)][0]
    assert isinstance(first, provider.MemoryBody) and first.content == stored
    second = asyncio.run(provider.chunk(storage, media, "original", 2))
    assert isinstance(second, provider.StoredBody)
    assert (second.key, second.size, second.checksum) == (
        layout.chunk(13, "original", 2),
        len(stored),
        zlib.crc32(stored),
    )


def test_job_chunks_are_assembled_from_task_chunk_members_and_cached() -> None:
    storage = CountingStorage()
    data = make_media(storage, data_id=14)
    # frames 2..6: job chunk 0 is frames 2, 3, 4 (two task chunks), chunk 1 frames 5, 6
    job = provider.Media(data, range(2, 7), 9, "job 9")
    body = asyncio.run(provider.chunk(storage, job, "compressed", 0))
    assert members(body) == [(member_name(f, ".jpg"), content(f, "compressed")) for f in (2, 3, 4)]
    key = layout.segment_chunk(14, 9, "compressed", 0)
    assert storage.objects[key][0] == body.content  # type: ignore[union-attr]
    ranges = storage.ranges
    cached = asyncio.run(provider.chunk(storage, job, "compressed", 0))
    assert isinstance(cached, provider.StoredBody) and cached.key == key and storage.ranges == ranges
    tail = asyncio.run(provider.chunk(storage, job, "compressed", 1))
    assert [name for name, _ in members(tail)] == [member_name(f, ".jpg") for f in (5, 6)]
    # chunks made again after the cached one invalidate it
    data.chunks_updated_date = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    rebuilt = asyncio.run(provider.chunk(storage, job, "compressed", 0))
    assert isinstance(rebuilt, provider.MemoryBody) and storage.ranges > ranges


def test_job_chunk_lined_up_with_a_task_chunk_is_served_as_is() -> None:
    storage = MemoryStorage()
    data = make_media(storage, data_id=15)
    job = provider.Media(data, range(3, 7), 4, "job 4")
    body = asyncio.run(provider.chunk(storage, job, "original", 0))
    stored = storage.objects[layout.chunk(15, "original", 1)][0]
    assert isinstance(body, provider.MemoryBody) and body.content == stored
    assert not any("/segments/" in key for key in storage.objects)


def test_job_preview_is_a_small_jpeg_of_its_first_frame() -> None:
    storage = MemoryStorage()
    data = make_media(storage, data_id=16, compressed={f: gray_jpeg(40 * f) for f in range(SIZE)})
    job = provider.Media(data, range(3, 7), 2, "job 2")
    body = asyncio.run(provider.job_preview(storage, job))
    image = cv2.imdecode(
        np.frombuffer(body.content if isinstance(body, provider.MemoryBody) else b"", np.uint8), 0
    )
    assert image.shape == (128, 256)
    assert abs(float(image.mean()) - 120) < 3
    assert layout.segment_preview(16, 2) in storage.objects


def test_task_preview_missing_is_not_found() -> None:
    storage = MemoryStorage()
    data = make_media(storage, data_id=17)
    with pytest.raises(NotFound, match="task 3"):
        asyncio.run(provider.task_preview(storage, data, "task 3"))


def test_thumbnail_keeps_small_images_and_names_undecodable_ones() -> None:
    small = provider.thumbnail(gray_jpeg(200, 64, 48), "frame 0")
    assert cv2.imdecode(np.frombuffer(small, np.uint8), 0).shape == (48, 64)
    with pytest.raises(ValidationError, match="frame 3 of job 1"):
        provider.thumbnail(b"not an image", "frame 3 of job 1")
