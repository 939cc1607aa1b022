"""Importing a dataset into a project (``POST /api/projects/{id}/dataset``): one task per subset
made from the dataset's images, missing labels created, and nothing left behind on failure."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from tests.media import make_jpeg, wait_for_request


def coco_dataset(
    subsets: dict[str, int],
    bad_subset: str | None = None,
    images: bool = True,
    corrupt_subset: str | None = None,
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for subset, count in subsets.items():
            records = [{"id": i + 1, "file_name": f"{subset}_{i}.jpg", "width": 64, "height": 48}
                       for i in range(count)]  # fmt: skip
            annotations = []
            for image in records:
                width = -3 if subset == bad_subset else 10
                annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": 1,
                                    "bbox": [1, 2, width, 12], "area": 120, "iscrowd": 0, "segmentation": [],
                                    "attributes": {"color": "red", "occluded": False}})  # fmt: skip
                annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": 2,
                                    "bbox": [5, 5, 20, 20], "area": 400, "iscrowd": 0,
                                    "segmentation": []})  # fmt: skip
                if images:
                    pixels = (
                        b"not an image" if subset == corrupt_subset else make_jpeg(64, 48, value=image["id"])
                    )
                    archive.writestr(f"images/{subset}/{image['file_name']}", pixels)
            categories = [
                {"id": 1, "name": "car", "supercategory": ""},
                {"id": 2, "name": "bus", "supercategory": ""},
            ]
            body = {"images": records, "annotations": annotations, "categories": categories}
            archive.writestr(f"annotations/instances_{subset}.json", json.dumps(body))
    return buffer.getvalue()


def import_dataset(client: Any, project_id: int, content: bytes) -> dict[str, Any]:
    response = client.post(
        f"/api/projects/{project_id}/dataset",
        params={"format": "COCO 1.0"},
        files={"dataset_file": ("dataset.zip", content)},
    )
    assert response.status_code == 202, response.text
    return wait_for_request(client, response.json()["rq_id"], timeout=120)


def project(client: Any) -> int:
    response = client.post("/api/projects", json={"name": "imported", "labels": [{"name": "car"}]})
    assert response.status_code == 201, response.text
    project_id: int = response.json()["id"]
    return project_id


def project_labels(client: Any, project_id: int) -> dict[str, Any]:
    labels = client.get("/api/labels", params={"project_id": project_id}).json()["results"]
    return {label["name"]: label for label in labels}


def tasks_of(client: Any, project_id: int) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = client.get("/api/tasks", params={"project_id": project_id}).json()[
        "results"
    ]
    return sorted(tasks, key=lambda task: task["name"])


def test_project_import_creates_a_task_per_subset_with_images_and_labels(admin_client: Any) -> None:
    project_id = project(admin_client)
    request = import_dataset(admin_client, project_id, coco_dataset({"train": 3, "val": 2}))
    assert request["status"] == "finished", request["message"]
    assert "Created 2 tasks with 5 images and 1 new labels" in request["message"]
    labels = project_labels(admin_client, project_id)
    assert set(labels) == {"car", "bus"}
    assert [a["name"] for a in labels["bus"]["attributes"]] == []
    tasks = tasks_of(admin_client, project_id)
    assert [(t["name"], t["subset"], t["size"]) for t in tasks] == [("train", "train", 3), ("val", "val", 2)]
    for task in tasks:
        meta = admin_client.get(f"/api/tasks/{task['id']}/data/meta").json()
        assert [f["name"] for f in meta["frames"]] == [f"{task['name']}_{i}.jpg" for i in range(task["size"])]
        shapes = admin_client.get(f"/api/tasks/{task['id']}/annotations").json()["shapes"]
        assert len(shapes) == 2 * task["size"]
        by_label = {s["label_id"]: s for s in shapes if s["frame"] == 0}
        assert by_label[labels["car"]["id"]]["points"] == [1, 2, 11, 14]
        assert by_label[labels["bus"]["id"]]["points"] == [5, 5, 25, 25]


def test_a_failed_project_import_leaves_the_project_as_it_was(admin_client: Any) -> None:
    project_id = project(admin_client)
    request = import_dataset(admin_client, project_id, coco_dataset({"train": 2, "val": 2}, bad_subset="val"))
    assert request["status"] == "failed"
    assert "instances_val.json" in request["message"] and "annotation" in request["message"], request[
        "message"
    ]
    assert tasks_of(admin_client, project_id) == []
    assert set(project_labels(admin_client, project_id)) == {"car"}


def test_a_project_import_needs_the_images(admin_client: Any) -> None:
    project_id = project(admin_client)
    request = import_dataset(admin_client, project_id, coco_dataset({"default": 2}, images=False))
    assert request["status"] == "failed"
    assert "this item has none" in request["message"], request["message"]
    assert tasks_of(admin_client, project_id) == []


def test_a_project_import_failing_after_creating_tasks_removes_them(admin_client: Any, tmp_path: Any) -> None:
    project_id = project(admin_client)
    content = coco_dataset({"a": 2, "b": 2}, corrupt_subset="b")
    request = import_dataset(admin_client, project_id, content)
    assert request["status"] == "failed"
    assert "b_0.jpg" in request["message"], request["message"]
    assert tasks_of(admin_client, project_id) == []
    assert set(project_labels(admin_client, project_id)) == {"car"}
