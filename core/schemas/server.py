"""``/api/server/*`` payloads."""

from __future__ import annotations

from typing import Any

import msgspec


class About(msgspec.Struct):
    name: str
    description: str
    version: str
    logo_url: str
    subtitle: str


class PluginsRead(msgspec.Struct, rename={"analytics": "ANALYTICS", "models": "MODELS"}):
    """CVAT's upper-case feature flags plus annota's plugin list."""

    analytics: bool
    models: bool
    plugins: list[dict[str, Any]]
