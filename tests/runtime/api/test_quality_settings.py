"""``/api/quality/settings``: per task and per project, CVAT 2.73's fields and defaults."""

from __future__ import annotations

from typing import Any

from cvat_sdk.api_client import Configuration, models
from cvat_sdk.api_client.model_utils import validate_and_convert_types

from annota.core.services.quality.settings import DEFAULTS


def check(data: Any, model: type) -> None:
    validate_and_convert_types(data, (model,), ["received_data"], True, True, Configuration())


def settings_of(client: Any, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/quality/settings", params=params)
    assert response.status_code == 200, response.text
    check(response.json(), models.PaginatedQualitySettingsList)
    return response.json()["results"]


def test_each_task_and_project_has_settings_with_cvats_defaults(make_user):
    alice = make_user("alice")
    project_id = alice.post("/api/projects", json={"name": "p"}).json()["id"]
    in_project = alice.post("/api/tasks", json={"name": "in", "project_id": project_id}).json()["id"]
    alone = alice.post("/api/tasks", json={"name": "alone"}).json()["id"]

    (mine,) = settings_of(alice, task_id=alone)
    assert mine["task_id"] == alone and mine["project_id"] is None
    assert {k: mine[k] for k in DEFAULTS} == DEFAULTS
    assert (mine["target_metric"], mine["iou_threshold"], mine["point_size_base"]) == (
        "accuracy",
        0.4,
        "group_bbox_size",
    )
    # asking again finds the same object
    assert settings_of(alice, task_id=alone)[0]["id"] == mine["id"]
    of_project = settings_of(alice, project_id=project_id, sort="id")
    assert {(s["task_id"], s["project_id"]) for s in of_project} == {(in_project, None), (None, project_id)}
    assert [s["project_id"] for s in settings_of(alice, project_id=project_id, parent_type="project")] == [
        project_id
    ]
    assert len(settings_of(alice)) == 3
    assert len(settings_of(alice, parent_type="task")) == 2
    retrieved = alice.get(f"/api/quality/settings/{mine['id']}")
    assert retrieved.status_code == 200 and retrieved.json() == mine
    check(retrieved.json(), models.QualitySettings)


def test_settings_change_and_are_checked(make_user):
    alice = make_user("alice")
    task_id = alice.post("/api/tasks", json={"name": "t"}).json()["id"]
    (row,) = settings_of(alice, task_id=task_id)
    url = f"/api/quality/settings/{row['id']}"
    change = {
        "iou_threshold": 0.6,
        "target_metric": "recall",
        "compare_groups": False,
        "job_filter": '{"==": [{"var": "type"}, "annotation"]}',
        "max_validations_per_job": 3,
    }
    changed = alice.patch(url, json=change)
    assert changed.status_code == 200, changed.text
    assert {k: changed.json()[k] for k in change} == change
    assert changed.json()["updated_date"] > row["updated_date"]
    assert alice.get(url).json()["iou_threshold"] == 0.6
    for body, field in (
        ({"iou_threshold": 1.5}, "iou_threshold"),
        ({"target_metric": "f1"}, "target_metric"),
        ({"point_size_base": "huge"}, "point_size_base"),
        ({"job_filter": "{nope"}, "job_filter"),
        ({"max_validations_per_job": -1}, "max_validations_per_job"),
        ({"task_id": task_id + 1}, "task_id"),
        ({"colour": "red"}, "colour"),
    ):
        refused = alice.patch(url, json=body)
        assert refused.status_code == 400, (body, refused.text)
        assert field in str(refused.json()), (body, refused.text)
    assert alice.patch(url, json={"task_id": task_id}).status_code == 200


def test_settings_follow_their_task(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    task_id = alice.post("/api/tasks", json={"name": "t"}).json()["id"]
    (row,) = settings_of(alice, task_id=task_id)
    url = f"/api/quality/settings/{row['id']}"
    assert bob.get(url).status_code == 403
    assert bob.patch(url, json={"iou_threshold": 0.1}).status_code == 403
    assert bob.get("/api/quality/settings", params={"task_id": task_id}).status_code == 403
    assert settings_of(bob) == []
    assert alice.get("/api/quality/settings", params={"task_id": 9999}).status_code == 404
    assert alice.get("/api/quality/settings/9999").status_code == 404
    assert alice.get("/api/quality/settings", params={"parent_type": "job"}).status_code == 400
    # the task's assignee sees them too, its owner changes them
    alice.patch(f"/api/tasks/{task_id}", json={"assignee_id": bob.user_id})
    assert bob.get(url).status_code == 200
    alice.delete(f"/api/tasks/{task_id}")
    assert alice.get(url).status_code == 404
