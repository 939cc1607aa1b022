"""``POST /api/tasks/{id}/data``: CVAT's upload protocol for a task's media, and the TUS chunk endpoint.

One creation endpoint answers several requests, told apart by their headers: ``Upload-Start``,
TUS creation (``Upload-Length``), ``Upload-Multiple`` batches and ``Upload-Finish`` (or none of
them: the one-shot upload), which validates the ``DataRequest`` and starts the background job that
builds the task's media. Upload state lives in the storage backend (``core.services.uploads``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import msgspec
from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from annota.core.errors import PayloadTooLarge, ValidationError
from annota.core.schemas.common import RqId
from annota.core.schemas.data import DataRequest
from annota.core.services import share, uploads
from annota.core.services import tasks as service
from annota.core.storage import CHUNK_SIZE
from annota.runtime import web

TAGS = ["tasks"]
TUS_VERSION = "1.0.0"
TUS_CONTENT_TYPE = "application/offset+octet-stream"
#: files per multipart request: cvat-sdk groups files by size (100 MiB), so small files come in many
MAX_FORM_FILES = 100_000
MAX_FORM_FIELDS = 100_000

_INDEXED = re.compile(r"(?P<name>[a-z_]+)\[(?P<index>\d+)\]\Z")
_FIELDS = {field.name: field for field in msgspec.structs.fields(DataRequest)}
_LIST_FIELDS = {"server_files", "server_files_exclude", "remote_files", "upload_file_order"}
_JSON_FIELDS = {"job_file_mapping", "validation_params"}
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


class TusFileId(Convertor[str]):
    """A TUS file id (``<user_id>_<hex>``), so the chunk route never shadows ``data/meta``."""

    regex = r"[0-9]+_[0-9a-f]{32}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("tus_file_id", TusFileId())


# --- request helpers ------------------------------------------------------------------------


async def _task_for_upload(request: Request) -> int:
    """The task's id, once the caller may upload its data and it has none yet."""
    task_id = web.path_int(request)
    async with web.transaction(request) as session:
        task = await service.get(session, task_id)
        await web.authorize(request, "upload:data", await service.resource(session, task))
        if task.data_id is not None or task.media_type != "":
            raise ValidationError(f"Task {task_id} already has data: adding more data is not supported.")
    return task_id


def _user_id(request: Request) -> int:
    user_id = web.require_user(request).user_id
    assert user_id is not None
    return user_id


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")


def _check_declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)


def _limited(request: Request, limit: int) -> Request:
    """The same request, its body refused with 413 past ``limit`` bytes while it is read."""
    _check_declared_length(request, limit)
    received = 0
    receive = request.receive

    async def limited_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _too_large(limit)
        return message

    return Request(request.scope, limited_receive)


def _limited_stream(request: Request, limit: int) -> AsyncIterator[bytes]:
    _check_declared_length(request, limit)

    async def stream() -> AsyncIterator[bytes]:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise _too_large(limit)
            yield chunk

    return stream()


def _is_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return content_type in _FORM_TYPES


async def _file_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK_SIZE):
        yield chunk


async def _store_form_files(request: Request, task_id: int, items: list[tuple[str, Any]]) -> list[str]:
    """Store every file of the form; like CVAT's clients, any field name may carry them."""
    storage = web.state(request).storage
    stored = []
    for _key, value in items:
        if isinstance(value, UploadFile):
            stored.append(
                await uploads.save_file(storage, task_id, value.filename or "", _file_chunks(value))
            )
    return stored


async def _read_form(request: Request) -> Any:
    limit = web.state(request).settings.max_upload_body_size
    return await _limited(request, limit).form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)


# --- DataRequest from a form ----------------------------------------------------------------


