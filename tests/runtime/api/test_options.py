"""``OPTIONS`` on API routes answers DRF's metadata, as CVAT's server does, instead of 405."""

from __future__ import annotations

from annota.runtime.api.metadata import PARSES, RENDERS


def test_options_describe_lists_and_instances(user_client, annota_client):
    response = user_client.options("/api/tasks")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"name", "description", "renders", "parses"}
    assert (body["name"], body["renders"], body["parses"]) == ("Tasks List", RENDERS, PARSES)
    assert "Create a task" in body["description"]
    assert set(response.headers["Allow"].split(", ")) == {"GET", "POST", "OPTIONS"}
    # as every API route, and as DRF's permission check does, anonymous callers get 401
    assert annota_client.options("/api/tasks").status_code == 401
    instance = user_client.options("/api/tasks/5/")
    assert instance.status_code == 200 and instance.json()["name"] == "Tasks Instance"
    assert set(instance.headers["Allow"].split(", ")) == {"GET", "PATCH", "DELETE", "OPTIONS"}
    assert user_client.options("/api/jobs/3/annotations").json()["name"] == "Jobs Annotations"
    # routes of plugins too
    assert user_client.options("/api/webhooks").status_code == 200
    assert user_client.options("/api/auth/login").status_code == 200
    # other methods are still refused where no route serves them
    assert user_client.put("/api/tasks").status_code == 405
