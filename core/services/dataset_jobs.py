"""The background jobs behind dataset export and annotation import.

``export_dataset`` (``export`` queue) writes the export to a ZIP in the storage backend, named by a
fingerprint of what it shows: asking again for an unchanged task reuses the file until it expires
(``export_ttl``). ``import_annotations`` (``import`` queue) reads an uploaded file with the format's
importer, binds it to the task or job, and writes it in one transaction: on any error nothing
changes and the request fails with the located message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import shutil
from typing import Any
from urllib.parse import quote

from annota.core import leftovers
from annota.core.db.tables import Job, Project, Task
from annota.core.db.types import utcnow
from annota.core.errors import NotFound, ObjectNotFound
from annota.core.formats.failures import named_failures
from annota.core.formats.output import ZipOutput
from annota.core.formats.registry import ExportOptions, FormatRegistry, ImportOptions
from annota.core.formats.source import prepare_input
from annota.core.media import layout
from annota.core.media.archives import ArchiveLimits
from annota.core.queue import JobContext, JobRegistry, JobResult
from annota.core.services import dataset_import, job_files
from annota.core.services.cloudstorages import transfer
from annota.core.services.dataset_export import DatabaseDataset, plan_export
from annota.core.storage import StorageBackend

logger = logging.getLogger(__name__)

EXPORT_JOB = "export_dataset"
IMPORT_JOB = "import_annotations"


def export_key(fingerprint: str, format_name: str, save_images: bool) -> str:
    return hashlib.sha256(f"{fingerprint}|{format_name}|{save_images}".encode()).hexdigest()[:40]


async def _fresh(storage: StorageBackend, key: str, ttl: dt.timedelta) -> bool:
    try:
        info = await storage.stat(key)
    except ObjectNotFound:
        return False
    return info.last_modified > utcnow() - ttl


async def export_dataset(
    ctx: JobContext, *, target: str, target_id: int, format: str, save_images: bool, base_url: str,
    destination: dict[str, Any] | None = None,
) -> JobResult:  # fmt: skip
    """Export in ``format``; with a ``destination``, upload the result to that cloud storage."""
    result = await _export_dataset(ctx, target, target_id, format, save_images, base_url)
    if destination is not None and result.result_file is not None:
        return await transfer.copy_to_bucket(ctx, result.result_file, destination)
    return result


async def _export_dataset(
    ctx: JobContext, target: str, target_id: int, format: str, save_images: bool, base_url: str
) -> JobResult:
    formats: FormatRegistry = ctx.formats
    fmt = formats.get(format, direction="export")
    assert fmt.exporter is not None
    storage: StorageBackend = ctx.storage
    loop = asyncio.get_running_loop()
    kind = "dataset" if save_images else "annotations"
    result_url = (
        f"{base_url}/api/{target}s/{target_id}/dataset/download?rq_id={quote(ctx.request_id, safe='')}"
    )
    async with ctx.sessionmaker() as session:
        model = {"task": Task, "job": Job, "project": Project}[target]
        if await session.get(model, target_id) is None:
            raise NotFound(f"The {target} {target_id} no longer exists.")
        plan = await plan_export(session, target, target_id)
        key = layout.export_file(
            target, target_id, export_key(plan.fingerprint, fmt.display_name, save_images)
        )
        if await _fresh(storage, key, dt.timedelta(seconds=ctx.settings.export_ttl)):
            return JobResult(
                result_url=result_url, result_file=key, message="An identical export was reused."
            )
        await ctx.set_progress(0.0, f"Exporting {kind} as {fmt.display_name}")
        workspace = await job_files.scratch(ctx, f"export-{target}-{target_id}-")
        try:
            archive = workspace / "export.zip"

            async def progress(value: float) -> None:
                await ctx.set_progress(min(value, 1.0) * 0.95)

            dataset = DatabaseDataset(plan, session, storage, loop, progress)

            def run() -> None:
                with ZipOutput(archive) as output:
                    fmt.exporter(dataset, output, ExportOptions(save_images=save_images))  # type: ignore[misc]

            await asyncio.to_thread(run)
            # exports are shared by every request asking for the same data: a killed attempt's
            # unfinished write goes, a finished file stays
            await ctx.leave(leftovers.PARTIAL, key)
            await job_files.store_file(storage, key, archive)
        finally:
            shutil.rmtree(workspace, ignore_errors=True)
    return JobResult(result_url=result_url, result_file=key, message="")


async def import_annotations(
    ctx: JobContext,
    *,
    target: str,
    target_id: int,
    format: str,
    area: str,
    filename: str,
    mode: str = "replace",
    conv_mask_to_poly: bool = False,
    source: dict[str, Any] | None = None,
) -> JobResult:
    """Import ``filename``, uploaded to ``area`` or, with a ``source``, read from a cloud storage."""
    formats: FormatRegistry = ctx.formats
    fmt = formats.get(format, direction="import")
    assert fmt.importer is not None
    storage: StorageBackend = ctx.storage
    # the uploaded file: kept for a retry, removed once the request is over
    await ctx.leave(leftovers.STORAGE, area, until_end=True)
    workspace = await job_files.scratch(ctx, f"import-{target}-{target_id}-")
    try:
        await ctx.set_progress(0.0, f"Reading {filename} as {fmt.display_name}")
        if source is not None:
            await transfer.fetch_from_bucket(ctx, source, area)
        local = await job_files.fetch_upload(storage, area, filename, workspace / "upload")
        limits = ArchiveLimits.from_settings(ctx.settings)
        root = await asyncio.to_thread(prepare_input, local, workspace, name=filename, limits=limits)
        async with ctx.sessionmaker.begin() as session:
            job = await session.get(Job, target_id) if target == "job" else None
            task = await session.get(Task, job.task_id if job is not None else target_id)
            if task is None:
                raise NotFound(f"The {target} {target_id} no longer exists.")
            plan = await dataset_import.plan_import(session, task, job)
            options = ImportOptions(conv_mask_to_poly=conv_mask_to_poly, labels=plan.labels.specs)

            def read() -> dataset_import.Bound:
                with named_failures(root, filename):
                    dataset = fmt.importer(root, options)  # type: ignore[misc]
                    return dataset_import.bind(dataset, plan, conv_mask_to_poly=conv_mask_to_poly)

            bound = await asyncio.to_thread(read)
            await ctx.set_progress(0.8, "Saving annotations")
            await dataset_import.write(session, plan, bound, mode)
    except BaseException as exc:
        if not job_files.interrupted(exc):
            await job_files.remove_input(storage, area)
        raise
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    await job_files.remove_input(storage, area)
    data = bound.data
    message = f"Imported {len(data.tags)} tags, {len(data.shapes)} shapes and {len(data.tracks)} tracks."
    if bound.skipped:
        message += f" {bound.skipped} annotations outside {plan.subject} were skipped."
    return JobResult(message=message)


async def prune_exports(storage: StorageBackend, ttl: dt.timedelta) -> int:
    """Remove exports older than ``ttl``; returns how many were removed."""
    cutoff = utcnow() - ttl
    stale = [info.key async for info in storage.list(layout.exports_prefix()) if info.last_modified < cutoff]
    for key in stale:
        await storage.delete(key)
    return len(stale)


def register(registry: JobRegistry) -> None:
    from annota.core.services import project_import

    registry.register(
        "annota",
        project_import.JOB_NAME,
        project_import.import_project_dataset,
        queue="import",
        timeout=6 * 3600,
    )
    registry.register("annota", EXPORT_JOB, export_dataset, queue="export", timeout=6 * 3600, max_tries=3)
    registry.register("annota", IMPORT_JOB, import_annotations, queue="import", timeout=6 * 3600, max_tries=3)


__all__ = ["EXPORT_JOB", "IMPORT_JOB", "export_dataset", "import_annotations", "prune_exports", "register"]
