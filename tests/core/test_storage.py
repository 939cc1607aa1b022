"""The storage interface: key and range rules every backend shares, the registry of backends,
and the behaviour the base class gives every backend (``read``, ``exists``, ``presigned_url``)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from annota.core.errors import ConfigError, NotFound, ValidationError
from annota.core.storage import (
    InvalidObjectKey,
    ObjectInfo,
    ObjectNotFound,
    ObjectStream,
    RangeNotSatisfiable,
    StorageError,
    StorageRegistry,
    check_range,
    validate_key,
    validate_prefix,
)
from tests.memory_storage import MemoryStorage

BAD_KEYS = ["", "/abs", "../x", "a/../b", "a//b", "a/", "./a", "a/./b", "a\\b", "a\x00b", ".."]


@pytest.mark.parametrize("key", ["a", "data/12/raw/frame 1.jpg", ".hidden", "a/b..c/d", "ünïcode/名前"])
def test_valid_keys_pass(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidObjectKey):
        validate_key(key)


@pytest.mark.parametrize("prefix", ["", "data", "data/", "data/1", "data/1/raw/fr"])
def test_valid_prefixes_pass(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["/data", "../", "a/../b", "a//b", "a\\b", "a\x00", "a/.."])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(InvalidObjectKey):
        validate_prefix(prefix)


def test_storage_errors_map_to_http_statuses() -> None:
    # a bad key is a client's bad input, a missing object a 404, both still storage errors
    assert issubclass(InvalidObjectKey, ValidationError) and InvalidObjectKey.status_code == 400
    assert issubclass(ObjectNotFound, NotFound) and ObjectNotFound.status_code == 404
    assert RangeNotSatisfiable.status_code == 416
    for error in (InvalidObjectKey, ObjectNotFound, RangeNotSatisfiable):
        assert issubclass(error, StorageError)


@pytest.mark.parametrize(
    ("start", "end", "stop"), [(0, None, 10), (0, 10, 10), (3, 7, 7), (10, None, 10), (4, 4, 4)]
)
def test_ranges_inside_the_object(start: int, end: int | None, stop: int) -> None:
    assert check_range("k", start, end, 10) == stop


@pytest.mark.parametrize(("start", "end"), [(-1, 5), (5, 4), (0, 11), (11, None), (11, 12)])
def test_ranges_outside_the_object_are_refused(start: int, end: int | None) -> None:
    with pytest.raises(RangeNotSatisfiable, match="outside object 'k' of 10 bytes"):
        check_range("k", start, end, 10)


# --- the registry -----------------------------------------------------------------------------


def memory_factory(config: Any, settings: Any) -> MemoryStorage:
    return MemoryStorage()


def test_registry_refuses_a_second_backend_of_the_same_name_naming_both_plugins() -> None:
    registry = StorageRegistry()
    registry.register("first", "memory", memory_factory)
    with pytest.raises(ConfigError) as error:
        registry.register("second", "memory", memory_factory)
    message = str(error.value.detail)
    assert "plugin second" in message and "plugin first" in message and "'memory'" in message


@pytest.mark.parametrize("name", ["", "Memory", "1st", "mem ory", "mem/ory"])
def test_registry_refuses_malformed_names(name: str) -> None:
    with pytest.raises(ConfigError, match="plugin p: storage backend name"):
        StorageRegistry().register("p", name, memory_factory)


def test_registry_refuses_a_factory_that_is_not_callable() -> None:
    with pytest.raises(ConfigError, match="needs a callable factory"):
        StorageRegistry().register("p", "memory", "not callable")  # type: ignore[arg-type]


def test_unknown_backend_lists_the_known_ones() -> None:
    registry = StorageRegistry()
    registry.register("p", "memory", memory_factory)
    registry.register("p", "disk", memory_factory)
    with pytest.raises(ConfigError, match=r"no storage backend named 's3' .*\(known: disk, memory\)"):
        registry.get("s3")


def test_create_passes_config_and_settings_and_awaits_async_factories() -> None:
    seen: list[tuple[Any, Any]] = []

    async def factory(config: Any, settings: Any) -> MemoryStorage:
        seen.append((config, settings))
        return MemoryStorage()

    registry = StorageRegistry()
    registry.register("p", "memory", factory)
    backend = asyncio.run(registry.create("memory", "the config", "the settings"))
    assert isinstance(backend, MemoryStorage)
    assert seen == [("the config", "the settings")]


def test_create_refuses_a_factory_that_returns_something_else() -> None:
    registry = StorageRegistry()
    registry.register("p", "memory", lambda config, settings: object())
    with pytest.raises(ConfigError, match="plugin p: storage backend 'memory' factory returned object"):
        asyncio.run(registry.create("memory", None, None))


# --- what the base class provides -------------------------------------------------------------


def test_base_class_read_exists_and_presigned_url() -> None:
    async def scenario() -> None:
        storage = MemoryStorage()
        await storage.put("a/b", b"content")
        assert await storage.read("a/b") == b"content"
        assert await storage.exists("a/b") and not await storage.exists("a/c")
        assert await storage.presigned_url("a/b", dt.timedelta(minutes=5)) is None
        with pytest.raises(InvalidObjectKey):
            await storage.presigned_url("../a", dt.timedelta(minutes=5))
        with pytest.raises(ObjectNotFound):
            await storage.read("missing")

    asyncio.run(scenario())


def test_object_stream_closes_once_exhausted_or_failed() -> None:
    closed: list[str] = []
    info = ObjectInfo("k", 2, dt.datetime.now(dt.UTC), "1")

    async def close() -> None:
        closed.append("closed")

    async def two_chunks() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    async def failing() -> AsyncIterator[bytes]:
        yield b"a"
        raise OSError("disk gone")

    async def scenario() -> None:
        assert [chunk async for chunk in ObjectStream(info, two_chunks(), close)] == [b"a", b"b"]
        assert closed == ["closed"]
        stream = ObjectStream(info, failing(), close)
        assert await anext(stream) == b"a"
        with pytest.raises(OSError, match="disk gone"):
            await anext(stream)
        assert closed == ["closed", "closed"]
        # closing again (``async with`` after a failure) releases nothing twice
        await stream.aclose()
        assert closed == ["closed", "closed"]
        async with ObjectStream(info, two_chunks(), close) as unread:
            assert unread.info.size == 2
        assert closed == ["closed"] * 3

    asyncio.run(scenario())
