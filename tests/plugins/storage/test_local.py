"""The ``local`` storage backend: the interface's behaviour on a POSIX directory, atomic writes
under concurrent processes, and the plugin wiring (``state.storage``, ``annota plugins``)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from annota.core.errors import ConfigError
from annota.core.storage import (
    CHUNK_SIZE,
    InvalidObjectKey,
    ObjectInfo,
    ObjectNotFound,
    RangeNotSatisfiable,
)
from annota.plugins.storage.local import TEMP_NAME, LocalStorage
from annota.runtime.app import create_app
from annota.runtime.cli import main
from annota.runtime.settings import Settings, load_settings
from annota.runtime.state import AppState

T = TypeVar("T")


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())  # type: ignore[arg-type]


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "root")


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def collect(stream: Any) -> bytes:
    async with stream:
        return b"".join([chunk async for chunk in stream])


def files_under(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


# --- put, get, stat -------------------------------------------------------------------------


def test_put_and_get_bytes_round_trip(storage: LocalStorage) -> None:
    async def scenario() -> None:
        info = await storage.put("data/1/raw/a.txt", b"hello")
        assert (info.key, info.size, info.content_type) == ("data/1/raw/a.txt", 5, "text/plain")
        assert await collect(await storage.get("data/1/raw/a.txt")) == b"hello"
        assert await storage.read("data/1/raw/a.txt") == b"hello"

    run(scenario)
    assert (storage.root / "data" / "1" / "raw" / "a.txt").read_bytes() == b"hello"


def test_put_streams_an_async_iterable_and_get_streams_in_chunks(storage: LocalStorage) -> None:
    big = os.urandom(CHUNK_SIZE * 2 + 123)

    async def scenario() -> None:
        parts = [big[i : i + 65536] for i in range(0, len(big), 65536)]
        info = await storage.put("video.bin", chunks(*parts))
        assert info.size == len(big)
        stream = await storage.get("video.bin")
        assert stream.info.size == len(big)
        received = [chunk async for chunk in stream]
        assert [len(chunk) for chunk in received] == [CHUNK_SIZE, CHUNK_SIZE, 123]
        assert b"".join(received) == big

    run(scenario)


def test_put_replaces_and_stat_describes_the_new_version(storage: LocalStorage) -> None:
    async def scenario() -> tuple[ObjectInfo, ObjectInfo, ObjectInfo]:
        first = await storage.put("k.json", b"{}")
        second = await storage.put("k.json", b'{"a": 1}', content_type="application/vnd.custom+json")
        return first, second, await storage.stat("k.json")

    first, second, stat = run(scenario)
    assert stat.size == second.size == 8
    assert stat.etag == second.etag != first.etag
    assert stat.last_modified == second.last_modified and stat.last_modified.tzinfo is not None
    # the content type given is kept where the file system has extended attributes
    assert stat.content_type in ("application/vnd.custom+json", "application/json")


def test_missing_objects_raise_object_not_found(storage: LocalStorage) -> None:
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
def test_get_range(storage: LocalStorage, start: int, end: int | None, expected: bytes) -> None:
    async def scenario() -> bytes:
        await storage.put("digits", b"0123456789")
        stream = await storage.get_range("digits", start, end)
        assert stream.info.size == 10
        return await collect(stream)

    assert run(scenario) == expected


def test_get_range_across_chunks(storage: LocalStorage) -> None:
    data = os.urandom(CHUNK_SIZE + 1000)

    async def scenario() -> bytes:
        await storage.put("big", data)
        return await collect(await storage.get_range("big", 500, CHUNK_SIZE + 700))

    assert run(scenario) == data[500 : CHUNK_SIZE + 700]


@pytest.mark.parametrize(("start", "end"), [(0, 11), (11, None), (-1, 3), (6, 5)])
def test_get_range_outside_the_object_is_refused(storage: LocalStorage, start: int, end: int | None) -> None:
    async def scenario() -> None:
        await storage.put("digits", b"0123456789")
        with pytest.raises(RangeNotSatisfiable):
            await storage.get_range("digits", start, end)

    run(scenario)


# --- delete ---------------------------------------------------------------------------------


def test_delete_removes_the_object_and_empty_directories(storage: LocalStorage) -> None:
    async def scenario() -> None:
        await storage.put("a/b/c", b"1")
        await storage.put("a/d", b"2")
        await storage.delete("a/b/c")
        assert not await storage.exists("a/b/c")
        # deleting what is not there is not an error
        await storage.delete("a/b/c")
        await storage.delete("never/was")

    run(scenario)
    assert files_under(storage.root) == ["a/d"]
    assert not (storage.root / "a" / "b").exists()


def test_delete_prefix(storage: LocalStorage) -> None:
    async def scenario() -> int:
        for key in ("data/1/raw/a", "data/1/raw/b", "data/1/meta", "data/10/raw/a", "data/2/raw/a"):
            await storage.put(key, b"x")
        deleted = await storage.delete_prefix("data/1/")
        with pytest.raises(InvalidObjectKey, match="every object"):
            await storage.delete_prefix("")
        return deleted

    assert run(scenario) == 3
    assert files_under(storage.root) == ["data/10/raw/a", "data/2/raw/a"]
    assert not (storage.root / "data" / "1").exists()


def test_delete_prefix_removes_the_partial_writes_of_a_killed_process(storage: LocalStorage) -> None:
    run(lambda: storage.put("data/7/chunks/0.zip", b"whole"))
    # what a process killed while writing leaves: a temporary file, alone in its directory or not
    partial = storage.root / "data" / "7" / "chunks" / f".1.zip.{'a' * 32}.tmp"
    partial.write_bytes(b"hal")
    alone = storage.root / "data" / "7" / "original" / f".0.zip.{'b' * 32}.tmp"
    alone.parent.mkdir()
    alone.write_bytes(b"")
    other = storage.root / "data" / "8" / f".0.zip.{'c' * 32}.tmp"
    other.parent.mkdir()
    other.write_bytes(b"")

    assert run(lambda: storage.delete_prefix("data/7/")) == 1
    assert not (storage.root / "data" / "7").exists()
    assert other.exists()


def test_delete_prefix_matches_as_a_string(storage: LocalStorage) -> None:
    async def scenario() -> int:
        for key in ("data/1/a", "data/10/a", "data/2/a"):
            await storage.put(key, b"x")
        return await storage.delete_prefix("data/1")

    assert run(scenario) == 2
    assert files_under(storage.root) == ["data/2/a"]


# --- list -----------------------------------------------------------------------------------


async def keys(storage: LocalStorage, prefix: str = "", **kwargs: Any) -> list[str]:
    return [info.key async for info in storage.list(prefix, **kwargs)]


def test_list_is_in_key_order_across_directories(storage: LocalStorage) -> None:
    # byte order puts "a-b" < "a/…" < "a0": a directory walk must not list "a/…" first or last
    stored = ["a/b", "a-b", "a0", "a/c/d", "b", "a/c-", "A"]

    async def scenario() -> list[str]:
        for key in stored:
            await storage.put(key, b"x")
        return await keys(storage)

    assert run(scenario) == sorted(stored)


def test_list_by_prefix(storage: LocalStorage) -> None:
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


def test_list_pages_through_more_keys_than_a_page(storage: LocalStorage, tmp_path: Path) -> None:
    # as many objects as three and a half pages, in nested directories, written directly
    expected = sorted(f"d{i % 3}/n{i:03}" for i in range(35))
    for key in expected:
        path = storage.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")

    async def scenario() -> None:
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


@pytest.mark.parametrize(
    "key", ["../x", "/abs", "a//b", "a\\b", "", "a/..", ".a.0123456789abcdef0123456789abcdef.tmp"]
)
def test_bad_keys_are_refused_by_every_method(storage: LocalStorage, key: str) -> None:
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
    assert not (storage.root.parent / "x").exists()
    assert files_under(storage.root) == []


def test_an_object_cannot_also_be_a_prefix(storage: LocalStorage) -> None:
    async def scenario() -> None:
        await storage.put("a", b"file")
        with pytest.raises(InvalidObjectKey, match="already an object"):
            await storage.put("a/b", b"x")
        await storage.put("c/d", b"x")
        with pytest.raises(InvalidObjectKey, match="prefix of other objects"):
            await storage.put("c", b"x")

    run(scenario)
    assert files_under(storage.root) == ["a", "c/d"]


def test_symlinks_leading_outside_the_root_are_refused(storage: LocalStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    (storage.root / "escape").symlink_to(outside)
    (storage.root / "file-link").symlink_to(outside / "secret")
    (storage.root / "inside").mkdir()
    (storage.root / "inside" / "real").write_bytes(b"fine")
    (storage.root / "inner-link").symlink_to(storage.root / "inside" / "real")

    async def scenario() -> None:
        for key in ("escape/secret", "file-link"):
            with pytest.raises(InvalidObjectKey, match="outside the storage root"):
                await storage.read(key)
            with pytest.raises(InvalidObjectKey, match="outside the storage root"):
                await storage.stat(key)
        with pytest.raises(InvalidObjectKey, match="outside the storage root"):
            await storage.put("escape/new", b"x")
        with pytest.raises(InvalidObjectKey, match="outside the storage root"):
            await storage.delete("escape/secret")
        # a link that stays inside the root is an ordinary object
        assert await storage.read("inner-link") == b"fine"
        assert await keys(storage) == ["inner-link", "inside/real"]

    run(scenario)
    assert sorted(path.name for path in outside.iterdir()) == ["secret"]


# --- atomicity ------------------------------------------------------------------------------


def test_a_failing_stream_leaves_no_temporary_file_and_the_old_object(storage: LocalStorage) -> None:
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
    assert files_under(storage.root) == ["dir/obj"]


def test_a_cancelled_write_leaves_no_temporary_file(storage: LocalStorage) -> None:
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
    assert files_under(storage.root) == []


def test_list_skips_temporary_files_of_writes_in_progress(storage: LocalStorage) -> None:
    (storage.root / "dir").mkdir()
    (storage.root / "dir" / ".obj.0123456789abcdef0123456789abcdef.tmp").write_bytes(b"half")
    (storage.root / "dir" / ".hidden").write_bytes(b"an object")

    async def scenario() -> list[str]:
        return await keys(storage)

    assert run(scenario) == ["dir/.hidden"]


WRITER = textwrap.dedent(
    """
    import asyncio
    import sys
    from pathlib import Path

    from annota.plugins.storage.local import LocalStorage

    root, key, marker, count, size = sys.argv[1], sys.argv[2], sys.argv[3].encode(), *map(int, sys.argv[4:])


    async def chunks(version):
        # an object is 'marker' bytes with the version at its end, written in several pieces
        body = marker * (size - 8) + version.to_bytes(8, "big")
        for start in range(0, size, 65536):
            yield body[start : start + 65536]


    async def write():
        storage = LocalStorage(Path(root), fsync=False)
        for version in range(count):
            await storage.put(key, chunks(version))


    asyncio.run(write())
    """
)

OBJECT_SIZE = 300_000


def check_complete(data: bytes) -> bytes:
    """The writer whose version ``data`` is, after checking it is one writer's complete object."""
    assert len(data) == OBJECT_SIZE
    marker = data[:1]
    assert marker in (b"A", b"B")
    assert data[: OBJECT_SIZE - 8] == marker * (OBJECT_SIZE - 8)
    return marker


