"""Importing a dataset into a project: one new task per subset, made from the dataset's images.

The job reads the dataset twice. The first pass only gathers each subset's image files and the
labels used (names, skeleton elements, attribute names); labels the project lacks are created,
those a format declares with their attribute specs, the others with the attributes their
annotations carry (as text). Then each subset becomes a task of the project, named after the
subset: its images go through the ordinary media pipeline, and its annotations are bound and
stored as an annotation import would. Any error removes every task and label the import created,
so a failed import leaves the project as it was.
"""

from __future__ import annotations

import asyncio
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import delete

from annota.core.access import Identity, OrganizationContext
from annota.core.db.tables import Label, Project, Task
from annota.core.errors import FormatError, NotFound
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.failures import named_failures
from annota.core.formats.model import Dataset, Item, LabelSpec, Track
from annota.core.formats.registry import FormatRegistry, ImportOptions
from annota.core.formats.source import prepare_input
from annota.core.media import layout
from annota.core.media.archives import ArchiveLimits
from annota.core.queue import JobContext, JobResult
from annota.core.schemas.labels import AttributeWrite, LabelWrite, SublabelWrite
from annota.core.schemas.tasks import TaskWrite
from annota.core.services import dataset_import, job_files, task_data, uploads
from annota.core.services import tasks as task_service
from annota.core.services.cloudstorages import transfer
from annota.core.services.label_changes import apply_changes
from annota.core.services.labels import read_labels

JOB_NAME = "import_project_dataset"
#: attributes formats use for shape properties, never created as label attributes
_PROPERTY_ATTRIBUTES = frozenset({"occluded", "rotation", "track_id", "keyframe", "outside", "z_order"})
_MEDIA_ARCHIVE = "dataset-images.zip"


@dataclass
class _Survey:
    """What the first pass found."""

    #: subset -> [(frame file name, image path)] in dataset order
    images: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    #: label name -> attribute names seen on its annotations
    labels: dict[str, set[str]] = field(default_factory=dict)
    #: skeleton label name -> element label names
    elements: dict[str, set[str]] = field(default_factory=dict)


def _file_name(item: Item, image: str) -> str:
    name = PurePosixPath(item.name.replace("\\", "/"))
    return str(name) if name.suffix else f"{name}{Path(image).suffix.lower()}"


def _survey(dataset: Dataset) -> _Survey:
    survey = _Survey()
    seen: dict[str, set[str]] = {}
    for item in dataset.items(tracks=True):
        if item.image is None:
            raise FormatError("a project import creates tasks from the dataset's images; this item has none",
                              item=item.name)  # fmt: skip
        name = _file_name(item, item.image)
        names = seen.setdefault(item.subset, set())
        if name in names:
            raise FormatError(f"two items of subset {item.subset!r} are named {name!r}", item=item.name)
        names.add(name)
        survey.images.setdefault(item.subset, []).append((name, item.image))
        for tag in item.tags:
            survey.labels.setdefault(tag.label, set()).update(tag.attributes)
        for shape in item.shapes:
            survey.labels.setdefault(shape.label, set()).update(shape.attributes)
            if shape.elements:
                survey.elements.setdefault(shape.label, set()).update(e.label for e in shape.elements)
    for track in dataset.tracks():
        survey.labels.setdefault(track.label, set()).update(track.attributes)
    return survey


def _attribute(name: str, spec: Any = None) -> AttributeWrite:
    if spec is None:
        return AttributeWrite(name=name, input_type="text", mutable=False, values=[], default_value="")
    return AttributeWrite(name=spec.name, input_type=spec.input_type, mutable=spec.mutable,
                          values=list(spec.values), default_value=spec.default_value)  # fmt: skip


def new_labels(declared: list[LabelSpec], survey: _Survey, existing: set[str]) -> list[LabelWrite]:
    """The labels the project lacks, declared ones with their specs, the others as used."""
    changes: list[LabelWrite] = []
    specs = {spec.name: spec for spec in declared}
    for name in [*specs, *(n for n in survey.labels if n not in specs)]:
        if name in existing:
            continue
        spec = specs.get(name)
        used = survey.labels.get(name, set()) - _PROPERTY_ATTRIBUTES
        attributes = [_attribute(a.name, a) for a in spec.attributes] if spec else []
        attributes += [_attribute(a) for a in sorted(used - {a.name for a in attributes})]
        elements = [s.name for s in spec.sublabels] if spec else sorted(survey.elements.get(name, ()))
        label = LabelWrite(name=name, attributes=attributes)
        if spec is not None and spec.type != "any":
            label.type = spec.type  # type: ignore[assignment]
        if elements:
            label.type = "skeleton"
            label.sublabels = [SublabelWrite(name=element, type="points") for element in elements]
            if spec is not None and spec.svg:
                label.svg = spec.svg
        changes.append(label)
    return changes


def _archive(images: list[tuple[str, str]], path: Path) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, image in images:
            archive.write(image, name)


class _Subset(StreamedDataset):
    """One subset of a dataset (tracks go with the first subset: they carry no subset)."""

    def __init__(self, dataset: Dataset, subset: str, with_tracks: bool) -> None:
        def items() -> Iterator[Item]:
            return (item for item in dataset.items(tracks=True) if item.subset == subset)

        def tracks() -> Iterator[Track]:
            return dataset.tracks() if with_tracks else iter(())

        super().__init__(dataset.name, dataset.labels, items, tracks)


