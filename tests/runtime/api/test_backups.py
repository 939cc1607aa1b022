"""Task and project backups through the API: a backup restores into a task (or project) with the
same settings, frames, labels and annotations; the ZIP has CVAT's layout; a bad backup fails its
request and leaves nothing behind."""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from annota.core.db.tables import Data, Project, Task
from tests.media import make_jpeg, wait_for_request

SKELETON_SVG = (
    '<line x1="10" y1="10" x2="30" y2="30" data-type="edge" data-node-from="1" data-node-to="2"></line>'
    '<circle r="1" cx="10" cy="10" data-type="element node" data-element-id="1" data-node-id="1" '
    'data-label-name="head"></circle>'
    '<circle r="1" cx="30" cy="30" data-type="element node" data-element-id="2" data-node-id="2" '
    'data-label-name="foot"></circle>'
)
LABELS = [
    {"name": "car", "color": "#ff0000", "attributes": [
        {"name": "color", "input_type": "select", "mutable": False, "values": ["red", "blue"],
         "default_value": "red"},
        {"name": "moving", "input_type": "checkbox", "mutable": True, "values": ["false"]},
    ]},
    {"name": "sky", "type": "tag"},
    {"name": "person", "type": "skeleton", "svg": SKELETON_SVG, "sublabels": [
        {"name": "head", "type": "points",
         "attributes": [{"name": "visible", "input_type": "checkbox", "mutable": False, "values": ["true"]}]},
        {"name": "foot", "type": "points"},
    ]},
]  # fmt: skip
FILES = [(f"img_{i}.jpg", make_jpeg(40 + 8 * i, 30 + 2 * i, 20 * i)) for i in range(5)]


def _labels(client: Any, **owner: int) -> list[dict[str, Any]]:
    query = "&".join(f"{key}={value}" for key, value in owner.items())
    results: list[dict[str, Any]] = client.get(f"/api/labels?{query}&page_size=100").json()["results"]
    return [label for label in results if not label.get("has_parent")]


def _ids(labels: list[dict[str, Any]]) -> dict[str, Any]:
    """Label and attribute ids by name: ``car``, ``car.color``, ``person.head``, ``person.head.visible``."""
    ids: dict[str, Any] = {}
    for label in labels:
        ids[label["name"]] = label["id"]
        ids.update({f"{label['name']}.{a['name']}": a["id"] for a in label["attributes"]})
        for sub in label["sublabels"]:
            ids[f"{label['name']}.{sub['name']}"] = sub["id"]
            ids.update({f"{label['name']}.{sub['name']}.{a['name']}": a["id"] for a in sub["attributes"]})
    return ids


def _annotate(client: Any, task_id: int, ids: dict[str, Any]) -> None:
    body = {
        "tags": [{"label_id": ids["sky"], "frame": 1, "source": "auto"}],
        "shapes": [
            {"type": "rectangle", "label_id": ids["car"], "frame": 0, "points": [1, 2, 30, 20], "z_order": 2,
             "occluded": True, "rotation": 15, "group": 3,
             "attributes": [{"spec_id": ids["car.color"], "value": "blue"},
                            {"spec_id": ids["car.moving"], "value": "true"}]},
            {"type": "polygon", "label_id": ids["car"], "frame": 4, "points": [1, 1, 20, 1, 10, 15],
             "score": 0.5, "source": "semi-auto"},
            {"type": "ellipse", "label_id": ids["car"], "frame": 3, "points": [10, 10, 20, 15]},
            {"type": "skeleton", "label_id": ids["person"], "frame": 2, "points": [], "elements": [
                {"type": "points", "label_id": ids["person.head"], "frame": 2, "points": [5, 5],
                 "attributes": [{"spec_id": ids["person.head.visible"], "value": "true"}]},
                {"type": "points", "label_id": ids["person.foot"], "frame": 2, "points": [9, 20],
                 "outside": True},
            ]},
        ],
        "tracks": [
            {"label_id": ids["car"], "frame": 1,
             "attributes": [{"spec_id": ids["car.color"], "value": "red"}],
             "shapes": [
                {"type": "rectangle", "frame": 1, "points": [0, 0, 10, 10],
                 "attributes": [{"spec_id": ids["car.moving"], "value": "true"}]},
                {"type": "rectangle", "frame": 3, "points": [20, 0, 30, 10]},
                {"type": "rectangle", "frame": 4, "points": [20, 0, 30, 10], "outside": True},
            ]},
        ],
    }  # fmt: skip
    response = client.put(f"/api/tasks/{task_id}/annotations", json=body)
    assert response.status_code == 200, response.text


