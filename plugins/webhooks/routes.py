"""``/api/webhooks``: CVAT's webhook API (§5.1), plus custom headers.

Who may do what is asked of the ``authorize``/``filter_query`` hooks with resource kind
``webhooks`` (this plugin answers by default: owners and admins). Creating a project webhook also
needs the right to change the project; an organization webhook, an owner or maintainer of the
organization the request is made in; a server webhook, an admin.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from annota.core.db.tables import Project, Webhook, WebhookDelivery
from annota.core.db.types import utcnow
from annota.core.errors import NotFound, PermissionDenied, ValidationError
from annota.core.schemas.common import Detail, Paginated
from annota.core.services import events as event_service
from annota.core.services import projects as project_service
from annota.plugins.webhooks import delivery, orphans, store, targets
from annota.plugins.webhooks import events as event_keys
from annota.plugins.webhooks.config import Config
from annota.plugins.webhooks.schemas import (
    EventGroup,
    EventInfo,
    Events,
    WebhookDeliveryRead,
    WebhookRead,
    WebhookUpdate,
    WebhookWrite,
)
from annota.runtime import web

TAGS = ["webhooks"]


def config(request: Request) -> Config:
    value: Config = web.state(request).plugins.config("webhooks")
    return value


# --- checks -------------------------------------------------------------------------------------


async def _project_scope(request: Request, session: AsyncSession, project_id: int | None) -> Project:
    if project_id is None:
        raise ValidationError.for_field("project_id", "This field is required for project webhooks.")
    project = await session.get(Project, project_id)
    hidden = NotFound(f"Project {project_id} not found.")
    if project is None:
        raise hidden
    try:
        await web.authorize(request, "view", project_service.resource(project))
    except PermissionDenied:
        raise hidden from None
    return project


async def _scope(
    request: Request, session: AsyncSession, webhook_type: str, project_id: int | None
) -> tuple[int | None, int | None]:
    """``(project_id, organization_id)`` of a new webhook, once the caller may create it there."""
    who = web.identity(request)
    if webhook_type == "project":
        project = await _project_scope(request, session, project_id)
        document = project_service.document(project)
        resource = store.creation_resource(webhook_type, document, project.organization_id)
        await web.authorize(request, "create@project", resource)
        return project.id, project.organization_id
    if project_id is not None:
        raise ValidationError.for_field(
            "project_id", f"Only project webhooks have a project, not {webhook_type} ones."
        )
    if webhook_type == "organization":
        org = who.organization
        if org is None:
            raise ValidationError.for_field(
                "type", "Organization webhooks are created within an organization (send the request in one)."
            )
        await web.authorize(
            request, "create@organization", store.creation_resource(webhook_type, None, org.id)
        )
        return None, org.id
    await web.authorize(request, "create", store.creation_resource(webhook_type, None, None))
    return None, None


async def _apply(request: Request, webhook: Webhook, fields: dict[str, Any]) -> None:
    """Validate ``fields`` (as written by the client) and set them on ``webhook``."""
    for name in ("type", "project_id"):
        if name in fields and fields[name] != getattr(webhook, name):
            raise ValidationError.for_field(name, "Cannot be changed once the webhook exists.")
    store.check_scalars(
        fields.get("description", ""),
        fields.get("content_type", webhook.content_type),
        fields.get("secret", ""),
    )
    if "events" in fields:
        webhook.events = json.dumps(store.check_events(webhook.type, fields["events"]))
    if "headers" in fields:
        webhook.headers = json.dumps(store.check_headers(fields["headers"], store.stored_headers(webhook)))
    if "target_url" in fields:
        await targets.vet_new_target(fields["target_url"], config(request).allow_private_targets)
        webhook.target_url = fields["target_url"]
    for name in ("description", "content_type", "secret", "is_active", "enable_ssl"):
        if name in fields:
            setattr(webhook, name, fields[name])
    webhook.updated_date = utcnow()


def _given(data: WebhookUpdate) -> dict[str, Any]:
    return {name: value for name, value in msgspec.structs.asdict(data).items() if value is not msgspec.UNSET}


# --- webhooks -----------------------------------------------------------------------------------


@web.operation(
    "List webhooks",
    tags=TAGS,
    response=Paginated[WebhookRead],
    paginated=True,
    query={name: "equality filter" for name in store.LIST_SPEC.equality},
)
async def list_webhooks(request: Request) -> Response:
    query = select(Webhook).where(await web.visible(request, "webhooks", store.POLICY_FIELDS), orphans.live())
    base_url = web.base_url(request)
    return await web.list_response(
        request, query, store.LIST_SPEC, lambda session, rows: store.read_many(session, rows, base_url)
    )


@web.operation(
    "Create a webhook",
    tags=TAGS,
    request=WebhookWrite,
    response=WebhookRead,
    status=201,
    responses={400: Detail},
)
async def create_webhook(request: Request) -> Response:
    who = web.require_user(request)
    data = await web.read_json(request, WebhookWrite)
    store.check_type(data.type)
    store.check_scalars(data.description, data.content_type, data.secret)
    events = store.check_events(data.type, data.events)
    headers = store.check_headers(data.headers, {})
    await targets.vet_new_target(data.target_url, config(request).allow_private_targets)
    async with web.transaction(request) as session:
        project_id, organization_id = await _scope(request, session, data.type, data.project_id)
        webhook = Webhook(
            target_url=data.target_url, description=data.description, type=data.type,
            content_type=data.content_type, secret=data.secret, is_active=data.is_active,
            enable_ssl=data.enable_ssl, events=json.dumps(events), headers=json.dumps(headers),
            owner_id=who.user_id, project_id=project_id, organization_id=organization_id,
        )  # fmt: skip
        session.add(webhook)
        await session.flush()
        (result,) = await store.read_many(session, [webhook], web.base_url(request))
    return web.json_response(result, status_code=201)


@web.operation("Get a webhook", tags=TAGS, response=WebhookRead)
async def retrieve_webhook(request: Request) -> Response:
    async with web.transaction(request) as session:
        webhook = await store.get(session, web.path_int(request))
        await web.authorize(request, "view", await store.resource(session, webhook))
        (result,) = await store.read_many(session, [webhook], web.base_url(request))
    return web.json_response(result)


async def _update(request: Request, partial: bool) -> Response:
    data = await web.read_json(request, WebhookUpdate)
    fields = _given(data)
    if not partial:
        for name in ("target_url", "type", "events"):
            if name not in fields:
                raise ValidationError.for_field(name, "This field is required.")
    async with web.transaction(request) as session:
        webhook = await store.get(session, web.path_int(request))
        await web.authorize(request, "update", await store.resource(session, webhook))
        await _apply(request, webhook, fields)
        await session.flush()
        (result,) = await store.read_many(session, [webhook], web.base_url(request))
    return web.json_response(result)


@web.operation("Replace a webhook's settings", tags=TAGS, request=WebhookWrite, response=WebhookRead)
async def replace_webhook(request: Request) -> Response:
    return await _update(request, partial=False)


@web.operation("Change a webhook's settings", tags=TAGS, request=WebhookUpdate, response=WebhookRead)
async def update_webhook(request: Request) -> Response:
    return await _update(request, partial=True)


@web.operation("Delete a webhook and its delivery log", tags=TAGS, status=204)
async def delete_webhook(request: Request) -> Response:
    async with web.transaction(request) as session:
        webhook = await store.get(session, web.path_int(request))
        await web.authorize(request, "delete", await store.resource(session, webhook))
        await session.delete(webhook)
    return Response(status_code=204)


@web.operation(
    "The events a webhook of a type may subscribe to",
    tags=TAGS,
    response=Events,
    query={"type": "project, organization or server; without it (or all), every event"},
)
async def list_events(request: Request) -> Response:
    web.require_user(request)
    webhook_type = request.query_params.get("type") or "all"
    if webhook_type == "all":
        # as CVAT answers it: every event, which is what an organization's webhook may hear
        webhook_type = "organization"
    if webhook_type not in event_keys.TYPES:
        raise ValidationError.for_field("type", f"Must be one of all, {', '.join(event_keys.TYPES)}.")
    events = [
        EventInfo(key=key, group=EventGroup(display_name=event_keys.group(key)))
        for key in event_keys.ALLOWED[webhook_type]
    ]
    return web.json_response(Events(webhook_type=webhook_type, events=events))


# --- deliveries ---------------------------------------------------------------------------------


async def _webhook(request: Request, session: AsyncSession, scope: str) -> Webhook:
    webhook = await store.get(session, web.path_int(request))
    await web.authorize(request, scope, await store.resource(session, webhook))
    return webhook


@web.operation(
    "List a webhook's deliveries (one per attempt)",
    tags=TAGS,
    response=Paginated[WebhookDeliveryRead],
    paginated=True,
    query={name: "equality filter" for name in store.DELIVERY_LIST_SPEC.equality},
)
async def list_deliveries(request: Request) -> Response:
    async with web.transaction(request) as session:
        webhook = await _webhook(request, session, "view")
        query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)

        async def serialize(_: AsyncSession, rows: list[Any]) -> list[WebhookDeliveryRead]:
            return [store.read_delivery(row) for row in rows]

        return await web.list_response(request, query, store.DELIVERY_LIST_SPEC, serialize, session=session)


@web.operation("Get one delivery of a webhook", tags=TAGS, response=WebhookDeliveryRead)
async def retrieve_delivery(request: Request) -> Response:
    async with web.transaction(request) as session:
        webhook = await _webhook(request, session, "view")
        found = await store.get_delivery(session, webhook.id, web.path_int(request, "delivery_id"))
        result = store.read_delivery(found)
    return web.json_response(result)


@web.operation("Send a delivery's request again", tags=TAGS)
async def redeliver(request: Request) -> Response:
    async with web.transaction(request) as session:
        webhook = await _webhook(request, session, "update")
        found = await store.get_delivery(session, webhook.id, web.path_int(request, "delivery_id"))
        await store.queue_redelivery(session, found)
    return web.json_response({})


@web.operation("Send a ping event now and return its delivery", tags=TAGS, response=WebhookDeliveryRead)
async def ping(request: Request) -> Response:
    who = web.identity(request)
    base_url = web.base_url(request)
    async with web.transaction(request) as session:
        webhook = await _webhook(request, session, "update")
        (read,) = await store.read_many(session, [webhook], base_url)
        sender = await event_service.sender(session, who.user_id, base_url)
        session.expunge(webhook)
    payload: dict[str, Any] = {"event": "ping", "webhook": store.encode(read)}
    if sender is not None:
        payload["sender"] = sender
    body = delivery.body_of(payload, webhook.id)
    delivery_uuid = str(uuid.uuid4())
    headers = delivery.request_headers(webhook, body, delivery_uuid, None)
    outcome = await delivery.send(webhook, body, headers, config(request))
    async with web.transaction(request) as session:
        row = delivery.delivery_row(
            webhook.id, "ping", body, outcome, attempt=1, redelivery=False, changed_fields="",
            delivery_uuid=delivery_uuid, event_uuid=None,
        )  # fmt: skip
        session.add(row)
        await session.flush()
        result = store.read_delivery(row)
    return web.json_response(result)


ROUTES: list[tuple[str, Any, list[str]]] = [
    ("/api/webhooks", list_webhooks, ["GET"]),
    ("/api/webhooks", create_webhook, ["POST"]),
    ("/api/webhooks/events", list_events, ["GET"]),
    ("/api/webhooks/{id:int}", retrieve_webhook, ["GET"]),
    ("/api/webhooks/{id:int}", replace_webhook, ["PUT"]),
    ("/api/webhooks/{id:int}", update_webhook, ["PATCH"]),
    ("/api/webhooks/{id:int}", delete_webhook, ["DELETE"]),
    ("/api/webhooks/{id:int}/deliveries", list_deliveries, ["GET"]),
    ("/api/webhooks/{id:int}/deliveries/{delivery_id:int64}", retrieve_delivery, ["GET"]),
    ("/api/webhooks/{id:int}/deliveries/{delivery_id:int64}/redelivery", redeliver, ["POST"]),
    ("/api/webhooks/{id:int}/ping", ping, ["POST"]),
]
