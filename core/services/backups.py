"""Task and project backups in CVAT's layout: the background jobs that write and restore them.

``export_backup`` (``export`` queue) writes a ZIP to the storage backend: ``task.json``,
``annotations.json`` and ``data/`` (the task's original media files under their upload paths,
context images in CVAT's ``related_images/`` layout, ``manifest.jsonl`` and ``index.json``); a
project backup is ``project.json`` plus one ``task_<n>/`` directory per task with media.

``restore_task_backup`` and ``restore_project_backup`` (``import`` queue) read an uploaded backup
(extracted with the archive safety checks), create the project/task with its labels, build the
media from ``data/`` with the same processing as a media upload, then write the annotations.
Everything is checked that can be checked before the first row is written; a failure after that
deletes what was created, so a failed restore leaves no project, task or media behind.

annota keeps only the frames a task selected (start/stop frame, ``step=N``), while CVAT keeps the
whole upload. A backup whose ``data/`` holds exactly as many images as the task had frames is
therefore taken frame for frame, and its recorded frame range and filter are restored as settings;
with more images (a CVAT backup) the range and filter select the frames, as in CVAT.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, cast
from urllib.parse import quote

import msgspec
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core import leftovers
from annota.core.access import Identity, OrganizationContext
from annota.core.db.tables import Data, Frame, Job, Project, Segment, Task
from annota.core.errors import MediaError, NotFound, ObjectNotFound, ValidationError
from annota.core.media import layout
from annota.core.media.archives import ArchiveLimits, extract_archive
from annota.core.media.segments import segment_ranges
from annota.core.media.sorting import parse_frame_step, sort_names
from annota.core.queue import JobContext, JobRegistry, JobResult
from annota.core.schemas.annotations import LabeledData
from annota.core.schemas.projects import ProjectWrite
from annota.core.schemas.tasks import TaskWrite
from annota.core.services import annotations as annotation_service
from annota.core.services import backup_manifest as bm
from annota.core.services import job_files, media_sources, task_data, uploads
from annota.core.services import projects as project_service
from annota.core.services import tasks as task_service
from annota.core.services.cloudstorages import transfer
from annota.core.services.labels import read_labels, task_labels_owner
from annota.core.storage import StorageBackend

logger = logging.getLogger(__name__)

EXPORT_JOB = "export_backup"
RESTORE_TASK_JOB = "restore_task_backup"
RESTORE_PROJECT_JOB = "restore_project_backup"

#: the name the backup's media take in the new task's upload area (one archive keeps their paths)
MEDIA_ARCHIVE = "data.zip"
_META_FILES = frozenset({"manifest.jsonl", "index.json"})
_ints = msgspec.json.Decoder(list[int])
_names = msgspec.json.Decoder(list[str])


def _json(value: Any) -> bytes:
    return msgspec.json.encode(value)


def _describe(error: ValidationError) -> str:
    """A field error as one readable line (``field: message``) for the request's message."""
    if isinstance(error.detail, dict):
        return "; ".join(
            f"{field}: {' '.join(map(str, messages)) if isinstance(messages, list) else messages}"
            for field, messages in error.detail.items()
        )
    return str(error.detail)


# --- export ---------------------------------------------------------------------------------


def related_path(image: str, name: str) -> str:
    """Where CVAT keeps a context image of ``image``: ``<dir>/related_images/<stem>_<ext>/<name>``."""
    path = PurePosixPath(image)
    return str(path.parent / media_sources.RELATED_DIR / path.name.replace(".", "_") / name)


def manifest_index(manifest: bytes) -> dict[str, int]:
    """CVAT's ``index.json``: the byte offset of each media line of ``manifest.jsonl``."""
    offsets: list[int] = []
    position = 0
    for line in manifest.splitlines(keepends=True):
        if line.strip():
            offsets.append(position)
        position += len(line)
    # images manifests have two header lines (version, type), video manifests a third (properties)
    lines = manifest.splitlines()
    header = 3 if len(lines) > 1 and b'"video"' in lines[1] else 2
    return {str(number): offset for number, offset in enumerate(offsets[header:])}


@dataclass
class _JobRow:
    start: int
    stop: int
    status: str


