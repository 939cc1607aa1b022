"""``POST /api/tasks/{id}/data``: CVAT's upload protocol for a task's media, and the TUS chunk endpoint.

One creation endpoint answers several requests, told apart by their headers: ``Upload-Start``,
TUS creation (``Upload-Length``), ``Upload-Multiple`` batches and ``Upload-Finish`` (or none of
them: the one-shot upload), which validates the ``DataRequest`` and starts the background job that
builds the task's media. Upload state lives in the storage backend (``core.services.uploads``).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from annota.core.db.tables import CloudStorage
from annota.core.errors import RequestInProgress, ValidationError
from annota.core.media import layout
from annota.core.schemas.common import RqId
from annota.core.schemas.data import DataRequest
from annota.core.services import share, upload_data, uploads
from annota.core.services import tasks as service
from annota.core.services.cloudstorages import bucket_media
from annota.core.services.cloudstorages import storages as cloud_storages
from annota.runtime import web
from annota.runtime.api import uploads as upload

TAGS = ["tasks"]

_INDEXED = re.compile(r"(?P<name>[a-z_]+)\[(?P<index>\d+)\]\Z")
_FIELDS = {field.name: field for field in msgspec.structs.fields(DataRequest)}
_LIST_FIELDS = {"server_files", "server_files_exclude", "remote_files", "upload_file_order"}
_JSON_FIELDS = {"job_file_mapping", "validation_params"}


# --- request helpers ------------------------------------------------------------------------


async def _task_for_upload(request: Request, *, start: bool = False) -> int:
    """The task's id, once the caller may upload its data and it has none yet; with ``start``, the
    task gets its data row if it has none (CVAT makes it on the upload's first request)."""
    task_id = web.path_int(request)
    async with web.transaction(request) as session:
        task = await service.get(session, task_id)
        await web.authorize(request, "upload:data", await service.resource(session, task))
        if task.media_type != "":
            raise ValidationError(f"Task {task_id} already has data: adding more data is not supported.")
        if start:
            await upload_data.start(session, task)
    return task_id


async def _forget_data(request: Request, task_id: int) -> None:
    async with web.transaction(request) as session:
        data_id = await upload_data.forget(session, task_id)
    if data_id is not None:
        await web.state(request).storage.delete_prefix(layout.data_prefix(data_id))


@asynccontextmanager
async def _nothing_left_on_failure(request: Request, task_id: int) -> AsyncIterator[None]:
    """A refused request leaves neither uploads nor the task's data row: the client's next try
    starts from scratch. A creation already under way keeps both: its job reads them."""
    try:
        async with upload.nothing_staged_on_failure(request, task_id):
            yield
    except RequestInProgress:
        raise
    except BaseException:
        await asyncio.shield(_forget_data(request, task_id))
        raise


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


async def _check_cloud_storage(request: Request, task_id: int, cloud_storage_id: int) -> CloudStorage:
    """The cloud storage exists, the caller may see it (403 otherwise), and it is in the task's
    organization (or the sandbox, for a sandbox task)."""
    async with web.transaction(request) as session:
        row = await bucket_media.usable_storage(session, cloud_storage_id)
        await web.authorize(request, "view", cloud_storages.resource(row))
        task = await service.get(session, task_id)
        bucket_media.check_same_context(row, task.organization_id)
        session.expunge(row)
    return row


async def _validate(request: Request, task_id: int, data: DataRequest) -> DataRequest:
    """Refuse what cannot work before a job is started; returns the request with its client files."""
    if data.validation_params is not None:
        raise ValidationError.for_field(
            "validation_params", "Validation frames (ground truth, honeypots) are not supported."
        )
    names = await uploads.uploaded_names(web.state(request).storage, task_id)
    if data.cloud_storage_id is not None:
        if names or data.remote_files:
            raise ValidationError(
                "Use only one source of media files, not a cloud storage and uploaded or remote files."
            )
        row = await _check_cloud_storage(request, task_id, data.cloud_storage_id)
        data = bucket_media.with_storage_manifest(data, row)
        bucket_media.check_request(data)
        return msgspec.structs.replace(data, client_files=[], storage="cloud_storage")
    sources = [
        field
        for field, present in (
            ("client_files", names),
            ("server_files", data.server_files),
            ("remote_files", data.remote_files),
        )
        if present
    ]
    # no source at all is accepted, as in CVAT: the request then fails with CVAT's message
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


async def _multiple(request: Request, task_id: int) -> Response:
    if not upload.is_form(request):
        raise ValidationError("Upload-Multiple needs a multipart/form-data body.")
    form = await upload.read_form(request)
    try:
        await upload.store_form_files(request, task_id, form.multi_items())
    finally:
        await form.close()
    return Response(status_code=200)


async def _finish(request: Request, task_id: int) -> Response:
    if upload.is_form(request):
        form = await upload.read_form(request)
        try:
            items = form.multi_items()
            await upload.store_form_files(request, task_id, items)
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
    task_id = await _task_for_upload(request, start=True)
    headers = request.headers
    async with _nothing_left_on_failure(request, task_id):
        if "upload-finish" in headers:
            return await _finish(request, task_id)
        if "upload-start" in headers:
            return await _start(request, task_id)
        if "upload-length" in headers:
            location = f"{web.base_url(request)}/api/tasks/{task_id}/data"
            return await upload.tus_create(request, task_id, location)
        if "upload-multiple" in headers:
            return await _multiple(request, task_id)
        # no upload header: the one-shot upload, files and options in one request
        return await _finish(request, task_id)


# --- the TUS chunk endpoint -----------------------------------------------------------------


@web.operation("The offset and length of a TUS upload in progress", tags=TAGS)
async def upload_status(request: Request) -> Response:
    return await upload.tus_status(request, await _task_for_upload(request))


@web.operation("Append a chunk to a TUS upload", tags=TAGS, status=204)
async def append_chunk(request: Request) -> Response:
    return await upload.tus_append(request, await _task_for_upload(request))


routes = [
    ("/api/tasks/{id:int}/data", create_data, ["POST"]),
    ("/api/tasks/{id:int}/data/{file_id:tus_file_id}", upload_status, ["HEAD"]),
    ("/api/tasks/{id:int}/data/{file_id:tus_file_id}", append_chunk, ["PATCH"]),
]
