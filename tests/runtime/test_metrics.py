"""``GET /metrics``: the series an operator's dashboards and autoscalers read, and who may read them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from starlette.testclient import TestClient

from annota.core.db import migrate
from annota.core.services import requests as request_service
from annota.runtime.app import create_app
from annota.runtime.metrics import serve_standalone
from annota.runtime.settings import Settings
from tests.runtime import jobs_plugin
from tests.runtime.background import start, status_is, wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def annota_plugins() -> dict[str, Any]:
    return {jobs_plugin.NAME: jobs_plugin}


def scrape(client: TestClient, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def local_client(annota_client: TestClient) -> TestClient:
    """A client on the loopback address, as Prometheus on the same host or pod would be."""
    return TestClient(annota_client.app, base_url="http://testserver", client=("127.0.0.1", 40000))


def test_request_latency_is_labelled_by_route_template_and_status(local_client: TestClient) -> None:
    before = scrape(local_client)
    # anonymous: every route answers 401 before it looks anything up
    route = {"method": "GET", "route": "/api/tasks/{id}", "status": "401"}
    for task_id in (1, 2, 3):
        assert local_client.get(f"/api/tasks/{task_id}").status_code == 401
    assert local_client.get("/api/server/about/").status_code == 200
    assert local_client.get("/api/no-such-thing/17").status_code == 404
    after = scrape(local_client)
    count = "annota_http_request_duration_seconds_count"
    assert value(after, count, **route) - value(before, count, **route) == 3
    # the trailing-slash twin is the same route
    about = {"method": "GET", "route": "/api/server/about", "status": "200"}
    assert value(after, count, **about) - value(before, count, **about) == 1
    # unknown paths share one series rather than one per path
    unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
    assert value(after, count, **unmatched) - value(before, count, **unmatched) == 1
    assert not any("/api/tasks/1" in dict(labels).get("route", "") for _, labels in after)
    bucket = value(after, "annota_http_request_duration_seconds_bucket", **route, le="+Inf")
    assert bucket == value(after, count, **route)
    assert value(after, "annota_db_pool_checked_out") >= 0
    assert ("annota_db_pool_size", frozenset()) in after


def test_background_outcomes_durations_and_queue_depth(
    local_client: TestClient, make_user: Callable[..., TestClient], run_async: Callable[..., Any]
) -> None:
    user = make_user("metrics-user")
    before = scrape(local_client)
    finished = start(user, "jobs-test.build", 1, name="metrics-project", owner_id=user.user_id)  # type: ignore[attr-defined]
    failed = start(user, "jobs-test.fail", 2, message="no luck")
    wait_for(user, finished, status_is("finished"))
    wait_for(user, failed, status_is("failed"))

    async def queue_two() -> None:
        # queued rows nothing runs: what the queue-depth gauge counts
        async with local_client.app.state.annota.sessionmaker.begin() as session:  # type: ignore[attr-defined]
            for number in (1, 2):
                await request_service.create(
                    session, request_id=f"waiting-{number}", action="export", target="task",
                    queue="chunks", job_name="jobs-test.fail", job_kwargs={"message": "-"}, owner_id=None,
                )  # fmt: skip

    run_async(queue_two)
    after = scrape_fresh(local_client)
    outcomes = "annota_background_requests_total"
    done = {"queue": "import", "action": "jobs-test.build", "status": "finished"}
    bad = {"queue": "export", "action": "jobs-test.fail", "status": "failed"}
    assert value(after, outcomes, **done) - value(before, outcomes, **done) == 1
    assert value(after, outcomes, **bad) - value(before, outcomes, **bad) == 1
    durations = "annota_job_duration_seconds_count"
    assert value(after, durations, queue="import", status="finished") > value(
        before, durations, queue="import", status="finished"
    )
    assert value(after, "annota_queue_depth", queue="chunks") == 2
    assert value(after, "annota_queue_depth", queue="export") == 0
    assert ("annota_queue_running", frozenset({("queue", "utils")})) in after


def scrape_fresh(client: TestClient) -> Samples:
    """A scrape past the queue-depth cache."""
    for middleware in _metrics_middlewares(client):
        middleware.depth.read_at = float("-inf")
    return scrape(client)


def _metrics_middlewares(client: TestClient) -> list[Any]:
    from annota.runtime.metrics import MetricsMiddleware

    found = []
    app: Any = client.app.middleware_stack  # type: ignore[attr-defined]
    while app is not None:
        if isinstance(app, MetricsMiddleware):
            found.append(app)
        app = getattr(app, "app", None)
    return found


def test_metrics_refuse_public_addresses_without_a_token(annota_app: Any) -> None:
    with TestClient(annota_app, client=("93.184.216.34", 5000)) as public:
        response = public.get("/metrics")
        assert response.status_code == 403
        assert "metrics token" in response.text
    with TestClient(annota_app, client=("10.1.2.3", 5000)) as private:
        assert private.get("/metrics").status_code == 200


def test_metrics_token_is_required_from_everyone_when_set(
    annota_settings: Settings, annota_plugins: dict[str, Any]
) -> None:
    annota_settings.metrics_token = "scrape-secret"
    app = create_app(annota_settings, extra_plugins=annota_plugins)
    with TestClient(app, client=("127.0.0.1", 5000)) as client:
        assert client.get("/metrics").status_code == 403
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
        samples = scrape(client, Authorization="Bearer scrape-secret")
        assert ("annota_queue_depth", frozenset({("queue", "import")})) in samples


def test_readiness_adds_the_schema_to_the_health_checks(annota_client: TestClient) -> None:
    response = annota_client.get("/api/server/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {
        "database": "ok", "storage": "ok", "queue": "ok", "authorization": "ok", "schema": "ok",
    }  # fmt: skip


def test_readiness_fails_on_a_database_behind_the_code(
    annota_client: TestClient, run_async: Callable[..., Any]
) -> None:
    async def set_revision(revision: str) -> None:
        async with annota_client.app.state.annota.engine.begin() as connection:  # type: ignore[attr-defined]
            await connection.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})

    run_async(set_revision, "0001")
    try:
        response = annota_client.get("/api/server/ready")
        assert response.status_code == 503
        assert response.json()["checks"]["schema"] == "error: the database needs `annota migrate`"
        # liveness keeps answering as before
        assert annota_client.get("/api/server/health").status_code == 200
    finally:
        # the PostgreSQL database is shared by the tests of this session
        run_async(set_revision, migrate.head_revision())


def test_worker_metrics_endpoint_needs_the_token(unused_port: int) -> None:
    stop = serve_standalone("127.0.0.1", unused_port, "worker-secret")
    try:
        url = f"http://127.0.0.1:{unused_port}/metrics"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=5)
        assert refused.value.code == 403
        request = urllib.request.Request(url, headers={"Authorization": "Bearer worker-secret"})
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read().decode()
        assert "# TYPE annota_job_duration_seconds histogram" in body
        assert "# HELP annota_background_requests_total " in body
    finally:
        stop()


SERVER_PROCESS = """
import sys
from annota.core import metrics
metrics.BACKGROUND_REQUESTS.labels(queue="import", action="a", status="finished").inc(int(sys.argv[1]))
"""


def test_processes_sharing_the_multiprocess_dir_add_up(tmp_path: Path) -> None:
    # not there yet: the first process creates it
    environ = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    for amount in ("2", "3"):
        subprocess.run([sys.executable, "-c", SERVER_PROCESS, amount], env=environ, check=True, timeout=60)
    scraper = "from annota.runtime.metrics import exposition; print(exposition().decode())"
    shown = subprocess.run(
        [sys.executable, "-c", scraper], env=environ, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(shown)
        for sample in family.samples
    }
    labels = {"queue": "import", "action": "a", "status": "finished"}
    assert value(samples, "annota_background_requests_total", **labels) == 5


def test_storage_failures_of_jobs_are_counted(user_client: TestClient, local_client: TestClient) -> None:
    series = {"backend": "local", "where": "job"}
    before = value(scrape(local_client), "annota_storage_errors_total", **series)
    failing = start(user_client, "jobs-test.storage-fail", 1, message="the volume is gone")
    assert wait_for(user_client, failing, status_is("failed", "finished"))["status"] == "failed"
    # an ordinary failure is not a storage error
    other = start(user_client, "jobs-test.fail", 2, message="no such model")
    assert wait_for(user_client, other, status_is("failed", "finished"))["status"] == "failed"
    after = value(scrape(local_client), "annota_storage_errors_total", **series)
    assert after - before == 1


def test_storage_failures_of_requests_are_counted(
    user_client: TestClient,
    local_client: TestClient,
    make_media_task: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from annota.core.errors import StorageError
    from tests.media import make_jpeg

    task_id = make_media_task(user_client, [("a.jpg", make_jpeg())])
    storage = user_client.app.state.annota.storage  # type: ignore[attr-defined]

    async def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise StorageError("the volume is not mounted")

    for method in ("get", "get_range", "stat", "read"):
        monkeypatch.setattr(storage, method, unreachable)
    series = {"backend": "local", "where": "http"}
    before = value(scrape(local_client), "annota_storage_errors_total", **series)
    response = user_client.get(f"/api/tasks/{task_id}/data", params={"type": "frame", "number": 0})
    assert response.status_code == 500, response.text
    # a frame that does not exist is the caller's error, not the storage's
    assert (
        user_client.get(f"/api/tasks/{task_id}/data", params={"type": "frame", "number": 5}).status_code
        == 400
    )
    after = value(scrape(local_client), "annota_storage_errors_total", **series)
    assert after - before == 1
