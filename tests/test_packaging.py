"""The built wheel carries every module of the source tree under its ``annota.*`` import name."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIRS = {
    "core": "annota/core",
    "runtime": "annota/runtime",
    "plugins": "annota/plugins",
    "testing": "annota/testing",
}


def test_wheel_contains_every_module(tmp_path: Path) -> None:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("annota-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    expected = {
        f"{target}/{path.relative_to(ROOT / source).as_posix()}"
        for source, target in PACKAGE_DIRS.items()
        for path in (ROOT / source).rglob("*")
        if path.suffix in (".py", ".mako", ".rego") and "__pycache__" not in path.parts
    }
    assert expected - names == set()
    assert "[annota]" in entry_points and "annota.plugins.auth.plugin" in entry_points
    assert "[pytest11]" in entry_points
