"""The ``local`` storage backend: the shared contract, what is particular to a POSIX directory
(files, symbolic links, temporary files), atomic writes under concurrent processes, and the plugin
wiring (``state.storage``, ``annota plugins``)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from annota.core.errors import ConfigError
from annota.core.storage import (
    CHUNK_SIZE,
    InvalidObjectKey,
    ObjectNotFound,
)
from annota.plugins.storage.local import TEMP_NAME, LocalStorage
from annota.runtime.app import create_app
from annota.runtime.cli import main
from annota.runtime.settings import Settings, load_settings
from annota.runtime.state import AppState
from tests.plugins.storage.contract import *  # noqa: F403 - the shared contract, run on this backend
from tests.plugins.storage.contract import chunks, keys, run


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "root")


def files_under(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def test_get_streams_in_chunks_of_chunk_size(storage: LocalStorage) -> None:
    big = os.urandom(CHUNK_SIZE * 2 + 123)

    async def scenario() -> list[int]:
        await storage.put("video.bin", chunks(big[: CHUNK_SIZE // 2], big[CHUNK_SIZE // 2 :]))
        return [len(chunk) async for chunk in await storage.get("video.bin")]

    assert run(scenario) == [CHUNK_SIZE, CHUNK_SIZE, 123]


def test_put_writes_the_file_and_delete_prunes_empty_directories(storage: LocalStorage) -> None:
    async def scenario() -> None:
        await storage.put("data/1/raw/a.txt", b"hello")
        await storage.put("a/b/c", b"1")
        await storage.put("a/d", b"2")
        await storage.put("data/2/x", b"2")
        await storage.delete("a/b/c")
        await storage.delete_prefix("data/1/")

    run(scenario)
    assert files_under(storage.root) == ["a/d", "data/2/x"]
    assert not (storage.root / "a" / "b").exists()
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


def test_abandoning_writes_removes_only_that_keys_temporary_files(storage: LocalStorage) -> None:
    run(lambda: storage.put("exports/1/a.zip", b"whole"))
    directory = storage.root / "exports" / "1"
    killed = directory / f".a.zip.{'a' * 32}.tmp"
    killed.write_bytes(b"hal")
    other = directory / f".b.zip.{'b' * 32}.tmp"
    other.write_bytes(b"")
    alone = storage.root / "exports" / "2" / f".c.zip.{'c' * 32}.tmp"
    alone.parent.mkdir()
    alone.write_bytes(b"")

    run(lambda: storage.abandon_writes("exports/1/a.zip"))
    run(lambda: storage.abandon_writes("exports/2/c.zip"))
    assert not killed.exists() and other.exists()
    assert files_under(storage.root) == ["exports/1/.b.zip." + "b" * 32 + ".tmp", "exports/1/a.zip"]
    # the directory an unfinished write alone was in goes with it
    assert not alone.parent.exists()


def test_temporary_file_names_are_reserved(storage: LocalStorage) -> None:
    async def scenario() -> None:
        with pytest.raises(InvalidObjectKey, match="reserved"):
            await storage.put("d/.a.0123456789abcdef0123456789abcdef.tmp", b"x")

    run(scenario)
    assert files_under(storage.root) == []


def test_failed_and_cancelled_writes_leave_no_temporary_file(storage: LocalStorage) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"partial " * 200_000
        raise ConnectionResetError("client went away")

    async def slow() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        await asyncio.sleep(10)

    async def scenario() -> None:
        with pytest.raises(ConnectionResetError):
            await storage.put("dir/new", failing())
        task = asyncio.create_task(storage.put("obj", slow()))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario)
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
    annota_settings.storage = "tape"
    with pytest.raises(ConfigError, match=r"no storage backend named 'tape' .*known: azure, gcs, local, s3"):
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
