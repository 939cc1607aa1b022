"""The ``annota`` command line. Every command reads the same settings (``--config``/``ANNOTA_*``)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from annota.core import __version__
from annota.core.errors import AnnotaError, ConfigError
from annota.runtime.settings import Settings, load_settings


class Context:
    def __init__(self, config: str | None, data_dir: str | None) -> None:
        self.config = config
        self.data_dir = data_dir

    def settings(self, **overrides: Any) -> Settings:
        try:
            return load_settings(self.config, {"data_dir": self.data_dir, **overrides})
        except ConfigError as exc:
            raise click.ClickException(str(exc.detail)) from exc


def run(coro: Any) -> Any:
    # imported here: ``annota convert`` and the other offline commands never need it
    import asyncio

    try:
        return asyncio.run(coro)
    except AnnotaError as exc:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        raise click.ClickException(detail) from exc


class PluginCommands(click.Group):
    """Adds the sub-commands plugins register through ``register_commands``."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        # cached for one invocation, not on the group: the group outlives invocations when the
        # command line runs in-process (tests, embedding), and the installed plugins may change
        commands: dict[str, click.Command] | None = ctx.meta.get("annota.plugin_commands")
        if commands is None:
            commands = ctx.meta["annota.plugin_commands"] = self._load_plugin_commands(ctx)
        return commands

    def _load_plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        from annota.core.plugins import PluginManager

        commands: dict[str, click.Command] = {}
        manager = PluginManager()
        manager.load_entry_points(disabled=_disabled_plugins(ctx))

        def register(plugin: str, command: click.Command) -> None:
            if command.name in commands or command.name in self.commands:
                raise ConfigError(f"plugin {plugin}: command {command.name!r} already exists")
            commands[command.name or ""] = command

        try:
            manager.collect("register_commands", register)
        except ConfigError as exc:
            raise click.ClickException(str(exc.detail)) from exc
        return commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugin_commands(ctx)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return super().get_command(ctx, name) or self._plugin_commands(ctx).get(name)


def _disabled_plugins(ctx: click.Context) -> list[str]:
    """The disabled plugins, read before the group's options are fully parsed (``--help``)."""
    try:
        settings = load_settings(ctx.params.get("config"))
    except ConfigError:
        # the command that runs next reports the settings error itself, with its own exit code
        return []
    return list(settings.disabled_plugins)


@click.group(cls=PluginCommands)
@click.version_option(__version__, prog_name="annota")
@click.option(
    "--config", envvar="ANNOTA_CONFIG", type=click.Path(dir_okay=False), help="annota.toml to read."
)
@click.option("--data-dir", default=None, type=click.Path(file_okay=False), help="Where data lives.")
@click.pass_context
def main(ctx: click.Context, config: str | None, data_dir: str | None) -> None:
    """annota: a CVAT-compatible annotation server built from plugins."""
    ctx.obj = Context(config, data_dir)


def _data_dir_option(func: Any) -> Any:
    """``--data-dir`` also accepted after the sub-command (``annota serve --data-dir D``)."""

    def store(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value:
            ctx.find_object(Context).data_dir = value  # type: ignore[union-attr]

    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        expose_value=False,
        callback=store,
        is_eager=True,
        help="Where data lives (SQLite database, media, results).",
    )(func)