async def _job_rows(session: AsyncSession, task_id: int) -> list[_JobRow]:
    rows = await session.execute(
        select(Segment.start_frame, Segment.stop_frame, Job.status)
        .join(Segment, Segment.id == Job.segment_id)
        .where(Job.task_id == task_id, Job.type == "annotation")
        .order_by(Segment.start_frame, Job.id)
    )
    return [_JobRow(start, stop, status) for start, stop, status in rows]


class _Archive:
    """The ZIP being written; members are written in a thread, one at a time."""

    def __init__(self, path: Path) -> None:
        self.zip = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED)

    async def write(self, name: str, data: bytes, compress: bool = True) -> None:
        kind = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        await asyncio.to_thread(self.zip.writestr, name, data, kind)

    def close(self) -> None:
        self.zip.close()


async def _write_task(
    session: AsyncSession, storage: StorageBackend, task: Task, archive: _Archive, prefix: str = ""
) -> None:
    data = await session.get(Data, task.data_id) if task.data_id is not None and task.media_type else None
    if data is None:
        raise ValidationError(f"Task {task.id} has no media: there is nothing to back up.")
    if data.storage == "cloud_storage":
        # its media are in a bucket, not here; CVAT's lightweight backups of such tasks are not made yet
        raise ValidationError(
            f"Task {task.id} keeps its media in a cloud storage: backing it up is not supported."
        )
    project_id, owner_task_id = task_labels_owner(task)
    labels = await read_labels(session, project_id=project_id, task_id=owner_task_id)
    frames = (
        (await session.execute(select(Frame).where(Frame.data_id == data.id).order_by(Frame.frame)))
        .scalars()
        .all()
    )
    jobs = await _job_rows(session, task.id)
    # media first: a missing object fails the export before the small documents are built
    written: set[str] = set()
    for frame in frames:
        if frame.path not in written:
            written.add(frame.path)
            content = await storage.read(layout.raw_file(data.id, frame.path))
            await archive.write(f"{prefix}{bm.DATA_DIR}/{frame.path}", content, compress=False)
        for name in _names.decode(frame.related_files or "[]"):
            content = await storage.read(layout.context_image(data.id, frame.frame, name))
            await archive.write(
                f"{prefix}{bm.DATA_DIR}/{related_path(frame.path, name)}", content, compress=False
            )
    try:
        manifest = await storage.read(layout.manifest(data.id))
    except ObjectNotFound:
        manifest = b""
    if manifest:
        await archive.write(f"{prefix}{bm.DATA_DIR}/manifest.jsonl", manifest)
        await archive.write(f"{prefix}{bm.DATA_DIR}/index.json", _json(manifest_index(manifest)))

    ranges = [(job.start, job.stop) for job in jobs]
    custom = (
        bool(frames)
        and task.mode == "annotation"
        and ranges != segment_ranges(len(frames), task.segment_size, task.overlap, "annotation")
    )
    data_entry: dict[str, Any] = {
        "chunk_size": data.chunk_size,
        "image_quality": data.image_quality,
        "start_frame": data.start_frame,
        "stop_frame": data.stop_frame,
        "chunk_type": data.compressed_chunk_type,
        "storage_method": data.storage_method,
        "storage": "local",
        "sorting_method": data.sorting_method,
        "deleted_frames": _ints.decode(data.deleted_frames or "[]"),
    }
    if data.frame_filter:
        data_entry["frame_filter"] = data.frame_filter
    selected = data.start_frame != 0 or data.stop_frame != len(frames) - 1 or bool(data.frame_filter)
    if data.media_kind == "images" and selected:
        # data/ holds the kept images only: describe them as the whole upload, as CVAT must see them
        data_entry.pop("frame_filter", None)
        data_entry.update(start_frame=0, stop_frame=len(frames) - 1)
        data_entry["selected_frames"] = {"start_frame": data.start_frame, "stop_frame": data.stop_frame,
                                         "frame_filter": data.frame_filter}  # fmt: skip
    if custom:
        data_entry["custom_segments"] = True
    job_entries = []
    for job in jobs:
        entry: dict[str, Any] = {"start_frame": job.start, "stop_frame": job.stop, "frames": [],
                                 "status": job.status, "type": "annotation"}  # fmt: skip
        if custom:
            entry["files"] = [frame.path for frame in frames[job.start : job.stop + 1]]
        job_entries.append(entry)
    manifest_doc = {
        "name": task.name,
        "bug_tracker": task.bug_tracker,
        "status": task.status,
        "subset": task.subset,
        "labels": bm.labels_out(labels),
        "version": bm.VERSION,
        "data": data_entry,
        "jobs": job_entries,
        "segment_size": task.segment_size,
        "overlap": task.overlap,
    }
    await archive.write(f"{prefix}{bm.TASK_MANIFEST}", _json(manifest_doc))
    annotations = msgspec.json.decode(await annotation_service.read_task(session, task), type=LabeledData)
    await archive.write(f"{prefix}{bm.ANNOTATIONS}", _json(bm.annotations_out(annotations, labels, ranges)))


