"""Both Rego engines at once: every question a policy test asks goes to rego-cpp (the embedded
evaluator) and to OPA's own Go engine (what a production OPA server runs), and any answer on which
they differ is kept, so one test both checks the policies and that the two engines read them alike.

Each engine compiles the bundle once; the time spent in each is summed, to keep OPA's share of the
test run in view.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from annota.plugins.auth.embedded import CompiledBundle
from annota.testing.opa_engine import OpaEvaluationError, OpaPolicies

SHOWN = 20


@dataclass
class Twin:
    """rego-cpp and OPA over the same modules: ``query`` answers rego-cpp's value."""

    regocpp: CompiledBundle
    opa: OpaPolicies
    disagreements: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: {"rego-cpp": 0.0, "opa": 0.0})
    asked: int = 0

    def query(self, package: str, rule: str, document: dict[str, Any]) -> Any:
        started = time.perf_counter()
        ours = self.regocpp.query(package, rule, document)
        middle = time.perf_counter()
        try:
            theirs: Any = self.opa.query(package, rule, document)
        except OpaEvaluationError as exc:
            theirs = f"<error: {exc}>"
        self.seconds["rego-cpp"] += middle - started
        self.seconds["opa"] += time.perf_counter() - middle
        self.asked += 1
        if ours != theirs:
            self.disagreements.append(
                f"{package}.{rule} on {json.dumps(document, sort_keys=True)}: "
                f"rego-cpp {json.dumps(ours)}, OPA {json.dumps(theirs)}"
            )
        return ours

    def take(self) -> list[str]:
        """The disagreements so far, forgotten once taken (a shared twin serves many tests)."""
        found, self.disagreements = self.disagreements, []
        return found

    def report(self) -> str:
        listed = "\n  ".join(self.disagreements[:SHOWN])
        more = len(self.disagreements) - SHOWN
        tail = f"\n  … and {more} more" if more > 0 else ""
        return f"rego-cpp and OPA disagree on {len(self.disagreements)} answers:\n  {listed}{tail}"


# --- documents that are not quite what the server sends -------------------------------------------

#: values put where the policies expect something else: the cases on which engines part ways are
#: undefined references, nulls, wrong types and falsy values
ODD_VALUES: tuple[Any, ...] = (None, False, True, 0, -1, 1.5, "", "admin", "owner", [], {}, [1], {"id": None})


def _paths(node: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))


def mutated(document: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
    """``document`` with one to three keys removed or given an odd value."""
    result = copy.deepcopy(document)
    for _ in range(rnd.randint(1, 3)):
        paths = list(_paths(result))
        if not paths:
            break
        *parents, key = rnd.choice(paths)
        node = result
        for parent in parents:
            node = node[parent]
        if rnd.random() < 0.3:
            del node[key]
        else:
            node[key] = copy.deepcopy(rnd.choice(ODD_VALUES))
    return result
