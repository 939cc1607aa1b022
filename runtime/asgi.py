"""ASGI entry point for uvicorn (``annota.runtime.asgi:app``, a factory): settings come from
``ANNOTA_CONFIG`` and ``ANNOTA_*`` variables, as for every command."""

from __future__ import annotations

from starlette.applications import Starlette

from annota.runtime.app import create_app
from annota.runtime.settings import load_settings


def app() -> Starlette:
    return create_app(load_settings())