async def _write_project(
    session: AsyncSession, storage: StorageBackend, project: Project, archive: _Archive
) -> None:
    labels = await read_labels(session, project_id=project.id)
    manifest = {
        "name": project.name,
        "bug_tracker": project.bug_tracker,
        "status": project.status,
        "labels": bm.labels_out(labels),
        "version": bm.VERSION,
    }
    await archive.write(bm.PROJECT_MANIFEST, _json(manifest))
    tasks = (
        await session.execute(
            select(Task).where(Task.project_id == project.id, Task.data_id.is_not(None)).order_by(Task.id)
        )
    ).scalars()
    for number, task in enumerate(tasks):
        await _write_task(session, storage, task, archive, f"task_{number}/")


async def export_backup(
    ctx: JobContext, *, target: str, target_id: int, base_url: str, destination: dict[str, Any] | None = None
) -> JobResult:
    """Back up the task or project; with a ``destination``, upload the backup to that cloud storage."""
    storage: StorageBackend = ctx.storage
    result_url = (
        f"{base_url}/api/{target}s/{target_id}/backup/download?rq_id={quote(ctx.request_id, safe='')}"
    )
    key = layout.export_file(target, target_id, f"backup-{uuid.uuid4().hex}")
    workspace = await job_files.scratch(ctx, f"backup-{target}-{target_id}-")
    try:
        await ctx.set_progress(0.0, f"Backing up {target} {target_id}")
        path = workspace / "backup.zip"
        archive = _Archive(path)
        try:
            async with ctx.sessionmaker() as session:
                if target == "task":
                    task = await session.get(Task, target_id)
                    if task is None:
                        raise NotFound(f"The task {target_id} no longer exists.")
                    await _write_task(session, storage, task, archive)
                else:
                    project = await session.get(Project, target_id)
                    if project is None:
                        raise NotFound(f"The project {target_id} no longer exists.")
                    await _write_project(session, storage, project, archive)
        finally:
            archive.close()
        await ctx.set_progress(0.9, "Saving the backup")
        await ctx.leave(leftovers.PARTIAL, key)
        await job_files.store_file(storage, key, path)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    if destination is not None:
        return await transfer.copy_to_bucket(ctx, key, destination)
    return JobResult(result_url=result_url, result_file=key, message="")


# --- restore: reading the upload ------------------------------------------------------------


async def _unpack(ctx: JobContext, area: str, filename: str, workspace: Path) -> Path:
    """The uploaded backup, extracted safely; the upload itself is removed."""
    storage: StorageBackend = ctx.storage
    local = await job_files.fetch_upload(storage, area, filename, workspace / "upload.zip")
    if not zipfile.is_zipfile(local):
        raise ValidationError(
            f"{filename} is not a ZIP archive: a backup is the ZIP file a backup export gives."
        )
    root = workspace / "backup"
    root.mkdir()
    limits = ArchiveLimits.from_settings(ctx.settings)
    name = filename if filename.lower().endswith(".zip") else f"{filename}.zip"
    await asyncio.to_thread(extract_archive, local, name, root, limits)
    local.unlink()
    return root


@contextmanager
def _told_with(filename: str) -> Iterator[None]:
    """A refusal of a backup names it as it was uploaded, whatever part of it was at fault."""
    try:
        yield
    except ValidationError as error:
        if type(error) not in (ValidationError, MediaError) or not isinstance(error.detail, str):
            raise
        if filename in error.detail:
            raise
        raise type(error)(f"{filename}: {error.detail}") from None


def _read_member(root: Path, name: str, what: str) -> bytes:
    path = root.joinpath(*PurePosixPath(name).parts)
    if not path.is_file():
        raise ValidationError(f"The backup has no {name}: it is not a CVAT {what} backup.")
    return path.read_bytes()


