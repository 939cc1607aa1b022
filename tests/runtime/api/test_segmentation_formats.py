"""LFW, KITTI, CamVid, Cityscapes, ICDAR Segmentation, Open Images and MOTS PNG through the API: a
task's annotations exported, deleted and imported back come back the same, in what each format
carries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from annota.core.formats import masks
from tests.media import make_jpeg
from tests.runtime.api.round_trips import round_trip, spec

WIDTH, HEIGHT = 64, 48


@pytest.fixture
def annota_database_url(sqlite_database_url: str) -> str:
    """SQLite only: what is tested is the formats, which the database does not see."""
    return sqlite_database_url


@pytest.fixture
def task(admin_client: Any, make_media_task: Callable[..., int]) -> tuple[int, dict[str, dict[str, Any]]]:
    def text(name: str) -> dict[str, Any]:
        return {"name": name, "input_type": "text", "mutable": False, "values": []}

    labels = [
        {"name": "car", "color": "#ff0000", "attributes": [text("positive_pairs"), text("is_crowd")]},
        {"name": "road", "color": "#00ff00", "attributes": []},
        {"name": "icdar", "attributes": [text("text"), text("color"), text("center"), text("index")]},
    ]
    files = [(f"img{i}.jpg", make_jpeg(WIDTH, HEIGHT, value=i * 40)) for i in range(3)]
    task_id = make_media_task(admin_client, files, name="segments", labels=labels)
    read = admin_client.get(f"/api/labels?task_id={task_id}").json()["results"]
    return task_id, {label["name"]: label for label in read}


def _block(left: int, top: int, right: int, bottom: int) -> np.ndarray:
    bitmap = np.zeros((HEIGHT, WIDTH), dtype=bool)
    bitmap[top:bottom, left:right] = True
    return bitmap


def _mask(label: int, frame: int, bitmap: np.ndarray, **extra: Any) -> dict[str, Any]:
    return {
        "type": "mask",
        "label_id": label,
        "frame": frame,
        "points": masks.bitmap_to_cvat(bitmap),
        **extra,
    }


def _bitmap(shape: dict[str, Any]) -> list[list[bool]]:
    return masks.cvat_to_bitmap(shape["points"], WIDTH, HEIGHT).tolist()


@pytest.mark.parametrize("format_name", ["CamVid 1.0", "Cityscapes 1.0", "KITTI 1.0"])
def test_class_maps(admin_client: Any, task: Any, format_name: str) -> None:
    task_id, labels = task
    car, road = labels["car"]["id"], labels["road"]["id"]
    body = {
        "shapes": [
            _mask(road, 0, _block(0, 30, 64, 48)),
            {
                "type": "polygon",
                "label_id": car,
                "frame": 0,
                "points": [5, 5, 20, 5, 20, 20, 5, 20],
                "z_order": 1,
            },
            _mask(car, 2, _block(40, 0, 50, 10)),
        ]
    }
    after = round_trip(admin_client, task_id, body, format_name)
    found = sorted((s["frame"], s["label_id"], s["type"]) for s in after["shapes"])
    assert found == [(0, car, "mask"), (0, road, "mask"), (2, car, "mask")]
    by_key = {(s["frame"], s["label_id"]): s for s in after["shapes"]}
    assert _bitmap(by_key[(0, road)]) == _block(0, 30, 64, 48).tolist()
    assert _bitmap(by_key[(2, car)]) == _block(40, 0, 50, 10).tolist()
    assert np.asarray(_bitmap(by_key[(0, car)])).sum() == 16 * 16


def test_icdar_segmentation(admin_client: Any, task: Any) -> None:
    task_id, labels = task
    icdar = labels["icdar"]
    text = spec(icdar, "text")
    body = {
        "shapes": [
            _mask(icdar["id"], 1, _block(0, 0, 5, 8), group=1, attributes=[{"spec_id": text, "value": "O"}]),
            _mask(icdar["id"], 1, _block(6, 0, 10, 8), group=1, attributes=[{"spec_id": text, "value": "K"}]),
        ]
    }
    after = round_trip(admin_client, task_id, body, "ICDAR Segmentation 1.0")
    shapes = sorted(after["shapes"], key=lambda s: s["points"][-4])
    values = [{a["spec_id"]: a["value"] for a in s["attributes"]} for s in shapes]
    assert [v[text] for v in values] == ["O", "K"]
    assert [v[spec(icdar, "index")] for v in values] == ["0", "1"]
    assert shapes[0]["group"] == shapes[1]["group"] != 0
    assert _bitmap(shapes[1]) == _block(6, 0, 10, 8).tolist()


def test_lfw(admin_client: Any, task: Any) -> None:
    task_id, labels = task
    car = labels["car"]
    pairs = spec(car, "positive_pairs")
    body = {
        "tags": [
            {"label_id": car["id"], "frame": 0, "attributes": [{"spec_id": pairs, "value": "img2"}]},
            {"label_id": car["id"], "frame": 2},
        ],
        "shapes": [{"type": "points", "label_id": car["id"], "frame": 0, "points": [1, 2, 3, 4]}],
    }
    after = round_trip(admin_client, task_id, body, "LFW 1.0")
    tags = sorted(after["tags"], key=lambda t: t["frame"])
    assert [(t["frame"], t["label_id"]) for t in tags] == [(0, car["id"]), (2, car["id"])]
    assert [a["value"] for a in tags[0]["attributes"] if a["spec_id"] == pairs] == ["img2"]
    assert [(s["frame"], s["type"], s["points"]) for s in after["shapes"]] == [(0, "points", [1, 2, 3, 4])]


def test_open_images(admin_client: Any, task: Any) -> None:
    task_id, labels = task
    car, road = labels["car"]["id"], labels["road"]["id"]
    body = {
        "tags": [{"label_id": road, "frame": 1}],
        "shapes": [
            {"type": "rectangle", "label_id": car, "frame": 0, "points": [8, 4, 32, 24], "group": 5,
             "occluded": True},
            _mask(car, 0, _block(10, 6, 30, 20), group=5),
        ],
    }  # fmt: skip
    after = round_trip(admin_client, task_id, body, "Open Images V6 1.0")
    assert [(t["frame"], t["label_id"]) for t in after["tags"]] == [(1, road)]
    box, mask = sorted(after["shapes"], key=lambda s: s["type"], reverse=True)
    assert (box["type"], box["points"], box["occluded"]) == ("rectangle", [8, 4, 32, 24], True)
    assert mask["type"] == "mask" and _bitmap(mask) == _block(10, 6, 30, 20).tolist()
    assert box["group"] == mask["group"] != 0


def test_mots(admin_client: Any, task: Any) -> None:
    task_id, labels = task
    car = labels["car"]["id"]
    first, second = masks.bitmap_to_cvat(_block(0, 0, 10, 10)), masks.bitmap_to_cvat(_block(5, 5, 15, 15))
    body = {
        "tracks": [
            {"label_id": car, "frame": 0, "shapes": [
                {"type": "mask", "frame": 0, "points": first},
                {"type": "mask", "frame": 1, "points": second},
                {"type": "mask", "frame": 2, "points": second, "outside": True},
            ]},
        ]
    }  # fmt: skip
    after = round_trip(admin_client, task_id, body, "MOTS PNG 1.0")
    (track,) = after["tracks"]
    assert track["label_id"] == car
    shapes = sorted(track["shapes"], key=lambda s: s["frame"])
    assert [(s["frame"], s["outside"]) for s in shapes] == [(0, False), (1, False), (2, True)]
    assert _bitmap(shapes[1]) == _block(5, 5, 15, 15).tolist()
