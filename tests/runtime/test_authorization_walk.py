"""Every route of the API, called by one user on another user's objects (IDOR).

Beta walks the app's route table (the core's and every plugin's routes) and calls each route on
Alpha's objects (``authorization_walk_world``): signed in with a password, without naming an
organization and naming Beta's own; with Beta's access token; and anonymously. Nothing of Alpha's
may be read, listed, exported or changed, no answer may mention Alpha's private names, and every
route that is not public must have asked the policy (``authorize`` or ``filter_query``) while
answering. What each route is called with and what it must answer is in
``authorization_walk_table``: a route missing there fails ``test_every_route_is_in_the_walk``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.testclient import TestClient

from annota.core import hookimpl
from annota.core.access import Identity, Resource
from annota.core.db.tables import Project
from annota.runtime import web
from annota.runtime.settings import Settings
from tests.moto_s3 import Moto
from tests.runtime.authorization_walk_table import (
    ORGANIZATION_VARIANT,
    PROBES,
    PUBLIC,
    Expect,
    Probe,
    World,
    denied,
)
from tests.runtime.authorization_walk_world import (
    ALPHA_EMAIL,
    BETA_EMAIL,
    BETA_ORG,
    GAMMA_EMAIL,
    PRIVATE,
    WALK_MODEL,
    alpha_view,
    build_world,
    created,
)


@dataclass(frozen=True)
class Context:
    """Who calls and how: Beta signed in with a password or a personal access token, with or
    without naming Beta's organization, or nobody at all."""

    label: str
    #: "password", "token" (Beta's access token) or "anonymous"
    credentials: str = "password"
    organization: str | None = None

    def headers(self, world: World) -> dict[str, str]:
        headers = {"X-Organization": self.organization} if self.organization else {}
        if self.credentials == "token":
            headers["Authorization"] = f"Bearer {world['b_token']}"
        return headers


CONTEXTS = (
    Context(""),
    Context(f" [X-Organization: {BETA_ORG}]", organization=BETA_ORG),
    Context(" [access token]", credentials="token"),
    Context(" [anonymous]", credentials="anonymous"),
)
RECORDER = "policy-recorder"
#: reading first and deleting last, so that a route that wrongly lets a change through leaves the
#: objects later routes are aimed at in place
METHOD_ORDER = {"GET": 0, "HEAD": 0, "POST": 1, "PUT": 1, "PATCH": 1, "DELETE": 2}
TABLE = "tests/runtime/authorization_walk_table.py"


class PolicyRecorder:
    """Notes every question put to the policy, and leaves the answer to the real one."""

    def __init__(self) -> None:
        self.asked: list[tuple[int | None, str, str]] = []

    @hookimpl(tryfirst=True)
    def authorize(self, identity: Identity, scope: str, resource: Resource) -> None:
        self.asked.append((identity.user_id, scope, resource.kind))

    @hookimpl(tryfirst=True)
    def filter_query(self, identity: Identity, scope: str, resource_type: str) -> None:
        self.asked.append((identity.user_id, scope, resource_type))


@pytest.fixture
def annota_database_url(sqlite_database_url: str) -> str:
    # authorization is decided above the database; the API suites run both databases
    return sqlite_database_url


