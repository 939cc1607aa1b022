"""What authorization costs: single decisions, a whole request, and a filtered listing.

(a) Decision time of the Rego policies over a realistic mix (tasks ``view`` by the owner, an
    organization worker and a stranger; ``list`` filters for a user and an organization worker), in
    process (rego-cpp) and, for reference, with OPA's own engine in process and through the remote
    evaluator and an OPA server on loopback (which runs OPA's engine).
(b) ``GET /api/tasks/{id}`` end to end (uvicorn in a thread, warm, interleaved rounds) with the Rego
    policies against a no-op policy plugin that allows everything; target: under 15% overhead.
(c) ``GET /api/tasks?page_size=100`` as an organization worker who sees 100 of the organization's
    10,000 tasks: the policy's filter must become the WHERE clause of one query for the rows (plus
    one count), which is checked on the statements the request ran.

    python bench/authorization.py [--decisions 10000] [--requests 2000] [--tasks 10000]
                                  [--database sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
from serving import bench_database
from sqlalchemy import event, insert

from annota.core import hookimpl
from annota.core.access import MATCH_ALL, Decision, Filter, Identity, OrganizationContext, Resource
from annota.core.db.engine import create_engine, create_sessionmaker
from annota.core.db.tables import Membership, Organization, Task
from annota.core.policies import PolicyRegistry
from annota.core.services import tasks as task_service
from annota.core.services import users as user_service
from annota.plugins.auth.config import AuthConfig
from annota.plugins.auth.embedded import CompiledBundle, EmbeddedEvaluator
from annota.plugins.auth.evaluator import Evaluator, as_allow, as_filter
from annota.plugins.auth.remote import RemoteEvaluator
from annota.runtime.app import create_app
from annota.runtime.settings import Settings, finalize
from annota.runtime.state import collect_policies, load_plugins
from annota.testing.opa_engine import OpaPolicies
from annota.testing.opa_server import LoopbackServer, OpaServer

PASSWORD = "bench-password"
ORG = {"X-Organization": "bench"}
MS = 1000.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def row(label: str, values: list[float], unit: float = MS, digits: int = 3) -> str:
    p50, p99, mean = percentile(values, 0.5), percentile(values, 0.99), statistics.fmean(values)
    return f"| {label} | {p50 * unit:.{digits}f} | {p99 * unit:.{digits}f} | {mean * unit:.{digits}f} |"


# --- (a) single decisions ---------------------------------------------------------------------

OWNER, WORKER, STRANGER, ORG_OWNER, ORG_ID = 5, 7, 9, 3, 2


def decision_inputs() -> list[tuple[str, str, dict[str, Any]]]:
    """``(kind, package, input)``: what the server asks while serving tasks."""
    org = OrganizationContext(id=ORG_ID, slug="bench", owner_id=ORG_OWNER, role="worker")
    owner = Identity(user_id=OWNER, username="owner", privilege="user")
    worker = Identity(
        user_id=WORKER, privilege="worker", organization=org, organization_specified=True,
        memberships={ORG_ID: org},
    )  # fmt: skip
    stranger = Identity(user_id=STRANGER, privilege="user")
    sandbox = Task(id=10, owner_id=OWNER, assignee_id=None, organization_id=None)
    in_org = Task(id=11, owner_id=ORG_OWNER, assignee_id=WORKER, organization_id=ORG_ID)
    views = [
        ("allow", "tasks", Resource("tasks", task_service.document(task, None)).input_document(who, "view"))
        for who, task in ((owner, sandbox), (worker, in_org), (stranger, sandbox))
    ]
    filters = [
        ("filter", "tasks", {"scope": "list", "auth": who.auth_document(), "resource": None})
        for who in (owner, worker)
    ]
    return views + filters


async def time_decisions(evaluator: Evaluator, count: int) -> tuple[list[float], list[Any]]:
    inputs = decision_inputs()
    answers = []
    for kind, package, document in inputs:  # warm up, and what each input answers
        answers.append(await getattr(evaluator, kind)(package, document))
    durations = []
    for number in range(count):
        kind, package, document = inputs[number % len(inputs)]
        call: Callable[[str, dict[str, Any]], Awaitable[Any]] = getattr(evaluator, kind)
        started = time.perf_counter()
        await call(package, document)
        durations.append(time.perf_counter() - started)
    return durations, answers


class OpaInProcess:
    """OPA's engine asked the evaluator's two questions, every decision evaluated."""

    def __init__(self, opa: OpaPolicies) -> None:
        self.opa = opa

    async def allow(self, package: str, document: dict[str, Any]) -> bool:
        return as_allow(self.opa.query(package, "allow", document))

    async def filter(self, package: str, document: dict[str, Any]) -> Filter:
        return as_filter(self.opa.query(package, "filter", document))

    async def health(self) -> str:
        return "ok"

    async def close(self) -> None:
        return None


def resident_mb() -> float:
    """The process's peak resident memory so far (what a leak keeps raising)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def decisions(registry: PolicyRegistry, count: int) -> None:
    # every decision evaluated by rego-cpp, as for inputs never seen before
    evaluating = EmbeddedEvaluator(registry.digest(), registry.modules)
    evaluating.bundle = CompiledBundle(registry.modules, remember=0)
    before = resident_mb()
    evaluated, answers = asyncio.run(time_decisions(evaluating, count))
    grown = resident_mb() - before
    # what a server does: answers to inputs seen recently are remembered
    embedded = EmbeddedEvaluator(registry.digest(), registry.modules)
    local, remembered_answers = asyncio.run(time_decisions(embedded, count))
    if remembered_answers != answers:
        sys.exit(f"remembered answers {remembered_answers} differ from evaluated ones {answers}")

    async def remote_run(url: str) -> tuple[list[float], list[Any]]:
        evaluator = RemoteEvaluator(AuthConfig(opa_url=url))
        try:
            return await time_decisions(evaluator, count)
        finally:
            await evaluator.close()

    with OpaPolicies(registry.modules) as policies:
        in_opa, opa_answers = asyncio.run(time_decisions(OpaInProcess(policies), count))
    if opa_answers != answers:
        sys.exit(f"OPA's engine answered {opa_answers}, rego-cpp {answers}")
    with OpaServer(registry=registry) as opa:
        remote, remote_answers = asyncio.run(remote_run(opa.url))
    if remote_answers != answers:
        sys.exit(f"the OPA server answered {remote_answers}, the embedded evaluator {answers}")
    print(f"(a) {count} decisions, tasks: view by owner / org worker / stranger, list filter for a user / "
          "an org worker\n")  # fmt: skip
    print(f"answers: {answers}\n")
    print("| evaluator | p50 ms | p99 ms | mean ms |")
    print("|---|---|---|---|")
    print(row("embedded (rego-cpp, in process), every decision evaluated", evaluated))
    print(row("embedded, recent answers remembered (the server's setting)", local))
    print(row("OPA's engine (Go, in process), every decision evaluated", in_opa))
    print(row("remote (OPA Data API on loopback, OPA's engine)", remote))
    # rego-cpp bundles its own allocator; loaded after other C++ code it leaks each evaluation
    print(f"\nresident memory grew {grown:.0f} MB over the embedded decisions "
          f"({grown * 1024 / count:.1f} kB per decision)\n")  # fmt: skip


