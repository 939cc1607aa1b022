"""Request ids: every HTTP request gets one (the caller's ``X-Request-ID`` or a new one), answers
with it, and its log lines and those of the background jobs it starts carry it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from annota.core import request_ids
from annota.runtime.logs import JsonFormatter, TextFormatter
from tests.runtime import jobs_plugin
from tests.runtime.background import status_is, wait_for


@pytest.fixture
def annota_plugins() -> dict[str, Any]:
    return {jobs_plugin.NAME: jobs_plugin}


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the server process logs, as ``log_format = "json"`` writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(request_ids.RequestIdFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def _entries(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_request_and_its_job_log_the_same_id(user_client: TestClient, json_lines: io.StringIO) -> None:
    owner_id = user_client.user_id  # type: ignore[attr-defined]
    user_client.headers["X-Request-ID"] = "upload-7f3a"
    response = user_client.post(
        jobs_plugin.START_PATH,
        json={"job": "jobs-test.build", "target_id": 1, "kwargs": {"name": "traced", "owner_id": owner_id}},
    )
    assert response.status_code == 202, response.text
    assert response.headers["X-Request-ID"] == "upload-7f3a"
    del user_client.headers["X-Request-ID"]
    done = wait_for(user_client, response.json()["rq_id"], status_is("finished", "failed"))
    assert done["status"] == "finished"

    traced = [entry for entry in _entries(json_lines) if entry.get("request_id") == "upload-7f3a"]
    access = [entry for entry in traced if entry["logger"] == "annota.access"]
    assert [(entry["method"], entry["path"], entry["status"]) for entry in access] == [
        ("POST", jobs_plugin.START_PATH, 202)
    ]
    job_lines = [entry["message"] for entry in traced if entry["logger"] == "annota.core.queue"]
    assert any("job jobs-test.build started" in line for line in job_lines), job_lines
    assert any("finished in" in line for line in job_lines), job_lines
    # the polling requests got ids of their own, and no other job line carries this one
    polls = [e for e in _entries(json_lines) if e["logger"] == "annota.access" and e["method"] == "GET"]
    assert polls and all(entry["request_id"] != "upload-7f3a" for entry in polls)


def test_ids_are_made_up_when_missing_or_malformed(
    annota_client: TestClient, json_lines: io.StringIO
) -> None:
    first = annota_client.get("/api/server/about").headers["X-Request-ID"]
    second = annota_client.get("/api/server/about").headers["X-Request-ID"]
    assert len(first) == 32 and int(first, 16) >= 0 and first != second
    for malformed in ("x" * 129, "two words", b"caf\xe9"):
        answered = annota_client.get("/api/server/about", headers={"X-Request-ID": malformed})
        assert answered.headers["X-Request-ID"] != malformed
        assert len(answered.headers["X-Request-ID"]) == 32
    # errors carry it too
    missing = annota_client.get("/api/no-such-route", headers={"X-Request-ID": "lost-1"})
    assert missing.status_code == 404 and missing.headers["X-Request-ID"] == "lost-1"
    (line,) = [entry for entry in _entries(json_lines) if entry.get("request_id") == "lost-1"]
    assert line["status"] == 404 and line["path"] == "/api/no-such-route"


def test_text_lines_show_the_id_before_the_logger() -> None:
    record = logging.LogRecord("annota.core.queue", logging.INFO, __file__, 1, "job %s", ("x",), None)
    record.request_id = "abc-1"
    assert TextFormatter().format(record).endswith(" INFO [abc-1] annota.core.queue: job x")
    record.request_id = None
    assert TextFormatter().format(record).endswith(" INFO annota.core.queue: job x")


def test_json_lines_carry_extra_fields_and_exceptions() -> None:
    try:
        raise ValueError("bad frame")
    except ValueError:
        record = logging.LogRecord(
            "annota.x", logging.ERROR, __file__, 1, "failed %d", (3,), exc_info=__import__("sys").exc_info()
        )
    record.queue = "export"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "failed 3" and entry["level"] == "ERROR" and entry["queue"] == "export"
    assert "ValueError: bad frame" in entry["exception"]
    assert "request_id" not in entry


def test_configured_logging_writes_json_to_the_current_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    from annota.runtime import logs
    from annota.runtime.settings import Settings

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        logs.configure(Settings(log_format="json", log_level="info"))
        # stderr replaced after configuring (a daemon, a test runner): lines follow it
        stream = io.StringIO()
        monkeypatch.setattr("sys.stderr", stream)
        with request_ids.bound("cli-9"):
            logging.getLogger("annota.core.queue").info("request %s: finished in %.2f s", "r1", 0.5)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    (entry,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert entry["request_id"] == "cli-9" and entry["message"] == "request r1: finished in 0.50 s"
