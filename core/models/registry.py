"""The runner kinds and the declared models of one server or worker.

Kinds come from plugins (``register_model_runners``); models from ``[[models]]`` tables of
``annota.toml`` and from plugins (``register_models``). Everything is checked at start-up: a kind
registered twice, a model name used twice, a model of a kind nobody registered, a table with an
unknown or mistyped key are ``ConfigError`` naming the plugin (or ``annota.toml``), the model and
the key. Nothing is loaded here: ``annota.core.models.host`` loads models when first used.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from annota.core.errors import ConfigError, NotFound
from annota.core.models.runner import ModelDeclaration, RunnerFactory
from annota.core.plugins import convert_config

#: who declared a model written in the configuration file rather than by a plugin
CONFIG_SOURCE = "annota.toml"
#: model names are function ids in URLs (``/api/lambda/functions/<name>``)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class RunnerKind:
    kind: str
    factory: RunnerFactory
    plugin: str


@dataclass(frozen=True)
class DeclaredModel:
    declaration: ModelDeclaration
    #: the plugin that contributed it, or ``annota.toml``
    source: str

    @property
    def name(self) -> str:
        return self.declaration.name


def _who(source: str) -> str:
    return CONFIG_SOURCE if source == CONFIG_SOURCE else f"plugin {source}"


class ModelRegistry:
    """Runner kinds by name and declared models by name."""

    def __init__(self) -> None:
        self.kinds: dict[str, RunnerKind] = {}
        self.models: dict[str, DeclaredModel] = {}

    # --- filled by the hooks and the configuration ------------------------------------------

    def register_kind(self, plugin: str, kind: str, factory: RunnerFactory) -> None:
        """The ``register`` callback of ``register_model_runners``."""
        if not isinstance(kind, str) or not kind:
            raise ConfigError(
                f"plugin {plugin}: a model runner kind must be a non-empty string, got {kind!r}"
            )
        if not callable(factory):
            raise ConfigError(f"plugin {plugin}: the factory of model runner kind {kind!r} is not callable")
        if kind in self.kinds:
            owner = self.kinds[kind].plugin
            raise ConfigError(
                f"plugin {plugin}: model runner kind {kind!r} is already registered by plugin {owner}"
            )
        self.kinds[kind] = RunnerKind(kind, factory, plugin)

    def register_model(self, source: str, declaration: ModelDeclaration) -> None:
        """The ``register`` callback of ``register_models`` (``source``: the plugin)."""
        if not isinstance(declaration, ModelDeclaration):
            got = type(declaration).__name__
            raise ConfigError(f"{_who(source)}: register_models expects a ModelDeclaration, got {got}")
        _check_declaration(declaration, f"{_who(source)}: model {declaration.name!r}")
        existing = self.models.get(declaration.name)
        if existing is not None:
            raise ConfigError(
                f"{_who(source)}: model {declaration.name!r} is already declared by {_who(existing.source)}"
            )
        self.models[declaration.name] = DeclaredModel(declaration, source)

    def add_configured(self, tables: Sequence[Mapping[str, Any]]) -> None:
        """Validate ``[[models]]`` tables; errors name the model (or its position) and the key."""
        for index, table in enumerate(tables):
            if not isinstance(table, Mapping):
                raise ConfigError(f"{CONFIG_SOURCE}: models[{index}] must be a table")
            name = table.get("name")
            where = (
                f"{CONFIG_SOURCE}: model {name!r}"
                if isinstance(name, str)
                else f"{CONFIG_SOURCE}: models[{index}]"
            )
            declaration = convert_config(ModelDeclaration, table, where)
            self.register_model(CONFIG_SOURCE, declaration)

    def check(self) -> None:
        """Every declared model names a registered kind."""
        for model in self.models.values():
            kind = model.declaration.kind
            if kind not in self.kinds:
                known = ", ".join(sorted(self.kinds)) or "none"
                raise ConfigError(
                    f"{_who(model.source)}: model {model.name!r}.kind: no model runner kind {kind!r} is "
                    f"registered (the kinds: {known})"
                )

    # --- reading ----------------------------------------------------------------------------

    def get(self, name: str) -> DeclaredModel:
        model = self.models.get(name)
        if model is None:
            raise NotFound(f"Model {name!r} not found.")
        return model

    def factory(self, name: str) -> RunnerFactory:
        return self.kinds[self.get(name).declaration.kind].factory

    def __bool__(self) -> bool:
        return bool(self.models)


def _check_declaration(declaration: ModelDeclaration, where: str) -> None:
    if not _NAME.match(declaration.name):
        raise ConfigError(
            f"{where}.name: must be 1-128 letters, digits, '.', '_' or '-' (starting with a letter or digit)"
        )
    if not declaration.kind:
        raise ConfigError(f"{where}.kind: must not be empty")
    if not 0 <= declaration.conf_threshold <= 1:
        raise ConfigError(
            f"{where}.conf_threshold: must be between 0 and 1, got {declaration.conf_threshold}"
        )
    if declaration.batch_size < 1:
        raise ConfigError(f"{where}.batch_size: must be at least 1, got {declaration.batch_size}")
    if declaration.threads < 1:
        raise ConfigError(f"{where}.threads: must be at least 1, got {declaration.threads}")
    if declaration.labels is not None and len(set(declaration.labels)) != len(declaration.labels):
        raise ConfigError(f"{where}.labels: names must be unique")


__all__ = ["CONFIG_SOURCE", "DeclaredModel", "ModelRegistry", "RunnerKind"]
