"""Task creation from media: the ``create_task_data`` background job on the ``import`` queue.

It turns the task's sources into frames: image sizes from headers, original and compressed
chunks (image-set ZIPs in frame order, for video too), context images, a manifest and a preview,
all in the storage backend under ``data/<data_id>/``; then, in one transaction, the frame rows,
segments and jobs. Any failure removes what was written, so a task either has all of its media
or none, and the request ends ``failed`` with the reason.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import msgspec
import numpy as np
from sqlalchemy import delete, exists, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from annota.core import leftovers
from annota.core.db.tables import BackgroundRequest, Data, Frame, Job, Segment, Task
from annota.core.db.types import utcnow
from annota.core.errors import Conflict, MediaError, NotFound, ValidationError
from annota.core.media import layout
from annota.core.media.archives import ArchiveLimits, is_archive_name
from annota.core.media.chunks import build_chunk, member_name
from annota.core.media.encode import decode_image, encode_jpeg, make_preview
from annota.core.media.images import ImageInfo, probe_image
from annota.core.media.manifest import ManifestImage, images_manifest, video_manifest
from annota.core.media.segments import (
    VIDEO_CHUNK_SIZE,
    default_chunk_size,
    file_mapping_ranges,
    segment_ranges,
)
from annota.core.media.sorting import parse_frame_step, select_frames, sort_names
from annota.core.media.video import probe_video, read_video_frames
from annota.core.queue import JobContext, JobRegistry, JobResult
from annota.core.schemas.data import DataRequest
from annota.core.services import events, job_files, media_sources, upload_data
from annota.core.services import jobs as job_service
from annota.core.services import requests as request_service
from annota.core.services.cloudstorages import bucket_media
from annota.core.services.cloudstorages import storages as cloud_storages
from annota.core.services.media_sources import MediaSources
from annota.core.services.tasks import touch
from annota.core.storage import StorageBackend

logger = logging.getLogger(__name__)

JOB_NAME = "create_task_data"

#: Video frames have no original file to keep; their "original" chunks hold near-lossless JPEGs.
VIDEO_ORIGINAL_QUALITY = 95


@dataclass
class FramePlan:
    """One frame to be: where it comes from and what it becomes."""

    number: int
    #: the source file (images) or video name
    name: str
    #: the absolute frame in the source (image index after sorting, or video frame)
    real_frame: int
    width: int = 0
    height: int = 0
    extension: str = ".jpg"
    related: tuple[str, ...] = ()


@dataclass
class BuiltFrame:
    original: bytes
    compressed: bytes
    #: the decoded pixels of frame 0 only (for the preview)
    pixels: np.ndarray | None
    checksum: str


def register(registry: JobRegistry) -> None:
    registry.register("annota", JOB_NAME, create_task_data, queue="import", timeout=6 * 3600, max_tries=2)


# --- planning ---------------------------------------------------------------------------------


def _image_order(sources: MediaSources, options: DataRequest) -> tuple[list[str], list[int] | None]:
    """The images in frame order, and the number of frames per job if ``job_file_mapping``."""
    if options.job_file_mapping is None:
        return sort_names(sources.images, options.sorting_method, options.upload_file_order), None
    known = {name: name for name in sources.images} | {PurePosixPath(n).name: n for n in sources.images}
    ordered: list[str] = []
    for files in options.job_file_mapping:
        if not files:
            raise ValidationError.for_field("job_file_mapping", "Every job needs at least one file.")
        for file in files:
            if file not in known:
                raise ValidationError.for_field("job_file_mapping", f"{file!r} was not uploaded.")
            ordered.append(known[file])
    unmapped = sorted(set(sources.images) - set(ordered))
    if unmapped or len(set(ordered)) != len(ordered):
        problem = f"{unmapped[0]!r} is in no job" if unmapped else "a file is listed twice"
        raise ValidationError.for_field("job_file_mapping", f"Every file must be in one job: {problem}.")
    return ordered, [len(files) for files in options.job_file_mapping]


def _plan_images(sources: MediaSources, options: DataRequest) -> tuple[list[FramePlan], list[int] | None]:
    ordered, per_job = _image_order(sources, options)
    step = parse_frame_step(options.frame_filter)
    kept = select_frames(len(ordered), options.start_frame, options.stop_frame, step)
    if per_job is not None and (step != 1 or len(kept) != len(ordered)):
        raise ValidationError.for_field(
            "job_file_mapping",
            "job_file_mapping cannot be combined with start_frame, stop_frame or frame_filter.",
        )
    plans = []
    for number, real in enumerate(kept):
        name = ordered[real]
        info: ImageInfo = probe_image(sources.path(name), name)
        extension = PurePosixPath(name).suffix.lower() or ".jpg"
        plans.append(FramePlan(number, name, real, info.width, info.height, extension,
                               tuple(sources.related.get(name, ()))))  # fmt: skip
    return plans, per_job


def _plan_video(sources: MediaSources, options: DataRequest) -> list[FramePlan]:
    assert sources.video is not None
    if options.job_file_mapping is not None:
        raise ValidationError.for_field("job_file_mapping", "job_file_mapping applies to images only.")
    info = probe_video(sources.path(sources.video), sources.video)
    kept = select_frames(info.frame_count, options.start_frame, options.stop_frame,
                         parse_frame_step(options.frame_filter))  # fmt: skip
    return [FramePlan(n, sources.video, real, info.width, info.height) for n, real in enumerate(kept)]


# --- building ---------------------------------------------------------------------------------


def _build_image(path: Path, plan: FramePlan, quality: int, keep_pixels: bool) -> BuiltFrame:
    original = path.read_bytes()
    pixels = decode_image(original, plan.name)
    if pixels.shape[0] != plan.height or pixels.shape[1] != plan.width:
        raise MediaError(
            f"{plan.name}: the header says {plan.width}x{plan.height} but the image decodes to "
            f"{pixels.shape[1]}x{pixels.shape[0]}"
        )
    return BuiltFrame(original, encode_jpeg(pixels, quality), pixels if keep_pixels else None,
                      hashlib.md5(original, usedforsecurity=False).hexdigest())  # fmt: skip


def _build_video_frame(pixels: np.ndarray, quality: int, keep_pixels: bool) -> BuiltFrame:
    original = encode_jpeg(pixels, VIDEO_ORIGINAL_QUALITY)
    return BuiltFrame(original, encode_jpeg(pixels, quality), pixels if keep_pixels else None,
                      hashlib.md5(pixels.tobytes(), usedforsecurity=False).hexdigest())  # fmt: skip


class MediaWriter:
    """Writes one task's objects and remembers that it did, so a failure can remove them."""

    def __init__(self, storage: StorageBackend, data_id: int) -> None:
        self.storage = storage
        self.data_id = data_id
        self.bytes_written = 0

    async def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        await self.storage.put(key, data, content_type=content_type)
        self.bytes_written += len(data)

    async def write_chunk(self, number: int, plans: Sequence[FramePlan], built: Sequence[BuiltFrame]) -> None:
        original = build_chunk(
            (p.number, member_name(p.number, p.extension), b.original)
            for p, b in zip(plans, built, strict=True)
        )
        compressed = build_chunk(
            (p.number, member_name(p.number, ".jpg"), b.compressed) for p, b in zip(plans, built, strict=True)
        )
        for quality, chunk in (("original", original), ("compressed", compressed)):
            await self.put(layout.chunk(self.data_id, quality, number), chunk.content, "application/zip")  # type: ignore[arg-type]
            await self.put(layout.chunk_index(self.data_id, quality, number), chunk.index, "application/json")  # type: ignore[arg-type]

    async def remove(self) -> None:
        await self.storage.delete_prefix(layout.data_prefix(self.data_id))