@dataclass
class _TaskSource:
    """One task of a backup, read and checked before anything is created."""

    root: Path
    where: str
    manifest: bm.TaskManifest
    annotations: list[bm.NamedJobAnnotations]
    files: list[str]
    images: list[str]
    video: str | None


def _media_files(data_dir: Path) -> list[str]:
    return sorted(
        path.relative_to(data_dir).as_posix()
        for path in data_dir.rglob("*")
        if path.is_file() and path.relative_to(data_dir).as_posix() not in _META_FILES
    )


def _read_task(root: Path, prefix: str, labels: Sequence[bm.LabelManifest] | None) -> _TaskSource:
    """``labels``: the project's, for a task of a project backup (the task's own otherwise)."""
    where = prefix
    manifest = bm.read_task_manifest(
        _read_member(root, bm.TASK_MANIFEST, "task"), f"{where}{bm.TASK_MANIFEST}"
    )
    annotations = bm.read_annotations(_read_member(root, bm.ANNOTATIONS, "task"), f"{where}{bm.ANNOTATIONS}")
    declared = manifest.labels if labels is None else labels
    bm.annotations_to_ids(annotations, bm.index_manifest_labels(declared), f"{where}{bm.ANNOTATIONS}")
    bm.labels_in(declared, f"{where}{bm.TASK_MANIFEST}")
    parse_frame_step(manifest.data.frame_filter)
    parse_frame_step(manifest.data.frame_range().frame_filter)
    data_dir = root / bm.DATA_DIR
    files = _media_files(data_dir) if data_dir.is_dir() else []
    if not files:
        raise ValidationError(f"{where}{bm.DATA_DIR}/ holds no media files: the backup has no task data.")
    try:
        sources = media_sources.classify(data_dir, files)
    except MediaError as error:
        raise ValidationError(f"{where}{bm.DATA_DIR}/: {error}") from None
    return _TaskSource(root, where, manifest, annotations, files, sources.images, sources.video)


# --- restore: creating ----------------------------------------------------------------------


def _identity(user_id: int, org_id: int | None) -> Identity:
    organization = OrganizationContext(id=org_id, slug="", owner_id=None, role=None) if org_id else None
    return Identity(user_id=user_id, organization=organization)


def _frame_order(source: _TaskSource) -> list[str]:
    """The images in frame order: as ``manifest.jsonl`` lists them, else by the sorting method."""
    path = source.root / bm.DATA_DIR / "manifest.jsonl"
    listed: list[str] = []
    if path.is_file():
        for line in path.read_bytes().splitlines():
            try:
                entry = msgspec.json.decode(line)
            except msgspec.DecodeError:
                listed = []
                break
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                listed.append(f"{entry['name']}{entry.get('extension', '')}")
    if sorted(listed) == sorted(source.images):
        return listed
    method = source.manifest.data.sorting_method
    return sort_names(source.images, "natural" if method == "natural" else "lexicographical")


@dataclass
class _Selection:
    """The media request for the task, and the settings to record once its frames exist."""

    options: dict[str, Any]
    #: absolute source frame of every task frame, when the backup holds only the selected frames
    real_frames: list[int] | None


def _selection(source: _TaskSource) -> _Selection:
    data = source.manifest.data
    options: dict[str, Any] = {"image_quality": data.image_quality, "chunk_size": data.chunk_size}
    if source.video is not None:
        options.update(
            start_frame=data.start_frame, stop_frame=data.stop_frame, frame_filter=data.frame_filter
        )
        return _Selection(options, None)
    if data.custom_segments:
        mapping = [job.files or [] for job in source.manifest.annotation_jobs()]
        return _Selection({**options, "job_file_mapping": mapping}, None)
    order = _frame_order(source)
    options.update(sorting_method="predefined", upload_file_order=order)
    size = source.manifest.size()
    if len(order) == size:
        selected = data.frame_range()
        step = parse_frame_step(selected.frame_filter)
        return _Selection(options, [selected.start_frame + number * step for number in range(size)])
    options.update(start_frame=data.start_frame, stop_frame=data.stop_frame, frame_filter=data.frame_filter)
    return _Selection(options, None)