def _json_value(field: str, raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise ValidationError.for_field(field, f"Must be JSON, got {raw!r}.") from None


def _scalar(field: str, raw: str) -> Any:
    if raw.strip() in ("", "null", "None") and _FIELDS[field].default is None:
        return None
    return raw


def _form_options(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """The DataRequest fields of a form: lists from ``name[i]`` or repeated fields, numbers and
    booleans as text, nested values as JSON; files and unknown fields are left out."""
    values: dict[str, Any] = {}
    indexed: dict[str, list[tuple[int, str]]] = {}
    for key, value in items:
        if not isinstance(value, str):
            continue
        item = _INDEXED.match(key)
        if item and item["name"] in _LIST_FIELDS:
            indexed.setdefault(item["name"], []).append((int(item["index"]), value))
        elif key in _LIST_FIELDS:
            parsed = _json_value(key, value) if value.lstrip().startswith("[") else [value]
            if not isinstance(parsed, list):
                raise ValidationError.for_field(key, "Must be a list.")
            values.setdefault(key, []).extend(parsed)
        elif key in _JSON_FIELDS:
            values[key] = _json_value(key, value)
        elif key in _FIELDS and key != "client_files":
            values[key] = _scalar(key, value)
    for name, pairs in indexed.items():
        values.setdefault(name, []).extend(value for _, value in sorted(pairs, key=lambda pair: pair[0]))
    return values


def _convert(values: dict[str, Any]) -> DataRequest:
    try:
        return msgspec.convert(values, DataRequest, strict=False)
    except msgspec.ValidationError as exc:
        raise ValidationError(web.validation_detail(str(exc))) from exc


# --- validation -----------------------------------------------------------------------------


def _check_remote_files(urls: list[str]) -> None:
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError.for_field("remote_files", f"{url!r} is not an http or https URL.")


async def _check_server_files(request: Request, data: DataRequest) -> None:
    share_dir: str = web.state(request).settings.share_dir
    if not share_dir:
        raise ValidationError.for_field("server_files", "This server has no share directory configured.")
    files = await asyncio.to_thread(share.resolve, share_dir, data.server_files, data.server_files_exclude)
    if not files:
        raise ValidationError.for_field(
            "server_files", f"{', '.join(data.server_files)} names no files in the share."
        )


async def _validate(request: Request, task_id: int, data: DataRequest) -> DataRequest:
    """Refuse what cannot work before a job is started; returns the request with its client files."""
    if data.cloud_storage_id is not None:
        raise ValidationError.for_field("cloud_storage_id", "Cloud storages are not supported.")
    if data.validation_params is not None:
        raise ValidationError.for_field(
            "validation_params", "Validation frames (ground truth, honeypots) are not supported."
        )
    names = await uploads.uploaded_names(web.state(request).storage, task_id)
    sources = [
        field
        for field, present in (
            ("client_files", names),
            ("server_files", data.server_files),
            ("remote_files", data.remote_files),
        )
        if present
    ]
    if not sources:
        raise ValidationError(f"No media files were uploaded or named for task {task_id}.")
    if len(sources) > 1:
        raise ValidationError(f"Use only one source of media files, not {' and '.join(sources)}.")
    if data.upload_file_order and data.sorting_method != "predefined":
        raise ValidationError.for_field("upload_file_order", 'Only allowed with sorting_method "predefined".')
    if names:
        unknown = sorted(set(data.upload_file_order) - set(names))
        if unknown:
            raise ValidationError.for_field("upload_file_order", f"{unknown[0]} was not uploaded.")
    _check_remote_files(data.remote_files)
    if data.server_files:
        await _check_server_files(request, data)
    return msgspec.structs.replace(data, client_files=names)


# --- the creation endpoint ------------------------------------------------------------------


async def _start(request: Request, task_id: int) -> Response:
    await uploads.clear(web.state(request).storage, task_id)
    return Response(status_code=202)


def _metadata(header: str) -> dict[str, str]:
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


async def _tus_create(request: Request, task_id: int) -> Response:
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
    filename = _metadata(request.headers.get("upload-metadata", "")).get("filename")
    if not filename:
        raise ValidationError.for_field("Upload-Metadata", "The filename is required.")
    storage = web.state(request).storage
    file_id = await uploads.tus_create(storage, task_id, _user_id(request), filename, length)
    headers = {
        "Location": f"{web.base_url(request)}/api/tasks/{task_id}/data/{file_id}",
        "Upload-Filename": uploads.client_basename(filename),
        "Upload-Offset": "0",
        "Tus-Resumable": TUS_VERSION,
        "Tus-Version": TUS_VERSION,
        "Tus-Max-Size": str(settings.max_tus_upload_size),
    }
    return Response(status_code=201, headers=headers)


async def _multiple(request: Request, task_id: int) -> Response:
    if not _is_form(request):
        raise ValidationError("Upload-Multiple needs a multipart/form-data body.")
    form = await _read_form(request)
    try:
        await _store_form_files(request, task_id, form.multi_items())
    finally:
        await form.close()
    return Response(status_code=200)


async def _finish(request: Request, task_id: int) -> Response:
    if _is_form(request):
        form = await _read_form(request)
        try:
            items = form.multi_items()
            await _store_form_files(request, task_id, items)
            data = _convert(_form_options(items))
        finally:
            await form.close()
    else:
        data = web.decode(await web.read_body(request), DataRequest)
    data = await _validate(request, task_id, data)
    rq_id = await web.start_request(
        request,
        action="create",
        target="task",
        target_id=task_id,
        job_name="create_task_data",
        queue="import",
        kwargs={"task_id": task_id, "options": msgspec.to_builtins(data)},
        task_id=task_id,
    )
    return web.json_response({"rq_id": rq_id}, status_code=202)


# the body is a DataRequest as JSON (Upload-Finish, server_files, remote_files) or as a multipart form
@web.operation(
    "Upload a task's media (Upload-Start, TUS, Upload-Multiple, Upload-Finish) and start processing it",
    tags=TAGS,
    request=DataRequest,
    response=RqId,
    status=202,
    responses={200: None, 201: None},
)
async def create_data(request: Request) -> Response:
    task_id = await _task_for_upload(request)
    headers = request.headers
    if "upload-finish" in headers:
        return await _finish(request, task_id)
    if "upload-start" in headers:
        return await _start(request, task_id)
    if "upload-length" in headers:
        return await _tus_create(request, task_id)
    if "upload-multiple" in headers:
        return await _multiple(request, task_id)
    # no upload header: the one-shot upload, files and options in one request
    return await _finish(request, task_id)


# --- the TUS chunk endpoint -----------------------------------------------------------------


@web.operation("The offset and length of a TUS upload in progress", tags=TAGS)
async def upload_status(request: Request) -> Response:
    task_id = await _task_for_upload(request)
    file_id: str = request.path_params["file_id"]
    offset, length = await uploads.tus_status(web.state(request).storage, task_id, file_id, _user_id(request))
    headers = {
        "Upload-Offset": str(offset),
        "Upload-Length": str(length),
        "Tus-Resumable": TUS_VERSION,
        "Cache-Control": "no-store",
    }
    return Response(status_code=200, headers=headers)


@web.operation("Append a chunk to a TUS upload", tags=TAGS, status=204)
async def append_chunk(request: Request) -> Response:
    task_id = await _task_for_upload(request)
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
    user_id = _user_id(request)
    offset, length = await uploads.tus_status(storage, task_id, file_id, user_id)
    declared = request.headers.get("content-length", "")
    if int(raw_offset) == offset and declared.isdigit() and offset + int(declared) > length:
        raise PayloadTooLarge(f"The chunk goes past the Upload-Length of {length} bytes.")
    limit = web.state(request).settings.max_upload_body_size
    new_offset = await uploads.tus_append(
        storage, task_id, file_id, user_id, int(raw_offset), _limited_stream(request, limit)
    )
    return Response(status_code=204, headers={"Upload-Offset": str(new_offset), "Tus-Resumable": TUS_VERSION})


routes = [
    ("/api/tasks/{id:int}/data", create_data, ["POST"]),
    ("/api/tasks/{id:int}/data/{file_id:tus_file_id}", upload_status, ["HEAD"]),
    ("/api/tasks/{id:int}/data/{file_id:tus_file_id}", append_chunk, ["PATCH"]),
]
