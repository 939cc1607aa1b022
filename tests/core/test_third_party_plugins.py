"""Third-party plugins as operators meet them: a package installed with pip is found through its
``annota`` entry point, listed, configured and served; a broken one is reported without taking
the server down; a misspelled hook stops start-up; a disabled one is listed and inert.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from annota.core.errors import ConfigError
from annota.runtime.app import create_app
from annota.runtime.cli import main
from annota.runtime.settings import Settings, finalize
from tests.plugin_site import PluginSite

GREETER_MODULE = '''
"""annota-greeter: says hello at GET /api/greeter."""

import msgspec

from annota.core import hookimpl
from annota.runtime import web


class Config(msgspec.Struct, forbid_unknown_fields=True):
    greeting: str = "hello"


@hookimpl
def register_config(register):
    register(Config)


@web.operation("Greet the caller", tags=["greeter"], response=dict[str, str], anonymous=True)
async def greet(request):
    config = web.state(request).plugins.config("greeter")
    return web.json_response({"message": config.greeting})


@hookimpl
def register_routes(register):
    register("/api/greeter", greet)
'''

GREETER_PYPROJECT = """
[build-system]
requires = []
build-backend = "wheel_backend"
backend-path = ["."]

[project]
name = "annota-greeter"
version = "1.2.3"

[project.entry-points.annota]
greeter = "annota_greeter"
"""

# A complete PEP 517 backend in a few lines, so that installing the package needs nothing from
# the network: pip calls build_wheel, then installs the wheel as it would any other.
WHEEL_BACKEND = """
import base64
import hashlib
import zipfile
from pathlib import Path

NAME, VERSION = "annota_greeter", "1.2.3"
DIST_INFO = f"{NAME}-{VERSION}.dist-info"
FILES = {
    "annota_greeter.py": Path("annota_greeter.py").read_text(),
    f"{DIST_INFO}/METADATA": f"Metadata-Version: 2.1\\nName: annota-greeter\\nVersion: {VERSION}\\n",
    f"{DIST_INFO}/WHEEL": (
        "Wheel-Version: 1.0\\nGenerator: wheel_backend\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    ),
    f"{DIST_INFO}/entry_points.txt": "[annota]\\ngreeter = annota_greeter\\n",
}


def _record_line(name, content):
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(content)}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    filename = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / filename, "w") as wheel:
        records = []
        for name, text in FILES.items():
            wheel.writestr(name, text)
            records.append(_record_line(name, text.encode()))
        records.append(f"{DIST_INFO}/RECORD,,")
        wheel.writestr(f"{DIST_INFO}/RECORD", "\\n".join(records) + "\\n")
    return filename
"""


@pytest.fixture
def annota_database_url(sqlite_database_url: str) -> str:
    # plugin discovery is the same whatever the database
    return sqlite_database_url


@pytest.fixture(scope="module")
def greeter_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install --target`` of the annota-greeter package, once for the module."""
    package = tmp_path_factory.mktemp("annota-greeter")
    (package / "pyproject.toml").write_text(GREETER_PYPROJECT)
    (package / "wheel_backend.py").write_text(WHEEL_BACKEND)
    (package / "annota_greeter.py").write_text(GREETER_MODULE)
    target = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--no-build-isolation"]
    command += ["--disable-pip-version-check", "--quiet", "--target", str(target), str(package)]
    installed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stderr
    return target


@pytest.fixture
def greeter_site(greeter_install: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginSite]:
    site = PluginSite(greeter_install)
    site.activate(monkeypatch)
    yield site
    site.forget_modules()


