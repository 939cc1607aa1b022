"""What an authorization evaluator does, wherever the policies run: answer a package's ``allow``
for one object and its ``filter`` for a list, given CVAT's input document."""

from __future__ import annotations

from typing import Any, Protocol

from annota.core.access import MATCH_NONE, Filter

UNAVAILABLE = "The authorization service is unavailable; the request was refused."


class Evaluator(Protocol):
    async def allow(self, package: str, document: dict[str, Any]) -> bool: ...

    async def filter(self, package: str, document: dict[str, Any]) -> Filter: ...

    async def health(self) -> str:
        """``"ok"`` or ``"error: <why>"``."""
        ...

    async def close(self) -> None: ...


def as_allow(value: Any) -> bool:
    """An ``allow`` result: ``true``, or OPA's ``{"allow": bool, "reasons": [...]}`` form;
    anything else (undefined included) refuses."""
    if isinstance(value, dict):
        value = value.get("allow")
    return value is True


def as_filter(value: Any) -> Filter:
    """A ``filter`` result; undefined or malformed matches nothing."""
    if isinstance(value, dict | list):
        return value
    return MATCH_NONE
