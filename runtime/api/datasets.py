"""Dataset export and annotation import over HTTP (CVAT's API), on top of the format plugins.

- ``GET /api/server/annotation/formats`` lists every registered format with its exact name.
- ``POST /api/{tasks,jobs,projects}/{id}/dataset/export?format=&save_images=&location=local`` starts an
  export on the ``export`` queue (202 ``{"rq_id"}``); the finished request carries an absolute
  ``result_url`` that downloads the ZIP (``.../dataset/download?rq_id=``) with a
  ``Content-Disposition`` file name.
- ``POST /api/{tasks,jobs}/{id}/annotations?format=`` imports annotations with CVAT's upload
  protocol (Upload-Start, TUS, Upload-Finish) or in one multipart request (``annotation_file``),
  on the ``import`` queue; ``import_mode`` is ``replace`` (default) or ``append``.
- ``POST /api/projects/{id}/dataset?format=`` imports a dataset with its images into a project (same
  protocol, ``dataset_file``): one new task per subset (``core.services.project_import``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from annota.core.access import Resource
from annota.core.errors import ValidationError
from annota.core.formats.registry import Format, FormatRegistry
from annota.core.media import layout
from annota.core.schemas.common import RqId
from annota.core.schemas.server import DatasetFormat, DatasetFormats
from annota.core.services import dataset_import, dataset_jobs, project_import
from annota.core.services import jobs as job_service
from annota.core.services import projects as project_service
from annota.core.services import tasks as task_service
from annota.runtime import web
from annota.runtime.api import cloud_locations, exported_files
from annota.runtime.api import uploads as upload

TAGS = ["datasets"]


def _registry(request: Request) -> FormatRegistry:
    registry: FormatRegistry = web.state(request).formats
    return registry


def _entry(fmt: Format, ext: str) -> DatasetFormat:
    return DatasetFormat(
        name=fmt.display_name, ext=ext, version=fmt.version, enabled=True, dimension=fmt.dimension
    )


def _by_name(formats: list[Format]) -> list[Format]:
    return sorted(formats, key=lambda fmt: fmt.display_name.lower())


@web.operation(
    "The dataset formats this server imports and exports", tags=["server"], response=DatasetFormats
)
async def annotation_formats(request: Request) -> Response:
    web.require_user(request)
    registry = _registry(request)
    return web.json_response(
        DatasetFormats(
            importers=[_entry(fmt, fmt.import_ext) for fmt in _by_name(registry.importers())],
            exporters=[_entry(fmt, fmt.export_ext) for fmt in _by_name(registry.exporters())],
        )
    )


# --- targets --------------------------------------------------------------------------------


@dataclass
class Target:
    kind: str
    id: int
    resource: Resource
    task_id: int | None = None
    job_id: int | None = None
    project_id: int | None = None


async def _target(request: Request, kind: str) -> Target:
    target_id = web.path_int(request)
    async with web.transaction(request) as session:
        if kind == "task":
            task = await task_service.get(session, target_id)
            resource = await task_service.resource(session, task)
            ids: dict[str, int | None] = {"task_id": task.id, "project_id": task.project_id}
        elif kind == "job":
            job = await job_service.get(session, target_id)
            resource = await job_service.resource(session, job)
            ids = {"job_id": job.id, "task_id": job.task_id}
        else:
            project = await project_service.get(session, target_id)
            resource = project_service.resource(project)
            ids = {"project_id": project.id}
    return Target(kind, target_id, resource, **ids)


def _kind(request: Request) -> str:
    return {"tasks": "task", "jobs": "job", "projects": "project"}[request.url.path.split("/")[2]]


# --- export ---------------------------------------------------------------------------------


def _format_param(request: Request, direction: str) -> Format:
    name = request.query_params.get("format", "")
    if not name:
        raise ValidationError.for_field("format", "The format is required.")
    return _registry(request).get(name, direction=direction)


@web.operation(
    "Export a dataset (annotations, and images with save_images=true) in a format",
    tags=TAGS,
    response=RqId,
    status=202,
    query={"format": "exact format name", "save_images": "true/false", **cloud_locations.QUERY},
)
async def export_dataset(request: Request) -> Response:
    kind = _kind(request)
    fmt = _format_param(request, "export")
    save_images = web.query_bool(request, "save_images")
    target = await _target(request, kind)
    subresource = "dataset" if save_images else "annotations"
    destination = await cloud_locations.destination(request, f"{kind}_{target.id}_{subresource}.zip")
    await web.authorize(
        request, f"export:{subresource}", cloud_locations.exported_to(target.resource, destination)
    )
    rq_id = await web.start_request(
        request,
        action="export",
        target=kind,
        target_id=target.id,
        job_name=dataset_jobs.EXPORT_JOB,
        subresource=subresource,
        format=fmt.display_name,
        kwargs={
            "target": kind,
            "target_id": target.id,
            "format": fmt.display_name,
            "save_images": save_images,
            "base_url": web.base_url(request),
            "destination": destination,
        },
        task_id=target.task_id,
        job_id=target.job_id,
        project_id=target.project_id,
    )
    return web.json_response({"rq_id": rq_id}, status_code=202)


@web.operation("Download a finished export", tags=TAGS, query={"rq_id": "the export request"})
async def download_dataset(request: Request) -> Response:
    kind = _kind(request)
    target_id = web.path_int(request)
    return await exported_files.download(
        request,
        kind,
        ("dataset", "annotations"),
        lambda row: exported_files.file_name(row, kind, target_id, row.subresource or "dataset"),
    )


# --- annotation import ----------------------------------------------------------------------


async def _import_target(request: Request) -> tuple[Target, str]:
    """The task/job (annotations) or project (dataset) imported into, and the caller's upload area."""
    target = await _target(request, _kind(request))
    what = "dataset" if target.kind == "project" else "annotations"
    await web.authorize(request, f"import:{what}", target.resource)
    area = layout.import_upload_area(what, target.kind, target.id, upload.user_id(request))
    return target, area