async def _create_task(ctx: JobContext, who: Identity, project_id: int, subset: str) -> int:
    write = TaskWrite(name=subset, project_id=project_id, subset=subset if subset != "default" else "")
    async with ctx.sessionmaker.begin() as session:
        return (await task_service.create(session, who, write)).id


async def _fill_task(ctx: JobContext, task_id: int, images: list[tuple[str, str]], workspace: Path) -> None:
    archive = workspace / f"task-{task_id}.zip"
    await asyncio.to_thread(_archive, images, archive)
    try:
        await job_files.store_file(ctx.storage, layout.upload_file(task_id, _MEDIA_ARCHIVE), archive)
    finally:
        archive.unlink(missing_ok=True)
    await task_data.create_task_data(ctx, task_id, {"image_quality": 70})


async def _store_annotations(
    ctx: JobContext, task_id: int, dataset: Dataset, subset: str, first: bool, conv_mask_to_poly: bool
) -> None:
    async with ctx.sessionmaker.begin() as session:
        task = await session.get(Task, task_id)
        if task is None:
            raise NotFound(f"Task {task_id} was deleted during the import.")
        target = await dataset_import.plan_import(session, task)
        part = _Subset(dataset, subset, first)
        bound = await asyncio.to_thread(
            dataset_import.bind, part, target, conv_mask_to_poly=conv_mask_to_poly
        )
        await dataset_import.write(session, target, bound, "replace")


async def _undo(ctx: JobContext, task_ids: list[int], label_ids: list[int]) -> None:
    prefixes: list[str] = []
    async with ctx.sessionmaker.begin() as session:
        for task_id in task_ids:
            task = await session.get(Task, task_id)
            if task is not None:
                prefixes += await task_service.remove(session, task)
        if label_ids:
            await session.execute(delete(Label).where(Label.id.in_(label_ids)))
    for prefix in prefixes:
        await ctx.storage.delete_prefix(prefix)
    for task_id in task_ids:
        await uploads.clear(ctx.storage, task_id)


async def import_project_dataset(
    ctx: JobContext,
    *,
    project_id: int,
    format: str,
    area: str,
    filename: str,
    user_id: int,
    conv_mask_to_poly: bool = False,
    source: dict[str, Any] | None = None,
) -> JobResult:
    """Import a dataset into the project from ``filename``, uploaded to ``area`` or, with a
    ``source``, read from a cloud storage."""
    formats: FormatRegistry = ctx.formats
    fmt = formats.get(format, direction="import")
    assert fmt.importer is not None
    workspace = await job_files.scratch(ctx, f"import-project-{project_id}-")
    created_tasks: list[int] = []
    created_labels: list[int] = []
    try:
        await ctx.set_progress(0.0, f"Reading {filename} as {fmt.display_name}")
        if source is not None:
            await transfer.fetch_from_bucket(ctx, source, area)
        local = await job_files.fetch_upload(ctx.storage, area, filename, workspace / "upload")
        limits = ArchiveLimits.from_settings(ctx.settings)
        root = await asyncio.to_thread(prepare_input, local, workspace, name=filename, limits=limits)
        async with ctx.sessionmaker() as session:
            project = await session.get(Project, project_id)
            if project is None:
                raise NotFound(f"Project {project_id} no longer exists.")
            existing = {label.name for label in await read_labels(session, project_id=project_id)}
            org_id = project.organization_id
        with named_failures(root, filename):
            options = ImportOptions(conv_mask_to_poly=conv_mask_to_poly)
            dataset = await asyncio.to_thread(fmt.importer, root, options)
            survey = await asyncio.to_thread(_survey, dataset)
            if not survey.images:
                raise FormatError("the dataset has no items", file=filename)
            changes = new_labels(list(dataset.labels), survey, existing)
            try:
                if changes:
                    async with ctx.sessionmaker.begin() as session:
                        await apply_changes(session, changes, project_id=project_id, creating=False)
                        added = await read_labels(session, project_id=project_id)
                        created_labels = [label.id for label in added if label.name not in existing]
                # the tasks belong where the project does
                organization = (
                    OrganizationContext(id=org_id, slug="", owner_id=None, role=None) if org_id else None
                )
                who = Identity(user_id=user_id, organization=organization)
                subsets = list(survey.images)
                for number, subset in enumerate(subsets):
                    await ctx.set_progress(
                        0.1 + 0.9 * number / len(subsets), f"Creating the task of subset {subset}"
                    )
                    task_id = await _create_task(ctx, who, project_id, subset)
                    created_tasks.append(task_id)
                    await _fill_task(ctx, task_id, survey.images[subset], workspace)
                    await _store_annotations(ctx, task_id, dataset, subset, number == 0, conv_mask_to_poly)
            except BaseException:
                await asyncio.shield(_undo(ctx, created_tasks, created_labels))
                raise
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
        await ctx.storage.delete_prefix(area)
    frames = sum(len(images) for images in survey.images.values())
    return JobResult(
        result_id=project_id,
        message=f"Created {len(created_tasks)} tasks with {frames} images and {len(changes)} new labels.",
    )


__all__ = ["JOB_NAME", "import_project_dataset", "new_labels"]
