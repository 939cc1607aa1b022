"""Task and project backups over HTTP (CVAT's API).

- ``POST /api/{tasks,projects}/{id}/backup/export?location=local`` starts a backup on the ``export``
  queue (202 ``{"rq_id"}``); the finished request's absolute ``result_url``
  (``.../backup/download?rq_id=``) downloads the ZIP as ``<target>_<id>_backup_<date>.zip``.
- ``POST /api/{tasks,projects}/backup`` restores a backup into a new task or project with CVAT's
  upload protocol (Upload-Start, TUS, Upload-Finish with ``filename``) or in one multipart request
  (``task_file`` / ``project_file``), on the ``import`` queue; the finished request's
  ``result_id`` is the new object's id.
"""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response

from annota.core.access import Resource
from annota.core.media import layout
from annota.core.schemas.common import RqId
from annota.core.services import backups
from annota.core.services import projects as project_service
from annota.core.services import tasks as task_service
from annota.runtime import web
from annota.runtime.api import cloud_locations, exported_files
from annota.runtime.api import uploads as upload

TAGS = ["backups"]


def _kind(request: Request) -> str:
    return {"tasks": "task", "projects": "project"}[request.url.path.split("/")[2]]


async def _resource(request: Request, kind: str, target_id: int) -> tuple[Resource, int | None]:
    """The object's policy resource and, for a task, its project."""
    async with web.transaction(request) as session:
        if kind == "task":
            task = await task_service.get(session, target_id)
            return await task_service.resource(session, task), task.project_id
        project = await project_service.get(session, target_id)
        return project_service.resource(project), None


# --- export ---------------------------------------------------------------------------------


@web.operation(
    "Back up a task or project (media, labels, annotations) into a CVAT backup ZIP",
    tags=TAGS,
    response=RqId,
    status=202,
    query={**cloud_locations.QUERY, "lightweight": "accepted; local media is always included"},
)
async def export_backup(request: Request) -> Response:
    kind = _kind(request)
    target_id = web.path_int(request)
    resource, project_id = await _resource(request, kind, target_id)
    destination = await cloud_locations.destination(request, f"{kind}_{target_id}_backup.zip")
    await web.authorize(request, "export:backup", cloud_locations.exported_to(resource, destination))
    rq_id = await web.start_request(
        request,
        action="export",
        target=kind,
        target_id=target_id,
        job_name=backups.EXPORT_JOB,
        subresource="backup",
        kwargs={
            "target": kind,
            "target_id": target_id,
            "base_url": web.base_url(request),
            "destination": destination,
        },  # fmt: skip
        task_id=target_id if kind == "task" else None,
        project_id=target_id if kind == "project" else project_id,
    )
    return web.json_response({"rq_id": rq_id}, status_code=202)


@web.operation("Download a finished backup", tags=TAGS, query={"rq_id": "the backup request"})
async def download_backup(request: Request) -> Response:
    kind = _kind(request)
    target_id = web.path_int(request)
    return await exported_files.download(
        request, kind, ("backup",), lambda row: exported_files.file_name(row, kind, target_id, "backup")
    )


# --- restore --------------------------------------------------------------------------------


async def _restore_area(request: Request) -> tuple[str, str]:
    """``(kind, upload area)`` after checking the caller may create a task or project."""
    kind = _kind(request)
    who = web.require_user(request)
    resource = task_service.creation_resource(who, None) if kind == "task" else project_service.resource(None)
    await web.authorize(request, "import:backup", resource)
    return kind, layout.import_upload_area("backup", kind, None, upload.user_id(request))


async def _start_restore(request: Request, kind: str, area: str, filename: str) -> Response:
    who = web.require_user(request)
    rq_id = await web.start_request(
        request,
        action="import",
        target=kind,
        target_id=uuid.uuid4().hex,
        job_name=backups.RESTORE_TASK_JOB if kind == "task" else backups.RESTORE_PROJECT_JOB,
        subresource="backup",
        kwargs={
            "area": area,
            "filename": filename,
            "user_id": upload.user_id(request),
            "org_id": who.organization.id if who.organization else None,
        },
    )
    return web.json_response({"rq_id": rq_id}, status_code=202)


@web.operation(
    "Restore a backup into a new task or project (upload protocol or one multipart request)",
    tags=TAGS,
    response=RqId,
    status=202,
    responses={201: None},
    query={"filename": "the uploaded file (Upload-Finish)"},
)
async def restore_backup(request: Request) -> Response:
    kind, area = await _restore_area(request)
    return await upload.single_file_upload(
        request,
        area,
        location=f"{web.base_url(request)}/api/{kind}s/backup",
        field=f"{kind}_file",
        start=lambda filename: _start_restore(request, kind, area, filename),
    )


@web.operation("The offset and length of a backup upload in progress", tags=TAGS)
async def restore_upload_status(request: Request) -> Response:
    _, area = await _restore_area(request)
    return await upload.tus_status(request, area)


@web.operation("Append a chunk to a backup upload", tags=TAGS, status=204)
async def restore_upload_chunk(request: Request) -> Response:
    _, area = await _restore_area(request)
    return await upload.tus_append(request, area)


routes = []
for _kind_path in ("tasks", "projects"):
    routes += [
        (f"/api/{_kind_path}/{{id:int}}/backup/export", export_backup, ["POST"]),
        (f"/api/{_kind_path}/{{id:int}}/backup/download", download_backup, ["GET"]),
        (f"/api/{_kind_path}/backup", restore_backup, ["POST"]),
        (f"/api/{_kind_path}/backup/{{file_id:tus_file_id}}", restore_upload_status, ["HEAD"]),
        (f"/api/{_kind_path}/backup/{{file_id:tus_file_id}}", restore_upload_chunk, ["PATCH"]),
    ]
