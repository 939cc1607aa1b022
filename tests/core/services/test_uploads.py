"""Upload sessions in the storage backend: complete files and TUS uploads, on two backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from annota.core.errors import Conflict, NotFound, PayloadTooLarge, ValidationError
from annota.core.media import layout
from annota.core.services import uploads
from annota.core.storage import StorageBackend
from annota.plugins.storage.local import LocalStorage
from tests.memory_storage import MemoryStorage

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.fixture(params=["local", "memory"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> StorageBackend:
    if request.param == "local":
        return LocalStorage(tmp_path / "storage", fsync=False)
    return MemoryStorage()


@pytest.mark.parametrize(
    ("client_path", "name"),
    [
        ("/home/u/img 1.jpg", "img 1.jpg"),
        ("C:\\data\\a.png", "a.png"),
        ("b.jpg", "b.jpg"),
        ("x/../c.jpg", "c.jpg"),
    ],
)
def test_client_basename_keeps_the_file_name(client_path: str, name: str) -> None:
    assert uploads.client_basename(client_path) == name


@pytest.mark.parametrize("client_path", ["", ".", "..", "/a/", "dir/..", "a\x00b"])
def test_client_basename_refuses_names_that_are_no_files(client_path: str) -> None:
    with pytest.raises(ValidationError) as error:
        uploads.client_basename(client_path)
    assert error.value.detail == {"client_files": [f"{client_path!r} is not a valid file name."]}


def test_save_file_stores_by_basename_and_lists_sorted(storage: StorageBackend) -> None:
    async def scenario() -> None:
        assert await uploads.save_file(storage, 3, "/tmp/z/b.jpg", chunks(b"bb", b"", b"b")) == "b.jpg"
        assert await uploads.save_file(storage, 3, "C:\\x\\a.jpg", chunks(b"a")) == "a.jpg"
        await uploads.save_file(storage, 4, "c.jpg", chunks(b"c"))
        assert await uploads.uploaded_names(storage, 3) == ["a.jpg", "b.jpg"]
        assert await storage.read(layout.upload_file(3, "b.jpg")) == b"bbb"

    run(scenario())


def test_save_file_refuses_duplicates_and_empty_files(storage: StorageBackend) -> None:
    async def scenario() -> None:
        await uploads.save_file(storage, 1, "/a/x.jpg", chunks(b"1"))
        with pytest.raises(ValidationError, match="x.jpg was already uploaded"):
            await uploads.save_file(storage, 1, "/b/x.jpg", chunks(b"2"))
        assert await storage.read(layout.upload_file(1, "x.jpg")) == b"1"
        with pytest.raises(ValidationError, match="e.jpg is empty"):
            await uploads.save_file(storage, 1, "e.jpg", chunks(b"", b""))
        assert await uploads.uploaded_names(storage, 1) == ["x.jpg"]

    run(scenario())


def test_clear_forgets_files_and_tus_uploads_of_one_task(storage: StorageBackend) -> None:
    async def scenario() -> None:
        await uploads.save_file(storage, 1, "a.jpg", chunks(b"1"))
        await uploads.tus_create(storage, 1, 7, "big.mp4", 10)
        await uploads.save_file(storage, 2, "a.jpg", chunks(b"1"))
        await uploads.clear(storage, 1)
        assert [info.key async for info in storage.list(layout.upload_prefix(1))] == []
        assert await uploads.uploaded_names(storage, 2) == ["a.jpg"]

    run(scenario())


def test_tus_upload_in_parts_assembles_the_file(storage: StorageBackend) -> None:
    content = bytes(range(256)) * 40

    async def scenario() -> None:
        file_id = await uploads.tus_create(storage, 5, 7, "/home/u/video.mp4", len(content))
        assert file_id.startswith("7_") and len(file_id) == 34
        assert await uploads.tus_status(storage, 5, file_id, 7) == (0, len(content))
        offset = await uploads.tus_append(
            storage, 5, file_id, 7, 0, chunks(content[:1000], content[1000:3000])
        )
        assert offset == 3000
        assert await uploads.tus_status(storage, 5, file_id, 7) == (3000, len(content))
        # an empty body changes nothing
        assert await uploads.tus_append(storage, 5, file_id, 7, 3000, chunks()) == 3000
        assert await uploads.uploaded_names(storage, 5) == []
        assert await uploads.tus_append(storage, 5, file_id, 7, 3000, chunks(content[3000:])) == len(content)
        assert await uploads.uploaded_names(storage, 5) == ["video.mp4"]
        assert await storage.read(layout.upload_file(5, "video.mp4")) == content
        # the upload is over: its parts are gone
        assert [info.key async for info in storage.list(layout.tus_prefix(5, file_id))] == []
        with pytest.raises(NotFound):
            await uploads.tus_status(storage, 5, file_id, 7)

    run(scenario())


def test_tus_refuses_wrong_offsets_overlong_bodies_and_strangers(storage: StorageBackend) -> None:
    async def scenario() -> None:
        file_id = await uploads.tus_create(storage, 5, 7, "a.bin", 10)
        await uploads.tus_append(storage, 5, file_id, 7, 0, chunks(b"12345"))
        with pytest.raises(Conflict, match="does not match the current offset 5"):
            await uploads.tus_append(storage, 5, file_id, 7, 0, chunks(b"x"))
        with pytest.raises(PayloadTooLarge, match="a.bin"):
            await uploads.tus_append(storage, 5, file_id, 7, 5, chunks(b"1234", b"56"))
        # the refused body left nothing behind
        assert await uploads.tus_status(storage, 5, file_id, 7) == (5, 10)
        with pytest.raises(NotFound):
            await uploads.tus_status(storage, 5, file_id, 8)
        with pytest.raises(NotFound):
            await uploads.tus_append(storage, 5, file_id, 8, 5, chunks(b"x"))
        with pytest.raises(NotFound):
            await uploads.tus_status(storage, 6, file_id, 7)
        for bad in ("7_" + "0" * 32, "../x", "7_XYZ"):
            with pytest.raises(NotFound):
                await uploads.tus_status(storage, 5, bad, 7)

    run(scenario())


def test_tus_create_refuses_taken_names_and_empty_uploads(storage: StorageBackend) -> None:
    async def scenario() -> None:
        await uploads.save_file(storage, 1, "a.jpg", chunks(b"1"))
        with pytest.raises(Conflict, match="a.jpg"):
            await uploads.tus_create(storage, 1, 7, "/x/a.jpg", 5)
        with pytest.raises(ValidationError, match="b.jpg is empty"):
            await uploads.tus_create(storage, 1, 7, "b.jpg", 0)

    run(scenario())
