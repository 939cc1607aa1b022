"""Exports and backups sent to a cloud storage, and imports read from one (CVAT's
``location=cloud_storage``). A finished export, kept in the server's storage as any export, is
streamed to the bucket under the name the client chose; such a request has no ``result_url``, the
file is in the bucket. A file to import is streamed from the bucket to where uploads land."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from annota.core.errors import ValidationError
from annota.core.media import layout
from annota.core.queue import JobContext, JobResult
from annota.core.services.cloudstorages import bucket_media, storages
from annota.core.storage import InvalidObjectKey, ObjectNotFound, StorageBackend, validate_key


def check_filename(filename: str) -> str:
    """A file name inside the bucket (an object key), or a 400 on ``filename``."""
    try:
        return validate_key(filename)
    except InvalidObjectKey as exc:
        raise ValidationError.for_field("filename", str(exc)) from None


@contextlib.asynccontextmanager
async def _bucket(ctx: JobContext, where: dict[str, Any]) -> AsyncIterator[tuple[int, StorageBackend]]:
    """The id and bucket of the cloud storage ``where`` names, opened for the block."""
    async with ctx.sessionmaker() as session:
        row = await bucket_media.usable_storage(session, int(where["cloud_storage_id"]))
        session.expunge(row)
    async with storages.opened(ctx.cloud_providers, row, ctx.settings) as backend:
        yield row.id, backend


async def copy_to_bucket(ctx: JobContext, source_key: str, destination: dict[str, Any]) -> JobResult:
    """Stream ``source_key`` of the server's storage into the cloud storage ``destination`` names
    (``{"cloud_storage_id": N, "filename": "…"}``)."""
    filename = check_filename(str(destination["filename"]))
    async with _bucket(ctx, destination) as (cloud_storage_id, backend):
        async with await ctx.storage.get(source_key) as stream:
            await backend.put(filename, stream, content_type="application/zip")
    return JobResult(message=f"Uploaded to cloud storage {cloud_storage_id} as {filename}.")


async def fetch_from_bucket(ctx: JobContext, source: dict[str, Any], area: str) -> None:
    """Stream the file ``source`` names in a cloud storage into the upload ``area`` of the server's
    storage, where an import reads its uploaded file; a missing file fails naming it."""
    filename = check_filename(str(source["filename"]))
    async with _bucket(ctx, source) as (cloud_storage_id, backend):
        try:
            stream = await backend.get(filename)
        except ObjectNotFound:
            raise ValidationError.for_field(
                "filename", f"{filename} is not in cloud storage {cloud_storage_id}."
            ) from None
        async with stream:
            await ctx.storage.put(layout.upload_file(area, filename), stream)


__all__ = ["check_filename", "copy_to_bucket", "fetch_from_bucket"]
