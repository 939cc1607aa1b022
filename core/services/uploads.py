"""Uploads before ``Upload-Finish`` (a task's media, or a file to import): complete files and TUS uploads.

Everything lives in the storage backend, never in process memory, so the requests of one upload
may reach different API servers and the worker that processes the task finds the files.
A TUS upload is ``info.json`` plus one ``parts/<offset>`` object per PATCH; its offset is the
sum of its parts' sizes, so no object is ever rewritten while the upload goes on.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator

import msgspec

from annota.core.errors import Conflict, NotFound, ObjectNotFound, PayloadTooLarge, ValidationError
from annota.core.media import layout
from annota.core.media.layout import UploadArea
from annota.core.storage import StorageBackend

_FILE_ID = re.compile(r"\d+_[0-9a-f]{32}\Z")
_INFO = "info.json"
_PARTS = "parts/"


class TusInfo(msgspec.Struct, kw_only=True):
    """What a TUS creation request announced."""

    filename: str
    length: int
    user_id: int


def _to(area: UploadArea) -> str:
    return f" to task {area}" if isinstance(area, int) else ""


def _of(area: UploadArea) -> str:
    return f" of task {area}" if isinstance(area, int) else ""


def client_basename(filename: str, field: str = "client_files") -> str:
    """The file name of a client path: clients send absolute paths, with ``/`` or ``\\``. A bad
    name is refused under ``field``, the request field that carried it."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    if name in ("", ".", "..") or "\x00" in name:
        raise ValidationError.for_field(field, f"{filename!r} is not a valid file name.")
    return name


async def _exists(storage: StorageBackend, area: UploadArea, name: str) -> bool:
    return await storage.exists(layout.upload_file(area, name))


async def save_file(
    storage: StorageBackend, area: UploadArea, filename: str, chunks: AsyncIterable[bytes]
) -> str:
    """Store one complete uploaded file under its basename and return that name."""
    name = client_basename(filename)
    if await _exists(storage, area, name):
        raise ValidationError.for_field("client_files", f"{name} was already uploaded{_to(area)}.")
    iterator = aiter(chunks)
    first = b""
    async for chunk in iterator:
        if chunk:
            first = chunk
            break
    if not first:
        raise ValidationError.for_field("client_files", f"{name} is empty.")

    async def content() -> AsyncIterator[bytes]:
        yield first
        async for chunk in iterator:
            yield chunk

    await storage.put(layout.upload_file(area, name), content())
    return name


async def uploaded_names(storage: StorageBackend, area: UploadArea) -> list[str]:
    """The complete uploaded files of a task, by name, sorted."""
    prefix = layout.upload_files_prefix(area)
    return sorted([info.key[len(prefix) :] async for info in storage.list(prefix)])


async def clear(storage: StorageBackend, area: UploadArea) -> None:
    """Forget every upload of the task, complete or not."""
    await storage.delete_prefix(layout.upload_prefix(area))


# --- TUS ------------------------------------------------------------------------------------


async def tus_create(
    storage: StorageBackend, area: UploadArea, user_id: int, filename: str, length: int
) -> str:
    """Start a TUS upload of ``length`` bytes and return its file id (``<user_id>_<hex>``)."""
    name = client_basename(filename)
    if length <= 0:
        raise ValidationError.for_field("Upload-Length", f"{name} is empty.")
    if await _exists(storage, area, name):
        raise Conflict(f"{name} was already uploaded{_to(area)}.")
    file_id = f"{user_id}_{uuid.uuid4().hex}"
    info = TusInfo(filename=name, length=length, user_id=user_id)
    await storage.put(
        layout.tus_prefix(area, file_id) + _INFO,
        msgspec.json.encode(info),
        content_type="application/json",
    )
    return file_id


async def _info(storage: StorageBackend, area: UploadArea, file_id: str, user_id: int) -> TusInfo:
    missing = NotFound(f"Upload {file_id}{_of(area)} not found.")
    if not _FILE_ID.match(file_id):
        raise missing
    try:
        raw = await storage.read(layout.tus_prefix(area, file_id) + _INFO)
    except ObjectNotFound:
        raise missing from None
    info = msgspec.json.decode(raw, type=TusInfo)
    # another user's upload is not theirs to see
    if info.user_id != user_id:
        raise missing
    return info


async def _offset(storage: StorageBackend, area: UploadArea, file_id: str) -> int:
    return sum([part.size async for part in storage.list(layout.tus_prefix(area, file_id) + _PARTS)])


async def tus_status(
    storage: StorageBackend, area: UploadArea, file_id: str, user_id: int
) -> tuple[int, int]:
    """``(offset, length)`` of an upload in progress."""
    info = await _info(storage, area, file_id, user_id)
    return await _offset(storage, area, file_id), info.length


async def tus_append(
    storage: StorageBackend,
    area: UploadArea,
    file_id: str,
    user_id: int,
    offset: int,
    chunks: AsyncIterable[bytes],
) -> int:
    """Append one PATCH body at ``offset`` and return the new offset; the last one assembles the file."""
    info = await _info(storage, area, file_id, user_id)
    current = await _offset(storage, area, file_id)
    if offset != current:
        raise Conflict(
            f"Upload-Offset {offset} does not match the current offset {current} of {info.filename}."
        )
    received = 0

    async def counted() -> AsyncIterator[bytes]:
        nonlocal received
        async for chunk in chunks:
            received += len(chunk)
            if offset + received > info.length:
                raise PayloadTooLarge(
                    f"The data for {info.filename} goes past its Upload-Length of {info.length} bytes."
                )
            yield chunk

    prefix = layout.tus_prefix(area, file_id)
    part = f"{prefix}{_PARTS}{offset:020d}"
    # a backend stores nothing when the iterable raises, so a refused body leaves no part behind
    await storage.put(part, counted())
    if received == 0:
        await storage.delete(part)
    new_offset = offset + received
    if new_offset == info.length:
        await _assemble(storage, area, prefix, info)
    return new_offset


async def _assemble(storage: StorageBackend, area: UploadArea, prefix: str, info: TusInfo) -> None:
    parts = [part.key async for part in storage.list(prefix + _PARTS)]

    async def content() -> AsyncIterator[bytes]:
        for key in parts:
            async with await storage.get(key) as stream:
                async for chunk in stream:
                    yield chunk

    await storage.put(layout.upload_file(area, info.filename), content())
    await storage.delete_prefix(prefix)


__all__ = [
    "clear",
    "client_basename",
    "save_file",
    "tus_append",
    "tus_create",
    "tus_status",
    "uploaded_names",
]
