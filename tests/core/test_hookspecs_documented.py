"""The plugin contract is documented and tested: every hookspec appears in ``docs/plugins.md`` with
its exact signature and docstring, and has a test named ``test_hook_<name>``."""

from __future__ import annotations

import importlib.util
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from annota.core import hookspecs
from annota.core.plugins import PluginManager

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "plugins.md"


def all_hookspecs() -> dict[str, Callable[..., Any]]:
    specs = {
        name: function
        for name, function in vars(hookspecs).items()
        if inspect.isfunction(function) and hasattr(function, "annota_spec")
    }
    assert specs, "no hookspec found: the marker attribute changed?"
    return specs


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_plugin_docs", ROOT / "scripts" / "gen_plugin_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hookspecs_are_the_hooks_the_plugin_manager_knows() -> None:
    known = {name for name in vars(PluginManager().hook) if not name.startswith("_")}
    assert set(all_hookspecs()) == known


def test_plugin_guide_is_generated_from_the_current_hookspecs(generator: ModuleType) -> None:
    document = DOC.read_text()
    source = (ROOT / "core" / "hookspecs.py").read_text()
    assert document == generator.updated(document, source), (
        "docs/plugins.md is out of date: run python scripts/gen_plugin_docs.py"
    )


@pytest.mark.parametrize("name", sorted(all_hookspecs()))
def test_every_hookspec_is_documented_with_its_exact_signature(name: str) -> None:
    function = all_hookspecs()[name]
    document = DOC.read_text()
    # the annotations are strings (postponed evaluation): the signature as written in the source
    signature = f"def {name}{inspect.signature(function)}".replace("'", "")
    assert f"### `{name}`" in document
    assert signature in document
    docstring = inspect.getdoc(function)
    assert docstring and docstring in document


@pytest.mark.parametrize("name", sorted(all_hookspecs()))
def test_every_hookspec_has_a_test_named_after_it(name: str) -> None:
    tested = {
        match
        for path in (ROOT / "tests").rglob("*.py")
        for match in re.findall(r"^\s*(?:async\s+)?def test_hook_(\w+)\(", path.read_text(), re.MULTILINE)
    }
    assert name in tested, f"hook {name!r} has no test named test_hook_{name}"
