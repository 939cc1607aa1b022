"""``/api/assets``: the files an annotation guide shows. Uploading one or deleting it needs
``update`` on its guide, reading it ``view``; the bytes go through the storage backend."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from annota.core.db.tables import Asset, User
from annota.core.errors import NotFound, ValidationError
from annota.core.schemas.guides import AssetRead
from annota.core.services import users as user_service
from annota.core.services.guides import assets as service
from annota.runtime import web
from annota.runtime.api.guides import authorized
from annota.runtime.api.uploads import limited

TAGS = ["assets"]
#: room for the form's boundaries and the guide_id field around the largest file
FORM_OVERHEAD = 64 * 1024


def _read(asset: Asset, owner: User | None, base_url: str) -> AssetRead:
    return AssetRead(
        uuid=asset.uuid, filename=asset.filename, created_date=asset.created_date,
        owner=user_service.basic(owner, base_url), guide_id=asset.guide_id,
    )  # fmt: skip


async def _form(request: Request) -> tuple[int, UploadFile]:
    form = await limited(request, service.MAX_SIZE + FORM_OVERHEAD).form(max_files=1, max_fields=4)
    raw_guide = form.get("guide_id")
    if not isinstance(raw_guide, str) or not raw_guide.strip().isdigit():
        raise ValidationError.for_field("guide_id", "This field is required: the id of the guide.")
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ValidationError.for_field("file", "No file was submitted.")
    return int(raw_guide), upload


@web.operation("Upload an asset of an annotation guide (multipart: guide_id, file)", tags=TAGS,
               response=AssetRead, status=201)  # fmt: skip
async def create_asset(request: Request) -> Response:
    who = web.require_user(request)
    guide_id, upload = await _form(request)
    content_type = upload.content_type or ""
    async with web.transaction(request) as session:
        await authorized(request, session, "update", guide_id)
        name, content = service.checked(upload.filename or "", content_type, await upload.read())
        asset = await service.create(
            session, web.state(request).storage, guide_id, who.user_id, name, content_type, content
        )
        owner = await session.get(User, who.user_id)
        result = _read(asset, owner, web.base_url(request))
    return web.json_response(result, status_code=201)


async def _asset(request: Request, scope: str) -> Asset:
    async with web.transaction(request) as session:
        asset = await service.get(session, request.path_params["uuid"])
        if asset is None:
            raise NotFound("Asset not found.")
        await authorized(request, session, scope, asset.guide_id)
    return asset


@web.operation("Get an asset's file", tags=TAGS, responses={200: "application/octet-stream"})
async def retrieve_asset(request: Request) -> Response:
    asset = await _asset(request, "view")
    content = await web.state(request).storage.read(service.key(asset))
    disposition = 'inline; filename="' + asset.filename.replace('"', "") + '"'
    headers = {
        "Content-Disposition": disposition,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private",
    }
    return Response(content, media_type=asset.content_type, headers=headers)


@web.operation("Delete an asset", tags=TAGS, status=204)
async def delete_asset(request: Request) -> Response:
    async with web.transaction(request) as session:
        asset = await service.get(session, request.path_params["uuid"])
        if asset is None:
            raise NotFound("Asset not found.")
        await authorized(request, session, "update", asset.guide_id)
        await session.delete(asset)
    await web.remove_objects(request, [service.key(asset)])
    return Response(status_code=204)


routes = [
    ("/api/assets", create_asset, ["POST"]),
    ("/api/assets/{uuid}", retrieve_asset, ["GET"]),
    ("/api/assets/{uuid}", delete_asset, ["DELETE"]),
]