def _mode(request: Request) -> str:
    mode = request.query_params.get("import_mode", "replace") or "replace"
    if mode not in dataset_import.MODES:
        raise ValidationError.for_field("import_mode", f"Must be one of replace, append; got {mode!r}.")
    return mode


async def _start_import(
    request: Request, target: Target, area: str, filename: str, source: dict[str, Any] | None = None
) -> Response:
    fmt = _format_param(request, "import")
    mode = _mode(request)
    conv_mask_to_poly = web.query_bool(request, "conv_mask_to_poly")
    if target.kind == "project":
        return await _start_project_import(request, target, area, filename, fmt, conv_mask_to_poly, source)
    rq_id = await web.start_request(
        request,
        action="import",
        target=target.kind,
        target_id=target.id,
        job_name=dataset_jobs.IMPORT_JOB,
        subresource="annotations",
        format=fmt.display_name,
        kwargs={
            "target": target.kind,
            "target_id": target.id,
            "format": fmt.display_name,
            "area": area,
            "filename": filename,
            "mode": mode,
            "conv_mask_to_poly": conv_mask_to_poly,
            "source": source,
        },
        task_id=target.task_id,
        job_id=target.job_id,
        project_id=target.project_id,
    )
    return web.json_response({"rq_id": rq_id}, status_code=202)


async def _start_project_import(
    request: Request, target: Target, area: str, filename: str, fmt: Format, conv_mask_to_poly: bool,
    source: dict[str, Any] | None,
) -> Response:  # fmt: skip
    rq_id = await web.start_request(
        request,
        action="import",
        target="project",
        target_id=target.id,
        job_name=project_import.JOB_NAME,
        subresource="dataset",
        format=fmt.display_name,
        kwargs={
            "project_id": target.id,
            "format": fmt.display_name,
            "area": area,
            "filename": filename,
            "user_id": upload.user_id(request),
            "conv_mask_to_poly": conv_mask_to_poly,
            "source": source,
        },
        project_id=target.id,
    )
    return web.json_response({"rq_id": rq_id}, status_code=202)


@web.operation(
    "Import annotations from a file in a format (upload protocol or one multipart request)",
    tags=TAGS,
    response=RqId,
    status=202,
    responses={201: None},
    query={"format": "exact format name", "filename": "the uploaded file (Upload-Finish) or the bucket's",
           "import_mode": "replace or append", "conv_mask_to_poly": "true/false",
           "location": "local (uploaded) or cloud_storage",
           "cloud_storage_id": "with location=cloud_storage: the cloud storage to read from"},
)  # fmt: skip
async def import_annotations(request: Request) -> Response:
    target, area = await _import_target(request)
    source = await cloud_locations.source(request)
    if source is not None:
        _format_param(request, "import")
        await web.state(request).storage.delete_prefix(area)
        return await _start_import(request, target, area, source["filename"], source)
    project = target.kind == "project"
    endpoint = "dataset" if project else "annotations"
    return await upload.single_file_upload(
        request,
        area,
        location=f"{web.base_url(request)}/api/{target.kind}s/{target.id}/{endpoint}",
        field="dataset_file" if project else "annotation_file",
        start=lambda filename: _start_import(request, target, area, filename),
        check=lambda: _format_param(request, "import"),
    )


@web.operation("The offset and length of an annotation upload in progress", tags=TAGS)
async def import_upload_status(request: Request) -> Response:
    _, area = await _import_target(request)
    return await upload.tus_status(request, area)


@web.operation("Append a chunk to an annotation upload", tags=TAGS, status=204)
async def import_upload_chunk(request: Request) -> Response:
    _, area = await _import_target(request)
    return await upload.tus_append(request, area)


routes = [("/api/server/annotation/formats", annotation_formats, ["GET"])]
for _kind_path in ("tasks", "jobs", "projects"):
    routes += [
        (f"/api/{_kind_path}/{{id:int}}/dataset/export", export_dataset, ["POST"]),
        (f"/api/{_kind_path}/{{id:int}}/dataset/download", download_dataset, ["GET"]),
    ]
for _kind_path, _endpoint in (("tasks", "annotations"), ("jobs", "annotations"), ("projects", "dataset")):
    routes += [
        (f"/api/{_kind_path}/{{id:int}}/{_endpoint}", import_annotations, ["POST"]),
        (f"/api/{_kind_path}/{{id:int}}/{_endpoint}/{{file_id:tus_file_id}}", import_upload_status, ["HEAD"]),
        (f"/api/{_kind_path}/{{id:int}}/{_endpoint}/{{file_id:tus_file_id}}", import_upload_chunk, ["PATCH"]),
    ]