def _config_option(func: Any) -> Any:
    def store(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value:
            ctx.find_object(Context).config = value  # type: ignore[union-attr]

    return click.option(
        "--config",
        type=click.Path(dir_okay=False),
        expose_value=False,
        callback=store,
        is_eager=True,
        help="annota.toml to read.",
    )(func)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--reload", is_flag=True, help="Restart on code changes (development).")
@click.option("--workers", default=1, show_default=True, type=int, help="Server processes.")
@click.option(
    "--ui",
    "ui_dir",
    type=click.Path(file_okay=False, exists=True),
    help="Serve the built web UI in this directory at / (setting ui_dir).",
)
@_data_dir_option
@_config_option
@click.pass_obj
def serve(obj: Context, host: str, port: int, reload: bool, workers: int, ui_dir: str | None) -> None:
    """Run the API server (SQLite is migrated automatically)."""
    import os

    import uvicorn

    if ui_dir:
        os.environ["ANNOTA_UI_DIR"] = os.path.abspath(ui_dir)
    settings = obj.settings()
    if settings.ui_dir:
        from annota.runtime.ui import check_ui_dir

        try:
            check_ui_dir(settings.ui_dir)
        except ConfigError as exc:
            raise click.ClickException(str(exc.detail)) from exc
    from annota.runtime import logs

    logs.configure(settings)
    if workers > 1 and not settings.redis_url:
        raise click.ClickException(
            "--workers > 1 needs redis_url: the in-process job queue lives inside one server process."
        )
    run(_prepare_database(settings))
    _announce_registration(settings, host)
    from annota.runtime.metrics import clear_multiprocess_dir

    # PROMETHEUS_MULTIPROC_DIR: the server processes of this run share it, from a clean start
    clear_multiprocess_dir()
    # the factory re-reads settings in each server process: pass them on through the environment
    os.environ["ANNOTA_DATA_DIR"] = settings.data_dir
    if obj.config:
        os.environ["ANNOTA_CONFIG"] = obj.config
    uvicorn.run(
        "annota.runtime.asgi:app",
        factory=True,
        host=host,
        port=port,
        reload=reload,
        workers=None if reload else workers,
        log_level=settings.log_level.lower(),
        # each server process configures logging from it (uvicorn's processes are spawned)
        log_config=logs.logging_config(settings),
        # annota.access logs each request with its id instead
        access_log=False,
        proxy_headers=True,
        # no "server: uvicorn" banner: it tells attackers what to look up
        server_header=False,
    )


def _announce_registration(settings: Settings, host: str) -> None:
    """Say whether strangers can create accounts; unset, registration is closed off loopback
    (for every server process: the setting is passed on through the environment)."""
    import os

    from annota.runtime.web import is_loopback

    log = logging.getLogger("annota.serve")
    if settings.allow_registration is None and not is_loopback(host):
        os.environ["ANNOTA_ALLOW_REGISTRATION"] = "false"
        log.warning(
            "registration is closed: the server listens on %s, not on loopback; "
            "set allow_registration = true (ANNOTA_ALLOW_REGISTRATION=true) to let anyone sign up",
            host,
        )
    elif settings.allow_registration is None:
        log.info(
            "registration is open to clients on this machine only (the server listens on %s); "
            "set allow_registration = false to close it",
            host,
        )
    elif settings.allow_registration:
        log.warning("registration is open to anyone who reaches %s (allow_registration = true)", host)
    else:
        log.info("registration is closed (allow_registration = false)")


async def _prepare_database(settings: Settings) -> None:
    """Migrate SQLite once before any server process starts; refuse an un-migrated PostgreSQL."""
    from annota.core.db import migrate as migrations
    from annota.core.db.engine import create_engine
    from annota.runtime.settings import ensure_data_dir

    ensure_data_dir(settings)
    engine = create_engine(settings.database_url)
    try:
        if settings.is_sqlite:
            await migrations.upgrade(engine)
        elif not await migrations.is_up_to_date(engine):
            raise ConfigError(
                "The database schema is not up to date. Run `annota migrate` (with the same settings) first."
            )
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"cannot use the database at {settings.database_url.split('@')[-1]}: {exc}"
        ) from exc
    finally:
        await engine.dispose()


@main.command()
@_data_dir_option
@_config_option
@click.pass_obj
def migrate(obj: Context) -> None:
    """Create or upgrade the database schema."""
    from annota.core.db import migrate as migrations
    from annota.core.db.engine import create_engine
    from annota.runtime import logs
    from annota.runtime.settings import ensure_data_dir

    settings = obj.settings()
    # each upgrade step is logged, in the format the servers use
    logs.configure(settings)
    ensure_data_dir(settings)

    async def go() -> None:
        engine = create_engine(settings.database_url)
        try:
            await migrations.upgrade(engine)
        finally:
            await engine.dispose()

    run(go())
    click.echo(f"database is at revision {migrations.head_revision()}")


