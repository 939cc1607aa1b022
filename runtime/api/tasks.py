"""``/api/tasks``: CRUD (data, annotations, dataset and backup endpoints come with their features).

Each change is also an event: ``create|update|delete:task``, the label events of the task's own
labels when its ``labels`` change, and ``delete:job`` for the jobs a deleted task takes along.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from annota.core.db.tables import Job, Project, Task
from annota.core.schemas.common import Paginated
from annota.core.schemas.tasks import TaskRead, TaskUpdate, TaskWrite
from annota.core.services import events as event_service
from annota.core.services import jobs as job_service
from annota.core.services import projects as project_service
from annota.core.services import tasks as service
from annota.core.services.storages import cloud_storage_ids as storage_refs
from annota.runtime import web
from annota.runtime.api import cloud_locations, request_body
from annota.runtime.api import labels as labels_api
from annota.runtime.api import workspace_moves as moves

TAGS = ["tasks"]


async def _event(
    request: Request, session: AsyncSession, type: str, task: Task, data: TaskRead, before: Any = None
) -> None:
    await web.record_event(
        request, session, type, "task", data, resource_id=task.id, org_id=task.organization_id,
        project_id=task.project_id, task_id=task.id, before=before,
    )  # fmt: skip


async def _job_deletions(request: Request, session: AsyncSession, task: Task) -> None:
    """``delete:job`` for every job of a task about to be deleted, as they are now."""
    jobs = (await session.scalars(select(Job).where(Job.task_id == task.id).order_by(Job.id))).all()
    snapshots = await job_service.read_many(session, jobs, web.base_url(request))
    for job, data in zip(jobs, snapshots, strict=True):
        await web.record_event(
            request, session, "delete:job", "job", data, resource_id=job.id, org_id=task.organization_id,
            project_id=task.project_id, task_id=task.id, job_id=job.id,
        )  # fmt: skip


@web.operation("List tasks", tags=TAGS, response=Paginated[TaskRead], paginated=True,
               query={name: "equality filter" for name in service.LIST_SPEC.equality})  # fmt: skip
async def list_tasks(request: Request) -> Response:
    query = select(Task).where(await web.visible(request, "tasks", service.POLICY_FIELDS))
    base_url = web.base_url(request)
    return await web.list_response(
        request, query, service.LIST_SPEC, lambda session, rows: service.read_many(session, rows, base_url)
    )


async def _target_project(request: Request, session: AsyncSession, project_id: int | None) -> Project | None:
    """The project a task goes into; like CVAT, the caller must be able to see it."""
    project = await service.target_project(session, project_id)
    if project is not None:
        await web.authorize(request, "view", project_service.resource(project))
    return project


@web.operation("Create a task", tags=TAGS, request=TaskWrite, response=TaskRead, status=201)
async def create_task(request: Request) -> Response:
    body = await request_body.read(request)
    who = web.require_user(request)
    async with web.transaction(request) as session:
        project = await _target_project(request, session, body.integer("project_id"))
        scope = "create@project" if project is not None else "create"
        await web.authorize(
            request, scope, service.creation_resource(who, project, body.integer("assignee_id"))
        )
        data = body.decode(TaskWrite)
        await cloud_locations.check_visible(
            request, session, storage_refs(data.source_storage, data.target_storage)
        )
        task = await service.create(session, who, data)
        (result,) = await service.read_many(session, [task], web.base_url(request))
        await _event(request, session, "create:task", task, result)
        if data.labels:
            created = await labels_api.snapshot(session, task_id=task.id)
            await labels_api.record_changes(request, session, {}, created, task.organization_id)
    return web.json_response(result, status_code=201)


@web.operation("Get a task", tags=TAGS, response=TaskRead)
async def retrieve_task(request: Request) -> Response:
    async with web.transaction(request) as session:
        task, _data = await service.get_with_data(session, web.path_int(request))
        await web.authorize(request, "view", await service.resource(session, task))
        (result,) = await service.read_many(session, [task], web.base_url(request))
    return web.json_response(result)


@web.operation("Update a task", tags=TAGS, request=TaskUpdate, response=TaskRead)
async def update_task(request: Request) -> Response:
    body = await request_body.read(request)
    async with web.transaction(request) as session:
        task = await service.get(session, web.path_int(request))
        resource = await service.resource(session, task)
        for scope in service.update_scopes(task, body.fields):
            await web.authorize(request, scope, resource)
        await _target_project(request, session, service.project_move(task, body.fields.get("project_id")))
        await moves.authorize_destination(
            request, session, body, lambda there: service.creation_resource(there, None)
        )
        data = body.decode(TaskUpdate)
        moving = moves.check_request(body, TaskUpdate, task)
        old_org = task.organization_id
        await cloud_locations.check_visible(
            request, session, storage_refs(data.source_storage, data.target_storage)
        )
        (before,) = await service.read_many(session, [task], web.base_url(request))
        # the task's own labels change with a new label set or a move into a project (which drops them)
        own_labels = task.project_id is None and bool(
            data.labels or service.project_move(task, data.project_id)
        )
        labels_before = await labels_api.snapshot(session, task_id=task.id) if own_labels else {}
        task = await service.update(session, task, data, web.identity(request).user_id)
        (result,) = await service.read_many(session, [task], web.base_url(request))
        if moving and task.organization_id != old_org:
            await moves.record(request, session, "task", task.id, before, result, old_org=old_org,
                               new_org=task.organization_id, task_id=task.id)  # fmt: skip
        # a PATCH that only touched the labels changes nothing of the task itself
        elif event_service.changes(before, result):
            await _event(request, session, "update:task", task, result, before)
        if own_labels:
            labels_after = await labels_api.snapshot(session, task_id=task.id)
            await labels_api.record_changes(
                request, session, labels_before, labels_after, task.organization_id
            )
    return web.json_response(result)


@web.operation("Delete a task with its jobs and annotations", tags=TAGS, status=204)
async def delete_task(request: Request) -> Response:
    async with web.transaction(request) as session:
        task = await service.get(session, web.path_int(request))
        await web.authorize(request, "delete", await service.resource(session, task))
        (snapshot,) = await service.read_many(session, [task], web.base_url(request))
        await _job_deletions(request, session, task)
        await _event(request, session, "delete:task", task, snapshot)
        leftovers = await service.remove(session, task)
    await web.remove_objects(request, leftovers)
    return Response(status_code=204)


routes = [
    ("/api/tasks", list_tasks, ["GET"]),
    ("/api/tasks", create_task, ["POST"]),
    ("/api/tasks/{id:int}", retrieve_task, ["GET"]),
    ("/api/tasks/{id:int}", update_task, ["PATCH"]),
    ("/api/tasks/{id:int}", delete_task, ["DELETE"]),
]
