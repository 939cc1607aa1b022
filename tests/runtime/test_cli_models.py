"""``annota models list | check | run``: the declared models from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from annota.runtime.cli import main
from tests.models_media import astronaut, blank_png, iou

CONFIG = """
[[models]]
name = "faces"
kind = "opencv-haar"
labels = ["person"]
description = "frontal faces"

[[models]]
name = "people"
kind = "opencv-hog"

[[models]]
name = "broken"
kind = "opencv-haar"
options = {cascade = "haarcascade_none.xml"}
"""


@pytest.fixture
def annota_database_url(sqlite_database_url: str) -> str:
    # the command writes through the same services as the API: one database suffices
    return sqlite_database_url


@pytest.fixture
def models_cli(annota_settings: Any, tmp_path: Path) -> Any:
    config = tmp_path / "annota.toml"
    config.write_text(CONFIG)
    env = {
        "ANNOTA_CONFIG": str(config),
        "ANNOTA_DATABASE_URL": annota_settings.database_url,
        "ANNOTA_DATA_DIR": annota_settings.data_dir,
    }

    def invoke(*args: str) -> Result:
        return CliRunner(env=env).invoke(main, ["models", *args])

    return invoke


def test_list_and_check(models_cli: Any) -> None:
    listed = models_cli("list", "--json")
    assert listed.exit_code == 0, listed.output
    assert [(m["name"], m["kind"], m["source"]) for m in json.loads(listed.stdout)] == [
        ("faces", "opencv-haar", "annota.toml"),
        ("people", "opencv-hog", "annota.toml"),
        ("broken", "opencv-haar", "annota.toml"),
    ]
    assert "frontal faces" in models_cli("list").stdout
    checked = models_cli("check")
    assert checked.exit_code == 1
    lines = checked.stdout.splitlines()
    assert lines[0] == "faces: ok (opencv-haar; labels: person)"
    assert lines[1] == "people: ok (opencv-hog; labels: person)"
    assert lines[2].startswith("broken: error: Model 'broken': no cascade file")
    assert models_cli("check", "faces").exit_code == 0
    assert "Model 'nope' not found" in models_cli("check", "nope").stdout


def test_run_annotates_a_task(user_client: Any, make_media_task: Any, models_cli: Any) -> None:
    files = [("a.png", astronaut()), ("b.png", blank_png())]
    task_id = make_media_task(user_client, files, labels=[{"name": "person"}])
    ran = models_cli("run", "--task", str(task_id), "--model", "faces")
    assert ran.exit_code == 0, ran.output
    assert f"task {task_id}: faces added 1 shapes and 0 tags" in ran.stdout
    (shape,) = user_client.get(f"/api/tasks/{task_id}/annotations").json()["shapes"]
    assert shape["frame"] == 0 and shape["source"] == "auto"
    assert iou(shape["points"], [173, 66, 274, 181]) > 0.5
    # --clear replaces; a threshold above every confidence finds nothing
    assert models_cli("run", "--task", str(task_id), "--model", "faces", "--clear").exit_code == 0
    assert len(user_client.get(f"/api/tasks/{task_id}/annotations").json()["shapes"]) == 1
    none = models_cli("run", "--task", str(task_id), "--model", "faces", "--threshold", "1", "--clear")
    assert none.exit_code == 0 and user_client.get(f"/api/tasks/{task_id}/annotations").json()["shapes"] == []
    # a model whose labels the task lacks, an unknown model, an unknown task are named
    unmatched = models_cli("run", "--task", str(task_id), "--model", "people")
    assert unmatched.exit_code == 0, unmatched.output
    other = make_media_task(user_client, files, labels=[{"name": "car"}])
    refused = models_cli("run", "--task", str(other), "--model", "faces")
    assert refused.exit_code != 0 and "No label of model 'faces' ('person')" in refused.output
    assert "Model 'nope' not found" in models_cli("run", "--task", str(task_id), "--model", "nope").output
    assert "Task 999 not found" in models_cli("run", "--task", "999", "--model", "faces").output
