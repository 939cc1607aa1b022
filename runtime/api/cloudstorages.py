"""``/api/cloudstorages``: CVAT's cloud storages. CRUD, the bucket's content page by page
(``content-v2``), its ``status``, the ``actions`` it allows and a ``preview`` of its first image.

Creating or changing a cloud storage connects to it (CVAT refuses a bucket that is missing or
unreadable, and manifests that are not in it); credentials are never part of an answer. CVAT
records no events for cloud storages, so neither does this server.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from sqlalchemy import select
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from annota.core.cloud import BucketForbidden
from annota.core.db.tables import CloudStorage
from annota.core.errors import ValidationError
from annota.core.schemas.cloudstorages import (
    CloudStorageContent,
    CloudStorageRead,
    CloudStorageUpdate,
    CloudStorageWrite,
    Status,
)
from annota.core.schemas.common import Paginated
from annota.core.services.cloudstorages import content
from annota.core.services.cloudstorages import storages as service
from annota.runtime import web
from annota.runtime.api import uploads as upload

TAGS = ["cloudstorages"]

_INDEXED = re.compile(r"(?P<name>[a-z_]+)\[\d+\]\Z")
#: a service-account key file is a few kilobytes
MAX_KEY_FILE = 64 * 1024


async def _form_values(request: Request) -> dict[str, Any]:
    """A multipart body as the JSON one: ``key_file`` uploaded as a file, ``manifests`` repeated."""
    form = await upload.read_form(request)
    values: dict[str, Any] = {}
    try:
        for key, value in form.multi_items():
            name = (_INDEXED.match(key) or re.match(r"(?P<name>.*)", key))["name"]  # type: ignore[index]
            if isinstance(value, UploadFile):
                data = await value.read(MAX_KEY_FILE + 1)
                if len(data) > MAX_KEY_FILE:
                    raise ValidationError.for_field(name, "The key file is larger than 64 KiB.")
                value = data.decode("utf-8", errors="replace")
            if name == "manifests":
                values.setdefault("manifests", []).append(value)
            else:
                values[name] = value
    finally:
        await form.close()
    return values


async def _read(request: Request, type_: type[Any]) -> Any:
    if upload.is_form(request):
        try:
            return msgspec.convert(await _form_values(request), type_, strict=False)
        except msgspec.ValidationError as exc:
            raise ValidationError(web.validation_detail(str(exc))) from exc
    return await web.read_json(request, type_)


async def _check_reachable(request: Request, row: CloudStorage) -> None:
    """CVAT's checks on a new or changed cloud storage: the bucket is there and readable, and so
    are the manifests it names."""
    state = web.state(request)
    async with service.opened(state.cloud_providers, row, state.settings) as backend:
        status = await content.status(backend)
        if status == "NOT_FOUND":
            raise ValidationError.for_field("resource", f"The resource {row.resource} not found.")
        if status == "FORBIDDEN":
            raise ValidationError.for_field(
                "resource", f"The resource {row.resource} is not available: the credentials are refused."
            )
        for manifest in service.manifests_of(row):
            if not await backend.exists(manifest):
                raise ValidationError.for_field("manifests", f"The manifest {manifest} is not in the bucket.")


@web.operation("List cloud storages", tags=TAGS, response=Paginated[CloudStorageRead], paginated=True,
               query={name: "equality filter" for name in service.LIST_SPEC.equality})  # fmt: skip
async def list_cloud_storages(request: Request) -> Response:
    query = select(CloudStorage).where(await web.visible(request, "cloudstorages", service.POLICY_FIELDS))
    base_url = web.base_url(request)
    return await web.list_response(
        request, query, service.LIST_SPEC, lambda session, rows: service.read_many(session, rows, base_url)
    )


@web.operation("Create a cloud storage", tags=TAGS, request=CloudStorageWrite, response=CloudStorageRead,
               status=201)  # fmt: skip
async def create_cloud_storage(request: Request) -> Response:
    who = web.require_user(request)
    await web.authorize(request, "create", service.resource(None, who))
    data = await _read(request, CloudStorageWrite)
    row = service.create(who, data, web.state(request).settings.secret_key)
    await _check_reachable(request, row)
    async with web.transaction(request) as session:
        session.add(row)
        await session.flush()
        (result,) = await service.read_many(session, [row], web.base_url(request))
    return web.json_response(result, status_code=201)


@web.operation("Get a cloud storage", tags=TAGS, response=CloudStorageRead)
async def retrieve_cloud_storage(request: Request) -> Response:
    async with web.transaction(request) as session:
        row = await service.get(session, web.path_int(request))
        await web.authorize(request, "view", service.resource(row))
        (result,) = await service.read_many(session, [row], web.base_url(request))
    return web.json_response(result)


@web.operation("Change a cloud storage", tags=TAGS, request=CloudStorageUpdate, response=CloudStorageRead)
async def update_cloud_storage(request: Request) -> Response:
    data = await _read(request, CloudStorageUpdate)
    async with web.transaction(request) as session:
        row = await service.get(session, web.path_int(request))
        await web.authorize(request, "update", service.resource(row))
        service.update_row(row, data, web.state(request).settings.secret_key)
        await _check_reachable(request, row)
        await session.flush()
        (result,) = await service.read_many(session, [row], web.base_url(request))
    return web.json_response(result)


@web.operation("Delete a cloud storage", tags=TAGS, status=204)
async def delete_cloud_storage(request: Request) -> Response:
    async with web.transaction(request) as session:
        row = await service.get(session, web.path_int(request))
        await web.authorize(request, "delete", service.resource(row))
        await service.remove(session, row)
    return Response(status_code=204)


async def _visible_row(request: Request, scope: str) -> CloudStorage:
    async with web.transaction(request) as session:
        row = await service.get(session, web.path_int(request))
        await web.authorize(request, scope, service.resource(row))
        session.expunge(row)
    return row


@web.operation(
    "List the files and folders under a prefix of the bucket (or of a manifest), one page at a time",
    tags=TAGS,
    response=CloudStorageContent,
    query={
        "prefix": "list what lies under this prefix",
        "next_token": "the next page: the 'next' of the previous answer",
        "page_size": f"at most this many entries (default {content.DEFAULT_PAGE_SIZE}, "
        f"at most {content.MAX_PAGE_SIZE})",
        "manifest_path": "list the files this manifest names instead of the bucket's keys",
    },
)
async def cloud_storage_content(request: Request) -> Response:
    row = await _visible_row(request, "list:content")
    params = request.query_params
    prefix = params.get("prefix", "")
    token = params.get("next_token") or None
    page_size = web.query_int(
        request, "page_size", content.DEFAULT_PAGE_SIZE, minimum=1, maximum=content.MAX_PAGE_SIZE
    )
    assert page_size is not None
    manifest = params.get("manifest_path") or None
    state = web.state(request)
    async with service.opened(state.cloud_providers, row, state.settings) as backend:
        if manifest is not None:
            if manifest not in service.manifests_of(row):
                raise ValidationError.for_field(
                    "manifest_path", f"{manifest} is not a manifest of this storage."
                )
            names = await content.read_manifest_names(backend, manifest)
            result = content.manifest_listing(names, prefix, token, page_size)
        else:
            result = await content.listing(backend, prefix, token, page_size)
    return web.json_response(result)


async def _status(request: Request) -> Status:
    row = await _visible_row(request, "view")
    state = web.state(request)
    try:
        async with service.opened(state.cloud_providers, row, state.settings) as backend:
            return await content.status(backend)
    except BucketForbidden:
        # the stored credentials cannot even be read
        return "FORBIDDEN"


@web.operation("Whether the bucket can be read: AVAILABLE, NOT_FOUND or FORBIDDEN", tags=TAGS, response=str)
async def cloud_storage_status(request: Request) -> Response:
    return web.json_response(await _status(request))


@web.operation("What the bucket allows: read, write", tags=TAGS, response=list[str])
async def cloud_storage_actions(request: Request) -> Response:
    return web.json_response(content.actions_for(await _status(request)))


@web.operation("A thumbnail of the bucket's first image", tags=TAGS, responses={200: None})
async def cloud_storage_preview(request: Request) -> Response:
    row = await _visible_row(request, "view")
    state = web.state(request)
    async with service.opened(state.cloud_providers, row, state.settings) as backend:
        jpeg = await content.preview(backend, service.manifests_of(row))
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=60"})


routes = [
    ("/api/cloudstorages", list_cloud_storages, ["GET"]),
    ("/api/cloudstorages", create_cloud_storage, ["POST"]),
    ("/api/cloudstorages/{id:int}", retrieve_cloud_storage, ["GET"]),
    ("/api/cloudstorages/{id:int}", update_cloud_storage, ["PATCH"]),
    ("/api/cloudstorages/{id:int}", delete_cloud_storage, ["DELETE"]),
    ("/api/cloudstorages/{id:int}/content-v2", cloud_storage_content, ["GET"]),
    ("/api/cloudstorages/{id:int}/status", cloud_storage_status, ["GET"]),
    ("/api/cloudstorages/{id:int}/actions", cloud_storage_actions, ["GET"]),
    ("/api/cloudstorages/{id:int}/preview", cloud_storage_preview, ["GET"]),
]
