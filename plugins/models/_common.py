"""What every runner kind needs: kind-specific options checked against a schema, model files
looked up, secrets read from the environment, and errors that name the model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from annota.core.models.runner import ModelDeclaration, ModelError

T = TypeVar("T")


def model_error(declaration: ModelDeclaration, message: str) -> ModelError:
    return ModelError(f"model {declaration.name!r} ({declaration.kind}): {message}")


def parse_options(declaration: ModelDeclaration, cls: type[T]) -> T:
    """``declaration.options`` validated as ``cls`` (a ``msgspec.Struct``): a misspelled or
    mistyped option stops the load with the option's path."""
    try:
        return msgspec.convert(declaration.options, type=cls, strict=False)
    except msgspec.ValidationError as exc:
        raise model_error(declaration, f"options: {exc}") from exc


def model_file(declaration: ModelDeclaration) -> Path:
    if not declaration.path:
        raise model_error(declaration, "`path` (the model file) is required")
    path = Path(declaration.path).expanduser()
    if not path.is_file():
        raise model_error(declaration, f"model file {str(path)!r} does not exist")
    return path


def resolve_secret(declaration: ModelDeclaration, field: str, value: Any) -> str:
    """A setting given literally or as ``{env = "NAME"}`` (a secret kept out of config files)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"env"} and isinstance(value["env"], str):
        name = value["env"]
        secret = os.environ.get(name)
        if secret is None:
            raise model_error(declaration, f"{field}: environment variable {name} is not set")
        return secret
    raise model_error(declaration, f'{field}: expected a string or {{env = "NAME"}}')


def label_names(
    declaration: ModelDeclaration, found: list[str] | None, needed: int | None = None
) -> list[str]:
    """The class names: the declaration's ``labels`` rename what the model file carries."""
    names = declaration.labels if declaration.labels is not None else found
    if not names:
        raise model_error(declaration, "the model carries no class names: declare `labels`")
    if needed is not None and len(names) != needed:
        raise model_error(declaration, f"`labels` has {len(names)} names, the model has {needed} classes")
    return list(names)
