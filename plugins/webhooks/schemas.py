"""Wire types of ``/api/webhooks`` (CVAT's ``WebhookRead``, ``WebhookWriteRequest``...).

Custom headers are an addition: written as ``{"Name": "value"}``, read back as ``{"Name": "***"}``
(values are secrets, like ``secret``, which is never read back at all).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from annota.core.schemas.common import BasicUser, Id

#: what custom header values are shown as; writing it back keeps the stored value
HIDDEN = "***"


class WebhookWrite(msgspec.Struct, forbid_unknown_fields=True):
    """POST and PUT body."""

    target_url: str
    type: str
    events: list[str]
    description: str = ""
    content_type: str = "application/json"
    secret: str = ""
    is_active: bool = True
    enable_ssl: bool = True
    project_id: Id | None = None
    headers: dict[str, str] | None = None


class WebhookUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """PATCH body: what is absent stays as it is (``type`` and ``project_id`` are write-once)."""

    target_url: str | msgspec.UnsetType = msgspec.UNSET
    type: str | msgspec.UnsetType = msgspec.UNSET
    events: list[str] | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType = msgspec.UNSET
    content_type: str | msgspec.UnsetType = msgspec.UNSET
    secret: str | msgspec.UnsetType = msgspec.UNSET
    is_active: bool | msgspec.UnsetType = msgspec.UNSET
    enable_ssl: bool | msgspec.UnsetType = msgspec.UNSET
    project_id: Id | None | msgspec.UnsetType = msgspec.UNSET
    headers: dict[str, str] | None | msgspec.UnsetType = msgspec.UNSET


class WebhookRead(msgspec.Struct, omit_defaults=True):
    id: int
    url: str
    target_url: str
    description: str
    type: str
    content_type: str
    is_active: bool
    enable_ssl: bool
    created_date: dt.datetime
    updated_date: dt.datetime
    owner: BasicUser | None
    project_id: int | None
    organization: int | None
    events: list[str]
    headers: dict[str, str]
    # the SDK types both as non-nullable: absent until the first delivery
    last_status: int | msgspec.UnsetType = msgspec.UNSET
    last_delivery_date: dt.datetime | msgspec.UnsetType = msgspec.UNSET


class WebhookDeliveryRead(msgspec.Struct):
    id: int
    webhook_id: int
    event: str
    status_code: int | None
    redelivery: bool
    attempt: int
    request_duration: int
    created_date: dt.datetime
    updated_date: dt.datetime
    changed_fields: str
    request: Any
    response: str
    #: additions: the ids receivers see in ``X-Webhook-Event-Id`` and ``X-Webhook-Delivery-Id``
    event_uuid: str | None
    delivery_uuid: str


class EventGroup(msgspec.Struct):
    display_name: str


class EventInfo(msgspec.Struct):
    key: str
    group: EventGroup


class Events(msgspec.Struct):
    webhook_type: str
    events: list[EventInfo]


__all__ = [
    "HIDDEN",
    "EventGroup",
    "EventInfo",
    "Events",
    "WebhookDeliveryRead",
    "WebhookRead",
    "WebhookUpdate",
    "WebhookWrite",
]
