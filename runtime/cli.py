"""The ``annota`` command line. Every command reads the same settings (``--config``/``ANNOTA_*``)."""

from __future__ import annotations

import asyncio
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
    try:
        return asyncio.run(coro)
    except AnnotaError as exc:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        raise click.ClickException(detail) from exc


class PluginCommands(click.Group):
    """Adds the sub-commands plugins register through ``register_commands``."""

    def _plugin_commands(self) -> dict[str, click.Command]:
        if not hasattr(self, "_loaded"):
            from annota.core.plugins import PluginManager

            commands: dict[str, click.Command] = {}
            manager = PluginManager()
            manager.load_entry_points()

            def register(plugin: str, command: click.Command) -> None:
                if command.name in commands or command.name in self.commands:
                    raise ConfigError(f"plugin {plugin}: command {command.name!r} already exists")
                commands[command.name or ""] = command

            manager.collect("register_commands", register)
            self._loaded = commands
        return self._loaded

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugin_commands()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return super().get_command(ctx, name) or self._plugin_commands().get(name)


@click.group(cls=PluginCommands)
@click.version_option(__version__, prog_name="annota")
@click.option("--config", envvar="ANNOTA_CONFIG", type=click.Path(dir_okay=False), help="annota.toml to read.")
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
        "--data-dir", type=click.Path(file_okay=False), expose_value=False, callback=store, is_eager=True,
        help="Where data lives (SQLite database, media, results).",
    )(func)


def _config_option(func: Any) -> Any:
    def store(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value:
            ctx.find_object(Context).config = value  # type: ignore[union-attr]

    return click.option(
        "--config", type=click.Path(dir_okay=False), expose_value=False, callback=store, is_eager=True,
        help="annota.toml to read.",
    )(func)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--reload", is_flag=True, help="Restart on code changes (development).")
@click.option("--workers", default=1, show_default=True, type=int, help="Server processes.")
@_data_dir_option
@_config_option
@click.pass_obj
def serve(obj: Context, host: str, port: int, reload: bool, workers: int) -> None:
    """Run the API server (SQLite is migrated automatically)."""
    import os

    import uvicorn

    settings = obj.settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
        proxy_headers=True,
    )


@main.command()
@_data_dir_option
@_config_option
@click.pass_obj
def migrate(obj: Context) -> None:
    """Create or upgrade the database schema."""
    from annota.core.db import migrate as migrations
    from annota.core.db.engine import create_engine
    from annota.runtime.settings import ensure_data_dir

    settings = obj.settings()
    ensure_data_dir(settings)

    async def go() -> None:
        engine = create_engine(settings.database_url)
        try:
            await migrations.upgrade(engine)
        finally:
            await engine.dispose()

    run(go())
    click.echo(f"database is at revision {migrations.head_revision()}")


@main.group()
def users() -> None:
    """Manage user accounts."""


@users.command("create")
@click.option("--username", required=True)
@click.option("--password", required=True, prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--email", default="")
@click.option("--superuser", is_flag=True, help="Administrator with every permission.")
@click.option("--privilege", type=click.Choice(["admin", "user", "worker"]), default="user", show_default=True)
@_data_dir_option
@_config_option
@click.pass_obj
def users_create(obj: Context, username: str, password: str, email: str, superuser: bool, privilege: str) -> None:
    """Create a user account."""
    from annota.core.services import users as user_service
    from annota.runtime.state import close_state, open_state

    settings = obj.settings()

    async def go() -> int:
        state = await open_state(settings)
        try:
            async with state.sessionmaker.begin() as session:
                user = await user_service.create_user(
                    session, username, password, email=email, superuser=superuser or privilege == "admin",
                    privilege=privilege,
                )
                return user.id
        finally:
            await close_state(state)

    user_id = run(go())
    click.echo(f"created user {username!r} (id {user_id})")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
