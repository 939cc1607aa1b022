"""Dataset export and import through the unmodified cvat-cli against a real annota server:
``task export-dataset`` (CVAT for images by default, COCO with images into a directory, where the
file name comes from ``Content-Disposition``) and ``task import-dataset`` (CVAT 1.1 by default,
and COCO), on SQLite and on PostgreSQL + Redis with an arq worker."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import cv2
import httpx2 as httpx
import numpy as np
import pytest

from tests.e2e.conftest import ADMIN, LiveServer
from tests.e2e.test_cvat_cli_media import ok

pytestmark = pytest.mark.slow


def make_task(server: LiveServer, tmp_path: Path) -> int:
    paths = []
    for index in range(3):
        path = tmp_path / f"frame_{index}.jpg"
        assert cv2.imwrite(str(path), np.full((48, 64, 3), 40 * index, dtype=np.uint8))
        paths.append(str(path))
    labels = json.dumps([{"name": "car"}, {"name": "road"}])
    created = ok(server.cvat_cli("task", "create", "datasets", "local", *paths, "--labels", labels,
                                 "--completion_verification_period", "0.2"))  # fmt: skip
    return int(created.split()[-1])


def api(server: LiveServer, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, f"{server.url}{path}", auth=ADMIN, timeout=30, **kwargs)
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def annotate(server: LiveServer, task_id: int) -> list[list[float]]:
    labels = {
        label["name"]: label["id"]
        for label in api(server, "GET", f"/api/labels?task_id={task_id}")["results"]
    }
    boxes = [[1.5, 2.0, 20.25, 30.0], [10.0, 5.0, 40.0, 25.5], [0.0, 0.0, 63.0, 47.0]]
    body = {
        "shapes": [
            {"type": "rectangle", "label_id": labels["car"], "frame": frame, "points": box}
            for frame, box in enumerate(boxes)
        ]
        + [
            {
                "type": "polygon",
                "label_id": labels["road"],
                "frame": 1,
                "points": [1, 1, 30, 1, 30, 20, 1, 20],
            }
        ],
    }
    api(server, "PUT", f"/api/tasks/{task_id}/annotations", json=body)
    return boxes


def rectangles(server: LiveServer, task_id: int) -> list[float]:
    """Frame and points of every rectangle, flat and in frame order."""
    shapes = api(server, "GET", f"/api/tasks/{task_id}/annotations")["shapes"]
    found = sorted((s["frame"], s["points"]) for s in shapes if s["type"] == "rectangle")
    return [value for frame, points in found for value in (frame, *points)]


def test_cli_exports_and_imports_datasets(live_server: LiveServer, tmp_path: Path) -> None:
    task_id = make_task(live_server, tmp_path)
    boxes = annotate(live_server, task_id)
    expected = [value for frame, box in enumerate(boxes) for value in (frame, *box)]

    cvat_zip = tmp_path / "cvat.zip"
    ok(live_server.cvat_cli("task", "export-dataset", str(task_id), str(cvat_zip),
                            "--completion_verification_period", "0.2"))  # fmt: skip
    with zipfile.ZipFile(cvat_zip) as archive:
        xml = archive.read("annotations.xml").decode()
    assert xml.count("<box ") == 3 and xml.count("<polygon ") == 1

    out_dir = tmp_path / "coco"
    out_dir.mkdir()
    ok(live_server.cvat_cli("task", "export-dataset", str(task_id), str(out_dir), "--format", "COCO 1.0",
                            "--with-images", "true", "--completion_verification_period", "0.2"))  # fmt: skip
    (coco_zip,) = out_dir.iterdir()
    assert coco_zip.name.startswith(f"task_{task_id}_dataset_") and coco_zip.suffix == ".zip"
    with zipfile.ZipFile(coco_zip) as archive:
        names = archive.namelist()
        coco = json.loads(archive.read("annotations/instances_default.json"))
    assert sum(name.startswith("images/") and name.endswith(".jpg") for name in names) == 3
    assert len(coco["annotations"]) == 4

    api(live_server, "DELETE", f"/api/tasks/{task_id}/annotations")
    ok(live_server.cvat_cli("task", "import-dataset", str(task_id), str(coco_zip), "--format", "COCO 1.0"))
    assert rectangles(live_server, task_id) == pytest.approx(expected)

    api(live_server, "DELETE", f"/api/tasks/{task_id}/annotations")
    ok(live_server.cvat_cli("task", "import-dataset", str(task_id), str(cvat_zip)))
    assert rectangles(live_server, task_id) == pytest.approx(expected)
    polygons = [s for s in api(live_server, "GET", f"/api/tasks/{task_id}/annotations")["shapes"]
                if s["type"] == "polygon"]  # fmt: skip
    assert len(polygons) == 1 and polygons[0]["frame"] == 1


def test_cli_creates_a_project_from_a_dataset_and_exports_it(live_server: LiveServer, tmp_path: Path) -> None:
    from tests.runtime.api.test_project_dataset_import import coco_dataset

    dataset = tmp_path / "coco.zip"
    dataset.write_bytes(coco_dataset({"train": 3, "val": 2}))
    created = ok(live_server.cvat_cli("project", "create", "from coco", "--labels", '[{"name": "car"}]',
                                      "--dataset_path", str(dataset), "--dataset_format", "COCO 1.0",
                                      "--completion_verification_period", "0.2"))  # fmt: skip
    project_id = int(created.split()[-1])
    tasks = api(live_server, "GET", f"/api/tasks?project_id={project_id}")["results"]
    assert sorted((t["name"], t["size"]) for t in tasks) == [("train", 3), ("val", 2)]

    exported = tmp_path / "export.zip"
    ok(live_server.cvat_cli("project", "export-dataset", str(project_id), str(exported),
                            "--format", "COCO 1.0", "--completion_verification_period", "0.2"))  # fmt: skip
    with zipfile.ZipFile(exported) as archive:
        counts = {
            name: len(json.loads(archive.read(name))["annotations"])
            for name in archive.namelist()
            if name.startswith("annotations/")
        }
    assert counts == {"annotations/instances_train.json": 6, "annotations/instances_val.json": 4}
