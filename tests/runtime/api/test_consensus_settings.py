"""``/api/consensus/settings``: tasks with consensus replicas, CVAT 2.73's fields and default."""

from __future__ import annotations

from typing import Any

from cvat_sdk.api_client import Configuration, models
from cvat_sdk.api_client.model_utils import validate_and_convert_types


def check(data: Any, model: type) -> None:
    validate_and_convert_types(data, (model,), ["received_data"], True, True, Configuration())


def listed(client: Any, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/consensus/settings", params=params)
    assert response.status_code == 200, response.text
    check(response.json(), models.PaginatedConsensusSettingsList)
    return response.json()["results"]


def test_tasks_with_replicas_have_settings(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    replicated = alice.post("/api/tasks", json={"name": "r", "consensus_replicas": 3}).json()["id"]
    plain = alice.post("/api/tasks", json={"name": "p"}).json()["id"]
    (row,) = listed(alice, task_id=replicated)
    assert row == {"id": row["id"], "task_id": replicated, "iou_threshold": 0.4}
    assert listed(alice, task_id=plain) == []
    assert [r["task_id"] for r in listed(alice)] == [replicated]
    url = f"/api/consensus/settings/{row['id']}"
    check(alice.get(url).json(), models.ConsensusSettings)
    changed = alice.patch(url, json={"iou_threshold": 0.75})
    assert changed.status_code == 200 and changed.json()["iou_threshold"] == 0.75
    assert alice.get(url).json()["iou_threshold"] == 0.75
    for body, field in (({"iou_threshold": -0.1}, "iou_threshold"), ({"quorum": 2}, "quorum")):
        refused = alice.patch(url, json=body)
        assert refused.status_code == 400 and field in str(refused.json()), refused.text
    assert bob.get(url).status_code == 403 and bob.patch(url, json={"iou_threshold": 0.1}).status_code == 403
    assert bob.get("/api/consensus/settings", params={"task_id": replicated}).status_code == 403
    assert listed(bob) == []
    assert alice.get("/api/consensus/settings/9999").status_code == 404
    assert alice.get("/api/consensus/settings", params={"task_id": 9999}).status_code == 404