def _normalized_annotations(client: Any, task_id: int, labels: list[dict[str, Any]]) -> dict[str, Any]:
    """The task's annotations with names instead of ids, and without object ids."""
    names: dict[int, str] = {}
    specs: dict[int, str] = {}
    for label in labels:
        names[label["id"]] = label["name"]
        specs.update({a["id"]: f"{label['name']}.{a['name']}" for a in label["attributes"]})
        for sub in label["sublabels"]:
            names[sub["id"]] = f"{label['name']}.{sub['name']}"
            specs.update({a["id"]: f"{label['name']}.{sub['name']}.{a['name']}" for a in sub["attributes"]})

    def clean(value: Any) -> Any:
        if isinstance(value, list):
            return [clean(item) for item in value]
        if not isinstance(value, dict):
            return value
        result = {}
        for key, item in value.items():
            if key == "id":
                continue
            if key in ("label_id", "spec_id"):
                result[key] = (names if key == "label_id" else specs)[item]
            else:
                result[key] = clean(item)
        return result

    response = client.get(f"/api/tasks/{task_id}/annotations")
    assert response.status_code == 200, response.text
    data = clean(response.json())
    data.pop("version", None)
    for key in ("tags", "shapes", "tracks"):
        data[key].sort(key=lambda obj: (obj["frame"], obj["label_id"], json.dumps(obj, sort_keys=True)))
    return data


def _normalized_labels(labels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def attributes(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in a.items() if k != "id"} for a in items]

    return [
        {
            "name": label["name"], "color": label["color"], "type": label["type"],
            "attributes": attributes(label["attributes"]),
            "svg": re.sub(r'data-label-id="\d+"', "", label["svg"]),
            "sublabels": [{"name": s["name"], "type": s["type"], "color": s["color"],
                           "attributes": attributes(s["attributes"])} for s in label["sublabels"]],
        }
        for label in labels
    ]  # fmt: skip


def _backup(client: Any, kind: str, object_id: int) -> bytes:
    response = client.post(f"/api/{kind}s/{object_id}/backup/export?location=local&lightweight=False")
    assert response.status_code == 202, response.text
    request = wait_for_request(client, response.json()["rq_id"])
    assert request["status"] == "finished", request["message"]
    assert request["operation"]["type"] == "export:backup"
    assert request["result_url"].startswith(
        f"http://testserver/api/{kind}s/{object_id}/backup/download?rq_id="
    )
    download = client.get(request["result_url"])
    assert download.status_code == 200, download.text
    assert re.fullmatch(
        rf'attachment; filename="{kind}_{object_id}_backup_\d{{4}}(_\d\d){{5}}\.zip"',
        download.headers["content-disposition"],
    )
    content: bytes = download.content
    return content


def _restore_tus(client: Any, kind: str, content: bytes, name: str = "backup.zip") -> dict[str, Any]:
    path = f"/api/{kind}s/backup/"
    assert client.post(path, params={"filename": name}, headers={"Upload-Start": ""}).status_code == 202
    created = client.post(path, headers={
        "Tus-Resumable": "1.0.0", "Upload-Length": str(len(content)),
        "Upload-Metadata": "filename " + base64.b64encode(name.encode()).decode()})  # fmt: skip
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert location.startswith(f"http://testserver/api/{kind}s/backup/")
    half = len(content) // 2
    for offset, chunk in ((0, content[:half]), (half, content[half:])):
        patched = client.patch(location, content=chunk, headers={
            "Tus-Resumable": "1.0.0", "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream"})  # fmt: skip
        assert patched.status_code == 204, patched.text
        if offset == 0:
            assert client.head(location).headers["upload-offset"] == str(half)
    filename = created.headers["upload-filename"]
    finish = client.post(path, params={"filename": filename}, headers={"Upload-Finish": ""})
    assert finish.status_code == 202, finish.text
    return wait_for_request(client, finish.json()["rq_id"])


