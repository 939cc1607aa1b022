"""Which event keys a webhook of each type may subscribe to, grouped as CVAT's event list shows them."""

from __future__ import annotations

from annota.core.events import REQUEST_OPERATIONS, RESOURCES, request_event

TYPES = ("project", "organization", "server")
ACTIONS = ("create", "update", "delete")

_ALL = [f"{action}:{resource}" for resource in RESOURCES for action in ACTIONS] + [
    request_event(operation) for operation in REQUEST_OPERATIONS
]
#: a project webhook hears about what lives in its project, and about the project itself changing
_PROJECT = [
    *(
        f"{action}:{resource}"
        for resource in ("task", "job", "label", "issue", "comment")
        for action in ACTIONS
    ),
    "update:project",
    "delete:project",
    *(request_event(operation) for operation in REQUEST_OPERATIONS),
]

ALLOWED: dict[str, list[str]] = {"project": _PROJECT, "organization": _ALL, "server": _ALL}


def group(event: str) -> str:
    """The display name of the group an event key belongs to (``Task``, ``Request``...)."""
    if event.startswith("completed:request["):
        return "Request"
    return event.partition(":")[2].capitalize()


def invalid(webhook_type: str, events: list[str]) -> list[str]:
    """The keys of ``events`` a webhook of ``webhook_type`` cannot subscribe to."""
    allowed = set(ALLOWED[webhook_type])
    return [event for event in events if event not in allowed]


__all__ = ["ALLOWED", "TYPES", "group", "invalid"]
