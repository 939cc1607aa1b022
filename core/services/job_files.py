"""Files that background jobs work on: a private scratch directory under the data dir, uploads
fetched from the storage backend to it, and results put back."""

from __future__ import annotations

import asyncio
import logging
import secrets
from pathlib import Path
from typing import Any

from annota.core import leftovers
from annota.core.errors import ObjectNotFound, ValidationError
from annota.core.media import layout
from annota.core.queue import JobContext, is_connection_loss
from annota.core.storage import StorageBackend

logger = logging.getLogger(__name__)


async def scratch(ctx: JobContext, prefix: str) -> Path:
    """A fresh directory for one job (the caller removes it; should its worker die first, the
    request's retry or end does)."""
    root = Path(ctx.settings.data_dir) / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    # noted down before it exists, so that a worker killed in between leaves nothing unnoted; 128
    # random bits: no other job's directory can have the name (whose removal it would then be)
    path = root / f"{prefix}{secrets.token_hex(16)}"
    await ctx.leave(leftovers.SCRATCH, path.name)
    path.mkdir(mode=0o700)
    return path


def interrupted(exc: BaseException) -> bool:
    """Whether a job stopped without being at fault and runs again (its worker stopping, another
    worker taking the request up, its database connection lost): its input is kept for that run."""
    return isinstance(exc, asyncio.CancelledError) or is_connection_loss(exc)


async def remove_input(storage: StorageBackend, prefix: str) -> None:
    """Remove the uploads a job read once it is over; a failure is logged, the outcome stands."""
    try:
        await storage.delete_prefix(prefix)
    except Exception:
        logger.exception("could not remove the upload %s", prefix)


async def fetch_upload(storage: StorageBackend, area: str, filename: str, target: Path) -> Path:
    """Copy the uploaded ``filename`` of ``area`` to ``target``; a 400 naming it when it is missing."""
    try:
        async with await storage.get(layout.upload_file(area, filename)) as stream:
            with target.open("wb") as out:
                async for chunk in stream:
                    out.write(chunk)
    except ObjectNotFound:
        raise ValidationError.for_field("filename", f"No uploaded file named {filename!r}.") from None
    return target


async def store_file(
    storage: StorageBackend, key: str, path: Path, content_type: str = "application/zip"
) -> None:
    """Put a local file into the storage backend, read in 1 MiB blocks off the event loop."""

    async def content() -> Any:
        with path.open("rb") as stream:
            while chunk := await asyncio.to_thread(stream.read, 1 << 20):
                yield chunk

    await storage.put(key, content(), content_type=content_type)


__all__ = ["fetch_upload", "interrupted", "remove_input", "scratch", "store_file"]
