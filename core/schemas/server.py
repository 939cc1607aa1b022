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


class DatasetFormat(msgspec.Struct):
    """One entry of ``GET /api/server/annotation/formats``."""

    name: str
    ext: str
    version: str
    enabled: bool
    dimension: str


class DatasetFormats(msgspec.Struct):
    importers: list[DatasetFormat]
    exporters: list[DatasetFormat]