def _restore_form(client: Any, kind: str, content: bytes, name: str = "backup.zip") -> dict[str, Any]:
    response = client.post(f"/api/{kind}s/backup", files={f"{kind}_file": (name, content)})
    assert response.status_code == 202, response.text
    return wait_for_request(client, response.json()["rq_id"])


def _task_view(client: Any, task_id: int) -> dict[str, Any]:
    task = client.get(f"/api/tasks/{task_id}").json()
    meta = client.get(f"/api/tasks/{task_id}/data/meta").json()
    jobs = client.get(f"/api/jobs?task_id={task_id}&page_size=100").json()["results"]
    return {
        **{key: task[key] for key in ("name", "segment_size", "overlap", "subset", "bug_tracker", "size",
                                      "image_quality", "mode", "data_chunk_size")},
        "frames": [(f["name"], f["width"], f["height"]) for f in meta["frames"]],
        "meta": {key: meta[key] for key in ("start_frame", "stop_frame", "frame_filter", "deleted_frames")},
        "jobs": sorted((job["start_frame"], job["stop_frame"]) for job in jobs),
    }  # fmt: skip


def _stored(run_async: Callable[..., Any], client: Any) -> list[str]:
    """Every object in the storage backend: media, uploads and exports."""

    async def keys() -> list[str]:
        return [info.key async for info in client.app.state.annota.storage.list("")]

    result: list[str] = run_async(keys)
    return result


def _count(run_async: Callable[..., Any], client: Any, table: Any) -> int:
    async def count() -> int:
        async with client.app.state.annota.sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(table)) or 0)

    result: int = run_async(count)
    return result


@pytest.fixture
def annotated_task(admin_client: Any, make_media_task: Callable[..., int]) -> int:
    task_id = make_media_task(admin_client, FILES, name="backed up", labels=LABELS, segment_size=3, overlap=1)
    described = {"subset": "train", "bug_tracker": "https://bugs.example/1"}
    response = admin_client.patch(f"/api/tasks/{task_id}", json=described)
    assert response.status_code == 200, response.text
    _annotate(admin_client, task_id, _ids(_labels(admin_client, task_id=task_id)))
    return task_id


def test_task_backup_restores_settings_frames_labels_and_annotations(
    admin_client: Any, annotated_task: int
) -> None:
    content = _backup(admin_client, "task", annotated_task)
    request = _restore_tus(admin_client, "task", content)
    assert request["status"] == "finished", request["message"]
    assert request["operation"]["type"] == "import:backup"
    restored = request["result_id"]
    assert isinstance(restored, int) and restored != annotated_task

    original = _task_view(admin_client, annotated_task)
    assert _task_view(admin_client, restored) == original
    assert original["frames"] == [(name, 40 + 8 * i, 30 + 2 * i) for i, (name, _) in enumerate(FILES)]
    assert original["jobs"] == [(0, 2), (2, 4)]
    labels, restored_labels = (
        _labels(admin_client, task_id=annotated_task),
        _labels(admin_client, task_id=restored),
    )
    assert _normalized_labels(restored_labels) == _normalized_labels(labels)
    expected = _normalized_annotations(admin_client, annotated_task, labels)
    assert len(expected["shapes"]) == 4 and len(expected["tracks"]) == 1 and len(expected["tags"]) == 1
    assert _normalized_annotations(admin_client, restored, restored_labels) == expected
    # the original media came back: frame 3 is the same image
    for task_id in (annotated_task, restored):
        frame = admin_client.get(f"/api/tasks/{task_id}/data?type=frame&number=3&quality=original")
        assert frame.status_code == 200 and frame.content == FILES[3][1]


