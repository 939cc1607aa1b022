"""Every hook, exercised for real through a small plugin registered the way a plugin author's test
would (the ``annota_plugins`` fixture) or the way an installed package is (an entry point)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from starlette.requests import Request
from starlette.responses import Response
from starlette.testclient import TestClient

from annota.core import hookimpl
from annota.core.access import Decision, Filter, Identity, Resource
from annota.core.db.tables import User
from annota.core.errors import ConfigError
from annota.runtime import web
from annota.runtime.app import create_app
from annota.runtime.cli import main
from annota.runtime.settings import Settings, load_settings
from annota.runtime.state import AppState, collect_policies, load_plugins
from annota.testing import PASSWORD
from tests.memory_storage import MemoryStorage
from tests.plugin_site import PluginSite

PLUGIN = "test-plugin"


@pytest.fixture
def annota_database_url(sqlite_database_url: str) -> str:
    # hooks are the same whatever the database; the API suites run both
    return sqlite_database_url


@pytest.fixture
def annota_plugins(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A fresh instance of the plugin class a test is parametrized with (``indirect``)."""
    plugin_class = getattr(request, "param", None)
    return {PLUGIN: plugin_class()} if plugin_class else {}


def with_plugin(plugin_class: type) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(
        "annota_plugins", [plugin_class], indirect=True, ids=[plugin_class.__name__]
    )


def start(app: Any) -> None:
    """Run the app's start-up and shut-down (where route, job and lifecycle hooks are collected)."""
    with TestClient(app):
        pass


# --- register_config --------------------------------------------------------------------------


class GreeterConfig(msgspec.Struct, forbid_unknown_fields=True):
    greeting: str = "hello"
    times: int = 1
    api_key: str = ""


class ConfigPlugin:
    @hookimpl
    def register_config(self, register: Any) -> None:
        register(GreeterConfig)


def configured(tmp_path: Path, toml: str) -> GreeterConfig:
    path = tmp_path / "annota.toml"
    path.write_text(toml)
    settings = load_settings(str(path), environ={})
    plugins = load_plugins(settings, extra={"greeter": ConfigPlugin()}, entry_points=False)
    config: GreeterConfig = plugins.config("greeter")
    return config


def test_hook_register_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOTA_GREETER_TIMES", "3")
    monkeypatch.setenv("GREETER_KEY", "s3cret")
    config = configured(
        tmp_path,
        """
        [plugins.greeter]
        greeting = "hi"
        times = 2
        api_key = {env = "GREETER_KEY"}
        """,
    )
    # file value, environment override (converted to int), secret read from the environment
    assert config == GreeterConfig(greeting="hi", times=3, api_key="s3cret")


def test_plugin_config_defaults_apply_without_a_table(tmp_path: Path) -> None:
    assert configured(tmp_path, "") == GreeterConfig()


def test_plugin_config_secret_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("from-file\n")
    config = configured(tmp_path, f'[plugins.greeter]\napi_key = {{file = "{tmp_path / "key"}"}}\n')
    assert config.api_key == "from-file"


def test_plugin_config_unknown_key_names_plugin_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        configured(tmp_path, '[plugins.greeter]\ncolour = "red"\n')
    assert "plugins.greeter" in str(error.value.detail)
    assert "colour" in str(error.value.detail)


def test_plugin_config_wrong_type_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"plugins\.greeter\.times: Expected `int`, got `str`"):
        configured(tmp_path, '[plugins.greeter]\ntimes = "many"\n')


def test_plugin_config_missing_secret_variable_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GREETER_UNSET_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"plugins\.greeter\.api_key: .*'GREETER_UNSET_KEY' is not set"):
        configured(tmp_path, '[plugins.greeter]\napi_key = {env = "GREETER_UNSET_KEY"}\n')


def test_config_for_a_plugin_that_is_not_installed_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[plugins\.greeterr\]: no plugin named 'greeterr'"):
        configured(tmp_path, '[plugins.greeterr]\ngreeting = "hi"\n')


# --- register_routes --------------------------------------------------------------------------


@web.operation(
    "Echo a query parameter",
    tags=["echo"],
    response=dict[str, str],
    query={"say": "what to echo"},
    anonymous=True,
)
async def echo(request: Request) -> Response:
    return web.json_response({"said": request.query_params.get("say", "")})


