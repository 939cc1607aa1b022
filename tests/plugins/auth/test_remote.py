"""Decisions made on an OPA server, chosen by configuration alone: the OPA server downloads the
bundle from the running server's ``/api/auth/rules`` and gives the embedded evaluator's answers;
while it is down, requests are refused with 503 (fail closed) and the health check says why."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from annota.core.access import MATCH_NONE
from annota.core.db.engine import create_engine, create_sessionmaker
from annota.core.db.tables import Membership, Organization
from annota.core.services import users as user_service
from annota.plugins.auth.config import AuthConfig
from annota.plugins.auth.remote import RemoteEvaluator
from annota.runtime.app import create_app
from annota.runtime.settings import Settings, finalize
from annota.testing import PASSWORD
from annota.testing.opa_server import LoopbackServer, OpaServer
from tests.plugins.auth.conftest import free_port

ORG = {"X-Organization": "acme"}
UNAVAILABLE = "The authorization service is unavailable"


def seed(database_url: str) -> dict[str, int]:
    """admin, alice, bob and carol; the organization ``acme`` owned by alice, bob its worker."""

    async def write() -> dict[str, int]:
        engine = create_engine(database_url)
        async with create_sessionmaker(engine).begin() as session:
            ids = {}
            for name in ("admin", "alice", "bob", "carol"):
                privilege = "admin" if name == "admin" else "user"
                ids[name] = (await user_service.create_user(session, name, PASSWORD, privilege=privilege)).id
            org = Organization(slug="acme", name="Acme", owner_id=ids["alice"])
            session.add(org)
            await session.flush()
            now = dt.datetime.now(dt.UTC)
            for name, role in (("alice", "owner"), ("bob", "worker")):
                member = Membership(user_id=ids[name], organization_id=org.id, role=role, is_active=True)
                member.joined_date = now
                session.add(member)
        await engine.dispose()
        return ids

    return asyncio.run(write())


@dataclass
class Deployment:
    annota: LoopbackServer
    opa: OpaServer | None
    ids: dict[str, int]
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, name: str | None) -> httpx.Client:
        """A client signed in as ``name`` (anonymous for ``None``), closed with the deployment."""
        auth = (name, PASSWORD) if name else None
        self.clients.append(httpx.Client(base_url=self.annota.url, auth=auth, timeout=10))
        return self.clients[-1]


@contextmanager
def deployment(directory: Path, template: Path, *, remote: bool) -> Iterator[Deployment]:
    """annota on loopback with a fresh database; with ``remote``, an OPA server that loads the bundle
    from it, named in the settings as production does."""
    directory.mkdir()
    shutil.copyfile(template, directory / "annota.db")
    settings = finalize(
        Settings(
            data_dir=str(directory / "data"),
            database_url=f"sqlite:///{directory / 'annota.db'}",
            secret_key="test-secret",
        )
    )
    ids = seed(settings.database_url)
    annota_port = free_port()
    opa = None
    if remote:
        opa = OpaServer(bundle_url=f"http://127.0.0.1:{annota_port}/api/auth/rules")
        opa.start()
        settings.plugin_settings = {"auth": {"opa_url": opa.url}}
    annota = LoopbackServer(create_app(settings), port=annota_port)
    running = Deployment(annota, opa, ids)
    try:
        with annota:
            yield running
    finally:
        for client in running.clients:
            client.close()
        if opa is not None:
            opa.stop()


def observe(deployment: Deployment) -> dict[str, Any]:
    """What each user gets from the same requests: statuses, and the task names lists show."""
    alice, bob, carol, admin = (deployment.client(name) for name in ("alice", "bob", "carol", "admin"))
    own = alice.post("/api/tasks", json={"name": "own"}).json()["id"]
    assigned = alice.post(
        "/api/tasks", json={"name": "assigned", "assignee_id": deployment.ids["bob"]}, headers=ORG
    ).json()["id"]
    unassigned = alice.post("/api/tasks", json={"name": "unassigned"}, headers=ORG).json()["id"]

    def names(client: httpx.Client, **headers: str) -> list[str]:
        response = client.get("/api/tasks", params={"page_size": 100}, headers=headers)
        assert response.status_code == 200, response.text
        return sorted(task["name"] for task in response.json()["results"])

    return {
        "owner views": alice.get(f"/api/tasks/{own}").status_code,
        "stranger views": carol.get(f"/api/tasks/{own}").status_code,
        "stranger renames": carol.patch(f"/api/tasks/{own}", json={"name": "x"}).status_code,
        "worker views assigned": bob.get(f"/api/tasks/{assigned}", headers=ORG).status_code,
        "worker views unassigned": bob.get(f"/api/tasks/{unassigned}", headers=ORG).status_code,
        "worker deletes assigned": bob.delete(f"/api/tasks/{assigned}", headers=ORG).status_code,
        "stranger creates in org": carol.post("/api/tasks", json={"name": "x"}, headers=ORG).status_code,
        "admin views": admin.get(f"/api/tasks/{unassigned}").status_code,
        "owner lists": names(alice),
        "owner lists org": names(alice, **ORG),
        "worker lists org": names(bob, **ORG),
        "stranger lists": names(carol),
        "admin lists": names(admin),
    }


def test_remote_decisions_equal_embedded_ones(tmp_path, _annota_sqlite_template):
    with deployment(tmp_path / "embedded", _annota_sqlite_template, remote=False) as embedded:
        expected = observe(embedded)
    with deployment(tmp_path / "remote", _annota_sqlite_template, remote=True) as remote:
        answers = observe(remote)
        assert remote.opa is not None
        # OPA's copy came from the server's bundle endpoint
        etag = remote.client("alice").get("/api/auth/rules").headers["etag"]
        assert (remote.opa.downloads, f'"{remote.opa.revision}"') == (1, etag)

    assert answers == expected
    # and the answers are the policies', not a blanket allow or deny
    assert answers == {
        "owner views": 200,
        "stranger views": 403,
        "stranger renames": 403,
        "worker views assigned": 200,
        "worker views unassigned": 403,
        "worker deletes assigned": 403,
        "stranger creates in org": 403,
        "admin views": 200,
        "owner lists": ["assigned", "own", "unassigned"],
        "owner lists org": ["assigned", "unassigned"],
        "worker lists org": ["assigned"],
        "stranger lists": [],
        "admin lists": ["assigned", "own", "unassigned"],
    }


def test_opa_down_refuses_with_503_and_changes_nothing(tmp_path, _annota_sqlite_template):
    with deployment(tmp_path / "remote", _annota_sqlite_template, remote=True) as remote:
        assert remote.opa is not None
        alice, anonymous = remote.client("alice"), remote.client(None)
        task = alice.post("/api/tasks", json={"name": "kept"}).json()
        assert anonymous.get("/api/server/health").status_code == 200

        remote.opa.stop()
        for response in (
            alice.get(f"/api/tasks/{task['id']}"),
            alice.patch(f"/api/tasks/{task['id']}", json={"name": "changed"}),
            alice.post("/api/tasks", json={"name": "new"}),
            alice.delete(f"/api/tasks/{task['id']}"),
        ):
            assert response.status_code == 503, response.text
            assert response.json()["detail"].startswith(UNAVAILABLE)
            # where the OPA server runs is for the log, not for callers
            assert remote.opa.url not in response.json()["detail"]
        health = anonymous.get("/api/server/health")
        assert health.status_code == 503
        assert health.json()["checks"]["authorization"].startswith("error: the OPA server is unreachable")

        remote.opa.start()
        assert anonymous.get("/api/server/health").status_code == 200
        listed = alice.get("/api/tasks").json()
        assert [(t["id"], t["name"]) for t in listed["results"]] == [(task["id"], "kept")]
        assert alice.get(f"/api/tasks/{task['id']}").json()["updated_date"] == task["updated_date"]
        # a restarted OPA loads the bundle again, as a real one does
        assert remote.opa.downloads == 2


def test_undefined_decisions_refuse(opa_server):
    """A package or rule the bundle lacks is undefined on OPA (no ``result``): nothing is allowed
    and a list shows nothing."""
    evaluator = RemoteEvaluator(AuthConfig(opa_url=opa_server.url))
    admin = {"scope": "view", "auth": {"user": {"id": 1, "privilege": "admin"}}, "resource": None}

    async def ask() -> tuple[Any, ...]:
        try:
            return (
                await evaluator.allow("tasks", admin),
                await evaluator.allow("no_such_package", admin),
                await evaluator.filter("no_such_package", {**admin, "scope": "list"}),
            )
        finally:
            await evaluator.close()

    assert asyncio.run(ask()) == (True, False, MATCH_NONE)
    assert httpx.post(f"{opa_server.url}/v1/data/tasks/no_such_rule", json={"input": admin}).json() == {}
    refused = httpx.post(f"{opa_server.url}/v1/data/tasks/allow", json={"input": [1]})
    assert refused.status_code == 400 and "'input'" in refused.json()["message"]
