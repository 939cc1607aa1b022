"""Dataset export and annotation import through the API, with a third-party format installed as a
pip package (an ``annota`` entry point in a distribution on ``sys.path``): the server knows no
format by name, so this exercises exactly what any format plugin gets."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from annota.core.db.tables import Shape
from tests.media import wait_for_request
from tests.plugin_site import PluginSite

TINY_FORMAT = '''
"""A third-party dataset format: one JSON object per line, one line per frame."""
import json

from annota.core import hookimpl
from annota.core.errors import FormatError
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.model import Item, LabelSpec, Shape, Tag
from annota.core.formats.registry import Format

FILE = "annotations.jsonl"


def export(dataset, output, options):
    with output.open_text("labels.json") as out:
        json.dump([label.name for label in dataset.labels], out)
    with output.open_text(FILE) as out:
        for item in dataset.items():
            record = {
                "name": item.name,
                "frame": item.frame,
                "tags": [tag.label for tag in item.tags],
                "shapes": [
                    {"label": s.label, "type": s.type, "points": s.points, "attributes": s.attributes,
                     "track_id": s.track_id, "keyframe": s.keyframe}
                    for s in item.shapes
                    if not s.outside
                ],
            }
            out.write(json.dumps(record) + "\\n")
            if options.save_images:
                image = dataset.image(item)
                if image is not None:
                    output.write(f"images/{item.name}", image)


def load(root, options):
    path = root / FILE
    if not path.is_file():
        raise FormatError("the dataset has no annotations.jsonl", file=FILE)

    def items():
        with path.open() as lines:
            for number, line in enumerate(lines, 1):
                try:
                    record = json.loads(line)
                    yield Item(
                        name=record["name"],
                        frame=record.get("frame"),
                        tags=[Tag(label=label) for label in record["tags"]],
                        shapes=[
                            Shape(type=s["type"], label=s["label"], points=s["points"],
                                  attributes=s.get("attributes", {}), track_id=s.get("track_id"))
                            for s in record["shapes"]
                        ],
                    )
                except (ValueError, KeyError, TypeError) as exc:
                    raise FormatError(f"not a valid record: {exc}", file=FILE, line=number) from None

    return StreamedDataset("tiny", [], items)


def detect(root):
    return 1.0 if (root / FILE).is_file() else 0.0


@hookimpl
def register_formats(register):
    register(Format(name="Tiny JSON", version="1.0", exporter=export, importer=load, detect=detect,
                    carries=frozenset({"tag", "rectangle", "attributes"})))
'''

FORMAT = "Tiny JSON 1.0"


@pytest.fixture
def annota_plugins(plugin_site: PluginSite) -> dict[str, Any]:
    plugin_site.add("annota-tiny-json", {"annota_tiny_json": TINY_FORMAT}, {"tiny-json": "annota_tiny_json"})
    return {}


@pytest.fixture
def task(admin_client: Any, add_jobs: Callable[..., list[int]]) -> tuple[int, list[int], int]:
    labels = [{"name": "car", "attributes": [{"name": "color", "input_type": "text", "mutable": False,
                                              "values": []}]}, {"name": "sky"}]  # fmt: skip
    response = admin_client.post("/api/tasks", json={"name": "export me", "labels": labels})
    assert response.status_code == 201, response.text
    task_id = response.json()["id"]
    jobs = add_jobs(task_id, [(0, 4), (5, 9)])
    labels_read = admin_client.get(f"/api/labels?task_id={task_id}").json()["results"]
    car_id = next(label["id"] for label in labels_read if label["name"] == "car")
    return task_id, jobs, car_id


def _annotate(client: Any, task_id: int, car: int, sky: int, color_spec: int) -> None:
    body = {
        "tags": [{"label_id": sky, "frame": 1}],
        "shapes": [
            {"type": "rectangle", "label_id": car, "frame": 0, "points": [1, 2, 30, 40],
             "attributes": [{"spec_id": color_spec, "value": "red"}]},
            {"type": "rectangle", "label_id": car, "frame": 7, "points": [5, 5, 9, 9],
             "attributes": [{"spec_id": color_spec, "value": "blue"}]},
        ],
        "tracks": [
            {"label_id": car, "frame": 2, "attributes": [{"spec_id": color_spec, "value": "green"}],
             "shapes": [
                {"type": "rectangle", "frame": 2, "points": [0, 0, 10, 10]},
                {"type": "rectangle", "frame": 4, "points": [20, 0, 30, 10]},
                {"type": "rectangle", "frame": 5, "points": [20, 0, 30, 10], "outside": True},
            ]},
        ],
    }  # fmt: skip
    response = client.put(f"/api/tasks/{task_id}/annotations", json=body)
    assert response.status_code == 200, response.text


def _label_ids(client: Any, task_id: int) -> tuple[int, int, int]:
    labels = {
        label["name"]: label for label in client.get(f"/api/labels?task_id={task_id}").json()["results"]
    }
    return labels["car"]["id"], labels["sky"]["id"], labels["car"]["attributes"][0]["id"]


def _export(client: Any, path: str, **params: str) -> tuple[dict[str, Any], Any]:
    response = client.post(f"{path}/dataset/export", params={"format": FORMAT, "location": "local", **params})
    assert response.status_code == 202, response.text
    request = wait_for_request(client, response.json()["rq_id"])
    assert request["status"] == "finished", request["message"]
    download = client.get(request["result_url"])
    return request, download


def _records(content: bytes) -> list[dict[str, Any]]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return [json.loads(line) for line in archive.read("annotations.jsonl").decode().splitlines()]


def test_formats_endpoint_lists_installed_plugins(admin_client: Any) -> None:
    body = admin_client.get("/api/server/annotation/formats").json()
    tiny = [entry for entry in body["importers"] if entry["name"] == FORMAT]
    assert tiny == [{"name": FORMAT, "ext": "ZIP", "version": "1.0", "enabled": True, "dimension": "2d"}]
    assert FORMAT in [entry["name"] for entry in body["exporters"]]


CORE_EXPORTERS = {
    "CVAT for images 1.1", "CVAT for video 1.1", "COCO 1.0", "COCO Keypoints 1.0", "Datumaro 1.0",
    "PASCAL VOC 1.1", "Segmentation mask 1.1", "YOLO 1.1", "Ultralytics YOLO Detection 1.0",
    "Ultralytics YOLO Segmentation 1.0", "Ultralytics YOLO Oriented Bounding Boxes 1.0",
    "Ultralytics YOLO Pose 1.0", "Ultralytics YOLO Classification 1.0",
    "Ultralytics YOLO Detection Track 1.0", "MOT 1.1", "LabelMe 3.0", "ImageNet 1.0",
    "WiderFace 1.0", "VGGFace2 1.0", "Market-1501 1.0", "ICDAR Recognition 1.0", "ICDAR Localization 1.0",
    "ICDAR Segmentation 1.0", "LFW 1.0", "KITTI 1.0", "CamVid 1.0", "Cityscapes 1.0", "Open Images V6 1.0",
    "MOTS PNG 1.0",
}  # fmt: skip
EXPORT_ONLY = {"CVAT for images 1.1", "CVAT for video 1.1", "Ultralytics YOLO Detection Track 1.0"}


def test_the_core_format_set_is_listed_with_exact_names(admin_client: Any) -> None:
    body = admin_client.get("/api/server/annotation/formats").json()
    exporters = {entry["name"] for entry in body["exporters"]}
    importers = {entry["name"] for entry in body["importers"]}
    assert CORE_EXPORTERS <= exporters
    assert (CORE_EXPORTERS - EXPORT_ONLY) | {"CVAT 1.1"} <= importers
    assert "CVAT 1.1" not in exporters and not EXPORT_ONLY & importers
    names = [entry["name"] for entry in body["exporters"]]
    assert names == sorted(names, key=str.lower)


def test_task_export_streams_frames_with_tracks_interpolated(admin_client: Any, task: Any) -> None:
    task_id, _, _ = task
    car, sky, color = _label_ids(admin_client, task_id)
    _annotate(admin_client, task_id, car, sky, color)
    request, download = _export(admin_client, f"/api/tasks/{task_id}")
    assert request["result_url"].startswith("http://testserver/api/tasks/")
    assert request["operation"]["type"] == "export:annotations"
    assert download.status_code == 200
    disposition = download.headers["content-disposition"]
    assert disposition.startswith(f'attachment; filename="task_{task_id}_annotations_')
    assert disposition.endswith('_tiny-json-1.0.zip"')
    records = _records(download.content)
    assert [r["frame"] for r in records] == list(range(10))
    by_frame = {r["frame"]: r for r in records}
    assert by_frame[1]["tags"] == ["sky"]
    assert by_frame[0]["shapes"][0]["attributes"] == {"color": "red"}
    # the track: keyframes on 2 and 4, interpolated on 3, ended (outside) on 5
    track = {f: [s for s in by_frame[f]["shapes"] if s["track_id"] is not None] for f in range(10)}
    assert [len(track[f]) for f in range(10)] == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0]
    assert track[3][0]["points"] == [10, 0, 20, 10] and track[3][0]["keyframe"] is False
    assert track[3][0]["attributes"] == {"color": "green"}


def test_identical_exports_reuse_the_result_until_data_changes(admin_client: Any, task: Any) -> None:
    task_id, _, _ = task
    car, sky, color = _label_ids(admin_client, task_id)
    _annotate(admin_client, task_id, car, sky, color)
    first, download = _export(admin_client, f"/api/tasks/{task_id}")
    second, again = _export(admin_client, f"/api/tasks/{task_id}")
    assert second["message"] == "An identical export was reused." and again.content == download.content
    response = admin_client.patch(f"/api/tasks/{task_id}/annotations?action=create", json={
        "shapes": [{"type": "rectangle", "label_id": car, "frame": 9, "points": [0, 0, 1, 1]}]})  # fmt: skip
    assert response.status_code == 200
    third, changed = _export(admin_client, f"/api/tasks/{task_id}")
    assert third["message"] == "" and len(_records(changed.content)[9]["shapes"]) == 1


def test_job_export_has_only_the_job_frames(admin_client: Any, task: Any) -> None:
    task_id, jobs, _ = task
    car, sky, color = _label_ids(admin_client, task_id)
    _annotate(admin_client, task_id, car, sky, color)
    _, download = _export(admin_client, f"/api/jobs/{jobs[1]}")
    records = _records(download.content)
    assert [r["frame"] for r in records] == [5, 6, 7, 8, 9]
    assert [len(r["shapes"]) for r in records] == [0, 0, 1, 0, 0]


def _import_one_shot(client: Any, task_id: int, content: bytes, **params: str) -> dict[str, Any]:
    response = client.post(
        f"/api/tasks/{task_id}/annotations",
        params={"format": FORMAT, **params},
        files={"annotation_file": ("dataset.zip", content)},
    )
    assert response.status_code == 202, response.text
    return wait_for_request(client, response.json()["rq_id"])


def _zip(lines: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("annotations.jsonl", "\n".join(lines) + "\n")
    return buffer.getvalue()


def test_export_then_import_round_trips_and_append_adds(admin_client: Any, task: Any) -> None:
    task_id, _, _ = task
    car, sky, color = _label_ids(admin_client, task_id)
    _annotate(admin_client, task_id, car, sky, color)
    before = admin_client.get(f"/api/tasks/{task_id}/annotations").json()
    _, download = _export(admin_client, f"/api/tasks/{task_id}")
    admin_client.delete(f"/api/tasks/{task_id}/annotations")
    request = _import_one_shot(admin_client, task_id, download.content)
    assert request["status"] == "finished", request["message"]
    after = admin_client.get(f"/api/tasks/{task_id}/annotations").json()
    assert len(after["tags"]) == len(before["tags"]) == 1
    assert sorted(s["points"] for s in after["shapes"]) == sorted(s["points"] for s in before["shapes"])
    # shapes with a track id come back as one track with the exported frames as keyframes
    assert len(after["tracks"]) == 1
    assert [k["frame"] for k in after["tracks"][0]["shapes"]] == [2, 3, 4]
    request = _import_one_shot(admin_client, task_id, download.content, import_mode="append")
    assert request["status"] == "finished", request["message"]
    appended = admin_client.get(f"/api/tasks/{task_id}/annotations").json()
    assert len(appended["shapes"]) == 2 * len(after["shapes"])


def test_import_through_the_tus_protocol(admin_client: Any, task: Any) -> None:
    import base64

    task_id, jobs, _ = task
    content = _zip([json.dumps({"name": "x", "frame": 6, "tags": ["sky"], "shapes": []})])
    path = f"/api/jobs/{jobs[1]}/annotations"
    assert admin_client.post(path, params={"format": FORMAT, "filename": "a.zip"},
                             headers={"Upload-Start": ""}).status_code == 202  # fmt: skip
    created = admin_client.post(path, headers={
        "Tus-Resumable": "1.0.0", "Upload-Length": str(len(content)),
        "Upload-Metadata": "filename " + base64.b64encode(b"a.zip").decode()})  # fmt: skip
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert location.startswith(f"http://testserver{path}/")
    patched = admin_client.patch(
        location,
        content=content,
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert patched.status_code == 204, patched.text
    filename = created.headers["upload-filename"]
    finish = admin_client.post(
        path, params={"format": FORMAT, "filename": filename}, headers={"Upload-Finish": ""}
    )
    assert finish.status_code == 202, finish.text
    request = wait_for_request(admin_client, finish.json()["rq_id"])
    assert request["status"] == "finished", request["message"]
    tags = admin_client.get(f"/api/jobs/{jobs[1]}/annotations").json()["tags"]
    assert [t["frame"] for t in tags] == [6]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"name": "a", "frame": 0, "tags": [], "shapes": []}', "{not json"],
         "annotations.jsonl:2: not a valid record"),
        (['{"name": "a", "frame": 0, "tags": ["boat"], "shapes": []}'],
         "item 'a': annotation 0: label 'boat' is not a label of task"),
        (['{"name": "nowhere", "tags": ["sky"], "shapes": []}'],
         "item 'nowhere': matches no frame of task"),
        (['{"name": "a", "frame": 0, "tags": [], "shapes": [{"label": "car", "type": "polygon", '
          '"points": [1, 2, 3, 4]}]}'], "item 'a': annotation 0: points"),
    ],
)  # fmt: skip
def test_bad_imports_fail_naming_the_place_and_change_nothing(
    admin_client: Any, task: Any, run_async: Callable[..., Any], lines: list[str], message: str
) -> None:
    task_id, _, _ = task
    car, sky, color = _label_ids(admin_client, task_id)
    _annotate(admin_client, task_id, car, sky, color)
    before = admin_client.get(f"/api/tasks/{task_id}/annotations").json()
    request = _import_one_shot(admin_client, task_id, _zip(lines))
    assert request["status"] == "failed"
    assert message in request["message"], request["message"]
    assert admin_client.get(f"/api/tasks/{task_id}/annotations").json() == before


def test_bad_requests_are_refused_up_front(admin_client: Any, task: Any, make_user: Any) -> None:
    task_id, _, _ = task
    response = admin_client.post(f"/api/tasks/{task_id}/dataset/export", params={"format": "Nope 1.0"})
    assert response.status_code == 400 and "Unknown format 'Nope 1.0'" in response.text
    assert FORMAT in response.text
    response = admin_client.post(f"/api/tasks/{task_id}/dataset/export",
                                 params={"format": FORMAT, "location": "cloud_storage"})  # fmt: skip
    assert response.status_code == 400 and "location" in response.text
    response = admin_client.post(f"/api/tasks/{task_id}/annotations",
                                 params={"format": FORMAT, "import_mode": "merge"},
                                 files={"annotation_file": ("a.zip", b"x")})  # fmt: skip
    assert response.status_code == 400 and "import_mode" in response.text
    stranger = make_user("stranger")
    response = stranger.post(f"/api/tasks/{task_id}/dataset/export", params={"format": FORMAT})
    assert response.status_code in (403, 404)
    _, download = _export(admin_client, f"/api/tasks/{task_id}")
    assert download.status_code == 200


def test_downloads_belong_to_who_exported(admin_client: Any, task: Any, make_user: Any) -> None:
    task_id, _, _ = task
    request, _ = _export(admin_client, f"/api/tasks/{task_id}")
    other = make_user("other")
    assert other.get(request["result_url"]).status_code in (403, 404)


def test_annotations_are_written_in_bulk(admin_client: Any, task: Any, run_async: Callable[..., Any]) -> None:
    task_id, _, _ = task
    # 1,200 rows: enough for PostgreSQL to take them through COPY
    box = {"label": "car", "type": "rectangle", "points": [1, 1, 6, 6]}
    lines = [json.dumps({"name": f"f{i}", "frame": i, "tags": [], "shapes": [box] * 120}) for i in range(10)]
    request = _import_one_shot(admin_client, task_id, _zip(lines))
    assert request["status"] == "finished", request["message"]
    assert request["message"].startswith("Imported 0 tags, 1200 shapes")

    async def count() -> int:
        async with admin_client.app.state.annota.sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(Shape)) or 0)

    assert run_async(count) == 1200


def test_unsafe_archives_are_refused(admin_client: Any, task: Any, tmp_path: Any) -> None:
    task_id, _, _ = task
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("annotations.jsonl", "")
        archive.writestr("../../escape.txt", "x")
    request = _import_one_shot(admin_client, task_id, buffer.getvalue())
    assert request["status"] == "failed"
    assert "dataset.zip" in request["message"] and "escape.txt" in request["message"], request["message"]
    assert not any(tmp_path.rglob("escape.txt"))


def test_archives_expanding_past_the_limit_are_refused(admin_client: Any, task: Any) -> None:
    task_id, _, _ = task
    admin_client.app.state.annota.settings.max_archive_expanded_size = 10_000
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("annotations.jsonl", "\n" * 50_000)  # deflates to a few hundred bytes
    request = _import_one_shot(admin_client, task_id, buffer.getvalue())
    assert request["status"] == "failed"
    assert "dataset.zip" in request["message"] and "10000" in request["message"].replace(",", ""), request[
        "message"
    ]
