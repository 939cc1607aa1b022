"""Media for tests: small generated images, and tasks whose media went through the real upload API."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest


def make_jpeg(width: int = 64, height: int = 48, value: int = 0, quality: int = 95) -> bytes:
    """A JPEG whose pixels are all ``value`` (a gray level), so frames can be told apart after
    lossy re-encoding by their mean intensity."""
    import cv2
    import numpy as np

    image = np.full((height, width, 3), value, dtype=np.uint8)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return bytes(encoded.tobytes())


def wait_for_request(client: Any, rq_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll ``/api/requests/{rq_id}`` until it is finished or failed; returns the request."""
    import time
    from urllib.parse import quote

    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/requests/{quote(rq_id, safe='')}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in ("finished", "failed"):
            return body
        assert time.monotonic() < deadline, f"request {rq_id} still {body['status']}"
        time.sleep(0.05)


@pytest.fixture
def make_media_task() -> Callable[..., int]:
    """``make_media_task(client, [("a.jpg", bytes), ...], name="t", labels=[...], segment_size=0,
    overlap=None, **data_options)`` → the id of a task whose media was uploaded in one request and
    processed; fails the test if processing fails. ``data_options`` are DataRequest fields
    (``image_quality`` defaults to 70)."""

    def make(
        client: Any,
        files: Sequence[tuple[str, bytes]],
        *,
        name: str = "media task",
        labels: Sequence[dict[str, Any]] = ({"name": "car"},),
        segment_size: int = 0,
        overlap: int | None = None,
        **data_options: Any,
    ) -> int:
        import json

        task = {"name": name, "labels": list(labels), "segment_size": segment_size}
        if overlap is not None:
            task["overlap"] = overlap
        response = client.post("/api/tasks", json=task)
        assert response.status_code == 201, response.text
        task_id: int = response.json()["id"]
        form: dict[str, str] = {"image_quality": "70"}
        for key, value in data_options.items():
            if isinstance(value, list) and all(isinstance(item, str) for item in value):
                form.update({f"{key}[{i}]": item for i, item in enumerate(value)})
            else:
                form[key] = json.dumps(value) if isinstance(value, list | dict | bool) else str(value)
        response = client.post(
            f"/api/tasks/{task_id}/data",
            data=form,
            files=[
                (f"client_files[{i}]", (file_name, content)) for i, (file_name, content) in enumerate(files)
            ],
        )
        assert response.status_code == 202, response.text
        request = wait_for_request(client, response.json()["rq_id"])
        assert request["status"] == "finished", request["message"]
        return task_id

    return make
