"""``/api/auth/*``: login, logout, registration and personal access tokens."""

from __future__ import annotations

from typing import Any

ROUTES: list[tuple[str, Any, list[str]]] = []
