"""Settings: defaults < ``annota.toml`` < ``ANNOTA_*`` environment < command-line flags, validated
with errors that name the key, and shown by ``annota config show`` with secrets masked."""

from __future__ import annotations

import json
import sqlite3
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import platformdirs
import pytest
from click.testing import CliRunner, Result

from annota.core import __version__
from annota.core.errors import ConfigError
from annota.runtime.cli import main
from annota.runtime.settings import load_settings
from tests.plugin_site import PluginSite

PASSWORD = "correct-horse-battery"


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(main, list(args))


def shown(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``annota config show --json``."""
    result = invoke("config", "show", "--json", *args, env=env)
    assert result.exit_code == 0, result.output
    effective: dict[str, Any] = json.loads(result.stdout)
    return effective


def test_environment_wins_over_the_file_and_flags_over_both(tmp_path: Path) -> None:
    config = write(
        tmp_path / "annota.toml", 'log_level = "warning"\nmax_body_size = 100\nallow_registration = true\n'
    )
    environ = {"ANNOTA_LOG_LEVEL": "error", "ANNOTA_ALLOW_REGISTRATION": "false"}
    settings = load_settings(config, environ=environ)
    assert (settings.log_level, settings.max_body_size, settings.allow_registration) == ("error", 100, False)
    settings = load_settings(config, overrides={"log_level": "debug", "data_dir": None}, environ=environ)
    assert settings.log_level == "debug"

    # the same through the command line: --data-dir beats ANNOTA_DATA_DIR, which beats the file
    write(tmp_path / "annota.toml", f'data_dir = "{tmp_path / "from-file"}"\nlog_level = "warning"\n')
    env = {"ANNOTA_DATA_DIR": str(tmp_path / "from-env"), "ANNOTA_LOG_LEVEL": "error"}
    effective = shown("--config", config, env=env)
    assert (effective["data_dir"], effective["log_level"]) == (str(tmp_path / "from-env"), "error")
    effective = shown("--config", config, "--data-dir", str(tmp_path / "from-flag"), env=env)
    assert effective["data_dir"] == str(tmp_path / "from-flag")
    assert effective["database_url"] == f"sqlite:///{tmp_path / 'from-flag' / 'annota.db'}"


def test_annota_config_names_the_file(tmp_path: Path) -> None:
    config = write(tmp_path / "elsewhere.toml", 'max_body_size = 1234\n[plugins]\ndisabled = ["auth"]\n')
    settings = load_settings(environ={"ANNOTA_CONFIG": config})
    assert (settings.max_body_size, settings.disabled_plugins) == (1234, ["auth"])
    effective = shown("--data-dir", str(tmp_path), env={"ANNOTA_CONFIG": config})
    assert (effective["max_body_size"], effective["disabled_plugins"]) == (1234, ["auth"])


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(str(tmp_path / "nope.toml"), environ={})


def test_unknown_key_is_an_error_naming_it(tmp_path: Path) -> None:
    config = write(tmp_path / "annota.toml", 'colour = "red"\n')
    with pytest.raises(ConfigError, match="unknown field `colour`"):
        load_settings(config, environ={})


@pytest.mark.parametrize(
    ("toml", "environ", "message"),
    [
        ('max_body_size = "big"\n', {}, "settings.max_body_size: Expected `int`, got `str`"),
        ("", {"ANNOTA_MAX_BODY_SIZE": "big"}, "settings.max_body_size: Expected `int`, got `str`"),
        (
            "",
            {"ANNOTA_ALLOW_REGISTRATION": "perhaps"},
            "settings.allow_registration: Expected `bool | null`, got `str`",
        ),
        ("plugins = 3\n", {}, "[plugins] must be a table"),
    ],
)
def test_wrong_type_is_an_error_naming_the_key(
    tmp_path: Path, toml: str, environ: dict[str, str], message: str
) -> None:
    config = write(tmp_path / "annota.toml", toml)
    with pytest.raises(ConfigError) as error:
        load_settings(config, environ=environ)
    assert message in str(error.value.detail)


@pytest.mark.parametrize("command", [["config", "show"], ["plugins"], ["migrate"]])
def test_settings_error_is_one_clean_line(tmp_path: Path, command: list[str]) -> None:
    config = write(tmp_path / "annota.toml", 'max_body_size = "big"\n')
    result = invoke("--config", config, *command)
    assert result.exit_code == 1
    assert result.stderr == "Error: settings.max_body_size: Expected `int`, got `str`\n"
    assert result.stdout == ""


def test_config_show_masks_secrets(
    tmp_path: Path, plugin_site: PluginSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin_site.add(
        "annota-vault",
        {
            "annota_vault": """
                import msgspec
                from annota.core import hookimpl

                class Config(msgspec.Struct, forbid_unknown_fields=True):
                    url: str = ""
                    api_token: str = ""

                @hookimpl
                def register_config(register):
                    register(Config)
            """
        },
        {"vault": "annota_vault"},
    )
    config = write(
        tmp_path / "annota.toml",
        textwrap.dedent(f"""
        data_dir = "{tmp_path / "data"}"
        secret_key = "key-that-must-not-show"
        database_url = "postgresql://annota:pg-password-x@db.internal:5432/annota"
        redis_url = "redis://:redis-password-y@cache.internal:6379/0"

        [plugins.vault]
        url = "https://vault.internal"
        api_token = {{env = "VAULT_TOKEN"}}
        """),
    )
    env = {"VAULT_TOKEN": "vault-token-z"}
    for output in (
        invoke("--config", config, "config", "show", env=env),
        invoke("--config", config, "config", "show", "--json", env=env),
    ):
        assert output.exit_code == 0, output.output
        for secret in ("key-that-must-not-show", "pg-password-x", "redis-password-y", "vault-token-z"):
            assert secret not in output.stdout

    effective = shown("--config", config, env=env)
    assert effective["secret_key"] == "********"
    assert effective["database_url"] == "postgresql://annota:********@db.internal:5432/annota"
    assert effective["redis_url"] == "redis://:********@cache.internal:6379/0"
    assert effective["plugins"]["vault"] == {"url": "https://vault.internal", "api_token": "********"}

    toml = invoke("--config", config, "config", "show", env=env).stdout
    assert 'database_url = "postgresql://annota:********@db.internal:5432/annota"' in toml
    assert '[plugins.vault]\nurl = "https://vault.internal"\napi_token = "********"' in toml


def test_config_show_output_is_valid_toml(tmp_path: Path) -> None:
    output = invoke("--data-dir", str(tmp_path), "config", "show").stdout
    assert tomllib.loads(output)["data_dir"] == str(tmp_path)


def test_default_data_dir_comes_from_platformdirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    settings = load_settings(environ={})
    assert settings.data_dir == platformdirs.user_data_dir("annota", appauthor=False)
    assert settings.data_dir == str(tmp_path / "xdg" / "annota")
    assert settings.database_url == f"sqlite:///{tmp_path / 'xdg' / 'annota' / 'annota.db'}"


def test_environment_and_flag_act_on_the_same_database(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    created = invoke(
        "users", "create", "--username", "alice", "--password", PASSWORD, env={"ANNOTA_DATA_DIR": data_dir}
    )
    assert created.exit_code == 0, created.output
    assert created.stdout == "created user 'alice' (id 1)\n"

    again = invoke("--data-dir", data_dir, "users", "create", "--username", "alice", "--password", PASSWORD)
    assert again.exit_code == 1
    assert "A user with that username already exists." in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1

    bob = invoke("users", "create", "--data-dir", data_dir, "--username", "bob", "--password", PASSWORD)
    assert bob.exit_code == 0, bob.output
    with sqlite3.connect(Path(data_dir) / "annota.db") as database:
        usernames = [row[0] for row in database.execute("SELECT username FROM users ORDER BY id")]
    assert usernames == ["alice", "bob"]


def test_version() -> None:
    result = invoke("--version")
    assert (result.exit_code, result.stdout) == (0, f"annota, version {__version__}\n")
