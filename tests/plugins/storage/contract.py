"""The storage-backend contract as one test suite that every backend must pass.

A backend's test module imports these tests (``from tests.plugins.storage.contract import *``)
and defines a ``storage`` fixture giving an empty backend; what only one backend can show (files,
directories, symbolic links, processes) stays in that backend's module.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest

from annota.core.storage import (
    CHUNK_SIZE,
    InvalidObjectKey,
    ObjectInfo,
    ObjectNotFound,
    RangeNotSatisfiable,
    StorageBackend,
)

T = TypeVar("T")

#: how far the ``last_modified`` of put's result may be from stat's (``ObjectInfo``): the writer's
#: clock against the store's, whose HTTP dates have whole seconds, on a loaded test machine
LAST_MODIFIED_SKEW = dt.timedelta(seconds=5)


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())  # type: ignore[arg-type]


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def collect(stream: Any) -> bytes:
    async with stream:
        return b"".join([chunk async for chunk in stream])


async def keys(storage: StorageBackend, prefix: str = "", **kwargs: Any) -> list[str]:
    return [info.key async for info in storage.list(prefix, **kwargs)]


def stored_keys(storage: StorageBackend) -> list[str]:
    return run(lambda: keys(storage))


# --- put, get, stat -------------------------------------------------------------------------


def test_put_and_get_bytes_round_trip(storage: StorageBackend) -> None:
    async def scenario() -> None:
        info = await storage.put("data/1/raw/a.txt", b"hello")
        assert (info.key, info.size, info.content_type) == ("data/1/raw/a.txt", 5, "text/plain")
        assert await collect(await storage.get("data/1/raw/a.txt")) == b"hello"
        assert await storage.read("data/1/raw/a.txt") == b"hello"

    run(scenario)
    assert stored_keys(storage) == ["data/1/raw/a.txt"]


def test_put_streams_an_async_iterable_and_get_streams_in_chunks(storage: StorageBackend) -> None:
    big = os.urandom(CHUNK_SIZE * 2 + 123)

    async def scenario() -> None:
        parts = [big[i : i + 65536] for i in range(0, len(big), 65536)]
        info = await storage.put("video.bin", chunks(*parts))
        assert info.size == len(big)
        stream = await storage.get("video.bin")
        assert (stream.info.size, stream.info.etag) == (len(big), info.etag)
        received = [chunk async for chunk in stream]
        # streamed in pieces of about CHUNK_SIZE, never as one buffer of the whole object
        assert len(received) >= 3 and max(len(chunk) for chunk in received) <= 2 * CHUNK_SIZE
        assert b"".join(received) == big

    run(scenario)


def test_put_replaces_and_stat_describes_the_new_version(storage: StorageBackend) -> None:
    async def scenario() -> tuple[ObjectInfo, ObjectInfo, ObjectInfo]:
        first = await storage.put("k.json", b"{}")
        second = await storage.put("k.json", b'{"a": 1}', content_type="application/vnd.custom+json")
        return first, second, await storage.stat("k.json")

    first, second, stat = run(scenario)
    assert stat.size == second.size == 8
    assert stat.etag == second.etag != first.etag
    assert stat.last_modified.tzinfo is not None and second.last_modified.tzinfo is not None
    # put may give its own clock's time for a remote store: close to the store's, not equal
    assert abs(stat.last_modified - second.last_modified) <= LAST_MODIFIED_SKEW
    # the content type given is kept where the file system has extended attributes
    assert stat.content_type in ("application/vnd.custom+json", "application/json")


def test_missing_objects_raise_object_not_found(storage: StorageBackend) -> None:
    async def scenario() -> None:
        await storage.put("dir/a", b"x")
        for key in ("missing", "dir", "dir/a/b"):
            with pytest.raises(ObjectNotFound):
                await storage.get(key)
            with pytest.raises(ObjectNotFound):
                await storage.stat(key)
            assert not await storage.exists(key)
        assert await storage.exists("dir/a")

    run(scenario)


# --- ranges ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 4, b"0123"),
        (3, 7, b"3456"),
        (6, 10, b"6789"),
        (6, None, b"6789"),
        (0, None, b"0123456789"),
        (5, 5, b""),
        (10, None, b""),
    ],
)
def test_get_range(storage: StorageBackend, start: int, end: int | None, expected: bytes) -> None:
    async def scenario() -> bytes:
        await storage.put("digits", b"0123456789")
        stream = await storage.get_range("digits", start, end)
        assert stream.info.size == 10
        return await collect(stream)

    assert run(scenario) == expected


def test_get_range_across_chunks(storage: StorageBackend) -> None:
    data = os.urandom(CHUNK_SIZE + 1000)

    async def scenario() -> bytes:
        await storage.put("big", data)
        return await collect(await storage.get_range("big", 500, CHUNK_SIZE + 700))

    assert run(scenario) == data[500 : CHUNK_SIZE + 700]


@pytest.mark.parametrize(("start", "end"), [(0, 11), (11, None), (-1, 3), (6, 5)])
def test_get_range_outside_the_object_is_refused(
    storage: StorageBackend, start: int, end: int | None
) -> None:
    async def scenario() -> None:
        await storage.put("digits", b"0123456789")
        with pytest.raises(RangeNotSatisfiable):
            await storage.get_range("digits", start, end)

    run(scenario)


# --- delete ---------------------------------------------------------------------------------


def test_delete_removes_the_object(storage: StorageBackend) -> None:
    async def scenario() -> None:
        await storage.put("a/b/c", b"1")
        await storage.put("a/d", b"2")
        await storage.delete("a/b/c")
        assert not await storage.exists("a/b/c")
        # deleting what is not there is not an error
        await storage.delete("a/b/c")
        await storage.delete("never/was")

    run(scenario)
    assert stored_keys(storage) == ["a/d"]


def test_delete_prefix(storage: StorageBackend) -> None:
    async def scenario() -> int:
        for key in ("data/1/raw/a", "data/1/raw/b", "data/1/meta", "data/10/raw/a", "data/2/raw/a"):
            await storage.put(key, b"x")
        deleted = await storage.delete_prefix("data/1/")
        with pytest.raises(InvalidObjectKey, match="every object"):
            await storage.delete_prefix("")
        return deleted

    assert run(scenario) == 3
    assert stored_keys(storage) == ["data/10/raw/a", "data/2/raw/a"]


def test_delete_prefix_matches_as_a_string(storage: StorageBackend) -> None:
    async def scenario() -> int:
        for key in ("data/1/a", "data/10/a", "data/2/a"):
            await storage.put(key, b"x")
        return await storage.delete_prefix("data/1")

    assert run(scenario) == 2
    assert stored_keys(storage) == ["data/2/a"]


def test_abandoning_writes_keeps_the_finished_object(storage: StorageBackend) -> None:
    async def scenario() -> None:
        await storage.put("exports/1/a.zip", b"whole")
        await storage.abandon_writes("exports/1/a.zip")
        await storage.abandon_writes("exports/1/never-written.zip")
        assert await storage.read("exports/1/a.zip") == b"whole"

    run(scenario)
    assert stored_keys(storage) == ["exports/1/a.zip"]


# --- list -----------------------------------------------------------------------------------


def test_list_is_in_key_order_across_directories(storage: StorageBackend) -> None:
    # byte order puts "a-b" < "a/…" < "a0": a directory walk must not list "a/…" first or last
    stored = ["a/b", "a-b", "a0", "a/c/d", "b", "a/c-", "A"]

    async def scenario() -> list[str]:
        for key in stored:
            await storage.put(key, b"x")
        return await keys(storage)

    assert run(scenario) == sorted(stored)


def test_list_by_prefix(storage: StorageBackend) -> None:
    async def scenario() -> None:
        for key in ("data/1/a", "data/1/b/c", "data/10/a", "data/2/a", "other"):
            await storage.put(key, b"x")
        assert await keys(storage, "data/1/") == ["data/1/a", "data/1/b/c"]
        assert await keys(storage, "data/1") == ["data/1/a", "data/1/b/c", "data/10/a"]
        assert await keys(storage, "data/3") == []
        assert await keys(storage, "nothing/here/") == []
        with pytest.raises(InvalidObjectKey):
            await keys(storage, "../")

    run(scenario)


def test_list_pages_through_more_keys_than_a_page(storage: StorageBackend) -> None:
    # as many objects as three and a half pages, under nested prefixes
    expected = sorted(f"d{i % 3}/n{i:03}" for i in range(35))

    async def scenario() -> None:
        await asyncio.gather(*(storage.put(key, b"x") for key in expected))
        assert await keys(storage, page_size=10) == expected
        assert await keys(storage, page_size=1) == expected
        # resuming after any key gives exactly the rest, as a client paging across requests does
        for after in (expected[0], expected[9], expected[10], "d1/", "d1", expected[-1], "c", "zzz"):
            assert await keys(storage, page_size=10, start_after=after) == [k for k in expected if k > after]
        infos = [info async for info in storage.list("d2/", page_size=4)]
        assert all(info.size == 1 and info.etag for info in infos)
        with pytest.raises(ValueError, match="page_size"):
            await keys(storage, page_size=0)

    run(scenario)


# --- keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a\\b", "", "a/.."])
def test_bad_keys_are_refused_by_every_method(storage: StorageBackend, key: str) -> None:
    async def scenario() -> None:
        with pytest.raises(InvalidObjectKey):
            await storage.put(key, b"x")
        with pytest.raises(InvalidObjectKey):
            await storage.get(key)
        with pytest.raises(InvalidObjectKey):
            await storage.get_range(key, 0, 1)
        with pytest.raises(InvalidObjectKey):
            await storage.stat(key)
        with pytest.raises(InvalidObjectKey):
            await storage.exists(key)
        with pytest.raises(InvalidObjectKey):
            await storage.delete(key)

    run(scenario)
    assert stored_keys(storage) == []


# --- atomicity ------------------------------------------------------------------------------


def test_a_failing_stream_stores_nothing_and_keeps_the_old_object(storage: StorageBackend) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"partial " * 200_000
        raise ConnectionResetError("client went away")

    async def scenario() -> None:
        await storage.put("dir/obj", b"previous")
        with pytest.raises(ConnectionResetError):
            await storage.put("dir/obj", failing())
        with pytest.raises(ConnectionResetError):
            await storage.put("dir/new", failing())
        assert await storage.read("dir/obj") == b"previous"
        assert not await storage.exists("dir/new")

    run(scenario)
    assert stored_keys(storage) == ["dir/obj"]


def test_a_cancelled_write_stores_nothing(storage: StorageBackend) -> None:
    async def slow() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        await asyncio.sleep(10)
        yield b"never"

    async def scenario() -> None:
        task = asyncio.create_task(storage.put("obj", slow()))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario)
    assert stored_keys(storage) == []


def test_presigned_url_is_none_or_a_url_for_the_object(storage: StorageBackend) -> None:
    async def scenario() -> str | None:
        await storage.put("a.txt", b"x")
        with pytest.raises(InvalidObjectKey):
            await storage.presigned_url("../a", dt.timedelta(minutes=5))
        return await storage.presigned_url("a.txt", dt.timedelta(minutes=5))

    url = run(scenario)
    assert url is None or ("a.txt" in url and url.startswith("http"))


def test_check_passes_on_a_working_backend(storage: StorageBackend) -> None:
    run(storage.check)


def test_keys_with_spaces_percent_signs_and_non_ascii_round_trip(storage: StorageBackend) -> None:
    odd = ["a b/c%20d#?.jpg", "x/y~z!(1)*'.txt", "ü/ñ+é.png"]

    async def scenario() -> None:
        for key in odd:
            await storage.put(key, key.encode())
        for key in odd:
            assert await storage.read(key) == key.encode()
            assert (await storage.stat(key)).key == key
        assert await keys(storage) == sorted(odd)
        assert await keys(storage, "a b/") == ["a b/c%20d#?.jpg"]
        assert await storage.delete_prefix("ü/") == 1

    run(scenario)
