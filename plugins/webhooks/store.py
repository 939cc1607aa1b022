"""Webhook rows: validation of what clients write, the read serializers, and queueing a delivery
again (redelivery).

Custom headers are stored as a JSON object in ``webhooks.headers``; like ``secret`` they are only
ever read by the delivery code.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.access import FilterFields, Resource
from annota.core.db.tables import Project, User, Webhook, WebhookDelivery, WebhookJob
from annota.core.db.types import utcnow
from annota.core.errors import NotFound, ValidationError
from annota.core.services import users as user_service
from annota.core.services.listing import ListSpec
from annota.plugins.webhooks import events as event_keys
from annota.plugins.webhooks import orphans
from annota.plugins.webhooks.schemas import HIDDEN, WebhookDeliveryRead, WebhookRead

CONTENT_TYPES = ("application/json",)
MAX_SECRET = 64
MAX_DESCRIPTION = 128
#: headers the delivery sets itself, or that only make sense between neighbouring hops
RESERVED_HEADERS = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
        "trailer", "transfer-encoding", "upgrade", "host", "content-type", "content-length",
        "content-encoding", "x-signature-256", "x-webhook-delivery-id", "x-webhook-event-id",
    }
)  # fmt: skip
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
MAX_HEADERS = 20
MAX_HEADER_VALUE = 4096


# --- validation ---------------------------------------------------------------------------------


def check_type(value: str) -> str:
    if value not in event_keys.TYPES:
        raise ValidationError.for_field(
            "type", f"Must be one of {', '.join(event_keys.TYPES)}; got {value!r}."
        )
    return value


def check_events(webhook_type: str, events: Sequence[str]) -> list[str]:
    if not events:
        raise ValidationError.for_field("events", "Subscribe to at least one event.")
    bad = event_keys.invalid(webhook_type, list(events))
    if bad:
        raise ValidationError.for_field(
            "events", f"Not valid for a {webhook_type} webhook: {', '.join(sorted(set(bad)))}."
        )
    return list(dict.fromkeys(events))


def check_scalars(description: str, content_type: str, secret: str) -> None:
    if len(description) > MAX_DESCRIPTION:
        raise ValidationError.for_field("description", f"Must be at most {MAX_DESCRIPTION} characters.")
    if content_type not in CONTENT_TYPES:
        raise ValidationError.for_field(
            "content_type", f"Unsupported content type {content_type!r}; use {', '.join(CONTENT_TYPES)}."
        )
    if len(secret) > MAX_SECRET:
        raise ValidationError.for_field("secret", f"Must be at most {MAX_SECRET} characters.")


def check_headers(headers: Mapping[str, str] | None, stored: Mapping[str, str]) -> dict[str, str]:
    """The headers to store; a value written as ``***`` keeps the one stored under that name."""
    if not headers:
        return {}
    if len(headers) > MAX_HEADERS:
        raise ValidationError.for_field("headers", f"At most {MAX_HEADERS} custom headers.")
    result: dict[str, str] = {}
    kept = {name.lower(): value for name, value in stored.items()}
    for name, value in headers.items():
        if not _TOKEN.match(name):
            raise ValidationError.for_field("headers", f"{name!r} is not a valid header name.")
        if name.lower() in RESERVED_HEADERS:
            raise ValidationError.for_field("headers", f"The {name} header cannot be set on a webhook.")
        if any(name.lower() == other.lower() for other in result):
            raise ValidationError.for_field("headers", f"The {name} header is given twice.")
        if value == HIDDEN and name.lower() in kept:
            value = kept[name.lower()]
        if len(value) > MAX_HEADER_VALUE or any(c in value for c in "\r\n\x00"):
            raise ValidationError.for_field("headers", f"The value of {name} is not a valid header value.")
        result[name] = value
    return result


def stored_headers(webhook: Webhook) -> dict[str, str]:
    value = json.loads(webhook.headers or "{}")
    return value if isinstance(value, dict) else {}


def subscribed(webhook: Webhook) -> list[str]:
    value = json.loads(webhook.events or "[]")
    return value if isinstance(value, list) else []


# --- authorization ------------------------------------------------------------------------------


async def resource(session: AsyncSession, webhook: Webhook) -> Resource:
    """The policy input for a webhook: its owner, type, organization, and its project's owner (who
    manages the project's webhooks, whoever added them)."""
    project = None
    if webhook.project_id is not None:
        owner_id = await session.scalar(select(Project.owner_id).where(Project.id == webhook.project_id))
        project = {"id": webhook.project_id, "owner": {"id": owner_id}}
    document = {
        "id": webhook.id,
        "owner": {"id": webhook.owner_id},
        "project": project,
        "organization": {"id": webhook.organization_id},
        "type": webhook.type,
    }
    return Resource("webhooks", document, webhook.id)


def creation_resource(
    webhook_type: str, project: Mapping[str, Any] | None, organization_id: int | None
) -> Resource:
    """The policy input for adding a webhook: its type, its project's document and organization."""
    document = {"type": webhook_type, "project": project, "organization": {"id": organization_id}}
    return Resource("webhooks", document, None)


POLICY_FIELDS: FilterFields = {
    "id": lambda v: Webhook.id == v,
    "owner_id": lambda v: Webhook.owner_id == v,
    "project_id": lambda v: Webhook.project_id == v,
    "project__owner_id": lambda v: Webhook.project_id.in_(select(Project.id).where(Project.owner_id == v)),
    "organization_id": lambda v: Webhook.organization_id == v,
}

_owner = select(User.username).where(User.id == Webhook.owner_id).scalar_subquery()