# --- the server -------------------------------------------------------------------------------


class AllowEverything:
    """A policy plugin answering before the Rego policies: everything allowed, lists unfiltered."""

    @hookimpl
    def authorize(self, identity: Identity, scope: str, resource: Any, app: Any) -> Decision:
        return Decision(True)

    @hookimpl
    def filter_query(self, identity: Identity, scope: str, resource_type: str, app: Any) -> Filter:
        return MATCH_ALL


async def seed(settings: Settings, tasks: int) -> dict[str, Any]:
    """Users, the organization ``bench`` (alice owns it, bob is a worker), alice's sandbox task,
    and ``tasks`` tasks in the organization of which bob is assigned to 1%."""
    engine = create_engine(settings.database_url)
    async with create_sessionmaker(engine).begin() as session:
        ids = {}
        for name in ("admin", "alice", "bob"):
            privilege = "admin" if name == "admin" else "user"
            ids[name] = (await user_service.create_user(session, name, PASSWORD, privilege=privilege)).id
        org = Organization(slug="bench", name="Bench", owner_id=ids["alice"])
        session.add(org)
        await session.flush()
        now = dt.datetime.now(dt.UTC)
        for name, role in (("alice", "owner"), ("bob", "worker")):
            session.add(Membership(user_id=ids[name], organization_id=org.id, role=role, is_active=True,
                                   joined_date=now))  # fmt: skip
        sandbox = Task(name="sandbox", owner_id=ids["alice"])
        session.add(sandbox)
        await session.flush()
        every = max(tasks // 100, 1)
        rows = [
            {"name": f"task {n}", "owner_id": ids["alice"], "organization_id": org.id,
             "assignee_id": ids["bob"] if n % every == 0 else None, "created_date": now, "updated_date": now}
            for n in range(tasks)
        ]  # fmt: skip
        for start in range(0, len(rows), 2000):
            await session.execute(insert(Task), rows[start : start + 2000])
        result = {"ids": ids, "task": sandbox.id, "assigned": sum(1 for r in rows if r["assignee_id"])}
    await engine.dispose()
    return result


@contextmanager
def server(settings: Settings, plugins: dict[str, Any] | None = None) -> Iterator[tuple[str, Any]]:
    """``(base URL, app)`` of annota on loopback."""
    app = create_app(settings, extra_plugins=plugins)
    with LoopbackServer(app) as running:
        yield running.url, app


# --- (b) one request --------------------------------------------------------------------------


def requests(urls: dict[str, str], task_id: int, count: int, rounds: int = 4) -> None:
    clients = {label: httpx.Client(base_url=url, auth=("alice", PASSWORD)) for label, url in urls.items()}
    path = f"/api/tasks/{task_id}"
    for client in clients.values():  # warm: connections, caches, compiled policies
        for _ in range(100):
            assert client.get(path).status_code == 200
    times: dict[str, list[float]] = {label: [] for label in clients}
    # interleaved rounds, so that drift (other load, caches) hits every mode alike
    for _ in range(rounds):
        for label, client in clients.items():
            for _ in range(count // rounds):
                started = time.perf_counter()
                response = client.get(path)
                times[label].append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
    print(f"(b) GET /api/tasks/{{id}} by its owner, {count} requests per mode "
          f"(warm, {rounds} interleaved rounds)\n")  # fmt: skip
    print("| policy | p50 ms | p99 ms | mean ms |")
    print("|---|---|---|---|")
    for label, values in times.items():
        print(row(label, values, digits=2))
    baseline = times["no-op policy plugin"]
    for label, values in times.items():
        if label != "no-op policy plugin":
            mean = statistics.fmean(values) / statistics.fmean(baseline)
            median = percentile(values, 0.5) / percentile(baseline, 0.5)
            print(f"\n{label} / no-op plugin: mean {mean:.3f}× ({(mean - 1) * 100:+.1f}%), "
                  f"p50 {median:.3f}× ({(median - 1) * 100:+.1f}%)")  # fmt: skip
    print()


# --- (c) a filtered listing -------------------------------------------------------------------


@contextmanager
def recorded_statements(app: Any) -> Iterator[list[str]]:
    """The SQL statements the server ran meanwhile, leaving out its background tasks (``annota-…``)."""
    engine = app.state.annota.engine.sync_engine
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        task = asyncio.current_task()
        if task is None or not task.get_name().startswith("annota-"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def from_tasks(statement: str) -> bool:
    """A statement whose main FROM is the tasks table (the page, or its count)."""
    return re.search(r"\bFROM tasks\b", statement) is not None and "FROM tasks JOIN" not in statement


def listing(url: str, app: Any, expected: int, total: int, repeat: int) -> None:
    worker = httpx.Client(base_url=url, auth=("bob", PASSWORD), headers=ORG)
    admin = httpx.Client(base_url=url, auth=("admin", PASSWORD), headers=ORG)
    params = {"page_size": 100}
    with recorded_statements(app) as statements:
        first = worker.get("/api/tasks", params=params)
    assert first.status_code == 200, first.text
    body = first.json()
    if body["count"] != expected or len(body["results"]) != min(expected, 100):
        sys.exit(
            f"the worker listed {body['count']} tasks ({len(body['results'])} on the page), not {expected}"
        )
    on_tasks = [s for s in statements if from_tasks(s)]
    times: dict[str, list[float]] = {"org worker (sees 1%)": [], "admin (sees all)": []}
    for _ in range(repeat):
        for label, client in (("org worker (sees 1%)", worker), ("admin (sees all)", admin)):
            started = time.perf_counter()
            response = client.get("/api/tasks", params=params)
            times[label].append(time.perf_counter() - started)
            assert response.status_code == 200
    print(f"(c) GET /api/tasks?page_size=100 in an organization of {total} tasks, {repeat} requests each\n")
    print("| caller | p50 ms | p99 ms | mean ms |")
    print("|---|---|---|---|")
    for label, values in times.items():
        print(row(label, values, digits=2))
    print(f"\nthe worker's listing: count {body['count']}, {len(statements)} SQL statements in all, "
          f"{len(on_tasks)} on the tasks table (rows + count):")  # fmt: skip
    for statement in statements:
        line = " ".join(statement.split())
        shown = line if len(line) <= 160 else line[:160] + "…"
        print(f"  {'*' if statement in on_tasks else ' '} {shown}")
    for statement in on_tasks:
        where = " ".join(statement.split()).split(" WHERE ", 1)
        print(f"\nWHERE {where[1] if len(where) > 1 else '(none)'}")
    if len(on_tasks) != 2:
        sys.exit(f"expected one query for the rows and one count on tasks, got {len(on_tasks)}")
    if not all("assignee_id" in s and "organization_id" in s for s in on_tasks):
        sys.exit("the policy's filter is not in the tasks queries' WHERE clause")
    print("\nverified: one query for the rows and one count, the filter in their WHERE clause")


# --- main -------------------------------------------------------------------------------------


def run(args: argparse.Namespace, database_url: str, data_dir: Path) -> None:
    settings = finalize(Settings(data_dir=str(data_dir), database_url=database_url, secret_key="bench"))
    registry = collect_policies(load_plugins(settings))
    print(f"database: {args.database}\n")
    decisions(registry, args.decisions)
    seeded = asyncio.run(seed(settings, args.tasks))
    with ExitStack() as stack:
        rego_url, rego_app = stack.enter_context(server(settings))
        noop_url, _ = stack.enter_context(server(settings, {"allow-everything": AllowEverything()}))
        opa = stack.enter_context(OpaServer(bundle_url=f"{rego_url}/api/auth/rules"))
        remote = finalize(Settings(data_dir=str(data_dir), database_url=database_url, secret_key="bench"))
        remote.plugin_settings = {"auth": {"opa_url": opa.url}}
        remote_url, _ = stack.enter_context(server(remote))
        urls = {
            "no-op policy plugin": noop_url,
            "Rego, embedded evaluator": rego_url,
            "Rego, OPA server on loopback": remote_url,
        }
        requests(urls, seeded["task"], args.requests)
        listing(rego_url, rego_app, seeded["assigned"], args.tasks, args.repeat)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--decisions", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=50, help="timed listings per caller")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    with bench_database(args.database) as (database_url, directory):
        run(args, database_url, directory / "data")


if __name__ == "__main__":
    main()