class RoutePlugin:
    @hookimpl
    def register_routes(self, register: Any) -> None:
        register("/api/echo", echo, methods=["GET"])


@with_plugin(RoutePlugin)
def test_hook_register_routes(annota_client: TestClient) -> None:
    assert annota_client.get("/api/echo", params={"say": "hi"}).json() == {"said": "hi"}
    assert annota_client.get("/api/echo/", params={"say": "hi"}).json() == {"said": "hi"}
    assert annota_client.post("/api/echo").status_code == 405
    routes = annota_client.app.state.annota.routes  # type: ignore[attr-defined]
    assert [(route.path, route.plugin) for route in routes if route.path == "/api/echo"] == [
        ("/api/echo", PLUGIN)
    ]


def test_duplicate_route_across_plugins_names_both(annota_settings: Settings) -> None:
    app = create_app(annota_settings, extra_plugins={"first": RoutePlugin(), "second": RoutePlugin()})
    with pytest.raises(ConfigError) as error:
        start(app)
    message = str(error.value.detail)
    assert "GET /api/echo" in message
    assert "plugin first" in message and "plugin second" in message


def test_route_may_not_shadow_a_core_route(annota_settings: Settings) -> None:
    class Shadowing:
        @hookimpl
        def register_routes(self, register: Any) -> None:
            register("/api/projects/", echo, methods=["GET"])

    app = create_app(annota_settings, extra_plugins={"shadow": Shadowing()})
    with pytest.raises(
        ConfigError, match=r"plugin shadow: route GET /api/projects/ is already registered by the core"
    ):
        start(app)


# --- register_jobs ----------------------------------------------------------------------------


async def say_hello(ctx: Any, name: str = "") -> str:
    return f"hello {name}"


class JobPlugin:
    @hookimpl
    def register_jobs(self, register: Any) -> None:
        register("greeter.say_hello", say_hello, queue="export", timeout=60, max_tries=2)


@with_plugin(JobPlugin)
def test_hook_register_jobs(annota_client: TestClient) -> None:
    state: AppState = annota_client.app.state.annota  # type: ignore[attr-defined]
    job = state.jobs.get("greeter.say_hello")
    assert (job.function, job.queue, job.timeout, job.max_tries, job.plugin) == (
        say_hello,
        "export",
        60,
        2,
        PLUGIN,
    )


def test_job_on_an_unknown_queue_is_refused(annota_settings: Settings) -> None:
    class WrongQueue:
        @hookimpl
        def register_jobs(self, register: Any) -> None:
            register("greeter.say_hello", say_hello, queue="gpu")

    app = create_app(annota_settings, extra_plugins={"wrong-queue": WrongQueue()})
    with pytest.raises(
        ConfigError, match=r"plugin wrong-queue: job 'greeter.say_hello' names unknown queue 'gpu'"
    ):
        start(app)


# --- register_storage_backends ----------------------------------------------------------------


class MemoryConfig(msgspec.Struct, forbid_unknown_fields=True):
    label: str = "memory"


class StoragePlugin:
    def __init__(self) -> None:
        self.created: list[tuple[MemoryConfig, Settings, MemoryStorage]] = []

    @hookimpl
    def register_config(self, register: Any) -> None:
        register(MemoryConfig)

    @hookimpl
    def register_storage_backends(self, register: Any) -> None:
        register("memory", self.create)

    async def create(self, config: MemoryConfig, settings: Settings) -> MemoryStorage:
        storage = MemoryStorage()
        self.created.append((config, settings, storage))
        return storage


@with_plugin(StoragePlugin)
def test_hook_register_storage_backends(annota_plugins: dict[str, Any], annota_settings: Settings) -> None:
    plugin: StoragePlugin = annota_plugins[PLUGIN]
    annota_settings.storage = "memory"
    annota_settings.plugin_settings = {PLUGIN: {"label": "in memory"}}
    app = create_app(annota_settings, extra_plugins=annota_plugins)
    with TestClient(app):
        state: AppState = app.state.annota
        ((config, settings, storage),) = plugin.created
        assert state.storage is storage
        assert (config, settings) == (MemoryConfig(label="in memory"), annota_settings)
        assert state.storage_backends.get("memory").plugin == PLUGIN
        # the built-in backend is registered too, but only the configured one is created
        assert state.storage_backends.get("local").plugin == "local"
        assert not storage.closed
    assert storage.closed


