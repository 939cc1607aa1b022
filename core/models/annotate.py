"""Running a model on a task's or job's frames: one frame online, or all of them as a request.

A request (the ``annotation`` queue) reads frames a chunk's worth at a time, runs the model on them
and keeps the mapped annotations in memory, reporting progress; at the end it writes them all and
finishes its request in one transaction. So a worker killed midway leaves nothing behind and its
request runs again from the start once its lease lapses; a request cancelled meanwhile (its row
deleted) stops at the next batch and writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import msgspec
import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import annota.core.services.annotations as annotation_service
from annota.core.db.tables import BackgroundRequest, Frame, Job, Task
from annota.core.errors import AnnotaError, NotFound, ValidationError
from annota.core.formats.model import Shape
from annota.core.models.host import ModelHost
from annota.core.models.mapping import LabelMap, LabelMappingEntry
from annota.core.models.runner import DetectOptions, Image, ModelError
from annota.core.queue import JobContext, JobRegistry
from annota.core.schemas.annotations import LabeledData
from annota.core.services import frames as frame_service
from annota.core.services.data_meta import deleted_frames
from annota.core.services.dataset_labels import LabelCatalog, load_catalog
from annota.core.services.labels import task_labels_owner
from annota.core.storage import StorageBackend

logger = logging.getLogger(__name__)

#: the job behind ``POST /api/lambda/requests``
JOB_NAME = "annota.models.annotate"
#: frames read and run per step between progress reports and cancellation checks
STEP = 16


@dataclass
class Target:
    """The task (or one of its jobs) a model runs on."""

    task: Task
    job: Job | None
    media: frame_service.Media
    catalog: LabelCatalog
    #: each frame's file (the uploaded path), for messages
    paths: dict[int, str]

    @property
    def subject(self) -> str:
        return f"job {self.job.id}" if self.job is not None else f"task {self.task.id}"

    def frames(self) -> list[int]:
        """The frames to annotate: the task's or job's, without deleted ones."""
        deleted = set(deleted_frames(self.media))
        return [number for number in self.media.frames if number not in deleted]


async def target(session: AsyncSession, task_id: int | None, job_id: int | None) -> Target:
    """The task or job a call names (a job wins, as in CVAT); 404 if either is missing."""
    job = None
    if job_id is not None:
        job = await session.get(Job, job_id)
        if job is None:
            raise NotFound(f"Job {job_id} not found.")
        if task_id is not None and job.task_id != task_id:
            raise ValidationError.for_field("job", f"Job {job_id} is not a job of task {task_id}.")
        task_id = job.task_id
    if task_id is None:
        raise ValidationError.for_field("task", "A task or a job is required.")
    task = await session.get(Task, task_id)
    if task is None:
        raise NotFound(f"Task {task_id} not found.")
    media = (
        await frame_service.job_media(session, job)
        if job is not None
        else await frame_service.task_media(session, task)
    )
    project_id, owner_task_id = task_labels_owner(task)
    catalog = await load_catalog(session, project_id=project_id, task_id=owner_task_id)
    rows = await session.execute(select(Frame.frame, Frame.path).where(Frame.data_id == media.data.id))
    return Target(task, job, media, catalog, {number: path for number, path in rows})


def parse_mapping(raw: Any) -> dict[str, LabelMappingEntry] | None:
    """A ``mapping`` value of a request body (400 naming the field when it is malformed)."""
    if raw is None:
        return None
    try:
        return msgspec.convert(raw, dict[str, LabelMappingEntry])
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).rpartition(" - at `$")
        raise ValidationError.for_field("mapping" + path.rstrip("`"), message or str(exc)) from None


def decode_frame(model: str, frame: str, content: bytes) -> Image:
    image = cv2.imdecode(np.frombuffer(content, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ModelError(f"Model {model!r} cannot read frame {frame}: it is not a decodable image.")
    return np.asarray(image, dtype=np.uint8)


def crop(image: Image, roi: Sequence[int], frame: str) -> tuple[Image, int, int]:
    """The part of ``image`` inside CVAT's region of interest ``[xtl, ytl, xbr, ybr]`` (clipped to
    the image), and where it starts; a region with nothing of the image in it is a 400 on ``roi``."""
    if len(roi) != 4:
        raise ValidationError.for_field("roi", "A region of interest is [xtl, ytl, xbr, ybr].")
    height, width = image.shape[:2]
    left, top = max(0, min(roi[0], roi[2])), max(0, min(roi[1], roi[3]))
    right, bottom = min(width, max(roi[0], roi[2])), min(height, max(roi[1], roi[3]))
    if right - left < 1 or bottom - top < 1:
        raise ValidationError.for_field(
            "roi", f"The region {list(roi)} holds no pixel of frame {frame} ({width}x{height})."
        )
    return image[top:bottom, left:right], left, top


def shift(shape: Shape, dx: float, dy: float) -> None:
    """Move a shape found in a region back to the frame's coordinates."""
    if shape.type == "mask":
        # runs, then the crop's left, top, right, bottom
        shape.points[-4:] = [v + (dx if i % 2 == 0 else dy) for i, v in enumerate(shape.points[-4:])]
    else:
        shape.points = [v + (dx if i % 2 == 0 else dy) for i, v in enumerate(shape.points)]
    for element in shape.elements:
        shift(element, dx, dy)


