"""Fixtures for format plugin tests."""

from __future__ import annotations

import pytest

from annota.core.formats.registry import FormatRegistry
from tests.plugins.formats.helpers import installed_formats


@pytest.fixture(scope="session")
def formats() -> FormatRegistry:
    """Every format of the installed plugins."""
    return installed_formats()
