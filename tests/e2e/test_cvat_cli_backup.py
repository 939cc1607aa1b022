"""Backups through the unmodified cvat-cli against a real annota server: ``task backup`` writes a
CVAT backup ZIP, ``task create-from-backup`` restores it into a new task with the same frames,
labels and annotations, for an image task and a video task, on SQLite and on PostgreSQL + Redis
with an arq worker."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.e2e.conftest import ADMIN, LiveServer
from tests.e2e.test_cvat_cli_media import (
    FRAME_COUNT,
    assert_frame_file,
    drawn_frames,
    ok,
    write_images,
    write_video,
)

pytestmark = pytest.mark.slow

LABELS = [
    {"name": "car", "attributes": [{"name": "color", "input_type": "select", "mutable": False,
                                    "values": ["red", "blue"], "default_value": "red"}]},
    {"name": "weather", "type": "tag"},
]  # fmt: skip


def api(server: LiveServer, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, f"{server.url}{path}", auth=ADMIN, timeout=30, **kwargs)
    assert response.status_code < 300, response.text
    return response.json()


def annotate(server: LiveServer, task_id: int) -> None:
    labels = {
        label["name"]: label for label in api(server, "GET", f"/api/labels?task_id={task_id}")["results"]
    }
    car, weather = labels["car"], labels["weather"]["id"]
    color = car["attributes"][0]["id"]
    body = {
        "tags": [{"label_id": weather, "frame": 1}],
        "shapes": [
            {"type": "rectangle", "label_id": car["id"], "frame": 0, "points": [2, 3, 40, 30],
             "attributes": [{"spec_id": color, "value": "blue"}]},
            {"type": "polygon", "label_id": car["id"], "frame": 4, "points": [1, 1, 20, 1, 10, 15]},
        ],
        "tracks": [
            {"label_id": car["id"], "frame": 1, "shapes": [
                {"type": "rectangle", "frame": 1, "points": [0, 0, 10, 10]},
                {"type": "rectangle", "frame": 3, "points": [20, 0, 30, 10]},
                {"type": "rectangle", "frame": 4, "points": [20, 0, 30, 10], "outside": True},
            ]},
        ],
    }  # fmt: skip
    api(server, "PUT", f"/api/tasks/{task_id}/annotations", json=body)


def named_annotations(server: LiveServer, task_id: int) -> dict[str, Any]:
    """The task's annotations with label and attribute names instead of ids, without object ids."""
    labels = api(server, "GET", f"/api/labels?task_id={task_id}")["results"]
    names = {label["id"]: label["name"] for label in labels}
    specs = {a["id"]: a["name"] for label in labels for a in label["attributes"]}

    def clean(value: Any) -> Any:
        if isinstance(value, list):
            return [clean(item) for item in value]
        if not isinstance(value, dict):
            return value
        return {
            key: names[item] if key == "label_id" else specs[item] if key == "spec_id" else clean(item)
            for key, item in value.items()
            if key != "id"
        }

    data = clean(api(server, "GET", f"/api/tasks/{task_id}/annotations"))
    data.pop("version")
    for key in ("tags", "shapes", "tracks"):
        data[key].sort(key=lambda obj: (obj["frame"], json.dumps(obj, sort_keys=True)))
    return data


def frames_of(server: LiveServer, task_id: int) -> list[tuple[str, int, int]]:
    meta = api(server, "GET", f"/api/tasks/{task_id}/data/meta")
    return [(frame["name"], frame["width"], frame["height"]) for frame in meta["frames"]]


@pytest.mark.parametrize("kind", ["images", "video"])
def test_cli_backs_up_and_restores_a_task(live_server: LiveServer, tmp_path: Path, kind: str) -> None:
    frames = drawn_frames(FRAME_COUNT[kind])
    media_dir = tmp_path / "media"
    media_dir.mkdir()
    media = write_images(media_dir, frames) if kind == "images" else write_video(media_dir, frames)
    created = ok(
        live_server.cvat_cli(
            "task", "create", f"{kind} task", "local", *map(str, media), "--labels", json.dumps(LABELS),
            "--segment_size", "3", "--completion_verification_period", "0.2",
        )
    )  # fmt: skip
    task_id = int(created.split()[-1])
    annotate(live_server, task_id)

    backup = tmp_path / "backup.zip"
    ok(
        live_server.cvat_cli(
            "task", "backup", str(task_id), str(backup), "--completion_verification_period", "0.2"
        )
    )
    with zipfile.ZipFile(backup) as archive:
        names = set(archive.namelist())
        assert json.loads(archive.read("task.json"))["version"] == "1.0"
    assert {"task.json", "annotations.json", "data/manifest.jsonl", "data/index.json"} <= names
    assert {f"data/{path.name}" for path in media} <= names

    restored_output = ok(
        live_server.cvat_cli(
            "task", "create-from-backup", str(backup), "--completion_verification_period", "0.2"
        )
    )
    restored = int(restored_output.split()[-1])
    assert restored != task_id

    original_task = api(live_server, "GET", f"/api/tasks/{task_id}")
    restored_task = api(live_server, "GET", f"/api/tasks/{restored}")
    for key in ("name", "size", "segment_size", "mode", "image_quality"):
        assert restored_task[key] == original_task[key], key
    assert frames_of(live_server, restored) == frames_of(live_server, task_id)
    expected = named_annotations(live_server, task_id)
    assert len(expected["shapes"]) == 2 and len(expected["tracks"]) == 1 and len(expected["tags"]) == 1
    assert named_annotations(live_server, restored) == expected

    last = len(frames) - 1
    out = tmp_path / "restored-frames"
    ok(live_server.cvat_cli("task", "frames", str(restored), "0", str(last), "--outdir", str(out)))
    for number in (0, last):
        (saved,) = sorted(out.glob(f"task_{restored}_frame_{number:06d}.*"))
        assert_frame_file(saved, frames[number])