def test_storage_backend_names_are_unique_across_plugins(annota_settings: Settings) -> None:
    class Impostor:
        @hookimpl
        def register_storage_backends(self, register: Any) -> None:
            register("local", lambda config, settings: MemoryStorage())

    app = create_app(annota_settings, extra_plugins={"impostor": Impostor()})
    with pytest.raises(ConfigError) as error:
        start(app)
    message = str(error.value.detail)
    assert "storage backend 'local' is already registered" in message
    assert "plugin impostor" in message and "plugin local" in message


# --- register_formats -------------------------------------------------------------------------


def _export_names(dataset: Any, output: Any, options: Any) -> None:
    with output.open_text("names.txt") as out:
        for item in dataset.items():
            out.write(item.name + "\n")


class FormatPlugin:
    @hookimpl
    def register_formats(self, register: Any) -> None:
        from annota.core.formats.registry import Format

        register(Format(name="Names", version="0.1", exporter=_export_names, carries=frozenset({"images"}),
                        aliases=("names",)))  # fmt: skip


@with_plugin(FormatPlugin)
def test_hook_register_formats(annota_plugins: dict[str, Any], annota_settings: Settings) -> None:
    app = create_app(annota_settings, extra_plugins=annota_plugins)
    with TestClient(app) as client:
        state: AppState = app.state.annota
        fmt = state.formats.get("Names 0.1", direction="export")
        assert fmt.plugin == PLUGIN and state.formats.find("NAMES") is fmt
        with pytest.raises(Exception, match="cannot import"):
            state.formats.get("names", direction="import")
        del client


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ({"name": "Names", "version": "0.1"}, "already taken by format 'Names 0.1' of plugin"),
        ({"name": "Other", "version": "1.0", "carries": frozenset({"hovercraft"})}, "unknown capabilities"),
        ({"name": "Empty", "version": "1.0", "exporter": None}, "neither an exporter nor an importer"),
    ],
)
def test_bad_format_registrations_name_the_plugin(
    annota_settings: Settings, fmt: dict[str, Any], message: str
) -> None:
    from annota.core.formats.registry import Format

    class Clash:
        @hookimpl
        def register_formats(self, register: Any) -> None:
            register(Format(**{"exporter": _export_names, **fmt}))

    app = create_app(annota_settings, extra_plugins={PLUGIN: FormatPlugin(), "clash": Clash()})
    with pytest.raises(ConfigError) as error:
        start(app)
    detail = str(error.value.detail)
    assert message in detail and "plugin clash" in detail, detail


# --- on_event ---------------------------------------------------------------------------------


class EventPlugin:
    def __init__(self) -> None:
        self.events: list[Any] = []

    @hookimpl
    async def on_event(self, event: Any) -> None:
        self.events.append(event)


class BrokenSubscriber:
    @hookimpl
    def on_event(self, event: Any) -> None:
        raise RuntimeError("subscriber bug")


@pytest.fixture
def event_plugins() -> dict[str, Any]:
    return {PLUGIN: EventPlugin(), "broken": BrokenSubscriber()}


@contextmanager
def _as_admin(app: Any) -> Iterator[TestClient]:
    """A client of the running ``app`` signed in as a new administrator."""
    with TestClient(app, base_url="http://testserver") as client:
        client.auth = ("admin", PASSWORD)

        async def add_admin() -> None:
            from annota.core.services import users as user_service

            async with app.state.annota.sessionmaker.begin() as session:
                await user_service.create_user(session, "admin", PASSWORD, superuser=True)

        client.portal.call(add_admin)  # type: ignore[union-attr]
        yield client


