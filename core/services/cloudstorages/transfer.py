"""Exports and backups sent to a cloud storage (CVAT's ``location=cloud_storage``): the finished
file, kept in the server's storage as any export, is streamed to the bucket under the name the
client chose. Such a request has no ``result_url``: the file is in the bucket, not here."""

from __future__ import annotations

from typing import Any

from annota.core.errors import ValidationError
from annota.core.queue import JobContext, JobResult
from annota.core.services.cloudstorages import bucket_media, storages
from annota.core.storage import InvalidObjectKey, ObjectNotFound, validate_key


def check_filename(filename: str) -> str:
    """A file name inside the bucket (an object key), or a 400 on ``filename``."""
    try:
        return validate_key(filename)
    except InvalidObjectKey as exc:
        raise ValidationError.for_field("filename", str(exc)) from None


async def copy_to_bucket(ctx: JobContext, source_key: str, destination: dict[str, Any]) -> JobResult:
    """Stream ``source_key`` of the server's storage into the cloud storage ``destination`` names
    (``{"cloud_storage_id": N, "filename": "…"}``)."""
    filename = check_filename(str(destination["filename"]))
    async with ctx.sessionmaker() as session:
        row = await bucket_media.usable_storage(session, int(destination["cloud_storage_id"]))
        session.expunge(row)
    async with storages.opened(ctx.cloud_providers, row, ctx.settings) as backend:
        async with await ctx.storage.get(source_key) as stream:
            await backend.put(filename, stream, content_type="application/zip")
    return JobResult(message=f"Uploaded to cloud storage {row.id} as {filename}.")


async def fetch_from_bucket(ctx: JobContext, source: dict[str, Any], area: str) -> None:
    """Stream the file ``source`` names in a cloud storage into the upload ``area`` of the server's
    storage, where an import reads its uploaded file; a missing file fails naming it."""
    from annota.core.media import layout

    filename = check_filename(str(source["filename"]))
    async with ctx.sessionmaker() as session:
        row = await bucket_media.usable_storage(session, int(source["cloud_storage_id"]))
        session.expunge(row)
    async with storages.opened(ctx.cloud_providers, row, ctx.settings) as backend:
        try:
            stream = await backend.get(filename)
        except ObjectNotFound:
            raise ValidationError.for_field(
                "filename", f"{filename} is not in cloud storage {row.id}."
            ) from None
        async with stream:
            await ctx.storage.put(layout.upload_file(area, filename), stream)


__all__ = ["check_filename", "copy_to_bucket", "fetch_from_bucket"]