def test_concurrent_writers_in_other_processes_never_show_a_torn_object(storage: LocalStorage) -> None:
    count = 150
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                str(storage.root),
                "shared/obj",
                marker,
                str(count),
                str(OBJECT_SIZE),
            ]
        )
        for marker in ("A", "B")
    ]

    async def read_while_writing() -> tuple[int, set[bytes], set[bytes]]:
        reads, writers_seen, versions = 0, set(), set()
        while any(writer.poll() is None for writer in writers):
            try:
                data = await storage.read("shared/obj")
            except ObjectNotFound:
                continue  # the first write has not landed yet
            writers_seen.add(check_complete(data))
            versions.add(data[-9:])
            reads += 1
        return reads, writers_seen, versions

    try:
        reads, writers_seen, versions = asyncio.run(read_while_writing())
    finally:
        for writer in writers:
            writer.wait(timeout=120)
    assert [writer.returncode for writer in writers] == [0, 0]
    assert reads > 10 and len(versions) > 2, (reads, versions)
    check_complete(asyncio.run(storage.read("shared/obj")))
    assert writers_seen <= {b"A", b"B"}
    assert files_under(storage.root) == ["shared/obj"]
    assert not any(TEMP_NAME.match(path.name) for path in storage.root.rglob("*"))


# --- the plugin -----------------------------------------------------------------------------


