"""CVAT's upload protocol over HTTP, shared by every endpoint that takes files: a task's media,
annotation and dataset imports, backups.

A creation endpoint answers ``Upload-Start`` (forget earlier uploads), TUS creation
(``Upload-Length`` → 201 with an absolute ``Location``), ``Upload-Multiple`` batches and
``Upload-Finish``; TUS chunks go to ``<creation path>/<file id>`` with HEAD and PATCH. Where the
files land is an *upload area* of ``core.services.uploads`` (a task's media, or one user's import).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from annota.core.errors import PayloadTooLarge, RequestInProgress, ValidationError
from annota.core.media.layout import UploadArea
from annota.core.services import uploads
from annota.core.storage import CHUNK_SIZE
from annota.runtime import web

TUS_VERSION = "1.0.0"
TUS_CONTENT_TYPE = "application/offset+octet-stream"
#: files per multipart request: cvat-sdk groups files by size (100 MiB), so small files come in many
MAX_FORM_FILES = 100_000
MAX_FORM_FIELDS = 100_000
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


class TusFileId(Convertor[str]):
    """A TUS file id (``<user_id>_<hex>``), so chunk routes never shadow sibling paths."""

    regex = r"[0-9]+_[0-9a-f]{32}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("tus_file_id", TusFileId())


def user_id(request: Request) -> int:
    uid = web.require_user(request).user_id
    assert uid is not None
    return uid


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")


def check_declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)


def limited(request: Request, limit: int) -> Request:
    """The same request, its body refused with 413 past ``limit`` bytes while it is read."""
    check_declared_length(request, limit)
    received = 0
    receive = request.receive

    async def limited_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large(limit)
        return message

    return Request(request.scope, limited_receive)


def limited_stream(request: Request, limit: int) -> AsyncIterator[bytes]:
    check_declared_length(request, limit)

    async def stream() -> AsyncIterator[bytes]:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise too_large(limit)
            yield chunk

    return stream()


def is_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return content_type in _FORM_TYPES


async def file_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK_SIZE):
        yield chunk


async def store_form_files(request: Request, area: UploadArea, items: list[tuple[str, Any]]) -> list[str]:
    """Store every file of the form; like CVAT's clients, any field name may carry them."""
    storage = web.state(request).storage
    stored = []
    for _key, value in items:
        if isinstance(value, UploadFile):
            stored.append(await uploads.save_file(storage, area, value.filename or "", file_chunks(value)))
    return stored


async def read_form(request: Request) -> Any:
    limit = web.state(request).settings.max_upload_body_size
    return await limited(request, limit).form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)


@contextlib.asynccontextmanager
async def nothing_staged_on_failure(request: Request, area: UploadArea) -> AsyncIterator[None]:
    """Forget every upload of ``area`` when the request fails or is refused (a file twice, a bad
    option, the queue away), so that a client that starts over with the same files succeeds. The
    same request still under way keeps them: its job reads them."""
    try:
        yield
    except RequestInProgress:
        raise
    except BaseException:
        await asyncio.shield(uploads.clear(web.state(request).storage, area))
        raise


def tus_metadata(header: str) -> dict[str, str]:
    """TUS ``Upload-Metadata``: ``key base64value`` pairs separated by commas."""
    result: dict[str, str] = {}
    for pair in header.split(","):
        key, _, encoded = pair.strip().partition(" ")
        if not key:
            continue
        try:
            result[key] = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise ValidationError.for_field(
                "Upload-Metadata", f"The value of {key!r} is not base64."
            ) from None
    return result


async def tus_create(request: Request, area: UploadArea, location: str) -> Response:
    """Start a TUS upload into ``area``; ``location`` is the creation endpoint's absolute URL."""
    settings = web.state(request).settings
    raw_length = request.headers["upload-length"]
    if not raw_length.isdigit():
        raise ValidationError.for_field(
            "Upload-Length", f"Must be a non-negative integer, got {raw_length!r}."
        )
    length = int(raw_length)
    if length > settings.max_tus_upload_size:
        raise PayloadTooLarge(
            f"Upload-Length {length} is larger than the limit of {settings.max_tus_upload_size} bytes."
        )
    filename = tus_metadata(request.headers.get("upload-metadata", "")).get("filename")
    if not filename:
        raise ValidationError.for_field("Upload-Metadata", "The filename is required.")
    storage = web.state(request).storage
    file_id = await uploads.tus_create(storage, area, user_id(request), filename, length)
    headers = {
        "Location": f"{location.rstrip('/')}/{file_id}",
        "Upload-Filename": uploads.client_basename(filename),
        "Upload-Offset": "0",
        "Tus-Resumable": TUS_VERSION,
        "Tus-Version": TUS_VERSION,
        "Tus-Max-Size": str(settings.max_tus_upload_size),
    }
    return Response(status_code=201, headers=headers)