def test_backup_zip_has_cvat_layout(admin_client: Any, annotated_task: int) -> None:
    content = _backup(admin_client, "task", annotated_task)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("task.json"))
        annotations = json.loads(archive.read("annotations.json"))
        index = json.loads(archive.read("data/index.json"))
        lines = archive.read("data/manifest.jsonl").decode().splitlines()
    assert {f"data/{name}" for name, _ in FILES} | {"data/manifest.jsonl", "data/index.json"} <= names
    assert manifest["version"] == "1.0"
    assert (manifest["name"], manifest["subset"], manifest["bug_tracker"]) == (
        "backed up", "train", "https://bugs.example/1")  # fmt: skip
    assert manifest["data"]["image_quality"] == 70 and manifest["data"]["chunk_type"] == "imageset"
    assert [(j["start_frame"], j["stop_frame"]) for j in manifest["jobs"]] == [(0, 2), (2, 4)]
    person = next(label for label in manifest["labels"] if label["name"] == "person")
    assert 'data-label-name="head"' in person["svg"] and "data-label-id" not in person["svg"]
    assert [sub["name"] for sub in person["sublabels"]] == ["head", "foot"]
    assert json.loads(lines[0]) == {"version": "1.1"} and len(lines) == 2 + len(FILES)
    assert len(index) == len(FILES)
    # one entry per job, labels and attributes by name
    assert len(annotations) == 2
    first = annotations[0]
    rectangle = next(shape for shape in first["shapes"] if shape["type"] == "rectangle")
    assert rectangle["label"] == "car" and "label_id" not in rectangle
    assert {"name": "color", "value": "blue"} in rectangle["attributes"]
    skeleton = next(shape for shape in first["shapes"] if shape["type"] == "skeleton")
    assert [element["label"] for element in skeleton["elements"]] == ["head", "foot"]
    assert first["tags"][0]["label"] == "sky" and first["tracks"][0]["label"] == "car"
    assert sorted(shape["frame"] for shape in annotations[1]["shapes"]) == [3, 4]


def test_frame_filter_and_deleted_frames_survive_a_one_shot_restore(
    admin_client: Any, make_media_task: Callable[..., int]
) -> None:
    files = [(f"f{i:02d}.jpg", make_jpeg(32, 24, 10 * i)) for i in range(7)]
    task_id = make_media_task(
        admin_client, files, labels=[{"name": "car"}], start_frame=1, frame_filter="step=2"
    )
    response = admin_client.patch(f"/api/tasks/{task_id}/data/meta", json={"deleted_frames": [1]})
    assert response.status_code == 200, response.text
    content = _backup(admin_client, "task", task_id)
    data = json.loads(_members(content)["task.json"])["data"]
    # the backup holds the kept images only, described as CVAT must see them to restore them
    keys = ("start_frame", "stop_frame", "frame_filter", "deleted_frames")
    assert [data.get(key) for key in keys] == [0, 2, None, [1]]
    assert data["selected_frames"] == {"start_frame": 1, "stop_frame": 5, "frame_filter": "step=2"}
    request = _restore_form(admin_client, "task", content)
    assert request["status"] == "finished", request["message"]
    original, restored = _task_view(admin_client, task_id), _task_view(admin_client, request["result_id"])
    assert restored == original
    assert original["frames"] == [("f01.jpg", 32, 24), ("f03.jpg", 32, 24), ("f05.jpg", 32, 24)]
    assert original["meta"] == {
        "start_frame": 1,
        "stop_frame": 5,
        "frame_filter": "step=2",
        "deleted_frames": [1],
    }


def _project_task(client: Any, project_id: int, name: str, files: list[tuple[str, bytes]]) -> int:
    response = client.post("/api/tasks", json={"name": name, "project_id": project_id})
    assert response.status_code == 201, response.text
    task_id: int = response.json()["id"]
    response = client.post(
        f"/api/tasks/{task_id}/data",
        data={"image_quality": "80"},
        files=[(f"client_files[{i}]", item) for i, item in enumerate(files)],
    )
    assert response.status_code == 202, response.text
    assert wait_for_request(client, response.json()["rq_id"])["status"] == "finished"
    return task_id


