"""Task creation from media through the API: frames, chunks, segments and jobs, and failures that
leave nothing behind."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from annota.core.db.tables import Data, Frame, Job, Segment, Task
from annota.core.media import layout
from annota.core.media.chunks import decode_index
from tests.media import make_jpeg, wait_for_request


def make_png(width: int = 40, height: int = 30, value: int = 0) -> bytes:
    ok, encoded = cv2.imencode(".png", np.full((height, width, 3), value, dtype=np.uint8))
    assert ok
    return bytes(encoded.tobytes())


def make_video(path: Path, frames: int = 12, width: int = 64, height: int = 48) -> bytes:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (width, height))
    assert writer.isOpened()
    for number in range(frames):
        writer.write(np.full((height, width, 3), number * 20, dtype=np.uint8))
    writer.release()
    return path.read_bytes()


def upload(client: Any, files: list[tuple[str, bytes]], **options: Any) -> dict[str, Any]:
    """Create a task, send ``files`` in one request and wait; returns the finished/failed request."""
    task_id = client.post("/api/tasks", json={"name": "t", "labels": [{"name": "car"}]}).json()["id"]
    form = {"image_quality": "70", **{k: str(v) for k, v in options.items()}}
    response = client.post(
        f"/api/tasks/{task_id}/data",
        data=form,
        files=[(f"client_files[{i}]", (name, content)) for i, (name, content) in enumerate(files)],
    )
    assert response.status_code == 202, response.text
    request = wait_for_request(client, response.json()["rq_id"])
    request["task_id"] = task_id
    return request


def run_sql(client: Any, run_async: Callable[..., Any], statement: Any) -> Any:
    async def go() -> Any:
        async with client.app.state.annota.sessionmaker() as session:
            return (await session.execute(statement)).all()

    return run_async(go)


def stored_keys(client: Any, run_async: Callable[..., Any], prefix: str = "") -> list[str]:
    storage = client.app.state.annota.storage

    async def keys() -> list[str]:
        return [info.key async for info in storage.list(prefix)]

    result: list[str] = run_async(keys)
    return result


def read_object(client: Any, run_async: Callable[..., Any], key: str) -> bytes:
    storage = client.app.state.annota.storage
    data: bytes = run_async(storage.read, key)
    return data


def assert_nothing_left(client: Any, run_async: Callable[..., Any], task_id: int) -> None:
    assert run_sql(client, run_async, select(Task.data_id, Task.media_type).where(Task.id == task_id)) == [
        (None, "")
    ]
    for table in (Data, Frame, Segment, Job):
        assert run_sql(client, run_async, select(func.count()).select_from(table)) == [(0,)], table
    assert stored_keys(client, run_async) == []


def test_images_become_frames_chunks_segments_and_jobs(user_client, run_async, make_media_task):
    files = [(f"img_{i}.jpg", make_jpeg(value=i * 10)) for i in range(7)] + [("z.png", make_png(value=200))]
    task_id = make_media_task(user_client, files, segment_size=3, overlap=1, chunk_size=2)
    task = user_client.get(f"/api/tasks/{task_id}").json()
    assert (task["size"], task["media_type"], task["mode"]) == (8, "image", "annotation")
    assert task["data_chunk_size"] == 2 and task["data_original_chunk_type"] == "imageset"
    # CVAT's formula: starts at range(0, 8 - 1, 3 - 1)
    segments = run_sql(
        user_client, run_async, select(Segment.start_frame, Segment.stop_frame).order_by(Segment.id)
    )
    assert segments == [(0, 2), (2, 4), (4, 6), (6, 7)]
    assert task["jobs"]["count"] == 4
    (data_id,) = run_sql(user_client, run_async, select(Task.data_id).where(Task.id == task_id))[0]
    frames = run_sql(user_client, run_async, select(Frame.frame, Frame.path, Frame.width, Frame.height)
                     .where(Frame.data_id == data_id).order_by(Frame.frame))  # fmt: skip
    assert [f[1] for f in frames] == [name for name, _ in files]
    assert frames[0][2:] == (64, 48) and frames[-1][2:] == (40, 30)
    # chunk 3 holds frames 6 and 7; originals are the uploaded bytes, members named by frame
    chunk = read_object(user_client, run_async, layout.chunk(data_id, "original", 3))
    with zipfile.ZipFile(io.BytesIO(chunk)) as archive:
        assert archive.namelist() == ["000006.jpg", "000007.png"]
        assert archive.read("000007.png") == files[7][1]
    compressed = read_object(user_client, run_async, layout.chunk(data_id, "compressed", 3))
    index = decode_index(read_object(user_client, run_async, layout.chunk_index(data_id, "compressed", 3)))
    member = index[1]
    pixels = cv2.imdecode(np.frombuffer(compressed[member.offset : member.offset + member.size], np.uint8), 1)
    assert abs(float(pixels.mean()) - 200) < 3
    keys = stored_keys(user_client, run_async, layout.data_prefix(data_id))
    assert layout.raw_file(data_id, "z.png") in keys and layout.preview(data_id) in keys
    lines = read_object(user_client, run_async, layout.manifest(data_id)).decode().splitlines()
    assert json.loads(lines[1]) == {"type": "images"} and json.loads(lines[2])["name"] == "img_0"
    # the uploads are gone once processed
    assert stored_keys(user_client, run_async, layout.upload_prefix(task_id)) == []


def test_frame_step_start_stop_and_natural_sorting(user_client, run_async, make_media_task):
    files = [(f"f{i}.jpg", make_jpeg(value=i)) for i in (10, 9, 2, 1, 3, 11)]
    task_id = make_media_task(user_client, files, sorting_method="natural", start_frame=1, stop_frame=5,
                              frame_filter="step=2")  # fmt: skip
    (data_id,) = run_sql(user_client, run_async, select(Task.data_id).where(Task.id == task_id))[0]
    query = select(Frame.path, Frame.real_frame).where(Frame.data_id == data_id).order_by(Frame.frame)
    rows = run_sql(user_client, run_async, query)
    # natural order f1 f2 f3 f9 f10 f11; frames 1, 3, 5 of it
    assert rows == [("f2.jpg", 1), ("f9.jpg", 3), ("f11.jpg", 5)]
    (data,) = run_sql(user_client, run_async, select(Data.start_frame, Data.stop_frame, Data.size))
    assert data == (1, 5, 3)


def test_job_file_mapping_and_predefined_order(user_client, run_async, make_media_task):
    files = [(f"{name}.jpg", make_jpeg()) for name in "abcde"]
    make_media_task(user_client, files, job_file_mapping=[["e.jpg", "a.jpg"], ["c.jpg"], ["b.jpg", "d.jpg"]])
    segments = run_sql(
        user_client, run_async, select(Segment.start_frame, Segment.stop_frame).order_by(Segment.id)
    )
    assert segments == [(0, 1), (2, 2), (3, 4)]
    paths = run_sql(user_client, run_async, select(Frame.path).order_by(Frame.frame))
    assert [p for (p,) in paths] == ["e.jpg", "a.jpg", "c.jpg", "b.jpg", "d.jpg"]


def test_a_video_becomes_imageset_chunks(user_client, run_async, make_media_task, tmp_path):
    video = make_video(tmp_path / "clip.avi", frames=12)
    task_id = make_media_task(user_client, [("clip.avi", video)], chunk_size=5, frame_filter="step=2")
    task = user_client.get(f"/api/tasks/{task_id}").json()
    assert (task["size"], task["mode"], task["data_original_chunk_type"]) == (6, "interpolation", "imageset")
    (data_id,) = run_sql(user_client, run_async, select(Task.data_id).where(Task.id == task_id))[0]
    chunk = read_object(user_client, run_async, layout.chunk(data_id, "original", 1))
    with zipfile.ZipFile(io.BytesIO(chunk)) as archive:
        assert archive.namelist() == ["000005.jpg"]
        pixels = cv2.imdecode(np.frombuffer(archive.read("000005.jpg"), np.uint8), 1)
    # relative frame 5 is source frame 10, drawn with gray level 200
    assert abs(float(pixels.mean()) - 200) < 4
    rows = run_sql(user_client, run_async, select(Frame.path, Frame.real_frame).order_by(Frame.frame))
    assert rows[-1] == ("clip.avi", 10)
    assert layout.raw_file(data_id, "clip.avi") in stored_keys(user_client, run_async)


def test_archives_expand_with_context_images(user_client, run_async, make_media_task):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("scene/b.jpg", make_jpeg(value=1))
        archive.writestr("scene/a.jpg", make_jpeg(value=2))
        archive.writestr("scene/related_images/a_jpg/left.png", make_png())
    task_id = make_media_task(user_client, [("set.zip", buffer.getvalue())])
    rows = run_sql(user_client, run_async, select(Frame.path, Frame.related_files).order_by(Frame.frame))
    assert rows == [("scene/a.jpg", '["left.png"]'), ("scene/b.jpg", "[]")]
    (data_id,) = run_sql(user_client, run_async, select(Task.data_id).where(Task.id == task_id))[0]
    assert read_object(user_client, run_async, layout.context_image(data_id, 0, "left.png")) == make_png()


def _tar_with_symlink() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        image = make_jpeg()
        info = tarfile.TarInfo("ok.jpg")
        info.size = len(image)
        archive.addfile(info, io.BytesIO(image))
        link = tarfile.TarInfo("evil.jpg")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)
    return buffer.getvalue()


def _truncated_video() -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        video = make_video(Path(directory) / "clip.avi", frames=12)
    return video[: len(video) // 2]


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ([("a.jpg", make_jpeg()), ("b.jpg", b"not an image")], "b.jpg"),
        ([("a.jpg", make_jpeg()[:-200])], "a.jpg"),
        ([("notes.txt", b"hello")], "notes.txt: unsupported media type"),
        ([("a.jpg", make_jpeg()), ("v.avi", b"RIFF0000AVI garbage")], "cannot be mixed"),
        ([("v.avi", b"RIFF0000AVI garbage")], "v.avi"),
        ([("cut.avi", _truncated_video())], "cut.avi"),
        ([("slip.zip", _zip({"../evil.jpg": make_jpeg()}))], "../evil.jpg"),
        ([("links.tar.gz", _tar_with_symlink())], "evil.jpg"),
        ([("bomb.zip", _zip({"zeros.jpg": bytes(3 * 1024 * 1024)}, zipfile.ZIP_DEFLATED))], "bomb.zip"),
    ],
    ids=str.split("corrupt truncated unsupported mixed bad-video truncated-video zip-slip symlink zip-bomb"),
)
def test_bad_media_fails_the_request_and_leaves_nothing(
    user_client, run_async, annota_settings, files, reason
):
    annota_settings.max_archive_expanded_size = 1024 * 1024
    request = upload(user_client, files)
    assert request["status"] == "failed"
    assert reason in request["message"]
    assert_nothing_left(user_client, run_async, request["task_id"])
    # the task can be given good media afterwards
    response = user_client.post(
        f"/api/tasks/{request['task_id']}/data",
        data={"image_quality": "70"},
        files=[("client_files[0]", ("ok.jpg", make_jpeg()))],
    )
    assert wait_for_request(user_client, response.json()["rq_id"])["status"] == "finished"


def test_frame_range_outside_the_media_is_refused(user_client, run_async):
    request = upload(user_client, [("a.jpg", make_jpeg()), ("b.jpg", make_jpeg())], start_frame=5)
    assert request["status"] == "failed" and "start_frame" in request["message"]
    assert_nothing_left(user_client, run_async, request["task_id"])


def test_deleting_a_task_removes_its_media(user_client, run_async, make_media_task):
    task_id = make_media_task(user_client, [("a.jpg", make_jpeg())])
    assert stored_keys(user_client, run_async) != []
    assert user_client.delete(f"/api/tasks/{task_id}").status_code == 204
    assert stored_keys(user_client, run_async) == []


def test_request_reports_the_created_task(user_client, make_media_task):
    task_id = make_media_task(user_client, [("a.jpg", make_jpeg())])
    requests = user_client.get("/api/requests").json()["results"]
    (created,) = [r for r in requests if r["operation"]["type"] == "create:task"]
    assert created["operation"]["task_id"] == task_id and created["result_id"] == task_id
    assert created["status"] == "finished" and created["message"] == "1 frames in 1 jobs."


def test_housekeeping_removes_orphaned_media_and_abandoned_uploads(user_client, run_async, make_media_task):
    import datetime as dt

    from annota.core.services import task_data

    task_id = make_media_task(user_client, [("a.jpg", make_jpeg())])
    state = user_client.app.state.annota

    async def leave_leftovers() -> int:
        async with state.sessionmaker.begin() as session:
            orphan = Data(image_quality=70)
            session.add(orphan)
            await session.flush()
        await state.storage.put(layout.chunk(orphan.id, "original", 0), b"zip")
        await state.storage.put(layout.upload_file(999, "left.jpg"), b"jpeg")
        return orphan.id

    orphan_id = run_async(leave_leftovers)
    removed = run_async(
        task_data.prune_leftovers, state.sessionmaker, state.storage, -dt.timedelta(minutes=1)
    )
    assert removed == 2
    assert stored_keys(user_client, run_async, layout.data_prefix(orphan_id)) == []
    assert stored_keys(user_client, run_async, "uploads/") == []
    assert run_sql(user_client, run_async, select(Data.id).where(Data.id == orphan_id)) == []
    # the task's own media stays
    assert user_client.get(f"/api/tasks/{task_id}").json()["size"] == 1
    (data_id,) = run_sql(user_client, run_async, select(Task.data_id).where(Task.id == task_id))[0]
    assert stored_keys(user_client, run_async, layout.data_prefix(data_id)) != []