async def tus_status(request: Request, area: UploadArea) -> Response:
    """Answer a TUS HEAD: the offset and length of an upload in progress."""
    file_id: str = request.path_params["file_id"]
    offset, length = await uploads.tus_status(web.state(request).storage, area, file_id, user_id(request))
    headers = {
        "Upload-Offset": str(offset),
        "Upload-Length": str(length),
        "Tus-Resumable": TUS_VERSION,
        "Cache-Control": "no-store",
    }
    return Response(status_code=200, headers=headers)


async def tus_append(request: Request, area: UploadArea) -> Response:
    """Answer a TUS PATCH: append the body at ``Upload-Offset``."""
    file_id: str = request.path_params["file_id"]
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != TUS_CONTENT_TYPE:
        return web.json_response(
            {"detail": f"Content-Type must be {TUS_CONTENT_TYPE}, got {content_type or 'none'!r}."},
            status_code=415,
        )
    raw_offset = request.headers.get("upload-offset", "")
    if not raw_offset.isdigit():
        raise ValidationError.for_field(
            "Upload-Offset", f"Must be a non-negative integer, got {raw_offset!r}."
        )
    storage = web.state(request).storage
    uid = user_id(request)
    offset, length = await uploads.tus_status(storage, area, file_id, uid)
    declared = request.headers.get("content-length", "")
    if int(raw_offset) == offset and declared.isdigit() and offset + int(declared) > length:
        raise PayloadTooLarge(f"The chunk goes past the Upload-Length of {length} bytes.")
    limit = web.state(request).settings.max_upload_body_size
    new_offset = await uploads.tus_append(
        storage, area, file_id, uid, int(raw_offset), limited_stream(request, limit)
    )
    return Response(status_code=204, headers={"Upload-Offset": str(new_offset), "Tus-Resumable": TUS_VERSION})


async def single_file_upload(
    request: Request,
    area: UploadArea,
    *,
    location: str,
    field: str,
    start: Callable[[str], Awaitable[Response]],
    check: Callable[[], object] = lambda: None,
) -> Response:
    """The creation endpoint of an import that takes one file (annotations, datasets, backups).

    ``Upload-Finish`` (``?filename=``) and the one-shot multipart request (the file in ``field``)
    hand the stored file's name to ``start``, which starts the job; ``Upload-Start`` forgets earlier
    uploads, TUS creation answers with ``location`` plus the file id. ``check`` validates the
    query of requests that begin an upload. A request that fails leaves nothing staged.
    """
    async with nothing_staged_on_failure(request, area):
        return await _single_file_upload(
            request, area, location=location, field=field, start=start, check=check
        )


async def _single_file_upload(
    request: Request,
    area: UploadArea,
    *,
    location: str,
    field: str,
    start: Callable[[str], Awaitable[Response]],
    check: Callable[[], object],
) -> Response:
    headers = request.headers
    if "upload-finish" in headers:
        filename = request.query_params.get("filename", "")
        if not filename:
            raise ValidationError.for_field("filename", "The uploaded file's name is required.")
        return await start(uploads.client_basename(filename, "filename"))
    if "upload-length" in headers:
        return await tus_create(request, area, location)
    check()
    storage = web.state(request).storage
    if "upload-start" in headers:
        await uploads.clear(storage, area)
        return Response(status_code=202)
    if not is_form(request):
        raise ValidationError.for_field(field, f"Send the file as multipart/form-data ({field}).")
    await uploads.clear(storage, area)
    form = await read_form(request)
    try:
        stored = await store_form_files(request, area, form.multi_items())
    finally:
        await form.close()
    if len(stored) != 1:
        raise ValidationError.for_field(field, f"Send exactly one file, got {len(stored)}.")
    return await start(stored[0])


__all__ = [
    "nothing_staged_on_failure",
    "single_file_upload",
    "TUS_CONTENT_TYPE",
    "TUS_VERSION",
    "file_chunks",
    "is_form",
    "limited",
    "limited_stream",
    "read_form",
    "store_form_files",
    "too_large",
    "tus_append",
    "tus_create",
    "tus_metadata",
    "tus_status",
    "user_id",
]
