"""Anonymous callers learn nothing from any route: 401 whether the id they name exists or not, and
whatever query they send, before anything is looked up or validated."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from starlette.routing import Route

from annota.runtime.openapi import operation_of

MISSING = {"int": "999999", "int64": "999999", "str": "nope", "path": "nope", "tus_file_id": "1_" + "0" * 32}
#: query values each of which some list or action refuses with 400 when the caller is signed in
BAD_QUERY = {"page": "x", "page_size": "-1", "id": "x", "sort": "nope", "filter": "{", "org_id": "x",
             "number": "x", "search": "\x00"}  # fmt: skip


#: files outside the API that answer anyone: the login page shows the logo before anyone signs in
STATIC_FILES = {"/static/logo.svg"}


def protected_routes(app: Any) -> Iterator[tuple[str, Route]]:
    """``(method, route)`` for every route and method not declared to answer anyone."""
    for route in app.router.routes:
        if not isinstance(route, Route) or route.path in STATIC_FILES:
            continue
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            operation = operation_of(route.endpoint, method)
            if operation is None or not operation.anonymous:
                yield method, route


def existing_objects(admin_client: Any, make_user: Any, add_jobs: Any) -> dict[str, str]:
    """One object of every kind, each the first of its table (id 1), and an invitation and a request."""
    make_user("someone", email="someone@example.com")
    project = admin_client.post("/api/projects", json={"name": "p", "labels": [{"name": "car"}]}).json()
    task = admin_client.post("/api/tasks", json={"name": "t", "project_id": project["id"]}).json()
    add_jobs(task["id"])
    org = admin_client.post("/api/organizations", json={"slug": "org", "name": "org"}).json()
    invitation = admin_client.post(
        "/api/invitations",
        json={"role": "worker", "email": "someone@example.com"},
        headers={"X-Organization": "org"},
    )
    assert invitation.status_code == 201, invitation.text
    admin_client.post(
        "/api/webhooks", json={"target_url": "http://127.0.0.1:9/hook", "type": "project", "events": [],
                               "project_id": project["id"]},
    )  # fmt: skip
    admin_client.post("/api/auth/access_tokens", json={"name": "token"})
    rq_id = admin_client.post(f"/api/projects/{project['id']}/backup/export").json()["rq_id"]
    assert project["id"] == task["id"] == org["id"] == 1
    return {
        "int": "1",
        "int64": "1",
        "key": invitation.json()["key"],
        "rq_id": rq_id,
        "str": "1",
        "path": "1",
        "tus_file_id": "1_" + "1" * 32,
    }


def test_anonymous_callers_get_401_from_every_route_whatever_the_id(
    annota_client, admin_client, make_user, add_jobs
):
    existing = existing_objects(admin_client, make_user, add_jobs)
    failures: list[str] = []
    checked = 0
    for method, route in protected_routes(annota_client.app):
        for values in (existing, MISSING):
            params = {
                name: values.get(name) or values[_convertor_name(convertor)]
                for name, convertor in route.param_convertors.items()
            }
            url = route.path_format.format(**params)
            for query in ({}, BAD_QUERY):
                response = annota_client.request(method, url, params=query)
                checked += 1
                if response.status_code != 401:
                    failures.append(
                        f"{method} {url} {query or ''}: {response.status_code} {response.text[:200]}"
                    )
    assert checked > 300
    assert not failures, "\n".join(failures)


def _convertor_name(convertor: Any) -> str:
    from starlette.convertors import CONVERTOR_TYPES

    return next(name for name, known in CONVERTOR_TYPES.items() if known is convertor)


def test_public_routes_are_the_few_that_answer_anyone(annota_client):
    public = {
        f"{method} {route.path}"
        for route in annota_client.app.router.routes
        if isinstance(route, Route) and not route.path.endswith("/")
        for method in (route.methods or set()) - {"HEAD"}
        if (op := operation_of(route.endpoint, method)) is not None and op.anonymous
    }
    assert public == {
        "GET /api/server/about", "GET /api/server/plugins", "GET /api/server/health", "GET /api/schema",
        "GET /api/docs", "GET /api/auth/rules", "POST /api/auth/login", "POST /api/auth/logout",
        "POST /api/auth/register", "GET /api/user-agreements", "GET /api/server/ready",
    }  # fmt: skip


def test_only_the_logo_is_served_outside_the_api(annota_client):
    outside = {
        route.path
        for route in annota_client.app.router.routes
        if isinstance(route, Route) and not route.path.startswith("/api/")
    }
    assert outside == STATIC_FILES
