"""A storage backend kept in a dict: a second implementation of the interface, for tests of the
registry and the ``register_storage_backends`` hook that must not depend on the ``local`` plugin."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterable, AsyncIterator

from annota.core.storage import (
    InvalidObjectKey,
    ObjectInfo,
    ObjectNotFound,
    ObjectStream,
    StorageBackend,
    check_range,
    validate_key,
    validate_prefix,
)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


class MemoryStorage(StorageBackend):
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, ObjectInfo]] = {}
        self.closed = False
        self.version = 0

    async def put(
        self, key: str, data: bytes | AsyncIterable[bytes], *, content_type: str | None = None
    ) -> ObjectInfo:
        validate_key(key)
        content = bytes(data) if isinstance(data, bytes) else b"".join([chunk async for chunk in data])
        self.version += 1
        info = ObjectInfo(key, len(content), dt.datetime.now(dt.UTC), str(self.version), content_type)
        self.objects[key] = (content, info)
        return info

    def _object(self, key: str) -> tuple[bytes, ObjectInfo]:
        try:
            return self.objects[validate_key(key)]
        except KeyError:
            raise ObjectNotFound(f"no object {key!r}") from None

    async def get(self, key: str) -> ObjectStream:
        content, info = self._object(key)
        return ObjectStream(info, _one(content))

    async def get_range(self, key: str, start: int, end: int | None = None) -> ObjectStream:
        content, info = self._object(key)
        stop = check_range(key, start, end, info.size)
        return ObjectStream(info, _one(content[start:stop]))

    async def stat(self, key: str) -> ObjectInfo:
        return self._object(key)[1]

    async def delete(self, key: str) -> None:
        self.objects.pop(validate_key(key), None)

    async def delete_prefix(self, prefix: str) -> int:
        if validate_prefix(prefix) == "":
            raise InvalidObjectKey("refusing to delete every object")
        keys = [key for key in self.objects if key.startswith(prefix)]
        for key in keys:
            del self.objects[key]
        return len(keys)

    async def list(
        self, prefix: str = "", *, page_size: int = 1000, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        for key in sorted(self.objects):
            if key.startswith(prefix) and (start_after is None or key > start_after):
                yield self.objects[key][1]

    async def close(self) -> None:
        self.closed = True
