"""OPA's own Rego engine (Go, ``github.com/open-policy-agent/opa/v1/rego``) in this process, so the
policies are checked against the engine a production OPA server runs, not only against rego-cpp.

It comes from the ``opa-golib-python-bindings`` wheel, whose metadata asks for Python 3.14 although
it runs on 3.11, so no extra can install it: ``scripts/check`` does, with
``pip install --ignore-requires-python opa-golib-python-bindings==0.4.4``::

    from annota.testing.opa_engine import OpaPolicies

    with OpaPolicies(registry.modules) as opa:        # compiled once, queried many times
        opa.query("tasks", "allow", {"scope": "view", "auth": ..., "resource": ...})
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Self

from annota.core.errors import ConfigError
from annota.core.policies import PolicyModule

INSTALL = "pip install --ignore-requires-python opa-golib-python-bindings==0.4.4"


class OpaEvaluationError(RuntimeError):
    """OPA failed to evaluate a rule (a conflict between rule bodies, a builtin's type error…),
    which an OPA server answers with a 500."""


class OpaPolicies:
    """Rego modules loaded into one OPA engine; ``query`` answers like OPA's Data API."""

    def __init__(self, modules: Sequence[PolicyModule]) -> None:
        try:
            from opa_bindings import OpaEngine, OpaError, OpaUndefinedError
        except ImportError as exc:  # pragma: no cover - depends on the machine
            raise ConfigError(f"OPA's engine is not installed: {INSTALL}") from exc
        self._undefined, self._error = OpaUndefinedError, OpaError
        self.packages = {module.package for module in modules}
        self._engine = OpaEngine()
        self._lock = threading.Lock()
        try:
            for module in modules:
                self._engine.add_policy(module.name, module.source)
            # OPA compiles the modules together when first asked: ask now, so that a module OPA
            # rejects fails here rather than on the first decision
            self._engine.eval_document("__annota_compile_check__", {})
        except self._undefined:
            return  # the probe names no rule, so undefined is the answer of modules that compiled
        except self._error as exc:
            self._engine.close()
            raise ConfigError(f"OPA does not compile the authorization policies: {exc}") from exc

    def query(self, package: str, rule: str, document: dict[str, Any]) -> Any:
        """The rule's value, ``None`` when it is undefined; ``OpaEvaluationError`` when OPA fails."""
        try:
            with self._lock:
                return self._engine.eval_document(f"{package}.{rule}", document)
        except self._undefined:
            return None
        except self._error as exc:
            raise OpaEvaluationError(f"{package}.{rule}: {exc}") from exc

    def close(self) -> None:
        self._engine.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
