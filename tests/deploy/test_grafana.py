"""``deploy/grafana/annota.json``: the dashboard queries only series annota's ``/metrics`` exports,
and covers what an operator watches (API latency and errors, queues, jobs, webhooks, database pool,
storage errors)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.deploy.tools import DEPLOY

DASHBOARD = DEPLOY / "grafana" / "annota.json"
METRIC = re.compile(r"\b(annota_[a-z0-9_]+)\b")
TYPE_LINE = re.compile(r"^# TYPE (\S+) (\w+)$", re.MULTILINE)
#: the sample names each kind of family shows in the text format
SUFFIXES = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("",), "gauge": ("",)}


@pytest.fixture
def annota_database_url(sqlite_database_url: str) -> str:
    return sqlite_database_url


def _exported(client: TestClient) -> set[str]:
    """Every sample name ``/metrics`` can show, from its ``# TYPE`` lines (families with no
    observation yet show no sample, only their type)."""
    local = TestClient(client.app, base_url="http://testserver", client=("127.0.0.1", 40000))
    response = local.get("/metrics")
    assert response.status_code == 200, response.text
    names = set()
    for family, kind in TYPE_LINE.findall(response.text):
        names |= {family + suffix for suffix in SUFFIXES.get(kind, ("",))}
    return names


def _expressions(dashboard: dict[str, Any]) -> list[str]:
    return [
        target["expr"]
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def test_every_queried_series_is_exported(annota_client: TestClient) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = _exported(annota_client)
    queried = {name for expr in _expressions(dashboard) for name in METRIC.findall(expr)}
    assert queried, "the dashboard queries no annota series"
    assert queried <= exported, f"not exported by /metrics: {sorted(queried - exported)}"
    families = {
        "annota_http_request_duration_seconds_bucket",
        "annota_queue_depth",
        "annota_queue_running",
        "annota_job_duration_seconds_bucket",
        "annota_background_requests_total",
        "annota_webhook_deliveries_total",
        "annota_db_pool_checked_out",
        "annota_storage_errors_total",
    }
    assert families <= queried, sorted(families - queried)


def test_panels_use_the_datasource_variable_and_do_not_overlap() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    (variable,) = dashboard["templating"]["list"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert all(target["datasource"]["uid"] == "${datasource}" for target in panel["targets"])
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"panel {panel['title']!r} overlaps another"
        cells |= mine
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
