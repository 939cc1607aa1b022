"""Where an export or backup goes: ``location=local`` (downloaded from this server, the default) or
``location=cloud_storage&cloud_storage_id=N&filename=…`` (uploaded to a bucket the caller may see:
403 otherwise, 400 for one that does not exist)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from annota.core.access import Resource
from annota.core.db.tables import CloudStorage
from annota.core.errors import ValidationError
from annota.core.services.cloudstorages import bucket_media
from annota.core.services.cloudstorages import storages as cloud_storages
from annota.core.services.cloudstorages.transfer import check_filename
from annota.runtime import web

QUERY = {
    "location": "local (download it here) or cloud_storage",
    "cloud_storage_id": "with location=cloud_storage: the cloud storage to upload to",
    "filename": "with location=cloud_storage: the file name in the bucket",
}


async def check_visible(request: Request, session: AsyncSession, cloud_storage_ids: list[int]) -> None:
    """The caller may see every cloud storage a project's or task's storage settings name (CVAT
    checks ``view`` on each: 403 otherwise); a missing one is left to the service's 400."""
    for cloud_storage_id in cloud_storage_ids:
        row = await session.get(CloudStorage, cloud_storage_id)
        if row is not None:
            await web.authorize(request, "view", cloud_storages.resource(row))


async def source(request: Request) -> dict[str, Any] | None:
    """``None`` for an uploaded file, else the ``{"cloud_storage_id", "filename"}`` to import from."""
    if (request.query_params.get("location") or "local") == "local":
        return None
    if not request.query_params.get("filename"):
        raise ValidationError.for_field("filename", "Name the file to import from the cloud storage.")
    return await destination(request, "")


def exported_to(resource: Resource, destination: dict[str, Any] | None) -> Resource:
    """The policy input of an export: CVAT's ``resource.destination`` says where it goes."""
    where = "local" if destination is None else "cloud_storage"
    return Resource(resource.kind, {**(resource.document or {}), "destination": where}, resource.id)


async def destination(request: Request, default_name: str) -> dict[str, Any] | None:
    """``None`` for a local result, else ``{"cloud_storage_id", "filename"}`` once checked."""
    location = request.query_params.get("location", "local") or "local"
    if location == "local":
        return None
    if location != "cloud_storage":
        raise ValidationError.for_field("location", f"Must be local or cloud_storage, got {location!r}.")
    cloud_storage_id = web.query_int(request, "cloud_storage_id", minimum=0)
    if cloud_storage_id is None:
        raise ValidationError.for_field(
            "cloud_storage_id", "Cloud storage was selected as location but its id was not specified."
        )
    async with web.transaction(request) as session:
        row = await bucket_media.usable_storage(session, cloud_storage_id)
        await web.authorize(request, "view", cloud_storages.resource(row))
    filename = check_filename(request.query_params.get("filename") or default_name)
    return {"cloud_storage_id": cloud_storage_id, "filename": filename}