def listed(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``annota plugins --json`` by plugin name."""
    result = CliRunner(env=env).invoke(main, ["plugins", "--json", *args])
    assert result.exit_code == 0, result.output
    return {plugin["name"]: plugin for plugin in json.loads(result.stdout)}


def served(client: TestClient) -> dict[str, Any]:
    """``GET /api/server/plugins`` by plugin name."""
    return {plugin["name"]: plugin for plugin in client.get("/api/server/plugins").json()["plugins"]}


def test_pip_installed_plugin_is_listed_configured_and_served(
    greeter_site: PluginSite, annota_settings: Settings
) -> None:
    assert (greeter_site.path / "annota_greeter-1.2.3.dist-info" / "entry_points.txt").exists()
    expected = {
        "name": "greeter",
        "version": "1.2.3",
        "source": "entry point",
        "distribution": "annota-greeter",
        "hooks": ["register_config", "register_routes"],
        "status": "ok",
        "error": None,
    }
    cli = listed()
    assert cli["greeter"] == expected
    assert cli["auth"]["source"] == "builtin"

    annota_settings.plugin_settings = {"greeter": {"greeting": "hi"}}
    with TestClient(create_app(annota_settings)) as client:
        assert served(client)["greeter"] == expected
        assert client.get("/api/greeter").json() == {"message": "hi"}
        assert client.get("/api/greeter/").json() == {"message": "hi"}
        operation = client.get("/api/schema").json()["paths"]["/api/greeter"]["get"]
        assert operation["summary"] == "Greet the caller"
        assert operation["tags"] == ["greeter"]


def test_plugin_listing_as_a_table(greeter_site: PluginSite) -> None:
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "VERSION", "SOURCE", "STATUS", "HOOKS"]
    greeter = next(row for row in rows if row.startswith("greeter "))
    assert greeter.split() == [
        "greeter",
        "1.2.3",
        "entry",
        "point",
        "ok",
        "register_config,",
        "register_routes",
    ]


def test_plugin_configuration_is_validated_at_start_up(
    greeter_site: PluginSite, annota_settings: Settings
) -> None:
    annota_settings.plugin_settings = {"greeter": {"greting": "hi"}}
    with pytest.raises(ConfigError, match=r"plugins\.greeter: .*unknown field `greting`"):
        create_app(annota_settings)


def test_broken_plugin_is_reported_and_the_server_still_starts(
    plugin_site: PluginSite, annota_settings: Settings
) -> None:
    plugin_site.add(
        "annota-broken",
        {"annota_broken": "import annota_missing_dependency\n"},
        {"broken": "annota_broken"},
    )
    error = "ModuleNotFoundError: No module named 'annota_missing_dependency'"
    cli = listed()
    assert (cli["broken"]["status"], cli["broken"]["error"]) == ("error", error)
    assert cli["auth"]["status"] == "ok"

    with TestClient(create_app(annota_settings)) as client:
        assert client.get("/api/server/about").status_code == 200
        broken = served(client)["broken"]
        assert (broken["status"], broken["error"], broken["source"]) == ("error", error, "entry point")


MISSPELLED_MODULE = """
from annota.core import hookimpl


@hookimpl
def register_rutes(register):
    register("/api/misspelled", None)
"""


def test_misspelled_hook_stops_start_up_naming_the_plugin(
    plugin_site: PluginSite, annota_settings: Settings
) -> None:
    plugin_site.add(
        "annota-misspelled", {"annota_misspelled": MISSPELLED_MODULE}, {"misspelled": "annota_misspelled"}
    )
    with pytest.raises(ConfigError, match=r"plugin misspelled: .*register_rutes"):
        create_app(annota_settings)

    # every command that starts the application refuses too, with a one-line error
    result = CliRunner().invoke(main, ["config", "show", "--data-dir", annota_settings.data_dir])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: plugin misspelled: ")
    assert len(result.stderr.strip().splitlines()) == 1

    # the listing, meant for diagnosis, shows the plugin at fault instead of stopping
    misspelled = listed()["misspelled"]
    assert (misspelled["status"], misspelled["error"]) == ("error", "unknown hook 'register_rutes'")


def test_disabled_plugin_is_listed_and_inert(greeter_site: PluginSite, tmp_path: Path) -> None:
    assert listed(env={"ANNOTA_DISABLED_PLUGINS": "greeter"})["greeter"]["status"] == "disabled"
    config = tmp_path / "annota.toml"
    config.write_text('[plugins]\ndisabled = ["greeter"]\n')
    assert listed("--config", str(config))["greeter"]["status"] == "disabled"

    data_dir = tmp_path / "data"
    settings = finalize(Settings(data_dir=str(data_dir), disabled_plugins=["greeter"], secret_key="test"))
    with TestClient(create_app(settings)) as client:
        greeter = served(client)["greeter"]
        assert (greeter["status"], greeter["hooks"]) == ("disabled", [])
        assert client.get("/api/greeter").status_code == 404
        assert "/api/greeter" not in client.get("/api/schema").json()["paths"]
    # not even imported
    assert "annota_greeter" not in sys.modules


def test_config_table_for_a_disabled_plugin_is_accepted(
    greeter_site: PluginSite, annota_settings: Settings
) -> None:
    annota_settings.disabled_plugins = ["greeter"]
    annota_settings.plugin_settings = {"greeter": {"greeting": "hi"}}
    with TestClient(create_app(annota_settings)) as client:
        assert client.get("/api/greeter").status_code == 404