def _chunks(plans: list[FramePlan], chunk_size: int) -> Iterator[tuple[int, list[FramePlan]]]:
    for number, start in enumerate(range(0, len(plans), chunk_size)):
        yield number, plans[start : start + chunk_size]


async def _write_images(
    ctx: JobContext, writer: MediaWriter, sources: MediaSources, plans: list[FramePlan], chunk_size: int,
    quality: int,
) -> None:  # fmt: skip
    manifest: list[ManifestImage] = []
    chunk_count = -(-len(plans) // chunk_size)
    for number, group in _chunks(plans, chunk_size):
        # OpenCV releases the GIL while decoding and encoding, so frames build in parallel threads
        built = await asyncio.gather(
            *(asyncio.to_thread(_build_image, sources.path(p.name), p, quality, p.number == 0) for p in group)
        )
        for plan, frame in zip(group, built, strict=True):
            await writer.put(layout.raw_file(writer.data_id, plan.name), frame.original)
            for related in plan.related:
                await writer.put(
                    layout.context_image(writer.data_id, plan.number, PurePosixPath(related).name),
                    sources.path(related).read_bytes(),
                )
            path = PurePosixPath(plan.name)
            manifest.append(ManifestImage(str(path.with_suffix("")), path.suffix, plan.width, plan.height,
                                          frame.checksum))  # fmt: skip
            if frame.pixels is not None:
                await writer.put(layout.preview(writer.data_id), make_preview(frame.pixels), "image/jpeg")
        await writer.write_chunk(number, group, built)
        await ctx.set_progress(0.05 + 0.9 * (number + 1) / chunk_count, "Building chunks")
    await writer.put(layout.manifest(writer.data_id), images_manifest(manifest), "application/jsonl")


async def _write_video(
    ctx: JobContext, writer: MediaWriter, sources: MediaSources, plans: list[FramePlan], chunk_size: int,
    quality: int,
) -> None:  # fmt: skip
    assert sources.video is not None
    path = sources.path(sources.video)
    with path.open("rb") as file:
        await writer.put(layout.raw_file(writer.data_id, sources.video), file.read())
    frames = read_video_frames(path, sources.video, [p.real_frame for p in plans])
    checksums: list[tuple[int, str]] = []
    chunk_count = -(-len(plans) // chunk_size)
    try:
        for number, group in _chunks(plans, chunk_size):
            decoded = [pixels for _, pixels in [await asyncio.to_thread(next, frames) for _ in group]]
            built = await asyncio.gather(
                *(asyncio.to_thread(_build_video_frame, px, quality, p.number == 0)
                  for p, px in zip(group, decoded, strict=True))
            )  # fmt: skip
            for plan, frame in zip(group, built, strict=True):
                checksums.append((plan.real_frame, frame.checksum))
                if frame.pixels is not None:
                    await writer.put(layout.preview(writer.data_id), make_preview(frame.pixels), "image/jpeg")
            await writer.write_chunk(number, group, built)
            await ctx.set_progress(0.05 + 0.9 * (number + 1) / chunk_count, "Building chunks")
    finally:
        frames.close()
    manifest = video_manifest(sources.video, plans[0].width, plans[0].height, len(plans), checksums)
    await writer.put(layout.manifest(writer.data_id), manifest, "application/jsonl")


#: CVAT's message for a creation request that names no media at all (an empty upload)
NO_MEDIA_DATA = "No media data found"


# --- the database -------------------------------------------------------------------------------


async def _task_without_data(ctx: JobContext, task_id: int) -> Task:
    async with ctx.sessionmaker() as session:
        task = await session.get(Task, task_id)
    if task is None:
        raise NotFound(f"Task {task_id} was deleted.")
    if task.media_type:
        raise Conflict(f"Task {task_id} already has data.")
    return task


async def _new_data(ctx: JobContext, task_id: int, options: DataRequest) -> int:
    """The ``data`` row for the media being written: the one the task got when its upload started
    (emptied of what an interrupted attempt wrote), or else a new one, noted as the request's
    leftover in the same transaction: should the worker die before the task points at it, the
    retry removes it."""
    async with ctx.sessionmaker.begin() as session:
        task = await session.get(Task, task_id)
        pending = task.data_id if task is not None and upload_data.is_pending(task) else None
        data = await session.get(Data, pending) if pending is not None else None
        if data is None:
            data = Data()
            session.add(data)
        data.image_quality = options.image_quality
        data.frame_filter = options.frame_filter
        data.sorting_method = options.sorting_method
        data.start_frame = options.start_frame
        await session.flush()
        if pending is None:
            await request_service.add_leftover(
                session, ctx.request_id, ctx.attempt, leftovers.DATA, str(data.id)
            )
        data_id = data.id
    if pending is not None:
        await ctx.storage.delete_prefix(layout.data_prefix(data_id))
    return data_id


async def _drop_data(ctx: JobContext, task_id: int, data_id: int | None, keep_pending: bool) -> None:
    """Remove the data row being written and, unless the job runs again (``keep_pending``), the
    one the task got when its upload started: a failed creation leaves the task without data."""
    async with ctx.sessionmaker.begin() as session:
        pending = None if keep_pending else await upload_data.forget(session, task_id)
        task = await session.get(Task, task_id)
        if data_id is not None and data_id != pending and (task is None or task.data_id != data_id):
            await session.execute(delete(Data).where(Data.id == data_id))
    if pending is not None and pending != data_id:
        await ctx.storage.delete_prefix(layout.data_prefix(pending))


async def _save(
    ctx: JobContext, task_id: int, data_id: int, options: DataRequest, plans: list[FramePlan],
    chunk_size: int, video: bool, per_job: list[int] | None, content_size: int,
) -> int:  # fmt: skip
    """Frames, segments, jobs and the task's media fields in one transaction; returns the job count."""
    async with ctx.sessionmaker.begin() as session:
        task = await session.get(Task, task_id, with_for_update=True)
        if task is None:
            raise NotFound(f"Task {task_id} was deleted while its data was processed.")
        if task.media_type or task.data_id not in (None, data_id):
            raise Conflict(f"Task {task_id} already has data.")
        data = await session.get(Data, data_id)
        assert data is not None
        now = utcnow()
        data.size = len(plans)
        data.stop_frame = plans[-1].real_frame
        data.chunk_size = chunk_size
        data.media_kind = "video" if video else "images"
        data.content_size = content_size
        if options.cloud_storage_id is not None:
            # the media stay in the bucket; chunks are made when first read
            data.storage, data.storage_method = "cloud_storage", "cache"
            data.cloud_storage_id = options.cloud_storage_id
        else:
            data.storage = "share" if options.server_files else "local"
        data.chunks_updated_date = now
        if plans:
            frame_rows = [
                {"data_id": data_id, "frame": p.number, "path": p.name, "width": p.width, "height": p.height,
                 "real_frame": p.real_frame, "is_placeholder": False,
                 "related_files": msgspec.json.encode([PurePosixPath(r).name for r in p.related]).decode()}
                for p in plans
            ]  # fmt: skip
            await session.execute(insert(Frame), frame_rows)
        mode = "interpolation" if video else "annotation"
        if per_job is not None:
            ranges = file_mapping_ranges(per_job)
        else:
            ranges = segment_ranges(len(plans), task.segment_size, task.overlap, mode)  # type: ignore[arg-type]
        segment_ids = (
            await session.scalars(
                insert(Segment).returning(Segment.id),
                [{"task_id": task_id, "start_frame": start, "stop_frame": stop, "type": "range",
                  "chunks_updated_date": now} for start, stop in ranges],
            )
        ).all()  # fmt: skip
        await session.execute(
            insert(Job),
            [
                {"segment_id": sid, "task_id": task_id, "created_date": now, "updated_date": now}
                for sid in segment_ids
            ],
        )
        task.data_id = data_id
        task.media_type = "image"
        task.mode = mode
        task.dimension = "2d"
        task.updated_date = touch(task.updated_date)
        # no HTTP request here: the payloads carry relative URLs; the sender is who asked for the media
        owner_id = await session.scalar(
            select(BackgroundRequest.owner_id).where(BackgroundRequest.id == ctx.request_id)
        )
        jobs = (await session.scalars(select(Job).where(Job.task_id == task_id).order_by(Job.id))).all()
        for job, read in zip(jobs, await job_service.read_many(session, jobs, ""), strict=True):
            await events.record(
                session, "create:job", "job", read, resource_id=job.id, user_id=owner_id,
                org_id=task.organization_id, project_id=task.project_id, task_id=task_id, job_id=job.id,
            )  # fmt: skip
        return len(segment_ids)


# --- the job ------------------------------------------------------------------------------------


async def create_task_data(ctx: JobContext, task_id: int, options: dict[str, Any]) -> JobResult:
    """Process the sources named by ``options`` (a ``DataRequest``) into the task's media."""
    request = msgspec.convert(options, DataRequest)
    if request.cloud_storage_id is not None:
        return await _create_from_bucket(ctx, task_id, request)
    if request.filename_pattern is not None:
        raise ValidationError.for_field(
            "filename_pattern", "filename_pattern needs a cloud storage manifest."
        )
    await _task_without_data(ctx, task_id)
    storage: StorageBackend = ctx.storage
    # the uploaded files: kept for a retry, removed once the request is over
    await ctx.leave(leftovers.STORAGE, layout.upload_prefix(task_id), until_end=True)
    workspace = await job_files.scratch(ctx, f"task-{task_id}-")
    data_id: int | None = None
    writer: MediaWriter | None = None
    try:
        await ctx.set_progress(0.0, "Fetching media")
        names = await media_sources.fetch(storage, ctx.settings, task_id, request, workspace)
        if not names:
            raise MediaError(NO_MEDIA_DATA)
        limits = ArchiveLimits.from_settings(ctx.settings)
        lone = names[0] if len(names) == 1 and is_archive_name(names[0]) else None
        names = await asyncio.to_thread(media_sources.expand_archives, workspace, names, limits)
        sources = media_sources.classify(workspace, names, origin=lone)
        await ctx.set_progress(0.05, "Reading image headers" if sources.images else "Reading the video")
        video = sources.video is not None
        per_job: list[int] | None = None
        if video:
            plans = await asyncio.to_thread(_plan_video, sources, request)
        else:
            plans, per_job = await asyncio.to_thread(_plan_images, sources, request)
        chunk_size = request.chunk_size or (
            VIDEO_CHUNK_SIZE if video else default_chunk_size(plans[0].width, plans[0].height)
        )
        data_id = await _new_data(ctx, task_id, request)
        writer = MediaWriter(storage, data_id)
        if video:
            await _write_video(ctx, writer, sources, plans, chunk_size, request.image_quality)
        else:
            await _write_images(ctx, writer, sources, plans, chunk_size, request.image_quality)
        content_size = sum(p.stat().st_size for p in workspace.rglob("*") if p.is_file())
        jobs = await _save(ctx, task_id, data_id, request, plans, chunk_size, video, per_job, content_size)
    except BaseException as exc:
        if writer is not None:
            await asyncio.shield(writer.remove())
        await asyncio.shield(_drop_data(ctx, task_id, data_id, keep_pending=job_files.interrupted(exc)))
        if not job_files.interrupted(exc):
            await job_files.remove_input(storage, layout.upload_prefix(task_id))
        raise
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    await job_files.remove_input(storage, layout.upload_prefix(task_id))
    logger.info("task %s: %d frames in %d jobs", task_id, len(plans), jobs)
    return JobResult(result_id=task_id, message=f"{len(plans)} frames in {jobs} jobs.")


async def _plan_bucket_images(backend: StorageBackend, request: DataRequest) -> list[FramePlan]:
    images = {image.key: image for image in await bucket_media.images_of(backend, request)}
    ordered = sort_names(list(images), request.sorting_method, request.upload_file_order)
    kept = select_frames(len(ordered), request.start_frame, request.stop_frame,
                         parse_frame_step(request.frame_filter))  # fmt: skip
    plans = []
    for number, real in enumerate(kept):
        image = images[ordered[real]]
        extension = PurePosixPath(image.key).suffix.lower() or ".jpg"
        plans.append(FramePlan(number, image.key, real, image.width, image.height, extension))
    return plans


async def _create_from_bucket(ctx: JobContext, task_id: int, request: DataRequest) -> JobResult:
    """A task whose media stay in a cloud storage: frames, segments and jobs, a preview and a
    manifest now; chunks when first read (``bucket_media``)."""
    assert request.cloud_storage_id is not None
    await _task_without_data(ctx, task_id)
    async with ctx.sessionmaker() as session:
        row = await bucket_media.usable_storage(session, request.cloud_storage_id)
        session.expunge(row)
    data_id: int | None = None
    try:
        await ctx.set_progress(0.0, "Listing the cloud storage")
        async with cloud_storages.opened(ctx.cloud_providers, row, ctx.settings) as backend:
            plans = await _plan_bucket_images(backend, request)
            # the first image makes the preview (and shows whether its recorded size is right)
            first = bucket_media.BucketImage(plans[0].name, plans[0].width, plans[0].height)
            _, pixels = await bucket_media.read_checked(backend, first)
        chunk_size = request.chunk_size or default_chunk_size(plans[0].width, plans[0].height)
        data_id = await _new_data(ctx, task_id, request)
        writer = MediaWriter(ctx.storage, data_id)
        await writer.put(layout.preview(data_id), make_preview(pixels), "image/jpeg")
        manifest = [
            ManifestImage(str(PurePosixPath(p.name).with_suffix("")), p.extension, p.width, p.height, "")
            for p in plans
        ]
        await writer.put(layout.manifest(data_id), images_manifest(manifest), "application/jsonl")
        jobs = await _save(ctx, task_id, data_id, request, plans, chunk_size, False, None, 0)
    except BaseException as exc:
        if data_id is not None:
            await asyncio.shield(ctx.storage.delete_prefix(layout.data_prefix(data_id)))
        await asyncio.shield(_drop_data(ctx, task_id, data_id, keep_pending=job_files.interrupted(exc)))
        raise
    logger.info("task %s: %d frames from cloud storage %s in %d jobs", task_id, len(plans), row.id, jobs)
    return JobResult(result_id=task_id, message=f"{len(plans)} frames in {jobs} jobs.")


# --- clean-up -----------------------------------------------------------------------------------

#: how old orphaned media and abandoned uploads must be before housekeeping removes them
LEFTOVER_AGE = dt.timedelta(days=1)


async def prune_leftovers(
    sessionmaker: async_sessionmaker[AsyncSession], storage: StorageBackend, age: dt.timedelta = LEFTOVER_AGE
) -> int:
    """Remove media no task points at (its creation was interrupted by a dying worker), the data
    rows of uploads nobody finished and those uploads, once older than ``age``; returns how many
    objects were removed."""
    cutoff = utcnow() - age
    async with sessionmaker.begin() as session:
        abandoned = select(Task.id).join(Data, Data.id == Task.data_id)
        abandoned = abandoned.where(Task.media_type == "", Data.created_date < cutoff)
        abandoned_ids = list(await session.scalars(abandoned))
        forgotten = [await upload_data.forget(session, task_id) for task_id in abandoned_ids]
        unused = ~exists(select(Task.id).where(Task.data_id == Data.id))
        orphans = list(await session.scalars(select(Data.id).where(unused, Data.created_date < cutoff)))
        if orphans:
            await session.execute(delete(Data).where(Data.id.in_(orphans)))
        orphans += [data_id for data_id in forgotten if data_id is not None]
    removed = 0
    for data_id in orphans:
        removed += await storage.delete_prefix(layout.data_prefix(data_id))
    stale = [info.key async for info in storage.list("uploads/") if info.last_modified < cutoff]
    for key in stale:
        await storage.delete(key)
    return removed + len(stale)