@pytest.fixture
def annota_plugins(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The recorder, and the plugin class a test is parametrized with (``indirect``), if any."""
    extra = getattr(request, "param", None)
    return {RECORDER: PolicyRecorder(), **({"extra": extra()} if extra else {})}


@pytest.fixture
def annota_settings(annota_settings: Settings) -> Settings:
    # webhooks may target loopback and are not retried
    annota_settings.plugin_settings = {"webhooks": {"allow_private_targets": True, "retry_schedule": []}}
    # a model, for the lambda API's routes
    annota_settings.models = [{"name": WALK_MODEL, "kind": "opencv-haar"}]
    # cloud storages are made on moto, on loopback
    annota_settings.cloud_storage_allow_private_endpoints = True
    return annota_settings


# --- the route table ------------------------------------------------------------------------------


def route_keys(app: Any) -> Iterator[tuple[str, BaseRoute]]:
    """``("GET /api/tasks/{id:int}", route)`` for every method of every route (HEAD only where
    it is the route's one method: Starlette answers HEAD for every GET); anything else mounted
    (``"Mount /static"``) is named by its kind, so that it needs a place in the table too."""
    for route in app.router.routes:
        if not isinstance(route, Route):
            yield f"{type(route).__name__} {getattr(route, 'path', '')}", route
            continue
        if route.path.endswith("/") and route.path != "/":
            continue  # the trailing-slash twin of a route listed anyway
        methods = set(route.methods or ())
        if methods == {"OPTIONS"}:
            continue  # DRF's metadata: one public answer about the path, on every path (test_options)
        for method in sorted(methods - {"HEAD"} or methods):
            yield f"{method} {route.path}", route


def table_problems(keys: set[str], probes: Mapping[str, Any], public: Mapping[str, str]) -> list[str]:
    missing = sorted(keys - public.keys() - probes.keys())
    stale = sorted((public.keys() | probes.keys()) - keys)
    return [
        *(f"{key}: not in the authorization walk; add calls on another user's objects to PROBES "
          f"(or, if it answers anyone, a reason to PUBLIC) in {TABLE}" for key in missing),
        *(f"{key}: no such route any more; remove it from {TABLE}" for key in stale),
        *(f"{key}: both public and probed; keep one" for key in sorted(public.keys() & probes.keys())),
    ]  # fmt: skip


def test_every_route_is_in_the_walk(annota_client: TestClient) -> None:
    problems = table_problems({key for key, _ in route_keys(annota_client.app)}, PROBES, PUBLIC)
    assert not problems, "\n".join(problems)


# --- the walk -------------------------------------------------------------------------------------


def excerpt(response: Any) -> str:
    kind = response.headers.get("content-type", "")
    if kind.startswith(("application/json", "text/")):
        return str(response.text[:300])
    return f"<{len(response.content)} bytes of {kind or 'no declared type'}>"


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    params: tuple[tuple[str, str], ...]
    body: str | None
    headers: tuple[tuple[str, str], ...] = ()
    content: bytes | None = None

    def describe(self, context: Context) -> str:
        query = "&".join(f"{name}={value}" for name, value in self.params)
        sent = f" {self.body}" if self.body else ""
        return f"{self.method} {self.url}{'?' + query if query else ''}{sent}{context.label}"


def _filled(content: bytes | None, values: World) -> bytes | None:
    """A raw body with ``{key}`` replaced by the world's values (a multipart form naming an id)."""
    if content is None:
        return None
    for key, value in values.items():
        content = content.replace(f"{{{key}}}".encode(), str(value).encode())
    return content


def calls_of(method: str, probe: Probe, world: World) -> list[Call]:
    """The probe made on Alpha's personal objects and on their organization's (once if the same)."""
    result: list[Call] = []
    for variant in ({}, ORGANIZATION_VARIANT):
        values = {key: world.get(variant.get(key, key), value) for key, value in world.items()}
        call = Call(
            method,
            probe.url.format_map(values),
            tuple((name, value.format_map(values)) for name, value in probe.params.items()),
            json.dumps(probe.json(values)) if probe.json is not None else None,
            tuple(probe.headers.items()),
            _filled(probe.content, values),
        )
        if call not in result:
            result.append(call)
    return result


@dataclass
class Walk:
    """Beta's calls, and what went wrong."""

    beta: TestClient
    world: World
    recorder: PolicyRecorder
    probes: Mapping[str, tuple[Probe, ...]] = field(default_factory=lambda: PROBES)
    public: Mapping[str, str] = field(default_factory=lambda: PUBLIC)
    contexts: tuple[Context, ...] = CONTEXTS
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stranger = TestClient(self.beta.app, str(self.beta.base_url))

    def send(self, call: Call, context: Context) -> tuple[Any, int]:
        """The answer, and how many questions it put to the policy about Beta."""
        self.recorder.asked.clear()
        headers = {**dict(call.headers), **context.headers(self.world)}
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        content = call.body.encode() if call.body is not None else call.content
        # Beta's token, or nobody: a client without Beta's password
        client = self.beta if context.credentials == "password" else self.stranger
        response = client.request(
            call.method, call.url, params=dict(call.params), headers=headers, content=content
        )
        beta_id = self.beta.user_id  # type: ignore[attr-defined]
        asked = sum(1 for user_id, _, _ in self.recorder.asked if user_id == beta_id)
        if response.status_code >= 500:
            self.fail(call, context, f"server error {response.status_code}: {excerpt(response)}")
        if PRIVATE.encode() in response.content:
            self.fail(
                call, context, f"the answer ({response.status_code}) shows Alpha's data: {excerpt(response)}"
            )
        return response, asked

    def fail(self, call: Call, context: Context, why: str) -> None:
        self.failures.append(f"{call.describe(context)}: {why}")

    def check(self, probe: Probe, call: Call, context: Context, response: Any) -> None:
        status = response.status_code
        if context.credentials == "anonymous":
            if not 400 <= status < 500:
                self.fail(call, context, f"answered {status} to nobody in particular: {excerpt(response)}")
        elif probe.expect is Expect.DENIED and not 400 <= status < 500:
            self.fail(call, context, f"answered {status}, expected a refusal (4xx): {excerpt(response)}")
        elif probe.expect is Expect.DIRECTORY and status != 200:
            self.fail(call, context, f"answered {status}, expected the public directory (200)")
        elif probe.expect is Expect.LISTED and 200 <= status < 300:
            name, keys = probe.hidden
            hidden = {self.world[key] for key in keys}
            answer = response.json()
            # DRF's page, or a plain list (CVAT's lambda API)
            items = answer["results"] if isinstance(answer, dict) else answer
            leaked = [item.get(name) for item in items if item.get(name) in hidden]
            if leaked:
                self.fail(call, context, f"lists Alpha's {name} {leaked}")
        elif probe.expect is Expect.LISTED and not (probe.refusable and 400 <= status < 500):
            self.fail(call, context, f"answered {status}, expected a list: {excerpt(response)}")

    def route(self, key: str, route: Route) -> None:
        method = key.split(" ", 1)[0]
        if key in self.public:
            if "{" not in route.path:
                self.send(Call(method, route.path, (), None), CONTEXTS[0])
            return
        asked = 0
        for probe in self.probes[key]:
            for call in calls_of(method, probe, self.world):
                if route.path_regex.match(call.url) is None:
                    self.failures.append(f"{key}: the table's call {call.url} is not a URL of this route")
                    continue
                for context in self.contexts:
                    response, questions = self.send(call, context)
                    asked += questions
                    self.check(probe, call, context, response)
        if not asked:
            self.failures.append(f"{key}: answered without asking the policy (authorize or filter_query)")

    def walk(self, app: Any) -> None:
        routes = sorted(route_keys(app), key=lambda item: METHOD_ORDER.get(item[0].split(" ")[0], 1))
        for key, route in routes:
            # routes missing from the table fail its own test
            if isinstance(route, Route) and (key in self.public or key in self.probes):
                self.route(key, route)


def users(make_user: Callable[..., TestClient]) -> tuple[TestClient, TestClient, TestClient]:
    return (
        make_user("alpha", email=ALPHA_EMAIL),
        make_user("beta", email=BETA_EMAIL),
        make_user("gamma", email=GAMMA_EMAIL),
    )


def test_nobody_reaches_another_users_objects_through_any_route(
    annota_client: TestClient,
    make_user: Callable[..., TestClient],
    annota_plugins: dict[str, Any],
    moto: Moto,
) -> None:
    alpha, beta, gamma = users(make_user)
    world = build_world(alpha, beta, gamma, (moto.create_bucket(), moto.endpoint))
    before = alpha_view(alpha, world)

    walk = Walk(beta, world, annota_plugins[RECORDER])
    walk.walk(annota_client.app)
    assert not walk.failures, f"{len(walk.failures)} problems:\n" + "\n".join(walk.failures)

    assert alpha_view(alpha, world) == before
    # Beta's lists were not empty for want of anything to list, nor Beta's token refused
    with_token = TestClient(annota_client.app, str(beta.base_url), headers=CONTEXTS[2].headers(world))
    for kind, key in (("projects", "b_project"), ("tasks", "b_task")):
        everything = {"page_size": "all"}  # the walk made Beta some more
        for listing in (
            beta.get(f"/api/{kind}", params=everything),
            with_token.get(f"/api/{kind}", params=everything),
        ):
            assert world[key] in [item["id"] for item in listing.json()["results"]]


# --- the walk itself fails an unprotected route ------------------------------------------------------


async def project_name(request: Request) -> Response:
    """A careless endpoint: any project's name, to anyone signed in, without asking the policy."""
    web.require_user(request)
    async with web.transaction(request) as session:
        name = await session.scalar(select(Project.name).where(Project.id == web.path_int(request)))
    return web.json_response({"name": name})


class CarelessPlugin:
    @hookimpl
    def register_routes(self, register: Any) -> None:
        register("/api/careless/{id:int}", project_name, methods=["GET"])


@pytest.mark.parametrize("annota_plugins", [CarelessPlugin], indirect=True, ids=["careless"])
def test_a_route_without_a_policy_fails_the_walk(
    annota_client: TestClient, make_user: Callable[..., TestClient], annota_plugins: dict[str, Any]
) -> None:
    keys = {key for key, _ in route_keys(annota_client.app)}
    assert table_problems(keys, PROBES, PUBLIC) == [
        f"GET /api/careless/{{id:int}}: not in the authorization walk; add calls on another user's objects "
        f"to PROBES (or, if it answers anyone, a reason to PUBLIC) in {TABLE}"
    ]

    alpha, beta, _ = users(make_user)
    project_id = created(alpha.post("/api/projects", json={"name": f"{PRIVATE} project"}))["id"]
    probes = {"GET /api/careless/{id:int}": (denied("/api/careless/{project}"),)}
    walk = Walk(beta, {"project": project_id}, annota_plugins[RECORDER], probes, {}, CONTEXTS[:1])
    walk.walk(annota_client.app)
    call = f"GET /api/careless/{project_id}"
    assert walk.failures == [
        f'{call}: the answer (200) shows Alpha\'s data: {{"name":"{PRIVATE} project"}}',
        f'{call}: answered 200, expected a refusal (4xx): {{"name":"{PRIVATE} project"}}',
        "GET /api/careless/{id:int}: answered without asking the policy (authorize or filter_query)",
    ]


# --- leaks through filters -------------------------------------------------------------------------


def test_another_users_email_cannot_be_found_through_the_directory(
    make_user: Callable[..., TestClient],
) -> None:
    alpha, beta, _ = users(make_user)
    for rule in ({"==": [{"var": "email"}, ALPHA_EMAIL]}, {">": [{"var": "email"}, PRIVATE]}):
        found = beta.get("/api/users", params={"filter": json.dumps(rule)})
        if found.status_code == 200:
            assert alpha.user_id not in [user["id"] for user in found.json()["results"]]  # type: ignore[attr-defined]
        else:
            assert found.status_code == 400 and "email" in found.text
