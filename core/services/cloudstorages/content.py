"""What is in a cloud storage: its status, its content one "folder" and one page at a time
(CVAT's ``content-v2``), the permissions it grants, and a preview of its first image.

Object stores have no folders, only keys: a folder is the part of a key up to a ``/``. A page
lists the files and folders directly under ``prefix``; the ``next`` token is where the next
page begins (the last key seen, or past every key of the last folder), so paging needs no state
on the server.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import mimetypes
from collections.abc import AsyncGenerator
from pathlib import PurePosixPath

from annota.core.cloud import BucketForbidden
from annota.core.errors import NotFound, StorageError, ValidationError
from annota.core.media.images import is_image_name
from annota.core.schemas.cloudstorages import CloudStorageContent, FileInfo, Status
from annota.core.services.cloudstorages.bucket_media import read_manifest
from annota.core.services.frames import thumbnail
from annota.core.storage import InvalidObjectKey, StorageBackend, validate_key, validate_prefix

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
#: past every key of a folder: no key segment begins with the highest code point
_PAST_FOLDER = "/\U0010ffff"


async def status(backend: StorageBackend) -> Status:
    """``AVAILABLE`` when the bucket can be listed with the credentials, ``NOT_FOUND`` when it does
    not exist (or its endpoint cannot be reached), ``FORBIDDEN`` when the credentials are refused."""
    try:
        await backend.check()
    except BucketForbidden:
        return "FORBIDDEN"
    except StorageError:
        return "NOT_FOUND"
    return "AVAILABLE"


def actions_for(current: Status) -> list[str]:
    """The permissions the bucket grants: ``read`` and ``write`` while it can be listed, as CVAT
    answers for a bucket without a bucket policy (nothing is written to find out), else none."""
    return ["read", "write"] if current == "AVAILABLE" else []


def _encode_token(start_after: str) -> str:
    return base64.urlsafe_b64encode(start_after.encode()).decode().rstrip("=")


def _decode_token(token: str, prefix: str) -> str:
    try:
        start_after = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValidationError.for_field("next_token", "Not a token this server gave.") from None
    if not start_after.startswith(prefix):
        raise ValidationError.for_field("next_token", "The token belongs to another prefix.")
    return start_after


def check_prefix(prefix: str) -> str:
    try:
        return validate_prefix(prefix)
    except InvalidObjectKey as exc:
        raise ValidationError.for_field("prefix", str(exc)) from None


def _mime_type(name: str) -> str:
    if name.endswith(".jsonl"):
        return "manifest"
    kind = (mimetypes.guess_type(name, strict=False)[0] or "unknown").split("/")[0]
    return kind if kind in ("image", "video", "text") else "unknown"


async def _entries(
    backend: StorageBackend, prefix: str, start_after: str | None, batch: int
) -> AsyncGenerator[tuple[str, FileInfo], None]:
    """What lies directly under ``prefix``, in key order, each with the key the next page would
    start after. A folder is listed once, then skipped with a new listing past its keys. An empty
    object named like a folder is the folder's marker (consoles make them; some clients list
    ``dir/`` as ``dir``) and is left out."""
    pending: tuple[str, FileInfo] | None = None
    while True:
        restart: str | None = None
        async for info in backend.list(prefix, page_size=batch, start_after=start_after):
            rest = info.key[len(prefix) :]
            if not rest:
                continue  # the marker of the prefix itself
            if "/" in rest:
                folder = rest.split("/", 1)[0]
                if pending is not None and pending[0] != prefix + folder:
                    yield pending
                pending = None
                restart = prefix + folder + _PAST_FOLDER
                yield restart, FileInfo(name=folder, type="DIR", mime_type="DIR")
                break
            if pending is not None:
                yield pending
                pending = None
            entry = (info.key, FileInfo(name=rest, type="REG", mime_type=_mime_type(rest)))
            if info.size == 0:
                pending = entry
            else:
                yield entry
        if restart is None:
            break
        start_after = restart
    if pending is not None:
        yield pending


async def listing(
    backend: StorageBackend, prefix: str, next_token: str | None, page_size: int
) -> CloudStorageContent:
    """One page of what lies directly under ``prefix``: folders (``DIR``) and files (``REG``)."""
    check_prefix(prefix)
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationError.for_field("page_size", f"Must be between 1 and {MAX_PAGE_SIZE}.")
    start_after = _decode_token(next_token, prefix) if next_token else None
    page: list[tuple[str, FileInfo]] = []
    entries = _entries(backend, prefix, start_after, page_size + 1)
    try:
        async for entry in entries:
            page.append(entry)
            if len(page) > page_size:
                break
    finally:
        await entries.aclose()
    more = len(page) > page_size
    page = page[:page_size]
    return CloudStorageContent(
        content=[info for _, info in page], next=_encode_token(page[-1][0]) if more and page else None
    )


async def read_manifest_names(backend: StorageBackend, manifest: str) -> list[str]:
    """The file names (with extension) an images manifest in the bucket lists, in its order."""
    images = await read_manifest(backend, manifest)
    folder = manifest.rpartition("/")[0]
    names = [image.name + image.extension for image in images]
    return [str(PurePosixPath(folder, name)) for name in names] if folder else names


def manifest_listing(
    names: list[str], prefix: str, next_token: str | None, page_size: int
) -> CloudStorageContent:
    """``listing`` over the files a manifest names instead of the bucket's keys."""
    check_prefix(prefix)
    start_after = _decode_token(next_token, prefix) if next_token else None
    content: list[FileInfo] = []
    seen: set[str] = set()
    last: str | None = None
    for name in sorted(n for n in names if n.startswith(prefix)):
        if start_after is not None and name <= start_after:
            continue
        if len(content) == page_size:
            return CloudStorageContent(content=content, next=_encode_token(last) if last else None)
        rest = name[len(prefix) :]
        if "/" in rest:
            folder = rest.split("/", 1)[0]
            if folder in seen:
                continue
            seen.add(folder)
            content.append(FileInfo(name=folder, type="DIR", mime_type="DIR"))
            start_after = last = prefix + folder + _PAST_FOLDER
            continue
        content.append(FileInfo(name=rest, type="REG", mime_type=_mime_type(rest)))
        last = name
    return CloudStorageContent(content=content, next=None)


async def first_image(backend: StorageBackend, manifests: list[str]) -> str:
    """The key of the first image: of the first manifest if there is one, else of the bucket."""
    if manifests:
        names = await read_manifest_names(backend, manifests[0])
        if names:
            return names[0]
    async for info in backend.list(""):
        if is_image_name(info.key):
            return info.key
    raise NotFound("Cloud storage preview not found: the bucket holds no image.")


async def preview(backend: StorageBackend, manifests: list[str]) -> bytes:
    """A JPEG thumbnail of the first image."""
    key = validate_key(await first_image(backend, manifests))
    return await asyncio.to_thread(thumbnail, await backend.read(key), key)


__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "actions_for",
    "check_prefix",
    "first_image",
    "listing",
    "manifest_listing",
    "preview",
    "read_manifest_names",
    "status",
]
