"""Degenerate but common annotation files import through the API the way CVAT takes them: a COCO
object with ``"segmentation": [[]]`` and a bbox (how CVAT and its SDK write boxes) is a rectangle."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

from tests.media import make_jpeg, wait_for_request


def _coco_zip(document: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("annotations/instances_default.json", json.dumps(document))
    return buffer.getvalue()


def test_coco_box_with_an_empty_segmentation_becomes_a_rectangle(
    admin_client: Any, make_media_task: Callable[..., int]
) -> None:
    task_id = make_media_task(admin_client, [("img0.jpg", make_jpeg(64, 48))], name="boxes")
    document = {
        "images": [{"id": 1, "file_name": "img0.jpg", "width": 64, "height": 48}],
        "categories": [{"id": 1, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[]], "bbox": [4, 5, 20, 10],
             "area": 200, "iscrowd": 0},
        ],
    }  # fmt: skip
    response = admin_client.post(
        f"/api/tasks/{task_id}/annotations",
        params={"format": "COCO 1.0"},
        files={"annotation_file": ("coco.zip", _coco_zip(document))},
    )
    assert response.status_code == 202, response.text
    request = wait_for_request(admin_client, response.json()["rq_id"])
    assert request["status"] == "finished", request["message"]
    shapes = admin_client.get(f"/api/tasks/{task_id}/annotations").json()["shapes"]
    assert [(s["type"], s["points"], s["frame"]) for s in shapes] == [("rectangle", [4, 5, 24, 15], 0)]
