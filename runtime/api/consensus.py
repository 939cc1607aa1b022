"""``/api/consensus/settings``: the consensus settings of tasks with replicas. A settings object
follows its task: seeing it needs ``view`` on the task, changing it ``update:desc``."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from annota.core.access import Resource
from annota.core.db.tables import ConsensusSettings, Task
from annota.core.schemas.common import Paginated
from annota.core.schemas.consensus import ConsensusSettingsRead, ConsensusSettingsUpdate
from annota.core.services import tasks as task_service
from annota.core.services.consensus import settings as service
from annota.runtime import web

TAGS = ["consensus"]


async def _authorize_task(request: Request, session: AsyncSession, task_id: int, scope: str) -> None:
    task = await task_service.get(session, task_id)
    await web.authorize(request, scope, await task_service.resource(session, task))


async def _read_many(session: AsyncSession, rows: list[ConsensusSettings]) -> list[ConsensusSettingsRead]:
    return [service.read(row) for row in rows]


@web.operation(
    "List consensus settings",
    tags=TAGS,
    response=Paginated[ConsensusSettingsRead],
    paginated=True,
    query={"task_id": "the settings of this task"},
)
async def list_settings(request: Request) -> Response:
    await web.authorize(request, "list", Resource("consensus_settings"))
    task_id = web.query_int(request, "task_id")
    visible = select(Task.id).where(await web.visible(request, "tasks", task_service.POLICY_FIELDS))
    query = select(ConsensusSettings).where(ConsensusSettings.task_id.in_(visible))
    async with web.transaction(request) as session:
        if task_id is not None:
            await _authorize_task(request, session, task_id, "view")
        await service.ensure(session, task_id)
        return await web.list_response(request, query, service.LIST_SPEC, _read_many, session=session)


@web.operation("Get consensus settings", tags=TAGS, response=ConsensusSettingsRead)
async def retrieve_settings(request: Request) -> Response:
    async with web.transaction(request) as session:
        row = await service.get(session, web.path_int(request))
        await _authorize_task(request, session, row.task_id, "view")
        result = service.read(row)
    return web.json_response(result)


@web.operation(
    "Change consensus settings", tags=TAGS, request=ConsensusSettingsUpdate, response=ConsensusSettingsRead
)
async def update_settings(request: Request) -> Response:
    change = await web.read_json(request, ConsensusSettingsUpdate)
    async with web.transaction(request) as session:
        row = await service.get(session, web.path_int(request))
        await _authorize_task(request, session, row.task_id, "update:desc")
        await service.update(session, row, change)
        result = service.read(row)
    return web.json_response(result)


routes = [
    ("/api/consensus/settings", list_settings, ["GET"]),
    ("/api/consensus/settings/{id:int}", retrieve_settings, ["GET"]),
    ("/api/consensus/settings/{id:int}", update_settings, ["PATCH"]),
]
