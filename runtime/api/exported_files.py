"""Downloading what an export request produced (datasets, annotations, backups).

The file is the request's ``result_file`` in the storage backend. Only the request's owner (by the
policy's ``download:exported_file`` scope) gets it, only from the endpoint of the object it was made
from, and only while it has not expired; it streams with a ``Content-Disposition`` file name.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Container

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from annota.core.db.tables import BackgroundRequest
from annota.core.errors import Gone, NotFound, ObjectNotFound, ValidationError
from annota.core.services import requests as request_service
from annota.runtime import web

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.\-]+")


def file_name(row: BackgroundRequest, kind: str, target_id: int, what: str) -> str:
    """``task_1_dataset_2026_11_22_06_30_00_coco-1.0.zip``: only characters every client accepts."""
    stamp = row.finished_date.strftime("%Y_%m_%d_%H_%M_%S") if row.finished_date is not None else "export"
    parts = [kind, str(target_id), what, stamp]
    if row.format:
        parts.append(_UNSAFE_NAME.sub("-", row.format.lower()).strip("-."))
    return "_".join(parts) + ".zip"


async def _stream(request: Request, key: str) -> AsyncIterator[bytes]:
    async with await web.state(request).storage.get(key) as stream:
        async for chunk in stream:
            yield chunk


async def download(
    request: Request, kind: str, subresources: Container[str], name: Callable[[BackgroundRequest], str]
) -> Response:
    """Stream the file of the export request ``?rq_id=`` made from ``kind`` ``{id}``."""
    target_id = web.path_int(request)
    rq_id = request.query_params.get("rq_id", "")
    if not rq_id:
        raise ValidationError.for_field("rq_id", "The export request id is required.")
    web.require_user(request)
    async with web.transaction(request) as session:
        row = await request_service.get(session, rq_id)
        await web.authorize(request, "download:exported_file", request_service.resource(row))
    belongs = f"target_id={target_id}&" in row.id + "&"
    if row.action != "export" or row.target != kind or row.subresource not in subresources or not belongs:
        raise NotFound(f"Request {rq_id} is not an export of {kind} {target_id} here.")
    if row.status != "finished" or not row.result_file:
        raise ValidationError.for_field("rq_id", f"The export is {row.status}, not finished.")
    try:
        info = await web.state(request).storage.stat(row.result_file)
    except ObjectNotFound:
        raise Gone("The exported file has expired; export again.") from None
    headers = {"Content-Disposition": f'attachment; filename="{name(row)}"', "Content-Length": str(info.size)}
    return StreamingResponse(_stream(request, row.result_file), media_type="application/zip", headers=headers)


__all__ = ["download", "file_name"]
