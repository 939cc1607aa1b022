"""Hostile backups restored through ``POST /api/tasks/backup`` and ``POST /api/projects/backup``:
the corpus archives sent whole, and real backups with one file at a time replaced by a corpus file
(manifests and annotations by hostile JSON, frames by hostile images). Each must fail naming the
file, and leave no row and no file behind."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from annota.runtime.settings import Settings
from tests.media import make_jpeg, wait_for_request
from tests.runtime.api.hostile import corpus, hostile_settings, outcome, refused, snapshot, unexpected_errors

ARCHIVES = corpus("archives")
JSON = corpus("datasets", {".json"})
IMAGES = corpus("media", {".jpg", ".png"})
ON_POSTGRES = {"traversal.zip", "symlink.tar", "bomb.zip", "coco_wrong_types.json", "non_utf8.json",
               "truncated.jpg", "bomb.png"}  # fmt: skip


@pytest.fixture
def annota_settings(tmp_path: Path, annota_database_url: str) -> Settings:
    return hostile_settings(tmp_path, annota_database_url)


def backup(client: Any, kind: str, object_id: int) -> bytes:
    response = client.post(f"/api/{kind}s/{object_id}/backup/export", params={"location": "local"})
    assert response.status_code == 202, response.text
    request = wait_for_request(client, response.json()["rq_id"])
    assert request["status"] == "finished", request["message"]
    download = client.get(request["result_url"])
    assert download.status_code == 200
    return bytes(download.content)


def replaced(archive: bytes) -> list[tuple[str, str, bytes]]:
    """``(label, replaced file, backup)``: every JSON file of the backup replaced by each hostile
    JSON file (but the media index, which a restore rebuilds), and its first frame by each hostile
    image."""
    with zipfile.ZipFile(io.BytesIO(archive)) as source:
        members = {name: source.read(name) for name in source.namelist() if not name.endswith("/")}
    # index.json (like manifest.jsonl) is rebuilt on restore, never read
    targets = [
        (name, JSON) for name in sorted(members) if name.endswith(".json") and not name.endswith("index.json")
    ]
    frames = sorted(name for name in members if PurePosixPath(name).suffix in (".jpg", ".jpeg", ".png"))
    targets += [(frames[0], IMAGES)] if frames else []
    found = []
    for target, stand_ins in targets:
        for stand_in, content in sorted(stand_ins.items()):
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as output:
                for name, data in members.items():
                    output.writestr(name, content if name == target else data)
            found.append((f"{stand_in} as {target}", target, buffer.getvalue()))
    return found


def params() -> list[Any]:
    return [
        pytest.param("sqlite", "task", False, id="sqlite-task"),
        pytest.param("sqlite", "project", False, id="sqlite-project"),
        pytest.param("postgres", "task", True, id="postgres-task", marks=pytest.mark.postgres),
        pytest.param("postgres", "project", True, id="postgres-project", marks=pytest.mark.postgres),
    ]


@pytest.mark.parametrize(
    ("annota_database_url", "kind", "subset"), params(), indirect=["annota_database_url"]
)
def test_hostile_backups_fail_naming_the_file_and_leave_nothing(
    admin_client: Any, make_media_task: Callable[..., int], run_async: Callable[..., Any],
    caplog: pytest.LogCaptureFixture, kind: str, subset: bool,
) -> None:  # fmt: skip
    files = [("a.jpg", make_jpeg(32, 24)), ("b.jpg", make_jpeg(32, 24, 90))]
    if kind == "task":
        original = backup(admin_client, "task", make_media_task(admin_client, files))
    else:
        response = admin_client.post("/api/projects", json={"name": "p", "labels": [{"name": "car"}]})
        project_id = response.json()["id"]
        task_id = make_media_task(admin_client, files, labels=[])
        assert admin_client.patch(f"/api/tasks/{task_id}", json={"project_id": project_id}).status_code == 200
        original = backup(admin_client, "project", project_id)
    cases = [
        (f"{label}", [PurePosixPath(target).name], content) for label, target, content in replaced(original)
    ]
    cases += [(name, [name], content) for name, content in sorted(ARCHIVES.items())]
    if subset:
        cases = [case for case in cases if case[0].split(" ")[0] in ON_POSTGRES]
    problems: list[str] = []
    caplog.clear()
    for label, names, content in cases:
        upload = names[0] if label in ARCHIVES else "backup.zip"
        before = snapshot(admin_client, run_async)
        response = admin_client.post(f"/api/{kind}s/backup", files={f"{kind}_file": (upload, content)})
        status, message = outcome(admin_client, response)
        why = refused(status, message, names)
        if why:
            problems.append(f"{label}: {why}")
        problems += [f"{label}: {change}" for change in before.changes(snapshot(admin_client, run_async))]
        problems += [f"{label}: unexpected error {error}" for error in unexpected_errors(caplog)]
    assert not problems, f"{len(problems)} problems in {len(cases)} backups:\n" + "\n".join(problems)
