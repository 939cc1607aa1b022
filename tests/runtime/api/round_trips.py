"""A task's annotations put, exported in a format, deleted and imported back through the API: the
round trip the format tests of ``tests/runtime/api`` check."""

from __future__ import annotations

from typing import Any

from tests.media import wait_for_request


def spec(label: dict[str, Any], name: str) -> int:
    """The id of the attribute ``name`` of a label as the API reads it."""
    return next(int(a["id"]) for a in label["attributes"] if a["name"] == name)


def round_trip(
    client: Any, task_id: int, body: dict[str, Any], format_name: str, **params: str
) -> dict[str, Any]:
    """The task's annotations after ``body`` went out in ``format_name`` and came back in (with
    the import's query ``params``)."""
    response = client.put(f"/api/tasks/{task_id}/annotations", json=body)
    assert response.status_code == 200, response.text
    path = f"/api/tasks/{task_id}"
    response = client.post(f"{path}/dataset/export", params={"format": format_name, "location": "local"})
    assert response.status_code == 202, response.text
    request = wait_for_request(client, response.json()["rq_id"])
    assert request["status"] == "finished", request["message"]
    content = client.get(request["result_url"]).content
    client.delete(f"{path}/annotations")
    response = client.post(
        f"{path}/annotations",
        params={"format": format_name, **params},
        files={"annotation_file": ("dataset.zip", content)},
    )
    assert response.status_code == 202, response.text
    request = wait_for_request(client, response.json()["rq_id"])
    assert request["status"] == "finished", request["message"]
    return dict(client.get(f"{path}/annotations").json())
