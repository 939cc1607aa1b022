"""``/api/labels``: the labels of projects and tasks, listed, read, changed and deleted one by one.

Labels are created with their project or task (its ``labels`` field); these endpoints serve the
clients that look them up by task, job or project (cvat-sdk before auto-annotation) and the
per-label edits of the UI. Label changes are ``create|update|delete:label`` events; ``snapshot`` and
``record_changes`` turn a change of a project's or task's ``labels`` into them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from annota.core.access import Resource
from annota.core.db.tables import Label, Project, Task
from annota.core.errors import ValidationError
from annota.core.schemas.common import Paginated
from annota.core.schemas.labels import LabelRead, LabelUpdate
from annota.core.services import events as event_service
from annota.core.services import jobs as job_service
from annota.core.services import labels as service
from annota.core.services import projects as project_service
from annota.core.services import tasks as task_service
from annota.runtime import web
from annota.runtime.api import request_body

TAGS = ["labels"]

_OWNER_PARAMS = ("task_id", "job_id", "project_id")


async def _owner_of_list(request: Request, session: AsyncSession) -> tuple[int | None, int | None] | None:
    """``(project_id, task_id)`` whose labels ``?task_id=``, ``?job_id=`` or ``?project_id=`` asks
    for, once the caller may view that object; ``None`` without such a parameter."""
    task_id, job_id, project_id = (web.query_int(request, name) for name in _OWNER_PARAMS)
    if sum(value is not None for value in (task_id, job_id, project_id)) > 1:
        raise ValidationError("job_id, task_id and project_id parameters cannot be used together.")
    if project_id is not None:
        project = await project_service.get(session, project_id)
        await web.authorize(request, "view", project_service.resource(project))
        return project.id, None
    if job_id is not None:
        job = await job_service.get(session, job_id)
        await web.authorize(request, "view", await job_service.resource(session, job))
        task_id = job.task_id
    elif task_id is None:
        return None
    task = await task_service.get(session, task_id)
    if job_id is None:
        await web.authorize(request, "view", await task_service.resource(session, task))
    return service.task_labels_owner(task)


@web.operation(
    "List labels",
    tags=TAGS,
    response=Paginated[LabelRead],
    paginated=True,
    query={
        "task_id": "labels of this task (its project's when it is in one)",
        "job_id": "labels of this job's task",
        "project_id": "labels of this project",
        **{name: "equality filter" for name in service.LIST_SPEC.equality},
    },
)
async def list_labels(request: Request) -> Response:
    web.require_user(request)
    async with web.transaction(request) as session:
        owner = await _owner_of_list(request, session)
        if owner is None:
            condition = await web.visible(request, "labels", service.POLICY_FIELDS)
        else:
            project_id, task_id = owner
            condition = service.owner_clause(project_id=project_id, task_id=task_id)
        # as in CVAT, lists hold top-level labels; sublabels come nested in their skeleton
        query = select(Label).where(condition, Label.parent_id.is_(None))
        return await web.list_response(
            request, query, service.LIST_SPEC, lambda s, rows: service.read_many(s, rows), session=session
        )


async def _label_and_owner(request: Request, session: AsyncSession) -> tuple[Label, Project | Task, Resource]:
    """The label of the path, the project or task it belongs to, and the policy input about it."""
    label = await service.get(session, web.path_int(request))
    document: dict[str, Any] = {"id": label.id, "task": None, "project": None}
    owner: Project | Task
    if label.task_id is not None:
        owner = await task_service.get(session, label.task_id)
        project = await task_service.project_of(session, owner)
        document["task"] = task_service.document(owner, project)
        document["project"] = project_service.document(project) if project is not None else None
    else:
        owner = await project_service.get(session, cast(int, label.project_id))
        document["project"] = project_service.document(owner)
    document["organization"] = {"id": owner.organization_id}
    return label, owner, Resource("labels", document, label.id)


# --- events ---------------------------------------------------------------------------------


async def snapshot(
    session: AsyncSession, *, project_id: int | None = None, task_id: int | None = None
) -> dict[int, LabelRead]:
    """The top-level labels of one project or task as the API shows them, by id: taken before and
    after a change of its ``labels`` to tell which labels it created, changed or deleted."""
    labels = await service.read_labels(session, project_id=project_id, task_id=task_id)
    return {label.id: label for label in labels}


async def _event(
    request: Request,
    session: AsyncSession,
    type: str,
    label: LabelRead,
    org_id: int | None,
    before: LabelRead | None = None,
) -> None:
    await web.record_event(
        request, session, type, "label", label, resource_id=label.id, org_id=org_id,
        project_id=label.project_id, task_id=label.task_id, before=before,
    )  # fmt: skip


async def _update_event(
    request: Request, session: AsyncSession, before: LabelRead, after: LabelRead, org_id: int | None
) -> None:
    # a change set may name a label without changing it; that is no event
    if event_service.changes(before, after):
        await _event(request, session, "update:label", after, org_id, before)


async def record_changes(
    request: Request,
    session: AsyncSession,
    before: Mapping[int, LabelRead],
    after: Mapping[int, LabelRead],
    org_id: int | None,
) -> None:
    """``create:label``, ``update:label`` and ``delete:label`` for the difference of two snapshots
    of one owner's labels (sublabel changes are changes of their skeleton's ``sublabels``)."""
    for label_id, label in after.items():
        if label_id not in before:
            await _event(request, session, "create:label", label, org_id)
        else:
            await _update_event(request, session, before[label_id], label, org_id)
    for label_id, label in before.items():
        if label_id not in after:
            await _event(request, session, "delete:label", label, org_id)


@web.operation("Get a label", tags=TAGS, response=LabelRead)
async def retrieve_label(request: Request) -> Response:
    async with web.transaction(request) as session:
        label, _, resource = await _label_and_owner(request, session)
        await web.authorize(request, "view", resource)
        (result,) = await service.read_many(session, [label])
    return web.json_response(result)


@web.operation("Update a label", tags=TAGS, request=LabelUpdate, response=LabelRead)
async def update_label(request: Request) -> Response:
    body = await request_body.read(request)
    async with web.transaction(request) as session:
        label, owner, resource = await _label_and_owner(request, session)
        await web.authorize(request, "update", resource)
        data = body.decode(LabelUpdate)
        (before,) = await service.read_many(session, [label])
        label = await service.update_one(session, label, data, owner)
        (result,) = await service.read_many(session, [label])
        await _update_event(request, session, before, result, owner.organization_id)
    return web.json_response(result)


@web.operation("Delete a label with its sublabels and annotations", tags=TAGS, status=204)
async def delete_label(request: Request) -> Response:
    async with web.transaction(request) as session:
        label, owner, resource = await _label_and_owner(request, session)
        await web.authorize(request, "delete", resource)
        (removed,) = await service.read_many(session, [label])
        await _event(request, session, "delete:label", removed, owner.organization_id)
        await service.remove(session, label, owner)
    return Response(status_code=204)


routes = [
    ("/api/labels", list_labels, ["GET"]),
    ("/api/labels/{id:int}", retrieve_label, ["GET"]),
    ("/api/labels/{id:int}", update_label, ["PATCH"]),
    ("/api/labels/{id:int}", delete_label, ["DELETE"]),
]