def test_hook_on_event(event_plugins: dict[str, Any], annota_settings: Settings) -> None:
    app = create_app(annota_settings, extra_plugins=event_plugins)
    with _as_admin(app) as client:
        state: AppState = app.state.annota
        run = client.portal.call  # type: ignore[union-attr]
        created = client.post("/api/projects", json={"name": "p1"})
        assert created.status_code == 201
        project_id = created.json()["id"]
        assert client.patch(f"/api/projects/{project_id}", json={"name": "p2"}).status_code == 200
        # a refused change is rolled back and tells nothing
        assert client.patch(f"/api/projects/{project_id}", json={"owner_id": 999}).status_code == 400
        assert client.delete(f"/api/projects/{project_id}").status_code == 204
        run(state.events.drain)  # type: ignore[union-attr]
    received = event_plugins[PLUGIN].events
    assert [event.type for event in received] == ["create:project", "update:project", "delete:project"]
    create, update, delete = received
    assert create.payload["project"]["name"] == "p1" and create.payload["sender"]["username"] == "admin"
    assert update.payload["changes"] == {"name": {"from": "p1", "to": "p2"}}
    assert update.payload["before_update"] == {"name": "p1"} and update.changed_fields == ["name"]
    assert delete.payload["project"]["id"] == project_id and len({e.id for e in received}) == 3


class BatchPlugin:
    def __init__(self) -> None:
        self.batches: list[list[Any]] = []

    @hookimpl
    async def on_events(self, events: list[Any], sessionmaker: Any) -> None:
        self.batches.append(events)


class BrokenBatchSubscriber:
    @hookimpl
    def on_events(self, events: list[Any]) -> None:
        raise RuntimeError("subscriber bug")


def test_hook_on_events(annota_settings: Settings) -> None:
    batch, single = BatchPlugin(), EventPlugin()
    plugins = {PLUGIN: batch, "single": single, "broken": BrokenBatchSubscriber()}
    app = create_app(annota_settings, extra_plugins=plugins)
    with _as_admin(app) as client:
        state: AppState = app.state.annota
        run = client.portal.call  # type: ignore[union-attr]
        body = {"name": "p1", "labels": [{"name": "car"}, {"name": "person"}]}
        project_id = client.post("/api/projects", json=body).json()["id"]
        assert client.patch(f"/api/projects/{project_id}", json={"name": "p2"}).status_code == 200
        run(state.events.drain)  # type: ignore[union-attr]
    received = [event for events in batch.batches for event in events]
    # one transaction's events arrive together, in the order they were recorded
    first = batch.batches[0]
    assert [event.type for event in first[:3]] == ["create:project", "create:label", "create:label"]
    assert [event.type for event in received] == [event.type for event in single.events]
    assert [event.id for event in received] == [event.id for event in single.events]
    assert received[-1].type == "update:project" and received[-1].changed_fields == ["name"]


# --- register_commands ------------------------------------------------------------------------

COMMAND_PLUGIN = """
import click

from annota.core import hookimpl


@click.command("greet")
@click.option("--name", default="world")
def greet(name):
    \"\"\"Greet someone.\"\"\"
    click.echo(f"hello {name}")


@hookimpl
def register_commands(register):
    register(greet)
"""


