"""Events: what happened, told to plugins after the change is committed (``on_event``).

An event is written in the same transaction as the change it describes (the ``events`` table is an
outbox), so a rolled-back change emits nothing and a committed one is never lost: the runtime
dispatches it right after the commit, and a sweep dispatches whatever a dying process left behind.
Subscribers may therefore see an event twice; ``Event.id`` is stable for de-duplication.

Keys are CVAT's: ``create|update|delete:<resource>`` and ``completed:request[<operation>]``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

#: the resources whose changes are events
RESOURCES = (
    "project", "task", "job", "label", "organization", "membership", "invitation", "user", "issue", "comment",
)  # fmt: skip
#: the operations whose background requests emit ``completed:request[...]`` when they finish
REQUEST_OPERATIONS = (
    "create:task", "export:annotations", "export:dataset", "export:backup", "import:annotations",
    "import:dataset", "import:backup",
)  # fmt: skip


def request_event(operation: str) -> str:
    return f"completed:request[{operation}]"


@dataclass(frozen=True)
class Event:
    """What ``on_event`` receives. ``payload`` is the body CVAT's webhooks send, without
    ``webhook_id``: ``{"event", "<resource>": {…read serializer…}, "sender"}`` plus, for updates,
    ``"changes": {field: {"from", "to"}}`` and ``"before_update"``."""

    id: str
    type: str
    resource: str
    resource_id: int | None
    created_date: dt.datetime
    payload: dict[str, Any] = field(default_factory=dict)
    org_id: int | None = None
    project_id: int | None = None
    task_id: int | None = None
    job_id: int | None = None
    user_id: int | None = None

    @property
    def changed_fields(self) -> list[str]:
        changes = self.payload.get("changes")
        return sorted(changes) if isinstance(changes, dict) else []


__all__ = ["REQUEST_OPERATIONS", "RESOURCES", "Event", "request_event"]