def test_project_backup_restores_project_labels_and_tasks(admin_client: Any) -> None:
    response = admin_client.post("/api/projects", json={"name": "proj", "labels": LABELS})
    assert response.status_code == 201, response.text
    project_id = response.json()["id"]
    first = _project_task(admin_client, project_id, "first", FILES[:2])
    second = _project_task(admin_client, project_id, "second", FILES)
    ids = _ids(_labels(admin_client, project_id=project_id))
    _annotate(admin_client, second, ids)
    content = _backup(admin_client, "project", project_id)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        names = set(archive.namelist())
        assert json.loads(archive.read("project.json"))["version"] == "1.0"
    assert {"task_0/task.json", "task_0/annotations.json", "task_0/data/img_0.jpg",
            "task_1/task.json", "task_1/data/img_4.jpg", "task_1/data/manifest.jsonl"} <= names  # fmt: skip

    request = _restore_form(admin_client, "project", content)
    assert request["status"] == "finished", request["message"]
    restored = request["result_id"]
    project = admin_client.get(f"/api/projects/{restored}").json()
    assert project["name"] == "proj"
    labels = _labels(admin_client, project_id=project_id)
    restored_labels = _labels(admin_client, project_id=restored)
    assert _normalized_labels(restored_labels) == _normalized_labels(labels)
    tasks = admin_client.get(f"/api/tasks?project_id={restored}&sort=id").json()["results"]
    assert [task["name"] for task in tasks] == ["first", "second"]
    for old, new in zip((first, second), (task["id"] for task in tasks), strict=True):
        assert _task_view(admin_client, new) == _task_view(admin_client, old)
        assert _normalized_annotations(admin_client, new, restored_labels) == _normalized_annotations(
            admin_client, old, labels
        )


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _members(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _with_annotation_label(members: dict[str, bytes], label: str, frame: int = 0) -> dict[str, bytes]:
    annotations = json.loads(members["annotations.json"])
    annotations[0]["shapes"].append({"type": "rectangle", "label": label, "frame": frame,
                                     "points": [0, 0, 1, 1], "attributes": []})  # fmt: skip
    return {**members, "annotations.json": json.dumps(annotations).encode()}


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not a zip", "is not a ZIP archive"),
        ("no task.json", "has no task.json"),
        ("bad version", "version '9.9' is not supported"),
        ("undeclared label", "label 'truck' is not declared"),
        ("zip slip", "points outside the archive"),
        ("frame out of range", "annotations.json: shapes["),
    ],
)
def test_bad_backup_fails_and_leaves_nothing(
    admin_client: Any, make_media_task: Callable[..., int], run_async: Callable[..., Any], case: str,
    message: str,
) -> None:  # fmt: skip
    task_id = make_media_task(admin_client, FILES[:2], labels=[{"name": "car"}])
    members = _members(_backup(admin_client, "task", task_id))
    if case == "not a zip":
        content = b"this is not a zip"
    elif case == "no task.json":
        content = _zip({k: v for k, v in members.items() if k != "task.json"})
    elif case == "bad version":
        manifest = json.loads(members["task.json"]) | {"version": "9.9"}
        content = _zip({**members, "task.json": json.dumps(manifest).encode()})
    elif case == "undeclared label":
        content = _zip(_with_annotation_label(members, "truck"))
    elif case == "zip slip":
        content = _zip({**members, "data/../../evil.jpg": FILES[0][1]})
    else:
        # only found once the task and its media exist: they must be removed again
        content = _zip(_with_annotation_label(members, "car", frame=99))
    tasks, media = _count(run_async, admin_client, Task), _count(run_async, admin_client, Data)
    stored = _stored(run_async, admin_client)
    request = _restore_form(admin_client, "task", content)
    assert request["status"] == "failed"
    assert message in request["message"]
    assert request.get("result_id") is None
    assert (_count(run_async, admin_client, Task), _count(run_async, admin_client, Data)) == (tasks, media)
    # no media of a half-made task, and the upload is gone too
    assert _stored(run_async, admin_client) == stored


def test_failed_project_restore_removes_the_project(admin_client: Any, run_async: Callable[..., Any]) -> None:
    response = admin_client.post("/api/projects", json={"name": "proj", "labels": [{"name": "car"}]})
    project_id = response.json()["id"]
    _project_task(admin_client, project_id, "ok", FILES[:1])
    _project_task(admin_client, project_id, "broken", FILES[1:2])
    members = _members(_backup(admin_client, "project", project_id))
    annotations = json.loads(members["task_1/annotations.json"])
    annotations[0]["tags"].append({"label": "car", "frame": 7, "attributes": []})
    members["task_1/annotations.json"] = json.dumps(annotations).encode()
    counts = [_count(run_async, admin_client, table) for table in (Project, Task, Data)]
    request = _restore_form(admin_client, "project", _zip(members))
    assert request["status"] == "failed" and "task_1/annotations.json: tags[" in request["message"]
    assert [_count(run_async, admin_client, table) for table in (Project, Task, Data)] == counts