def test_hook_register_commands(plugin_site: PluginSite) -> None:
    plugin_site.add(
        "annota-greet-command", {"annota_greet_command": COMMAND_PLUGIN}, {"greet": "annota_greet_command"}
    )
    runner = CliRunner()
    listing = runner.invoke(main, ["--help"])
    assert listing.exit_code == 0, listing.output
    assert "greet" in listing.stdout and "Greet someone." in listing.stdout
    result = runner.invoke(main, ["greet", "--name", "annota"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "hello annota\n"


def test_disabled_plugin_adds_no_command(plugin_site: PluginSite) -> None:
    plugin_site.add(
        "annota-greet-command", {"annota_greet_command": COMMAND_PLUGIN}, {"greet": "annota_greet_command"}
    )
    runner = CliRunner(env={"ANNOTA_DISABLED_PLUGINS": "greet"})
    assert "greet" not in runner.invoke(main, ["--help"]).stdout
    assert runner.invoke(main, ["greet"]).exit_code == 2  # no such command


def test_plugin_command_may_not_replace_a_core_command(plugin_site: PluginSite) -> None:
    source = COMMAND_PLUGIN.replace('"greet"', '"migrate"')
    plugin_site.add(
        "annota-bad-command", {"annota_bad_command": source}, {"bad-command": "annota_bad_command"}
    )
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 1
    assert "plugin bad-command: command 'migrate' already exists" in result.output
    assert "Traceback" not in result.output


# --- authenticate -----------------------------------------------------------------------------


class HeaderAuthentication:
    """Trusts an ``X-Remote-User`` header (as behind an authenticating proxy)."""

    def __init__(self) -> None:
        self.user_ids: dict[str, int] = {}

    @hookimpl
    async def authenticate(self, request: Request) -> Identity | None:
        username = request.headers.get("x-remote-user")
        if username is None:
            return None
        return Identity(user_id=self.user_ids[username], username=username, privilege="user", method="proxy")


@with_plugin(HeaderAuthentication)
def test_hook_authenticate(annota_plugins: dict[str, Any], make_user: Any, annota_client: TestClient) -> None:
    plugin: HeaderAuthentication = annota_plugins[PLUGIN]
    alice, bob = make_user("alice"), make_user("bob")
    plugin.user_ids = {"alice": alice.user_id, "bob": bob.user_id}

    # bob's own credentials are valid, but the plugin answers first
    created = bob.post("/api/projects", json={"name": "p"}, headers={"X-Remote-User": "alice"})
    assert created.status_code == 201, created.text
    assert created.json()["owner"]["username"] == "alice"
    # without the header the built-in authentication still decides
    assert bob.post("/api/projects", json={"name": "q"}).json()["owner"]["username"] == "bob"
    assert annota_client.get("/api/projects").status_code == 401
    assert annota_client.get("/api/projects", headers={"X-Remote-User": "alice"}).json()["count"] == 1


# --- authorize --------------------------------------------------------------------------------


class SwitchablePolicy:
    """Answers with ``verdict``: ``None`` leaves the decision to the built-in policy."""

    def __init__(self) -> None:
        self.verdict: bool | Decision | None = None
        self.asked: list[tuple[str, str, str]] = []

    @hookimpl
    def authorize(self, identity: Identity, scope: str, resource: Resource) -> bool | Decision | None:
        self.asked.append((identity.username, scope, resource.kind))
        return self.verdict


@with_plugin(SwitchablePolicy)
def test_hook_authorize(annota_plugins: dict[str, Any], make_user: Any) -> None:
    policy: SwitchablePolicy = annota_plugins[PLUGIN]
    alice, bob = make_user("alice"), make_user("bob")
    project = alice.post("/api/projects", json={"name": "p"}).json()
    url = f"/api/projects/{project['id']}"

    # no answer: the built-in policy lets the owner in and keeps others out
    assert alice.get(url).status_code == 200
    assert bob.get(url).status_code == 403
    assert ("alice", "view", "projects") in policy.asked

    policy.verdict = False
    assert alice.get(url).status_code == 403
    policy.verdict = True
    assert bob.get(url).status_code == 200

    # a Decision carries its reasons to the client
    policy.verdict = Decision(allow=False, reasons=["projects are frozen today"])
    refused = bob.get(url)
    assert refused.status_code == 403
    assert refused.json() == {"detail": "projects are frozen today"}
    policy.verdict = Decision(allow=True)
    assert bob.get(url).status_code == 200


# --- filter_query -----------------------------------------------------------------------------


class OwnProjectsOnly:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    @hookimpl
    def filter_query(self, identity: Identity, scope: str, resource_type: str) -> Filter | None:
        self.asked.append((scope, resource_type))
        return {"owner_id": identity.user_id} if resource_type == "projects" else None


@with_plugin(OwnProjectsOnly)
def test_hook_filter_query(annota_plugins: dict[str, Any], make_user: Any, admin_client: TestClient) -> None:
    alice = make_user("alice")
    alice.post("/api/projects", json={"name": "alice's"})
    admin_client.post("/api/projects", json={"name": "admin's"})
    # the built-in policy would show an administrator every project
    listed = admin_client.get("/api/projects").json()
    assert [project["name"] for project in listed["results"]] == ["admin's"]
    assert listed["count"] == 1
    assert ("list", "projects") in annota_plugins[PLUGIN].asked


# --- startup and shutdown ---------------------------------------------------------------------


class Lifecycle:
    """Records its calls and proves the database is usable at both ends of the app's life."""

    def __init__(self) -> None:
        self.started: list[AppState] = []
        self.stopped: list[AppState] = []

    @hookimpl
    async def startup(self, app: AppState) -> None:
        async with app.engine.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar() == 1
        self.started.append(app)

    @hookimpl
    async def shutdown(self, app: AppState) -> None:
        async with app.engine.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar() == 1
        self.stopped.append(app)


@with_plugin(Lifecycle)
def test_hook_startup(annota_plugins: dict[str, Any], annota_app: Any) -> None:
    plugin: Lifecycle = annota_plugins[PLUGIN]
    assert plugin.started == []
    with TestClient(annota_app) as client:
        assert plugin.started == [annota_app.state.annota]
        assert isinstance(plugin.started[0], AppState)
        assert plugin.stopped == []
        assert client.get("/api/server/about").status_code == 200
    assert len(plugin.started) == 1


@with_plugin(Lifecycle)
def test_hook_shutdown(annota_plugins: dict[str, Any], annota_app: Any) -> None:
    plugin: Lifecycle = annota_plugins[PLUGIN]
    with TestClient(annota_app):
        pass
    assert plugin.stopped == [annota_app.state.annota]
    assert plugin.started == plugin.stopped


# --- register_policies ------------------------------------------------------------------------

GREETINGS_POLICY = """
# a greeting is read by the user it is addressed to; administrators list them all
package greetings

import data.utils

default allow := false

allow if utils.is_admin

allow if {
	input.scope == "view"
	input.resource.addressee.id == input.auth.user.id
}

filter := {} if utils.is_admin
else := {"addressee_id": input.auth.user.id}
"""

# one greeting is addressed to every user
GREETING_FIELDS = {"addressee_id": lambda value: User.id == value}


async def greeting(request: Request) -> Response:
    addressee = web.path_int(request)
    await web.authorize(request, "view", Resource("greetings", {"addressee": {"id": addressee}}, addressee))
    return web.json_response({"to": addressee})


async def greetings(request: Request) -> Response:
    visible = await web.visible(request, "greetings", GREETING_FIELDS)
    async with web.transaction(request) as session:
        found = (await session.execute(select(User.id).where(visible).order_by(User.id))).scalars().all()
    return web.json_response({"to": list(found)})


class GreetingsPolicy:
    """A plugin with its own kind of object, its routes and the Rego policy governing them."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp())
        (self.directory / "greetings.rego").write_text(GREETINGS_POLICY)

    @hookimpl
    def register_policies(self, register: Any) -> None:
        register(self.directory)

    @hookimpl
    def register_routes(self, register: Any) -> None:
        register("/api/greetings/{id:int}", greeting)
        register("/api/greetings", greetings)


@with_plugin(GreetingsPolicy)
def test_hook_register_policies(make_user: Any, admin_client: TestClient, annota_client: TestClient) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    assert alice.get(f"/api/greetings/{alice.user_id}").json() == {"to": alice.user_id}
    refused = bob.get(f"/api/greetings/{alice.user_id}")
    assert refused.status_code == 403
    # the list is scoped in SQL by the policy's filter
    assert alice.get("/api/greetings").json() == {"to": [alice.user_id]}
    everyone = sorted([alice.user_id, bob.user_id, admin_client.user_id])  # type: ignore[attr-defined]
    assert admin_client.get("/api/greetings").json() == {"to": everyone}
    # the plugin's module is part of the bundle an OPA server would load
    policies = annota_client.app.state.annota.policies  # type: ignore[attr-defined]
    assert [(m.plugin, m.package) for m in policies.modules if m.name == "greetings.rego"] == [
        (PLUGIN, "greetings")
    ]


def test_hook_register_policies_refuses_a_package_taken_by_another_plugin(tmp_path: Path) -> None:
    (tmp_path / "mine.rego").write_text("package tasks\n\nallow := true\n")

    class Takeover:
        @hookimpl
        def register_policies(self, register: Any) -> None:
            register(tmp_path)

    plugins = load_plugins(Settings(data_dir=str(tmp_path)), extra={"takeover": Takeover()})
    with pytest.raises(ConfigError, match="policy package tasks is already registered by (auth|takeover)"):
        collect_policies(plugins)


# --- check_health -----------------------------------------------------------------------------


class GpuProbe:
    def __init__(self) -> None:
        self.status = "ok"

    @hookimpl
    async def check_health(self, app: AppState) -> dict[str, str]:
        assert isinstance(app, AppState)
        return {"gpu": self.status}


@with_plugin(GpuProbe)
def test_hook_check_health(annota_plugins: dict[str, Any], annota_client: TestClient) -> None:
    healthy = annota_client.get("/api/server/health")
    assert healthy.status_code == 200
    assert healthy.json()["checks"]["gpu"] == "ok"
    annota_plugins[PLUGIN].status = "error: no device"
    sick = annota_client.get("/api/server/health")
    assert sick.status_code == 503
    assert sick.json()["status"] == "unavailable"
    assert sick.json()["checks"]["gpu"] == "error: no device"


# --- register_cloud_providers -----------------------------------------------------------------


class CloudPlugin:
    """Serves AWS_S3_BUCKET cloud storages from in-memory buckets (the s3 plugin is disabled)."""

    def __init__(self) -> None:
        self.buckets: dict[str, MemoryStorage] = {}
        self.calls: list[tuple[str, Any, dict[str, str]]] = []

    @hookimpl
    def register_cloud_providers(self, register: Any) -> None:
        register("AWS_S3_BUCKET", self.open)

    async def open(
        self, resource: str, credentials: Any, attributes: Any, settings: Settings
    ) -> MemoryStorage:
        self.calls.append((resource, credentials, dict(attributes)))
        return self.buckets.setdefault(resource, MemoryStorage())


def test_hook_register_cloud_providers(annota_settings: Settings) -> None:
    from annota.core.cloud import CloudCredentials

    plugin = CloudPlugin()
    # the built-in s3 plugin serves AWS_S3_BUCKET: this one takes its place; with azure off, no
    # plugin serves AZURE_CONTAINER
    annota_settings.disabled_plugins = ["s3", "azure"]
    app = create_app(annota_settings, extra_plugins={PLUGIN: plugin})
    with _as_admin(app) as client:
        _cloud_provider_served(client, plugin, CloudCredentials)


def _cloud_provider_served(client: TestClient, plugin: CloudPlugin, CloudCredentials: Any) -> None:
    bucket = plugin.buckets["photos"] = MemoryStorage()
    client.portal.call(bucket.put, "a/one.jpg", b"1")  # type: ignore[union-attr]
    client.portal.call(bucket.put, "b.jpg", b"2")  # type: ignore[union-attr]
    body = {
        "provider_type": "AWS_S3_BUCKET", "resource": "photos", "display_name": "p",
        "credentials_type": "KEY_SECRET_KEY_PAIR", "key": "id", "secret_key": "secret",
        "specific_attributes": "region=eu-west-1&prefix=media/",
    }  # fmt: skip
    created = client.post("/api/cloudstorages", json=body)
    assert created.status_code == 201, created.text
    listed = client.get(f"/api/cloudstorages/{created.json()['id']}/content-v2").json()
    assert [(e["name"], e["type"]) for e in listed["content"]] == [("a", "DIR"), ("b.jpg", "REG")]
    resource, credentials, attributes = plugin.calls[-1]
    assert resource == "photos"
    assert credentials == CloudCredentials(type="KEY_SECRET_KEY_PAIR", key="id", secret_key="secret")
    assert attributes == {"region": "eu-west-1", "prefix": "media/"}
    # a provider type no plugin serves is refused, naming the field
    body["provider_type"], body["resource"] = "AZURE_CONTAINER", "box"
    body.update(credentials_type="ANONYMOUS_ACCESS", specific_attributes="")
    refused = client.post("/api/cloudstorages", json=body)
    assert refused.status_code == 400 and "provider_type" in refused.json()


def test_cloud_provider_types_are_cvat_s_and_unique(annota_settings: Settings) -> None:
    class Unknown:
        @hookimpl
        def register_cloud_providers(self, register: Any) -> None:
            register("DROPBOX", lambda *args: MemoryStorage())

    with pytest.raises(ConfigError, match="unknown cloud provider type 'DROPBOX'"):
        start(create_app(annota_settings, extra_plugins={"unknown": Unknown()}))

    class Twin:
        @hookimpl
        def register_cloud_providers(self, register: Any) -> None:
            register("AWS_S3_BUCKET", lambda *args: MemoryStorage())

    with pytest.raises(ConfigError) as error:
        start(create_app(annota_settings, extra_plugins={"twin": Twin()}))
    message = str(error.value.detail)
    assert "cloud provider AWS_S3_BUCKET is already registered" in message
    assert "plugin s3" in message and "plugin twin" in message