def _media_archive(source: _TaskSource, path: Path) -> None:
    data_dir = source.root / bm.DATA_DIR
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name in source.files:
            archive.write(data_dir.joinpath(*PurePosixPath(name).parts), name)


async def _record_settings(
    session: AsyncSession, task: Task, source: _TaskSource, selection: _Selection
) -> None:
    """What the media processing cannot know: the original frame range, filter, sorting and
    deleted frames."""
    data = await session.get(Data, task.data_id)
    assert data is not None
    recorded = source.manifest.data
    data.sorting_method = recorded.sorting_method
    data.deleted_frames = msgspec.json.encode(sorted(set(recorded.deleted_frames))).decode()
    if selection.real_frames is not None:
        selected = recorded.frame_range()
        data.start_frame = selected.start_frame
        data.stop_frame = selection.real_frames[-1]
        data.frame_filter = selected.frame_filter
        table = cast(Table, Frame.__table__)
        await session.execute(
            update(table)
            .where(table.c.data_id == data.id, table.c.frame == bindparam("number"))
            .values(real_frame=bindparam("real")),
            [{"number": number, "real": real} for number, real in enumerate(selection.real_frames)],
        )


async def _remove_task(ctx: JobContext, task_id: int) -> None:
    async with ctx.sessionmaker.begin() as session:
        task = await session.get(Task, task_id)
        prefixes = (
            await task_service.remove(session, task) if task is not None else [layout.upload_prefix(task_id)]
        )
    for prefix in prefixes:
        await ctx.storage.delete_prefix(prefix)


async def _create_task(ctx: JobContext, source: _TaskSource, who: Identity, project_id: int | None) -> int:
    """Create one task from a checked backup; on failure the caller removes it (and its project)."""
    manifest = source.manifest
    segment_size, overlap = manifest.segmenting()
    body: dict[str, Any] = {
        "name": manifest.name,
        "bug_tracker": manifest.bug_tracker,
        "subset": manifest.subset,
        "segment_size": segment_size,
        "overlap": overlap,
        "project_id": project_id,
    }
    try:
        write = msgspec.convert(body, TaskWrite)
    except msgspec.ValidationError as error:
        raise ValidationError(f"{source.where}{bm.TASK_MANIFEST}: {error}") from None
    if project_id is None:
        write.labels = bm.labels_in(manifest.labels, f"{source.where}{bm.TASK_MANIFEST}")
    async with ctx.sessionmaker.begin() as session:
        task_id = (await task_service.create(session, who, write)).id
    return task_id


async def _fill_task(ctx: JobContext, task_id: int, source: _TaskSource, workspace: Path) -> None:
    """The task's media from ``data/``, its recorded settings, then its annotations."""
    selection = _selection(source)
    archive = workspace / f"media-{task_id}.zip"
    await asyncio.to_thread(_media_archive, source, archive)
    try:
        await uploads.clear(ctx.storage, task_id)
        await job_files.store_file(ctx.storage, layout.upload_file(task_id, MEDIA_ARCHIVE), archive)
    finally:
        archive.unlink(missing_ok=True)
    try:
        await task_data.create_task_data(ctx, task_id, selection.options)
    except ValidationError as error:
        raise ValidationError(f"{source.where}{bm.DATA_DIR}/: {_describe(error)}") from None
    async with ctx.sessionmaker.begin() as session:
        task = await session.get(Task, task_id)
        if task is None:
            raise NotFound(f"Task {task_id} was deleted while it was restored.")
        await _record_settings(session, task, source, selection)
        project_id, owner_task_id = task_labels_owner(task)
        labels = await read_labels(session, project_id=project_id, task_id=owner_task_id)
        data = bm.annotations_to_ids(
            source.annotations, bm.index_labels(labels), f"{source.where}{bm.ANNOTATIONS}"
        )
        try:
            await annotation_service.replace_task(session, task, data)
        except ValidationError as error:
            raise ValidationError(f"{source.where}{bm.ANNOTATIONS}: {_describe(error)}") from None