LIST_SPEC = ListSpec(
    fields={
        "id": Webhook.id,
        "type": Webhook.type,
        "project_id": Webhook.project_id,
        "organization_id": Webhook.organization_id,
        "owner": _owner,
        "target_url": Webhook.target_url,
        "description": Webhook.description,
        "is_active": Webhook.is_active,
        "created_date": Webhook.created_date,
        "updated_date": Webhook.updated_date,
    },
    equality=("id", "type", "project_id", "owner", "target_url", "description"),
    search=("target_url", "description", "owner", "type"),
    sortable=(
        "id",
        "type",
        "project_id",
        "owner",
        "target_url",
        "description",
        "created_date",
        "updated_date",
    ),
    integer_fields=frozenset({"id", "project_id", "organization_id"}),
)

DELIVERY_LIST_SPEC = ListSpec(
    fields={
        "id": WebhookDelivery.id,
        "event": WebhookDelivery.event,
        "status_code": WebhookDelivery.status_code,
        "redelivery": WebhookDelivery.redelivery,
        "created_date": WebhookDelivery.created_date,
    },
    equality=("event", "status_code"),
    sortable=("id", "event", "status_code", "created_date"),
    integer_fields=frozenset({"id", "status_code"}),
)


# --- reading ------------------------------------------------------------------------------------


async def get(session: AsyncSession, webhook_id: int) -> Webhook:
    """The webhook, unless it is unknown or belongs to a deleted project or organization."""
    webhook = await session.scalar(select(Webhook).where(Webhook.id == webhook_id, orphans.live()))
    if webhook is None:
        raise NotFound(f"Webhook {webhook_id} not found.")
    return webhook


async def read_many(session: AsyncSession, webhooks: Sequence[Webhook], base_url: str) -> list[WebhookRead]:
    ids = [webhook.id for webhook in webhooks]
    latest = (
        select(func.max(WebhookDelivery.id))
        .where(WebhookDelivery.webhook_id.in_(ids))
        .group_by(WebhookDelivery.webhook_id)
    )
    last = {
        row.webhook_id: row
        for row in (await session.execute(select(WebhookDelivery).where(WebhookDelivery.id.in_(latest))))
        .scalars()
        .all()
    }
    owner_ids = {webhook.owner_id for webhook in webhooks if webhook.owner_id is not None}
    owners = {
        user.id: user
        for user in (await session.execute(select(User).where(User.id.in_(owner_ids)))).scalars().all()
    }
    results = []
    for webhook in webhooks:
        delivery = last.get(webhook.id)
        extra: dict[str, Any] = {}
        if delivery is not None:
            if delivery.status_code is not None:
                extra["last_status"] = delivery.status_code
            extra["last_delivery_date"] = delivery.updated_date
        results.append(
            WebhookRead(
                id=webhook.id,
                url=f"{base_url}/api/webhooks/{webhook.id}",
                target_url=webhook.target_url,
                description=webhook.description,
                type=webhook.type,
                content_type=webhook.content_type,
                is_active=webhook.is_active,
                enable_ssl=webhook.enable_ssl,
                created_date=webhook.created_date,
                updated_date=webhook.updated_date,
                owner=user_service.basic(owners.get(webhook.owner_id or -1), base_url),
                project_id=webhook.project_id,
                organization=webhook.organization_id,
                events=subscribed(webhook),
                headers={name: HIDDEN for name in stored_headers(webhook)},
                **extra,
            )
        )
    return results


def read_delivery(delivery: WebhookDelivery) -> WebhookDeliveryRead:
    try:
        request = json.loads(delivery.request) if delivery.request else None
    except ValueError:
        request = delivery.request
    return WebhookDeliveryRead(
        id=delivery.id,
        webhook_id=delivery.webhook_id,
        event=delivery.event,
        status_code=delivery.status_code,
        redelivery=delivery.redelivery,
        attempt=delivery.attempt,
        request_duration=delivery.request_duration,
        created_date=delivery.created_date,
        updated_date=delivery.updated_date,
        changed_fields=delivery.changed_fields,
        request=request,
        response=delivery.response,
        event_uuid=delivery.event_uuid,
        delivery_uuid=delivery.delivery_uuid,
    )


async def get_delivery(session: AsyncSession, webhook_id: int, delivery_id: int) -> WebhookDelivery:
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.webhook_id != webhook_id:
        raise NotFound(f"Delivery {delivery_id} of webhook {webhook_id} not found.")
    return delivery


# --- redelivery -------------------------------------------------------------------------


async def queue_redelivery(session: AsyncSession, delivery: WebhookDelivery) -> None:
    """Queue the request body of ``delivery`` again, as a new delivery flagged ``redelivery``
    (``webhook_id`` stays where it was, so the same bytes are sent)."""
    payload = json.loads(delivery.request or "{}")
    session.add(
        WebhookJob(
            webhook_id=delivery.webhook_id, event=delivery.event, event_uuid=delivery.event_uuid,
            delivery_uuid=str(uuid.uuid4()), payload=json.dumps(payload),
            changed_fields=delivery.changed_fields, redelivery=True, attempt=1, due_date=utcnow(),
            claimed_until=None,
        )
    )  # fmt: skip
    await session.flush()


def encode(value: Any) -> Any:
    """A msgspec struct (or anything else) as plain JSON values."""
    return msgspec.to_builtins(value)


__all__ = [
    "DELIVERY_LIST_SPEC",
    "LIST_SPEC",
    "POLICY_FIELDS",
    "check_events",
    "check_headers",
    "check_scalars",
    "check_type",
    "encode",
    "get",
    "get_delivery",
    "queue_redelivery",
    "read_delivery",
    "read_many",
    "resource",
    "stored_headers",
    "subscribed",
]
