"""WiderFace, VGGFace2 and the ICDAR formats through the API: a task's annotations exported, deleted
and imported back come back the same, in what each format carries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.media import make_jpeg
from tests.runtime.api.round_trips import round_trip, spec


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


def _values(entry: dict[str, Any]) -> list[str]:
    return [a["value"] for a in entry["attributes"]]


def test_widerface(admin_client: Any, task: Any) -> None:
    task_id, labels = task
    face = labels["face"]
    body = {
        "tags": [{"label_id": labels["icdar"]["id"], "frame": 1}],
        "shapes": [
            {"type": "rectangle", "label_id": face["id"], "frame": 0, "points": [1, 2, 30, 40],
             "occluded": True, "attributes": [{"spec_id": spec(face, "blur"), "value": "2"}]},
            {"type": "rectangle", "label_id": labels["icdar"]["id"], "frame": 2, "points": [5, 5, 9, 9]},
        ],
    }  # fmt: skip
    after = round_trip(admin_client, task_id, body, "WiderFace 1.0")
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
    after = round_trip(admin_client, task_id, body, "VGGFace2 1.0")
    assert sorted((s["frame"], s["type"], s["points"]) for s in after["shapes"]) == [
        (0, "points", landmarks),
        (0, "rectangle", [1, 2, 30, 40]),
    ]
    assert [(t["frame"], t["label_id"]) for t in after["tags"]] == [(2, labels["icdar"]["id"])]


def test_icdar_recognition_and_localization(admin_client: Any, task: Any) -> None:
    task_id, labels = task
    icdar = labels["icdar"]
    text = spec(icdar, "text")
    body = {
        "tags": [
            {"label_id": icdar["id"], "frame": 1, "attributes": [{"spec_id": text, "value": 'a "b", c'}]}
        ],
        "shapes": [],
    }
    after = round_trip(admin_client, task_id, body, "ICDAR Recognition 1.0")
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
    after = round_trip(admin_client, task_id, body, "ICDAR Localization 1.0")
    assert sorted((s["frame"], s["type"], s["points"], _values(s)) for s in after["shapes"]) == [
        (0, "rectangle", [1, 2, 3, 4], ["Exit"]),
        (2, "polygon", [0, 0, 4, 0, 4, 4, 0, 4], ["two words"]),
    ]