async def run_on(
    host: ModelHost,
    storage: StorageBackend,
    model: str,
    where: Target,
    numbers: Sequence[int],
    options: DetectOptions,
    roi: Sequence[int] | None = None,
) -> list[list[Any]]:
    """The model's detections on ``numbers`` (original quality), one list per frame; with a region
    of interest, on that part of each frame only, in the frame's coordinates."""
    contents = await frame_service.frames_content(storage, where.media, "original", numbers)
    names = [f"{number} ({where.paths.get(number, name)})" for number, name, _ in contents]
    images = [
        decode_frame(model, name, content) for name, (_, _, content) in zip(names, contents, strict=True)
    ]
    if roi is None:
        return await host.detect(model, images, options, names)
    crops = [crop(image, roi, name) for image, name in zip(images, names, strict=True)]
    found = await host.detect(model, [image for image, _, _ in crops], options, names)
    for detections, (_, left, top) in zip(found, crops, strict=True):
        for detection in detections:
            if isinstance(detection, Shape):
                shift(detection, left, top)
    return found


async def label_map(
    host: ModelHost,
    model: str,
    where: Target,
    mapping: dict[str, LabelMappingEntry] | None,
    conv_mask_to_poly: bool,
) -> LabelMap:
    loaded = await host.load(model)
    return LabelMap(
        model,
        loaded.labels,
        where.catalog,
        mapping,
        conv_mask_to_poly=conv_mask_to_poly,
        subject=where.subject,
    )


async def online(
    host: ModelHost,
    storage: StorageBackend,
    *,
    model: str,
    where: Target,
    frame: int,
    threshold: float | None,
    mapping: dict[str, LabelMappingEntry] | None,
    conv_mask_to_poly: bool,
    roi: Sequence[int] | None = None,
) -> LabeledData:
    """One frame (or its region of interest) through the model, as CVAT's online detector call
    answers: the frame's new
    annotations (``tags`` and ``shapes`` with the task's ``label_id`` and ``spec_id``), not saved.
    CVAT's AI tools add them to the job themselves; the detector's list of labels by name is only
    what a function answers CVAT's server, never what the server answers its web UI."""
    labels = await label_map(host, model, where, mapping, conv_mask_to_poly)
    frame_service.check_frame(where.media, frame, "frame")
    options = DetectOptions(conf_threshold=threshold, conv_mask_to_poly=conv_mask_to_poly)
    (detections,) = await run_on(host, storage, model, where, [frame], options, roi)
    data = LabeledData()
    labels.apply(detections, frame, (await host.load(model)).threshold(options), data)
    return data


