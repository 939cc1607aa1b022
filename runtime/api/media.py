"""Media endpoints: chunks, frames, context images, ``data/meta`` and previews of tasks, jobs, projects.

Every media body carries ``X-Checksum`` (CRC-32 of the complete body, in decimal as CVAT sends it),
``X-Updated-Date`` (when the task's chunks were made), a strong ``ETag`` derived from the checksum and
size (the same on every server, whatever the storage backend), answers ``If-None-Match`` with 304 and
one ``Range`` with 206. Stored chunks are streamed from storage, never loaded whole.

With ``serve_media_by_redirect = true``, a body that is a whole stored object (a chunk, a preview,
an image frame in original quality) is answered, once the caller is authorized, with a 307 to the
storage backend's presigned URL, so the bytes go from the bucket to the client directly; a backend
that gives no URL (``local``), or a body made on the fly, is served as before.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from annota.core.errors import ValidationError
from annota.core.media.layout import QUALITIES, Quality
from annota.core.schemas.data import DataMetaRead, DataMetaWrite
from annota.core.services import data_meta
from annota.core.services import frames as provider
from annota.core.services import jobs as job_service
from annota.core.services import projects as project_service
from annota.core.services import tasks as task_service
from annota.core.storage import StorageBackend
from annota.runtime import web
from annota.runtime.api import request_body

DATA_TYPES = ("chunk", "frame", "context_image")
CACHE_CONTROL = "private, max-age=3600"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)\Z")

DATA_QUERY = {
    "type": "chunk | frame | context_image",
    "number": "task-relative frame number, or task chunk number",
    "index": "chunk number from 0 (for a job, counted from the job's first frame; CVAT 2.x clients)",
    "quality": "original | compressed (default)",
}
DATA_RESPONSES = {
    200: "application/octet-stream",
    206: "application/octet-stream",
    304: None,
    307: None,
    416: None,
}
#: how long a presigned URL a client is redirected to stays valid
REDIRECT_EXPIRES = dt.timedelta(minutes=15)


# --- request parameters -----------------------------------------------------------------------


def _choice(request: Request, name: str, choices: tuple[str, ...], default: str | None = None) -> str:
    value = request.query_params.get(name) or default
    if value is None:
        raise ValidationError.for_field(name, f"This parameter is required: one of {', '.join(choices)}.")
    if value not in choices:
        raise ValidationError.for_field(name, f"Must be one of {', '.join(choices)}, got {value!r}.")
    return value


def _quality(request: Request) -> Quality:
    return "original" if _choice(request, "quality", QUALITIES, "compressed") == "original" else "compressed"


def _optional_number(request: Request, name: str) -> int | None:
    number = web.query_int(request, name)
    if number is not None and number < 0:
        raise ValidationError.for_field(name, f"Must not be negative, got {number}.")
    return number


# --- responses --------------------------------------------------------------------------------


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """``(start, end)`` (end exclusive) for one satisfiable range, ``None`` to send everything
    (no header, several ranges, or one that cannot be parsed), ``False`` when unsatisfiable."""
    match = _RANGE.match(header.replace(" ", "")) if header else None
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        length = int(last)
        return (max(size - length, 0), size) if length > 0 and size > 0 else False
    start = int(first)
    end = int(last) + 1 if last else size
    if last and end <= start:
        return None
    if start >= size:
        return False
    return start, min(end, size)


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in candidates or etag in candidates


async def _stream(storage: StorageBackend, key: str, start: int, end: int) -> AsyncIterator[bytes]:
    async with await storage.get_range(key, start, end) as stream:
        async for chunk in stream:
            yield chunk


def body_response(
    request: Request, body: provider.Body, updated: dt.datetime, filename: str | None = None
) -> Response:
    """``body`` with its checksum headers, honouring ``If-None-Match`` and one ``Range``."""
    etag = f'"{body.checksum:08x}-{body.size:x}"'
    headers = {
        "ETag": etag,
        "X-Checksum": str(body.checksum),
        "X-Updated-Date": updated.isoformat(),
        "Cache-Control": CACHE_CONTROL,
        "Accept-Ranges": "bytes",
    }
    if filename:
        headers["Content-Disposition"] = f'inline; filename="{filename}"'
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    wanted = _byte_range(request.headers.get("range"), body.size)
    if wanted is False:
        headers["Content-Range"] = f"bytes */{body.size}"
        return Response(status_code=416, headers=headers)
    status = 200
    start, end = 0, body.size
    if isinstance(wanted, tuple):
        start, end = wanted
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{body.size}"
    if isinstance(body, provider.MemoryBody):
        return Response(
            body.content[start:end], status_code=status, headers=headers, media_type=body.media_type
        )
    headers["Content-Length"] = str(end - start)
    storage: StorageBackend = web.state(request).storage
    return StreamingResponse(
        _stream(storage, body.key, start, end),
        status_code=status,
        headers=headers,
        media_type=body.media_type,
    )


async def redirect_response(request: Request, key: str | None) -> Response | None:
    """A redirect to the object ``key`` in storage, when the server is set to serve media by
    redirect and the backend can presign a URL; else ``None``."""
    if key is None or not web.state(request).settings.serve_media_by_redirect:
        return None
    storage: StorageBackend = web.state(request).storage
    url = await storage.presigned_url(key, REDIRECT_EXPIRES)
    if url is None:
        return None
    # the URL is signed for this caller's request only: no shared cache may keep it
    return Response(status_code=307, headers={"Location": url, "Cache-Control": "private, max-age=60"})


async def media_response(
    request: Request, body: provider.Body, updated: dt.datetime, filename: str | None = None
) -> Response:
    """``body`` by redirect to its stored object when that is enabled and possible, else itself."""
    redirect = await redirect_response(request, body.key)
    return redirect or body_response(request, body, updated, filename)


# --- data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataQuery:
    """What ``GET .../data`` asks for, checked before anything is looked up: a frame or context
    images by ``number``, a chunk by ``number`` (counted as the task counts chunks) or by ``index``
    (counted from the first chunk of what is asked: the task, or the job)."""

    kind: str
    number: int
    quality: Quality
    #: True when ``number`` is a chunk ``index``
    by_index: bool = False

    @classmethod
    def parse(cls, request: Request) -> DataQuery:
        kind = _choice(request, "type", DATA_TYPES)
        quality = _quality(request)
        number = _optional_number(request, "number")
        index = _optional_number(request, "index") if kind == "chunk" else None
        if number is not None and index is not None:
            raise ValidationError.for_field("index", "Give either 'index' or 'number', not both.")
        if index is not None:
            return cls(kind, index, quality, by_index=True)
        if number is None:
            needed = "'index' (or the deprecated 'number')" if kind == "chunk" else "'number'"
            raise ValidationError.for_field("number", f"This parameter is required: {needed}.")
        return cls(kind, number, quality)


async def _data_response(
    request: Request, load: Callable[[AsyncSession], Awaitable[provider.Media]]
) -> Response:
    """The chunk, frame or context images ``DataQuery`` names, of the media ``load`` returns once
    it has authorized the caller."""
    query = DataQuery.parse(request)
    async with web.transaction(request) as session:
        media = await load(session)
        # the names are read while the session is open
        names = (
            await provider.context_names(session, media, query.number)
            if query.kind == "context_image"
            else []
        )
        original_key = (
            await provider.original_frame_key(session, media, query.number)
            if query.kind == "frame" and query.quality == "original"
            else None
        )
    # an image's original is a stored object of its own: redirect before reading anything
    redirect = await redirect_response(request, original_key)
    if redirect is not None:
        return redirect
    storage: StorageBackend = web.state(request).storage
    body: provider.Body
    if query.kind == "chunk" and media.segment_id is not None and not query.by_index:
        body = await provider.task_chunk_of_job(storage, media, query.quality, query.number)
    elif query.kind == "chunk":
        field = "index" if query.by_index else "number"
        body = await provider.chunk(storage, media, query.quality, query.number, field)
    elif query.kind == "frame":
        body = await provider.frame(storage, media, query.quality, query.number)
    else:
        body = await provider.context_images(storage, media, query.number, names)
    return await media_response(request, body, media.updated_date())


@web.operation("Get a task's chunk, frame or context images", tags=["tasks"], query=DATA_QUERY,
               responses=DATA_RESPONSES)  # fmt: skip
async def task_data(request: Request) -> Response:
    async def load(session: AsyncSession) -> provider.Media:
        task, _data = await task_service.get_with_data(session, web.path_int(request))
        await web.authorize(request, "view:data", await task_service.resource(session, task))
        return await provider.task_media(session, task)

    return await _data_response(request, load)


@web.operation("Get a job's chunk, frame or context images", tags=["jobs"], query=DATA_QUERY,
               responses=DATA_RESPONSES)  # fmt: skip
async def job_data(request: Request) -> Response:
    async def load(session: AsyncSession) -> provider.Media:
        job = await job_service.get(session, web.path_int(request))
        await web.authorize(request, "view:data", await job_service.resource(session, job))
        return await provider.job_media(session, job)

    return await _data_response(request, load)


# --- data/meta --------------------------------------------------------------------------------


@web.operation("Get a task's media description", tags=["tasks"], response=DataMetaRead)
async def task_meta(request: Request) -> Response:
    async with web.transaction(request) as session:
        task = await task_service.get(session, web.path_int(request))
        await web.authorize(request, "view:metadata", await task_service.resource(session, task))
        result = await data_meta.read(session, await provider.task_media(session, task))
    return web.json_response(result)


@web.operation("Get a job's media description", tags=["jobs"], response=DataMetaRead)
async def job_meta(request: Request) -> Response:
    async with web.transaction(request) as session:
        job = await job_service.get(session, web.path_int(request))
        await web.authorize(request, "view:metadata", await job_service.resource(session, job))
        result = await data_meta.read(session, await provider.job_media(session, job))
    return web.json_response(result)


@web.operation("Change a task's deleted frames", tags=["tasks"], request=DataMetaWrite, response=DataMetaRead)
async def update_task_meta(request: Request) -> Response:
    body = await request_body.read(request)
    async with web.transaction(request) as session:
        task = await task_service.get(session, web.path_int(request))
        await web.authorize(request, "update:metadata", await task_service.resource(session, task))
        change = body.decode(DataMetaWrite)
        media = await provider.task_media(session, task)
        result = await data_meta.update(session, task, media, change)
    return web.json_response(result)


@web.operation("Change a job's deleted frames", tags=["jobs"], request=DataMetaWrite, response=DataMetaRead)
async def update_job_meta(request: Request) -> Response:
    body = await request_body.read(request)
    async with web.transaction(request) as session:
        job = await job_service.get(session, web.path_int(request))
        await web.authorize(request, "update:metadata", await job_service.resource(session, job))
        change = body.decode(DataMetaWrite)
        media = await provider.job_media(session, job)
        task = await task_service.get(session, job.task_id)
        result = await data_meta.update(session, task, media, change)
    return web.json_response(result)


# --- previews ---------------------------------------------------------------------------------

PREVIEW_RESPONSES = {200: provider.JPEG_MEDIA_TYPE, 304: None, 307: None}


@web.operation("Get a task's preview", tags=["tasks"], responses=PREVIEW_RESPONSES)
async def task_preview(request: Request) -> Response:
    async with web.transaction(request) as session:
        task = await task_service.get(session, web.path_int(request))
        await web.authorize(request, "view", await task_service.resource(session, task))
        data = await provider.task_preview_data(session, task)
    body = await provider.task_preview(web.state(request).storage, data, f"task {task.id}")
    return await media_response(request, body, data.chunks_updated_date)


@web.operation("Get a job's preview", tags=["jobs"], responses=PREVIEW_RESPONSES)
async def job_preview(request: Request) -> Response:
    async with web.transaction(request) as session:
        job = await job_service.get(session, web.path_int(request))
        await web.authorize(request, "view", await job_service.resource(session, job))
        media = await provider.job_media(session, job)
    body = await provider.job_preview(web.state(request).storage, media)
    return await media_response(request, body, media.updated_date())


@web.operation("Get a project's preview", tags=["projects"], responses=PREVIEW_RESPONSES)
async def project_preview(request: Request) -> Response:
    async with web.transaction(request) as session:
        project = await project_service.get(session, web.path_int(request))
        await web.authorize(request, "view", project_service.resource(project))
        data = await provider.project_preview_data(session, project.id)
    body = await provider.task_preview(web.state(request).storage, data, f"project {project.id}")
    return await media_response(request, body, data.chunks_updated_date)


routes = [
    ("/api/tasks/{id:int}/data", task_data, ["GET"]),
    ("/api/jobs/{id:int}/data", job_data, ["GET"]),
    ("/api/tasks/{id:int}/data/meta", task_meta, ["GET"]),
    ("/api/tasks/{id:int}/data/meta", update_task_meta, ["PATCH"]),
    ("/api/jobs/{id:int}/data/meta", job_meta, ["GET"]),
    ("/api/jobs/{id:int}/data/meta", update_job_meta, ["PATCH"]),
    ("/api/tasks/{id:int}/preview", task_preview, ["GET"]),
    ("/api/jobs/{id:int}/preview", job_preview, ["GET"]),
    ("/api/projects/{id:int}/preview", project_preview, ["GET"]),
]