def test_the_app_stores_in_the_data_dir_through_the_local_plugin(
    annota_client: TestClient, annota_settings: Settings, run_async: Callable[..., Any]
) -> None:
    state: AppState = annota_client.app.state.annota  # type: ignore[attr-defined]
    assert isinstance(state.storage, LocalStorage)
    assert state.storage.root == Path(annota_settings.data_dir) / "storage"
    assert state.storage.fsync is True
    assert state.storage_backends.get("local").plugin == "local"
    run_async(state.storage.put, "data/1/raw/a.jpg", b"jpeg")
    assert (
        Path(annota_settings.data_dir) / "storage" / "data" / "1" / "raw" / "a.jpg"
    ).read_bytes() == b"jpeg"


def test_the_local_plugin_is_configured_like_any_plugin(annota_settings: Settings, tmp_path: Path) -> None:
    annota_settings.plugin_settings = {"local": {"root": str(tmp_path / "efs"), "fsync": False}}
    with TestClient(create_app(annota_settings)) as client:
        storage = client.app.state.annota.storage  # type: ignore[attr-defined]
        assert (storage.root, storage.fsync) == (tmp_path / "efs", False)


def test_the_storage_setting_defaults_to_local_and_comes_from_the_environment() -> None:
    assert load_settings(environ={}).storage == "local"
    assert load_settings(environ={"ANNOTA_STORAGE": "s3"}).storage == "s3"


def test_an_unknown_storage_backend_is_a_start_up_error(annota_settings: Settings) -> None:
    annota_settings.storage = "s3"
    with pytest.raises(ConfigError, match=r"no storage backend named 's3' .*known: local"):
        with TestClient(create_app(annota_settings)):
            pass


def test_annota_plugins_lists_the_local_backend() -> None:
    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    plugins = {plugin["name"]: plugin for plugin in json.loads(result.stdout)}
    assert plugins["local"]["status"] == "ok"
    assert plugins["local"]["source"] == "builtin"
    assert "register_storage_backends" in plugins["local"]["hooks"]
    assert "register_config" in plugins["local"]["hooks"]
