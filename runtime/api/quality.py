"""``/api/quality/settings``: the quality settings of tasks and projects, as CVAT's web UI reads
and changes them. A settings object follows its task or project: seeing it needs ``view`` there,
changing it ``update:desc``; the list holds those of the tasks and projects the caller sees."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from annota.core.access import Resource
from annota.core.db.tables import Project, QualitySettings, Task
from annota.core.schemas.common import Paginated
from annota.core.schemas.quality import QualitySettingsRead, QualitySettingsUpdate
from annota.core.services import projects as project_service
from annota.core.services import tasks as task_service
from annota.core.services.quality import settings as service
from annota.runtime import web

TAGS = ["quality"]


async def authorize_parent(request: Request, session: AsyncSession, row: QualitySettings, scope: str) -> None:
    """``view`` or ``update:desc`` on the task or project the settings belong to."""
    if row.task_id is not None:
        task = await task_service.get(session, row.task_id)
        await web.authorize(request, scope, await task_service.resource(session, task))
    else:
        assert row.project_id is not None
        project = await project_service.get(session, row.project_id)
        await web.authorize(request, scope, project_service.resource(project))


async def _visible(request: Request) -> object:
    tasks = select(Task.id).where(await web.visible(request, "tasks", task_service.POLICY_FIELDS))
    projects = select(Project.id).where(await web.visible(request, "projects", project_service.POLICY_FIELDS))
    return or_(QualitySettings.task_id.in_(tasks), QualitySettings.project_id.in_(projects))


@web.operation(
    "List quality settings",
    tags=TAGS,
    response=Paginated[QualitySettingsRead],
    paginated=True,
    query={
        "task_id": "the settings of this task",
        "project_id": "the settings of this project and of its tasks",
        "parent_type": "task or project",
        "inherit": "equality filter",
    },
)
async def list_settings(request: Request) -> Response:
    await web.authorize(request, "list", Resource("quality_settings"))
    task_id = web.query_int(request, "task_id")
    project_id = None if task_id is not None else web.query_int(request, "project_id")
    query = service.list_query(project_id, request.query_params.get("parent_type"))
    async with web.transaction(request) as session:
        if task_id is not None:
            task = await task_service.get(session, task_id)
            await web.authorize(request, "view", await task_service.resource(session, task))
            query = query.where(QualitySettings.task_id == task_id)
        elif project_id is not None:
            project = await project_service.get(session, project_id)
            await web.authorize(request, "view", project_service.resource(project))
        await service.ensure(session, task_id=task_id, project_id=project_id)
        query = query.where(await _visible(request))  # type: ignore[arg-type]
        return await web.list_response(request, query, service.LIST_SPEC, _read_many, session=session)


async def _read_many(session: AsyncSession, rows: list[QualitySettings]) -> list[QualitySettingsRead]:
    return [service.read(row) for row in rows]


@web.operation("Get quality settings", tags=TAGS, response=QualitySettingsRead)
async def retrieve_settings(request: Request) -> Response:
    async with web.transaction(request) as session:
        row = await service.get(session, web.path_int(request))
        await authorize_parent(request, session, row, "view")
        result = service.read(row)
    return web.json_response(result)


@web.operation(
    "Change quality settings", tags=TAGS, request=QualitySettingsUpdate, response=QualitySettingsRead
)
async def update_settings(request: Request) -> Response:
    change = await web.read_json(request, QualitySettingsUpdate)
    async with web.transaction(request) as session:
        row = await service.get(session, web.path_int(request))
        await authorize_parent(request, session, row, "update:desc")
        result = service.read(await service.update(session, row, change))
    return web.json_response(result)


routes = [
    ("/api/quality/settings", list_settings, ["GET"]),
    ("/api/quality/settings/{id:int}", retrieve_settings, ["GET"]),
    ("/api/quality/settings/{id:int}", update_settings, ["PATCH"]),
]
