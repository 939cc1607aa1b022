"""WiderFace, VGGFace2 and the ICDAR formats through the API: a task's annotations exported, deleted
and imported back come back the same, in what each format carries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.media import make_jpeg, wait_for_request


@pytest.fixture
def task(admin_client: Any, make_media_task: Callable[..., int]) -> tuple[int, dict[str, dict[str, Any]]]:
    def text(name: str) -> dict[str, Any]:
        return {"name": name, "input_type": "text", "mutable": False, "values": []}

    labels = [
        {"name": "face", "attributes": [text("blur"), text("text")]},
        {"name": "icdar", "attributes": [text("text")]},
    ]
    files = [(f"img{i}.jpg", make_jpeg(64, 48, value=i * 40)) for i in range(3)]
    task_id = make_media_task(admin_client, files, name="faces", labels=labels)
    read = admin_client.get(f"/api/labels?task_id={task_id}").json()["results"]
    return task_id, {label["name"]: label for label in read}


def _spec(label: dict[str, Any], name: str) -> int:
    return next(int(a["id"]) for a in label["attributes"] if a["name"] == name)


def _round_trip(client: Any, task_id: int, body: dict[str, Any], format_name: str) -> dict[str, Any]:
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
        params={"format": format_name},
        files={"annotation_file": ("dataset.zip", content)},
    )
    assert response.status_code == 202, response.text
    request = wait_for_request(client, response.json()["rq_id"])
    assert request["status"] == "finished", request["message"]
    return dict(client.get(f"{path}/annotations").json())


def _values(entry: dict[str, Any]) -> list[str]:
    return [a["value"] for a in entry["attributes"]]


def test_widerface(admin_client: Any, task: Any) -> None:
    task_id, labels = task
    face = labels["face"]
    body = {
        "tags": [{"label_id": labels["icdar"]["id"], "frame": 1}],
        "shapes": [
            {"type": "rectangle", "label_id": face["id"], "frame": 0, "points": [1, 2, 30, 40],
             "occluded": True, "attributes": [{"spec_id": _spec(face, "blur"), "value": "2"}]},
            {"type": "rectangle", "label_id": labels["icdar"]["id"], "frame": 2, "points": [5, 5, 9, 9]},
        ],
    }  # fmt: skip
    after = _round_trip(admin_client, task_id, body, "WiderFace 1.0")
    shapes = sorted(after["shapes"], key=lambda s: s["frame"])
    assert [(s["frame"], s["label_id"], s["points"], s["occluded"]) for s in shapes] == [
        (0, face["id"], [1, 2, 30, 40], True),
        (2, labels["icdar"]["id"], [5, 5, 9, 9], False),
    ]
    assert _values(shapes[0]) == ["2"]
    assert [(t["frame"], t["label_id"]) for t in after["tags"]] == [(1, labels["icdar"]["id"])]


def test_vggface2(admin_client: Any, task: Any) -> None:
    task_id, labels = task
    face = labels["face"]["id"]
    landmarks = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    body = {
        "tags": [{"label_id": labels["icdar"]["id"], "frame": 2}],
        "shapes": [
            {"type": "rectangle", "label_id": face, "frame": 0, "points": [1, 2, 30, 40]},
            {"type": "points", "label_id": face, "frame": 0, "points": landmarks},
        ],
    }
    after = _round_trip(admin_client, task_id, body, "VGGFace2 1.0")
    assert sorted((s["frame"], s["type"], s["points"]) for s in after["shapes"]) == [
        (0, "points", landmarks),
        (0, "rectangle", [1, 2, 30, 40]),
    ]
    assert [(t["frame"], t["label_id"]) for t in after["tags"]] == [(2, labels["icdar"]["id"])]


def test_icdar_recognition_and_localization(admin_client: Any, task: Any) -> None:
    task_id, labels = task
    icdar = labels["icdar"]
    text = _spec(icdar, "text")
    body = {
        "tags": [
            {"label_id": icdar["id"], "frame": 1, "attributes": [{"spec_id": text, "value": 'a "b", c'}]}
        ],
        "shapes": [],
    }
    after = _round_trip(admin_client, task_id, body, "ICDAR Recognition 1.0")
    assert [(t["frame"], t["label_id"], _values(t)) for t in after["tags"]] == [
        (1, icdar["id"], ['a "b", c'])
    ]

    body = {
        "tags": [],
        "shapes": [
            {"type": "rectangle", "label_id": icdar["id"], "frame": 0, "points": [1, 2, 3, 4],
             "attributes": [{"spec_id": text, "value": "Exit"}]},
            {"type": "polygon", "label_id": icdar["id"], "frame": 2, "points": [0, 0, 4, 0, 4, 4, 0, 4],
             "attributes": [{"spec_id": text, "value": "two words"}]},
        ],
    }  # fmt: skip
    after = _round_trip(admin_client, task_id, body, "ICDAR Localization 1.0")
    assert sorted((s["frame"], s["type"], s["points"], _values(s)) for s in after["shapes"]) == [
        (0, "rectangle", [1, 2, 3, 4], ["Exit"]),
        (2, "polygon", [0, 0, 4, 0, 4, 4, 0, 4], ["two words"]),
    ]