# --- the request ------------------------------------------------------------------------------


class _Cancelled(AnnotaError):
    status_code = 409


async def _still_held(context: JobContext) -> bool:
    async with context.sessionmaker() as session:
        row = await session.execute(
            select(BackgroundRequest.status, BackgroundRequest.attempts).where(
                BackgroundRequest.id == context.request_id
            )
        )
        found = row.one_or_none()
    return found is not None and found[0] == "started" and found[1] == context.attempt


async def detect_all(
    host: ModelHost,
    storage: StorageBackend,
    model: str,
    where: Target,
    labels: LabelMap,
    options: DetectOptions,
    after_step: Callable[[int, int], Awaitable[None]] | None = None,
) -> LabeledData:
    """Every frame of ``where`` through ``model``, mapped; ``after_step(done, total)`` follows
    each step (progress, cancellation)."""
    minimum = (await host.load(model)).threshold(options)
    data = LabeledData()
    numbers = where.frames()
    for start in range(0, len(numbers), STEP):
        step = numbers[start : start + STEP]
        results = await run_on(host, storage, model, where, step, options)
        for number, detections in zip(step, results, strict=True):
            labels.apply(detections, number, minimum, data)
        if after_step is not None:
            await after_step(start + len(step), len(numbers))
    return data


async def write(session: AsyncSession, where: Target, data: LabeledData, *, cleanup: bool) -> None:
    """Add ``data`` to the task's or job's annotations (replace them all with ``cleanup``)."""
    task = await session.get(Task, where.task.id)
    job = await session.get(Job, where.job.id) if where.job is not None else None
    if task is None or (where.job is not None and job is None):
        raise NotFound(f"{where.subject.capitalize()} was deleted while the model ran.")
    if job is not None:
        if cleanup:
            await annotation_service.store_job(session, job, data)
        else:
            await annotation_service.patch_job(session, job, data, "create")
    elif cleanup:
        await annotation_service.store_task(session, task, data)
    else:
        await annotation_service.patch_task(session, task, data, "create")


async def annotate(
    context: JobContext,
    *,
    function: str,
    task: int,
    job: int | None = None,
    threshold: float | None = None,
    mapping: Any = None,
    cleanup: bool = False,
    conv_mask_to_poly: bool = False,
) -> None:
    """The ``annotation`` queue's job: every frame of the task (or job) through ``function``."""
    host: ModelHost = context.models
    async with context.sessionmaker() as session:
        where = await target(session, task, job)
    labels = await label_map(host, function, where, parse_mapping(mapping), conv_mask_to_poly)

    async def after_step(done: int, total: int) -> None:
        if not await _still_held(context):
            raise _Cancelled(f"The request was cancelled after {done} of {total} frames.")
        await context.set_progress(done / max(total, 1))

    options = DetectOptions(conf_threshold=threshold, conv_mask_to_poly=conv_mask_to_poly)
    data = await detect_all(host, context.storage, function, where, labels, options, after_step)
    async with context.sessionmaker.begin() as session:
        if not await context.finish_in(session):
            raise _Cancelled("The request was cancelled; no annotations were written.")
        await write(session, where, data, cleanup=cleanup)
    logger.info(
        "request %s: %s wrote %d shapes and %d tags on %s",
        context.request_id, function, len(data.shapes), len(data.tags), where.subject,
    )  # fmt: skip


def register(registry: JobRegistry) -> None:
    registry.register("annota", JOB_NAME, annotate, queue="annotation", timeout=24 * 3600, max_tries=3)


__all__ = [
    "JOB_NAME",
    "Target",
    "annotate",
    "detect_all",
    "label_map",
    "online",
    "parse_mapping",
    "register",
    "target",
    "write",
]
