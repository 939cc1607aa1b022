"""Authorization decisions from the Rego bundle, by whichever evaluator the configuration names.

Each resource kind is a Rego package answering ``allow`` (one object) and ``filter`` (a list,
translated into SQL by the host). Requests made with a personal access token must also pass the
``access_token_plugin`` package, which keeps read-only tokens to reading.
"""

from __future__ import annotations

import weakref
from typing import Any

from annota.core.access import MATCH_NONE, Decision, Filter, Identity, Resource
from annota.plugins.auth.config import AuthConfig
from annota.plugins.auth.embedded import EmbeddedEvaluator
from annota.plugins.auth.evaluator import Evaluator
from annota.plugins.auth.remote import RemoteEvaluator

PLUGIN = "auth"
TOKEN_PACKAGE = "access_token_plugin"
READ_ONLY = "This access token is read-only: it cannot be used to {scope} {kind}."

# one evaluator per running app, found again by the app object the hooks receive
_evaluators: dict[int, tuple[weakref.ref[Any], Evaluator]] = {}


def create_evaluator(app: Any) -> Evaluator:
    config: AuthConfig = app.plugins.config(PLUGIN)
    if config.opa_url:
        return RemoteEvaluator(config)
    return EmbeddedEvaluator(app.policies.digest(), app.policies.modules)


def evaluator_for(app: Any) -> Evaluator:
    known = _evaluators.get(id(app))
    if known is not None and known[0]() is app:
        return known[1]
    evaluator = create_evaluator(app)
    _evaluators[id(app)] = (weakref.ref(app), evaluator)
    return evaluator


async def release(app: Any) -> None:
    known = _evaluators.pop(id(app), None)
    if known is not None and known[0]() is app:
        await known[1].close()


async def decide(app: Any, who: Identity, scope: str, resource: Resource) -> Decision:
    if not who.is_authenticated:
        return Decision(False)
    document = resource.input_document(who, scope)
    evaluator = evaluator_for(app)
    if who.access_token_id is not None and not await evaluator.allow(TOKEN_PACKAGE, document):
        return Decision(False, [READ_ONLY.format(scope=scope, kind=resource.kind)])
    return Decision(await evaluator.allow(resource.kind, document))


async def list_filter(app: Any, who: Identity, scope: str, resource_type: str) -> Filter:
    if not who.is_authenticated:
        return MATCH_NONE
    document = {"scope": scope, "auth": who.auth_document(), "resource": None}
    return await evaluator_for(app).filter(resource_type, document)