async def restore_task_backup(
    ctx: JobContext, *, area: str, filename: str, user_id: int, org_id: int | None = None
) -> JobResult:
    workspace = await job_files.scratch(ctx, "restore-task-")
    try:
        await ctx.set_progress(0.0, f"Reading {filename}")
        with _told_with(filename):
            root = await _unpack(ctx, area, filename, workspace)
            source = await asyncio.to_thread(_read_task, root, "", None)
        task_id = await _create_task(ctx, source, _identity(user_id, org_id), None)
        try:
            await _fill_task(ctx, task_id, source, workspace)
        except BaseException:
            await asyncio.shield(_remove_task(ctx, task_id))
            raise
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
        await _forget_upload(ctx, area)
    return JobResult(result_id=task_id, message=f"Task {task_id} was restored from {filename}.")


def _task_dirs(root: Path) -> list[str]:
    numbered = []
    for path in root.iterdir():
        match = bm.TASK_DIR_PATTERN.match(path.name)
        if match and path.is_dir():
            numbered.append((int(match.group(1)), path.name))
    return [name for _, name in sorted(numbered)]


def _read_project(root: Path) -> tuple[bm.ProjectManifest, list[_TaskSource]]:
    manifest = bm.read_project_manifest(_read_member(root, bm.PROJECT_MANIFEST, "project"))
    bm.labels_in(manifest.labels, bm.PROJECT_MANIFEST)
    tasks = [_read_task(root / name, f"{name}/", manifest.labels) for name in _task_dirs(root)]
    return manifest, tasks


async def _remove_project(ctx: JobContext, project_id: int) -> None:
    async with ctx.sessionmaker.begin() as session:
        project = await session.get(Project, project_id)
        prefixes = await project_service.remove(session, project) if project is not None else []
        tasks = await session.scalars(select(Task.id).where(Task.project_id == project_id))
        prefixes += [layout.upload_prefix(task_id) for task_id in tasks]
    for prefix in prefixes:
        await ctx.storage.delete_prefix(prefix)


async def restore_project_backup(
    ctx: JobContext, *, area: str, filename: str, user_id: int, org_id: int | None = None
) -> JobResult:
    workspace = await job_files.scratch(ctx, "restore-project-")
    who = _identity(user_id, org_id)
    try:
        await ctx.set_progress(0.0, f"Reading {filename}")
        with _told_with(filename):
            root = await _unpack(ctx, area, filename, workspace)
            manifest, sources = await asyncio.to_thread(_read_project, root)
        try:
            write = msgspec.convert(
                {"name": manifest.name, "bug_tracker": manifest.bug_tracker}, ProjectWrite
            )
        except msgspec.ValidationError as error:
            raise ValidationError(f"{bm.PROJECT_MANIFEST}: {error}") from None
        write.labels = bm.labels_in(manifest.labels, bm.PROJECT_MANIFEST)
        async with ctx.sessionmaker.begin() as session:
            project_id = (await project_service.create(session, who, write)).id
        created: list[int] = []
        try:
            for source in sources:
                task_id = await _create_task(ctx, source, who, project_id)
                created.append(task_id)
                await _fill_task(ctx, task_id, source, workspace)
        except BaseException:
            await asyncio.shield(_remove_project_and_tasks(ctx, project_id, created))
            raise
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
        await _forget_upload(ctx, area)
    return JobResult(
        result_id=project_id,
        message=f"Project {project_id} was restored with {len(sources)} tasks from {filename}.",
    )


async def _remove_project_and_tasks(ctx: JobContext, project_id: int, task_ids: list[int]) -> None:
    for task_id in task_ids:
        await _remove_task(ctx, task_id)
    await _remove_project(ctx, project_id)


async def _forget_upload(ctx: JobContext, area: str) -> None:
    try:
        await ctx.storage.delete_prefix(area)
    except Exception:
        logger.exception("could not remove the upload %s", area)


def register(registry: JobRegistry) -> None:
    registry.register("annota", EXPORT_JOB, export_backup, queue="export", timeout=6 * 3600, max_tries=3)
    registry.register(
        "annota", RESTORE_TASK_JOB, restore_task_backup, queue="import", timeout=6 * 3600, max_tries=1
    )
    registry.register(
        "annota", RESTORE_PROJECT_JOB, restore_project_backup, queue="import", timeout=6 * 3600, max_tries=1
    )


__all__ = [
    "EXPORT_JOB",
    "RESTORE_PROJECT_JOB",
    "RESTORE_TASK_JOB",
    "export_backup",
    "register",
    "restore_project_backup",
    "restore_task_backup",
]
