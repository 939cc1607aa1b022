"""Starting background requests through the test plugin's route and polling ``/api/requests``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from tests.runtime.jobs_plugin import START_PATH


def start(client: Any, job: str, target_id: int | str = 1, **kwargs: Any) -> str:
    response = client.post(START_PATH, json={"job": job, "target_id": target_id, "kwargs": kwargs})
    assert response.status_code == 202, response.text
    rq_id: str = response.json()["rq_id"]
    return rq_id


def request_path(rq_id: str) -> str:
    """The path as cvat-sdk sends it: the id percent-encoded, ``/`` included."""
    return "/api/requests/" + quote(rq_id, safe="")


def wait_for(
    client: Any, rq_id: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10
) -> dict[str, Any]:
    """Poll the request until ``predicate(body)`` holds."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(request_path(rq_id))
        assert response.status_code == 200, response.text
        body = response.json()
        if predicate(body):
            return body
        time.sleep(0.02)
    raise AssertionError(f"request {rq_id} did not get there in {timeout} s; last seen: {body}")


def status_is(*statuses: str) -> Callable[[dict[str, Any]], bool]:
    return lambda body: body["status"] in statuses