@main.command()
@click.option(
    "--queue", "queues", multiple=True, metavar="NAME", help="A queue to serve (repeat; default: all)."
)
@click.option("--burst", is_flag=True, help="Run what is queued, then exit.")
@click.option(
    "--max-jobs", default=10, show_default=True, type=click.IntRange(min=1), help="Jobs at once per queue."
)
@click.option(
    "--shutdown-grace",
    default=25,
    show_default=True,
    type=click.IntRange(min=0),
    help="Seconds running jobs get to finish after SIGTERM/SIGINT before they are left to another worker.",
)
@click.option(
    "--metrics-port",
    default=0,
    type=click.IntRange(min=0, max=65535),
    help="Serve Prometheus metrics at /metrics on this port (0: not at all).",
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Address for --metrics-port.")
@_data_dir_option
@_config_option
@click.pass_obj
def worker(
    obj: Context,
    queues: tuple[str, ...],
    burst: bool,
    max_jobs: int,
    shutdown_grace: int,
    metrics_port: int,
    metrics_host: str,
) -> None:
    """Run background jobs from Redis (needs redis_url; the database must be migrated)."""
    from annota.core.queue import QUEUES
    from annota.runtime.worker import run_worker

    unknown = [queue for queue in queues if queue not in QUEUES]
    if unknown:
        raise click.BadParameter(
            f"unknown queue {', '.join(map(repr, unknown))}; the queues are {', '.join(QUEUES)}",
            param_hint="--queue",
        )
    settings = obj.settings()
    if not settings.redis_url:
        raise click.ClickException(
            "annota worker needs Redis: set redis_url in annota.toml or ANNOTA_REDIS_URL "
            "(without it, `annota serve` runs background jobs in-process and needs no worker)."
        )
    from annota.runtime import logs

    logs.configure(settings)
    selected = list(queues) or list(QUEUES)
    stop_metrics = None
    if metrics_port:
        from annota.runtime.metrics import serve_standalone

        try:
            stop_metrics = serve_standalone(metrics_host, metrics_port, settings.metrics_token)
        except OSError as exc:
            raise click.BadParameter(
                f"cannot listen on {metrics_host}:{metrics_port}: {exc.strerror}", param_hint="--metrics-port"
            ) from exc
    try:
        run(run_worker(settings, selected, burst, max_jobs=max_jobs, shutdown_grace=shutdown_grace))
    finally:
        if stop_metrics is not None:
            stop_metrics()


@main.group()
def users() -> None:
    """Manage user accounts."""


@users.command("create")
@click.option("--username", required=True)
@click.option("--password", required=True, prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--email", default="")
@click.option("--superuser", is_flag=True, help="Administrator with every permission.")
@click.option(
    "--privilege", type=click.Choice(["admin", "user", "worker"]), default="user", show_default=True
)
@_data_dir_option
@_config_option
@click.pass_obj
def users_create(
    obj: Context, username: str, password: str, email: str, superuser: bool, privilege: str
) -> None:
    """Create a user account."""
    from annota.core.services import users as user_service
    from annota.runtime.state import close_state, open_state

    settings = obj.settings()

    async def go() -> int:
        state = await open_state(settings)
        try:
            async with state.sessionmaker.begin() as session:
                user = await user_service.create_user(
                    session,
                    username,
                    password,
                    email=email,
                    superuser=superuser or privilege == "admin",
                    privilege=privilege,
                )
                return user.id
        finally:
            await close_state(state)

    user_id = run(go())
    click.echo(f"created user {username!r} (id {user_id})")


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_config_option
@click.pass_obj
def plugins_command(obj: Context, as_json: bool) -> None:
    """List the installed plugins.

    Shows each plugin's version, source (builtin or entry point), the hooks it implements and its
    status: ok, error (with the error) or disabled.
    """
    from annota.core.plugins import PluginManager

    settings = obj.settings()
    manager = PluginManager()
    manager.load_entry_points(disabled=settings.disabled_plugins)
    # what `annota serve` would refuse at start-up, shown next to the plugin at fault
    for name, hooks in manager.unknown_hooks().items():
        info = manager.infos[name]
        info.status = "error"
        info.error = "unknown hook " + ", ".join(repr(hook) for hook in hooks)
    infos = sorted(manager.infos.values(), key=lambda info: info.name)
    if as_json:
        click.echo(json.dumps([info.as_dict() for info in infos], indent=2))
        return
    rows = [("NAME", "VERSION", "SOURCE", "STATUS", "HOOKS")]
    rows += [(i.name, i.version or "", i.source, i.status, ", ".join(i.hooks)) for i in infos]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        click.echo("  ".join([*cells, row[4]]).rstrip())
    for info in infos:
        if info.error:
            click.echo(f"{info.name}: {info.error}", err=True)


@main.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
@_data_dir_option
@_config_option
@click.pass_obj
def config_show(obj: Context, as_json: bool) -> None:
    """Print the effective settings, secrets masked.

    The file, the environment and the flags merged, every plugin's configuration validated; the
    output is TOML that can be pasted into annota.toml (or JSON with --json).
    """
    from annota.runtime.settings import masked
    from annota.runtime.state import load_plugins

    settings = obj.settings()
    try:
        plugins = load_plugins(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc.detail)) from exc
    effective = masked(settings, {name: plugins.config(name) for name in plugins.config_classes})
    click.echo(json.dumps(effective, indent=2) if as_json else "\n".join(_toml_lines(effective)))


def _toml_lines(table: dict[str, Any], path: tuple[str, ...] = ()) -> list[str]:
    """``table`` as TOML, so that ``annota config show`` output can be pasted into ``annota.toml``."""
    lines = [f"[{'.'.join(_toml_key(part) for part in path)}]"] if path else []
    subtables = {key: value for key, value in table.items() if isinstance(value, dict)}
    for key, value in table.items():
        if key in subtables:
            continue
        if value is None:
            lines.append(f"# {_toml_key(key)} is not set")
        else:
            # JSON scalars and lists of scalars are valid TOML values
            lines.append(f"{_toml_key(key)} = {json.dumps(value)}")
    for key, value in subtables.items():
        lines += ["", *_toml_lines(value, (*path, key))]
    return lines


def _toml_key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "-_" for c in key) else json.dumps(key)


# the conversion commands import what they need when they run, not when the command line starts
from annota.runtime.convert import convert, detect_format, formats_command  # noqa: E402

main.add_command(convert)
main.add_command(detect_format)
main.add_command(formats_command)

from annota.runtime.cli_invitations import invitations  # noqa: E402

main.add_command(invitations)

from annota.runtime.cli_models import models  # noqa: E402

main.add_command(models)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
