"""``annota models list | check | run``: the declared models from the server's shell.

``list`` reads the configuration only; ``check`` loads every model (or those named) the way a
server or worker would and says which fail and why; ``run`` auto-annotates a task with a model in
this process, labels matched by name, without going through the API or a queue (an operator's
tool: no permission check, as with ``annota users create``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from annota.core.models.registry import ModelRegistry
    from annota.runtime.settings import Settings


@click.group("models")
def models() -> None:
    """List, check and run the auto-annotation models."""


def _settings(ctx: click.Context) -> Settings:
    from annota.runtime.cli import Context

    obj = ctx.find_object(Context)
    assert obj is not None
    return obj.settings()


def _registry(settings: Settings) -> ModelRegistry:
    from annota.core.errors import ConfigError
    from annota.runtime.state import collect_models, load_plugins

    try:
        return collect_models(load_plugins(settings), settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc.detail)) from exc


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def list_models(ctx: click.Context, as_json: bool) -> None:
    """List the declared models: name, runner kind, where declared, description."""
    registry = _registry(_settings(ctx))
    rows = [
        {
            "name": m.name,
            "kind": m.declaration.kind,
            "source": m.source,
            "description": m.declaration.description,
        }
        for m in registry.models.values()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = [("NAME", "KIND", "SOURCE", "DESCRIPTION")] + [tuple(row.values()) for row in rows]
    widths = [max(len(str(row[column])) for row in table) for column in range(3)]
    for row in table:
        click.echo(
            "  ".join(
                [*(str(c).ljust(w) for c, w in zip(row[:3], widths, strict=True)), str(row[3])]
            ).rstrip()
        )


@models.command("check")
@click.argument("names", nargs=-1)
@click.pass_context
def check_models(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Load every model (or NAMES) and report its labels or why it cannot load; exits 1 if any fails."""
    import asyncio

    from annota.core.errors import NotFound
    from annota.core.models.host import ModelHost
    from annota.core.models.runner import ModelError

    host = ModelHost(_registry(_settings(ctx)))
    failed = 0
    try:
        for name in names or tuple(host.registry.models):
            try:
                model = asyncio.run(host.load(name))
            except (ModelError, NotFound) as exc:
                failed += 1
                click.echo(f"{name}: error: {exc.detail}")
                continue
            labels = ", ".join(label.name for label in model.labels) or "no labels"
            click.echo(f"{name}: ok ({model.declaration.kind}; labels: {labels})")
    finally:
        host.close()
    if failed:
        raise click.exceptions.Exit(1)


@models.command("run")
@click.option("--task", "task_id", type=int, required=True, help="The task to annotate.")
@click.option("--model", "name", required=True, help="The model's name.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None, help="Minimum confidence.")
@click.option("--clear", is_flag=True, help="Remove the task's annotations first.")
@click.pass_context
def run_model(ctx: click.Context, task_id: int, name: str, threshold: float | None, clear: bool) -> None:
    """Annotate every frame of a task with a model (model labels go to task labels of the same name)."""
    from annota.runtime.cli import run

    settings = _settings(ctx)
    shapes, tags = run(annotate_task(settings, task_id, name, threshold, clear))
    click.echo(f"task {task_id}: {name} added {shapes} shapes and {tags} tags")


async def annotate_task(
    settings: Settings, task_id: int, name: str, threshold: float | None, clear: bool
) -> tuple[int, int]:
    from annota.core.models import annotate
    from annota.core.models.runner import DetectOptions
    from annota.runtime.state import close_state, open_state

    state = await open_state(settings)
    try:
        async with state.sessionmaker() as session:
            where = await annotate.target(session, task_id, None)
        labels = await annotate.label_map(state.models, name, where, None, False)
        if not labels.targets:
            task_labels = ", ".join(repr(label) for label in where.catalog.by_name) or "none"
            model_labels = ", ".join(repr(label.name) for label in (await state.models.load(name)).labels)
            raise click.ClickException(
                f"No label of model {name!r} ({model_labels}) is a label of task {task_id} ({task_labels})."
            )

        async def report(done: int, total: int) -> None:
            click.echo(f"{done}/{total} frames", err=True)

        data = await annotate.detect_all(
            state.models, state.storage, name, where, labels, DetectOptions(conf_threshold=threshold), report
        )
        async with state.sessionmaker.begin() as session:
            await annotate.write(session, where, data, cleanup=clear)
        return len(data.shapes), len(data.tags)
    finally:
        await close_state(state)