def test_backup_needs_export_permission_and_restore_a_user(
    annotated_task: int, make_user: Callable[..., Any]
) -> None:
    other = make_user("other")
    assert other.post(f"/api/tasks/{annotated_task}/backup/export").status_code == 403
    worker = make_user("worker", privilege="worker")
    assert worker.post("/api/tasks/backup", headers={"Upload-Start": ""}).status_code == 403
    assert other.post("/api/tasks/backup", headers={"Upload-Start": ""}).status_code == 202


def test_restores_a_backup_made_by_cvat(admin_client: Any) -> None:
    """CVAT keeps the whole upload: its recorded frame range and filter select the task's frames,
    and segment size and overlap follow from its jobs."""
    images = {f"dir/f{i:02d}.jpg": make_jpeg(24 + i, 16, 10 * i) for i in range(7)}
    manifest_lines = [{"version": "1.1"}, {"type": "images"}] + [
        {"name": name[:-4], "extension": ".jpg", "width": 24 + i, "height": 16, "checksum": "0",
         "meta": {"related_images": []}}
        for i, name in enumerate(images)
    ]  # fmt: skip
    job = {"frames": [], "status": "annotation", "type": "annotation"}
    task = {
        "name": "from cvat", "bug_tracker": "", "status": "annotation", "subset": "", "version": "1.0",
        "labels": [{"name": "car", "color": "#33ddff", "attributes": [], "type": "any", "svg": "",
                    "sublabels": []}],
        "data": {"chunk_size": 4, "image_quality": 55, "start_frame": 1, "stop_frame": 5,
                 "frame_filter": "step=2", "chunk_type": "imageset", "storage_method": "cache",
                 "storage": "local", "sorting_method": "lexicographical", "deleted_frames": []},
        "jobs": [{"start_frame": 0, "stop_frame": 1, **job}, {"start_frame": 2, "stop_frame": 2, **job}],
    }  # fmt: skip
    rectangle = {"type": "rectangle", "label": "car", "frame": 1, "points": [1, 1, 5, 5], "attributes": [],
                 "occluded": False, "z_order": 0, "rotation": 0.0, "group": 0, "source": "manual",
                 "outside": False}  # fmt: skip
    tag = {"label": "car", "frame": 2, "attributes": [], "group": 0, "source": "manual"}
    annotations = [
        {"version": 0, "tags": [], "shapes": [rectangle], "tracks": []},
        {"version": 0, "tags": [tag], "shapes": [], "tracks": []},
    ]
    members = {f"data/{name}": content for name, content in images.items()}
    members["data/manifest.jsonl"] = "".join(json.dumps(line) + "\n" for line in manifest_lines).encode()
    members["data/index.json"] = b"{}"
    members["task.json"] = json.dumps(task).encode()
    members["annotations.json"] = json.dumps(annotations).encode()
    request = _restore_form(admin_client, "task", _zip(members))
    assert request["status"] == "finished", request["message"]
    view = _task_view(admin_client, request["result_id"])
    assert view["frames"] == [("dir/f01.jpg", 25, 16), ("dir/f03.jpg", 27, 16), ("dir/f05.jpg", 29, 16)]
    assert view["meta"] == {"start_frame": 1, "stop_frame": 5, "frame_filter": "step=2", "deleted_frames": []}
    assert (view["segment_size"], view["overlap"], view["jobs"]) == (2, 0, [(0, 1), (2, 2)])
    assert (view["image_quality"], view["data_chunk_size"]) == (55, 4)
    restored = admin_client.get(f"/api/tasks/{request['result_id']}/annotations").json()
    assert [(s["type"], s["frame"], s["points"]) for s in restored["shapes"]] == [
        ("rectangle", 1, [1, 1, 5, 5])
    ]
    assert [t["frame"] for t in restored["tags"]] == [2]
