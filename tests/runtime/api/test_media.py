"""Media API: chunks, frames, context images, data/meta, deleted frames and previews of tasks and jobs."""

from __future__ import annotations

import io
import zipfile
import zlib

import cv2
import numpy as np
import pytest
from sqlalchemy import update

from annota.core.db.tables import Task
from tests.runtime.api.conftest import make_jpeg

VALUES = (0, 50, 100, 150, 200, 250)


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


def images(count: int) -> list[tuple[str, bytes]]:
    return [(f"img_{i}.jpg", make_jpeg(64, 48, value=VALUES[i])) for i in range(count)]


def gray(content: bytes) -> float:
    decoded = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert decoded is not None
    return float(decoded.mean())


def zip_members(content: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def get_data(client, path, **params):
    return client.get(path, params=params)


def assert_checksum(response) -> None:
    assert response.headers["x-checksum"] == str(zlib.crc32(response.content))
    assert response.headers["x-updated-date"]
    assert response.headers["etag"].startswith('"')


def test_task_chunks_and_frames(alice, make_media_task):
    files = images(5)
    task_id = make_media_task(alice, files, chunk_size=2)
    url = f"/api/tasks/{task_id}/data"

    task = alice.get(f"/api/tasks/{task_id}").json()
    assert (task["size"], task["data_chunk_size"], task["image_quality"]) == (5, 2, 70)
    assert task["data_original_chunk_type"] == task["data_compressed_chunk_type"] == "imageset"
    assert (task["media_type"], task["mode"], task["dimension"]) == ("image", "annotation", "2d")

    for _ in range(2):  # the first answer hashes the stored chunk, the second streams it
        chunk = get_data(alice, url, type="chunk", number=1, quality="original")
        assert chunk.status_code == 200, chunk.text
        assert chunk.headers["content-type"] == "application/zip"
        assert [content for _, content in zip_members(chunk.content)] == [files[2][1], files[3][1]]
        assert_checksum(chunk)
    last = get_data(alice, url, type="chunk", number=2)
    (only,) = zip_members(last.content)
    assert only[0].startswith("000004") and abs(gray(only[1]) - VALUES[4]) < 3

    # cvat-cli asks with a trailing slash
    original = get_data(alice, url + "/", type="frame", number=3, quality="original")
    assert original.status_code == 200 and original.content == files[3][1]
    assert original.headers["content-type"] == "image/jpeg"
    assert_checksum(original)
    compressed = get_data(alice, url, type="frame", number=1)
    assert compressed.content[:2] == b"\xff\xd8" and abs(gray(compressed.content) - VALUES[1]) < 3

    for params, field in (
        ({"type": "chunk", "number": 3}, "number"),
        ({"type": "frame", "number": 5}, "number"),
        ({"type": "chunk"}, "number"),
        ({"type": "chunk", "number": "x"}, "number"),
        ({"type": "video", "number": 0}, "type"),
        ({"number": 0}, "type"),
        ({"type": "frame", "number": 0, "quality": "best"}, "quality"),
    ):
        response = get_data(alice, url, **params)
        assert response.status_code == 400, (params, response.text)
        assert field in response.json(), (params, response.text)


def test_conditional_and_range_requests(alice, make_media_task):
    task_id = make_media_task(alice, images(2), chunk_size=2)
    url = f"/api/tasks/{task_id}/data"
    for params in ({"type": "frame", "number": 0, "quality": "original"}, {"type": "chunk", "number": 0}):
        full = get_data(alice, url, **params)
        full = get_data(alice, url, **params)  # streamed from storage the second time
        size = len(full.content)
        etag = full.headers["etag"]
        assert alice.get(url, params=params, headers={"If-None-Match": etag}).status_code == 304
        assert alice.get(url, params=params, headers={"If-None-Match": '"other"'}).status_code == 200
        for header, expected in (
            ("bytes=0-9", (0, 9)),
            ("bytes=10-", (10, size - 1)),
            ("bytes=-5", (size - 5, size - 1)),
            (f"bytes=5-{size + 100}", (5, size - 1)),
        ):
            part = alice.get(url, params=params, headers={"Range": header})
            assert part.status_code == 206, (header, part.text)
            assert part.content == full.content[expected[0] : expected[1] + 1]
            assert part.headers["content-range"] == f"bytes {expected[0]}-{expected[1]}/{size}"
            assert part.headers["x-checksum"] == full.headers["x-checksum"]
        refused = alice.get(url, params=params, headers={"Range": f"bytes={size}-"})
        assert refused.status_code == 416 and refused.headers["content-range"] == f"bytes */{size}"


def job_frames(job) -> list[int]:
    return list(range(job["start_frame"], job["stop_frame"] + 1))


def test_job_chunks_follow_the_job(alice, make_media_task):
    """``index`` counts a job's chunks from its first frame (what CVAT 2.x's UI asks for)."""
    files = images(6)
    task_id = make_media_task(alice, files, chunk_size=2, segment_size=3, overlap=1)
    jobs = alice.get("/api/jobs", params={"task_id": task_id, "sort": "id"}).json()["results"]
    assert [job_frames(job) for job in jobs] == [[0, 1, 2], [2, 3, 4], [4, 5]]
    assembled = 0
    for job in jobs:
        frames = job_frames(job)
        assert (job["frame_count"], job["data_chunk_size"]) == (len(frames), 2)
        url = f"/api/jobs/{job['id']}/data"
        for index in range(-(-len(frames) // 2)):
            expected = frames[index * 2 : index * 2 + 2]
            source = expected[0] // 2
            assembled += expected != list(range(source * 2, min(source * 2 + 2, len(files))))
            for quality in ("original", "compressed"):
                for _ in range(2):  # assembled once, then served from the cached copy
                    chunk = get_data(alice, url, type="chunk", index=index, quality=quality)
                    assert chunk.status_code == 200, chunk.text
                    assert_checksum(chunk)
                    members = zip_members(chunk.content)
                    assert [int(name[:6]) for name, _ in members] == expected
                    if quality == "original":
                        assert [content for _, content in members] == [files[f][1] for f in expected]
                    else:
                        assert [round(gray(content) / 50) for _, content in members] == expected
        beyond = get_data(alice, url, type="chunk", index=2)
        assert beyond.status_code == 400 and "index" in beyond.json()
        outside = 5 if frames[-1] < 5 else 0
        response = get_data(alice, url, type="frame", number=outside)
        assert response.status_code == 400 and "number" in response.json()
        inside = get_data(alice, url, type="frame", number=frames[-1], quality="original")
        assert inside.content == files[frames[-1]][1]
    assert assembled == 2


def test_job_chunk_number_counts_as_the_task(alice, make_media_task):
    """The deprecated ``number`` names a task chunk; a job answers with the chunk's frames it holds."""
    files = images(6)
    task_id = make_media_task(alice, files, chunk_size=2, segment_size=3, overlap=1)
    jobs = alice.get("/api/jobs", params={"task_id": task_id, "sort": "id"}).json()["results"]
    second = f"/api/jobs/{jobs[1]['id']}/data"  # frames 2, 3, 4: task chunks 1 and 2
    whole = get_data(alice, second, type="chunk", number=1, quality="original")
    assert whole.status_code == 200, whole.text
    assert [content for _, content in zip_members(whole.content)] == [files[2][1], files[3][1]]
    task_chunk = get_data(alice, f"/api/tasks/{task_id}/data", type="chunk", number=1, quality="original")
    assert whole.content == task_chunk.content
    part = get_data(alice, second, type="chunk", number=2, quality="original")
    assert [int(name[:6]) for name, _ in zip_members(part.content)] == [4]
    assert_checksum(part)
    for number in (0, 3):
        refused = get_data(alice, second, type="chunk", number=number)
        assert refused.status_code == 400 and "1..2" in refused.json()["number"][0]
    both = get_data(alice, second, type="chunk", number=1, index=0)
    assert both.status_code == 400 and "index" in both.json()
    negative = get_data(alice, second, type="chunk", index=-1)
    assert negative.status_code == 400 and "index" in negative.json()
    missing = get_data(alice, second, type="chunk")
    assert missing.status_code == 400 and "index" in missing.json()["number"][0]


def test_data_meta_of_task_and_job(alice, make_media_task):
    task_id = make_media_task(alice, images(4), chunk_size=2, segment_size=2)
    meta = alice.get(f"/api/tasks/{task_id}/data/meta")
    assert meta.status_code == 200, meta.text
    body = meta.json()
    assert (body["size"], body["chunk_size"], body["image_quality"]) == (4, 2, 70)
    assert (body["start_frame"], body["stop_frame"], body["frame_filter"]) == (0, 3, "")
    assert [frame["name"] for frame in body["frames"]] == [f"img_{i}.jpg" for i in range(4)]
    assert body["frames"][0] == {
        "name": "img_0.jpg", "width": 64, "height": 48, "related_files": 0, "has_related_context": False
    }  # fmt: skip
    assert body["deleted_frames"] == [] and body["included_frames"] is None and body["chapters"] is None
    assert body["storage"] == "local" and body["cloud_storage_id"] is None and body["chunks_updated_date"]

    first, second = alice.get("/api/jobs", params={"task_id": task_id, "sort": "id"}).json()["results"]
    job_meta = alice.get(f"/api/jobs/{second['id']}/data/meta").json()
    assert (job_meta["size"], job_meta["start_frame"], job_meta["stop_frame"]) == (2, 2, 3)
    assert [frame["name"] for frame in job_meta["frames"]] == ["img_2.jpg", "img_3.jpg"]


def test_deleted_frames(alice, make_media_task):
    task_id = make_media_task(alice, images(4), chunk_size=2, segment_size=2)
    meta_url = f"/api/tasks/{task_id}/data/meta"
    before = alice.get(f"/api/tasks/{task_id}").json()["updated_date"]
    refused = alice.patch(meta_url, json={"deleted_frames": [1, 4]})
    assert refused.status_code == 400 and "4" in refused.json()["deleted_frames"][0]
    assert alice.patch(meta_url, json={"deleted_frames": [-1]}).status_code == 400

    changed = alice.patch(meta_url, json={"deleted_frames": [3, 0, 3]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["deleted_frames"] == [0, 3]
    assert alice.get(f"/api/tasks/{task_id}").json()["updated_date"] > before

    first, second = alice.get("/api/jobs", params={"task_id": task_id, "sort": "id"}).json()["results"]
    assert alice.get(f"/api/jobs/{second['id']}/data/meta").json()["deleted_frames"] == [3]
    job_url = f"/api/jobs/{first['id']}/data/meta"
    outside = alice.patch(job_url, json={"deleted_frames": [2]})
    assert outside.status_code == 400 and "deleted_frames" in outside.json()
    job_changed = alice.patch(job_url, json={"deleted_frames": [1]})
    assert job_changed.status_code == 200 and job_changed.json()["deleted_frames"] == [1]
    # the other job's frames keep their state
    assert alice.get(meta_url).json()["deleted_frames"] == [1, 3]
    assert alice.get(f"/api/jobs/{first['id']}").json()["updated_date"] > before
    # sending nothing changes nothing
    assert alice.patch(meta_url, json={}).json()["deleted_frames"] == [1, 3]


def test_context_images(alice, make_media_task):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as writer:
        for name, content in images(2):
            writer.writestr(name, content)
        writer.writestr("related_images/img_1_jpg/right.jpg", b"right image")
        writer.writestr("related_images/img_1_jpg/left.png", b"left image")
    task_id = make_media_task(alice, [("scene.zip", archive.getvalue())])
    url = f"/api/tasks/{task_id}/data"
    missing = get_data(alice, url, type="context_image", number=0)
    assert missing.status_code == 404 and "Frame 0" in missing.text
    response = get_data(alice, url, type="context_image", number=1)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert zip_members(response.content) == [("left.png", b"left image"), ("right.jpg", b"right image")]
    assert_checksum(response)
    frames = alice.get(f"/api/tasks/{task_id}/data/meta").json()["frames"]
    assert [(f["name"], f["related_files"], f["has_related_context"]) for f in frames] == [
        ("img_0.jpg", 0, False),
        ("img_1.jpg", 2, True),
    ]


def test_video_meta_lists_every_frame(alice, make_media_task, tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for number in range(6):
        writer.write(np.full((48, 64, 3), number * 40, dtype=np.uint8))
    writer.release()
    task_id = make_media_task(alice, [("clip.avi", path.read_bytes())], start_frame=1, frame_filter="step=2")
    meta = alice.get(f"/api/tasks/{task_id}/data/meta").json()
    # one element per frame: the chunks are image sets, which clients read frame by frame
    assert meta["frames"] == [
        {
            "name": f"frame_{n:06d}",
            "width": 64,
            "height": 48,
            "related_files": 0,
            "has_related_context": False,
        }
        for n in (1, 3, 5)
    ]
    assert (meta["size"], meta["start_frame"], meta["stop_frame"], meta["frame_filter"]) == (
        3,
        1,
        5,
        "step=2",
    )
    # relative frame 2 is source frame 5, drawn at gray level 200
    frame = get_data(alice, f"/api/tasks/{task_id}/data", type="frame", number=2, quality="original")
    assert frame.headers["content-type"] == "image/jpeg" and abs(gray(frame.content) - 200) < 4


def test_previews(alice, make_media_task, annota_client, run_async):
    project_id = alice.post("/api/projects", json={"name": "p", "labels": [{"name": "car"}]}).json()["id"]
    empty = alice.post("/api/tasks", json={"name": "empty", "project_id": project_id}).json()["id"]
    # CVAT's answers for a task and a project without media
    response = alice.get(f"/api/tasks/{empty}/preview")
    assert response.status_code == 404 and response.json() == {"detail": "Task image preview not found"}
    response = alice.get(f"/api/projects/{project_id}/preview")
    assert response.status_code == 404 and response.json() == {"detail": "Project image preview not found"}

    task_id = make_media_task(alice, images(3), segment_size=2)
    preview = alice.get(f"/api/tasks/{task_id}/preview")
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
    assert abs(gray(preview.content) - VALUES[0]) < 3
    assert_checksum(preview)

    first, second = alice.get("/api/jobs", params={"task_id": task_id, "sort": "id"}).json()["results"]
    for _ in range(2):
        job_preview = alice.get(f"/api/jobs/{second['id']}/preview")
        assert job_preview.status_code == 200 and job_preview.headers["content-type"] == "image/jpeg"
        assert abs(gray(job_preview.content) - VALUES[2]) < 4
        assert_checksum(job_preview)

    async def move() -> None:
        async with annota_client.app.state.annota.sessionmaker.begin() as session:
            await session.execute(update(Task).where(Task.id == task_id).values(project_id=project_id))

    run_async(move)
    project_preview = alice.get(f"/api/projects/{project_id}/preview")
    assert project_preview.status_code == 200 and project_preview.content == preview.content


def test_tasks_without_data_and_other_users(alice, bob, make_media_task):
    bare = alice.post("/api/tasks", json={"name": "bare"}).json()["id"]
    assert alice.get(f"/api/tasks/{bare}/data/meta").status_code == 404
    response = get_data(alice, f"/api/tasks/{bare}/data", type="chunk", number=0)
    assert response.status_code == 404 and f"Task {bare}" in response.text

    task_id = make_media_task(alice, images(2))
    (job,) = alice.get("/api/jobs", params={"task_id": task_id}).json()["results"]
    for url, params in (
        (f"/api/tasks/{task_id}/data", {"type": "frame", "number": 0}),
        (f"/api/jobs/{job['id']}/data", {"type": "chunk", "number": 0}),
        (f"/api/tasks/{task_id}/data/meta", {}),
        (f"/api/jobs/{job['id']}/data/meta", {}),
        (f"/api/tasks/{task_id}/preview", {}),
        (f"/api/jobs/{job['id']}/preview", {}),
    ):
        assert bob.get(url, params=params).status_code == 403, url
    assert bob.patch(f"/api/tasks/{task_id}/data/meta", json={"deleted_frames": []}).status_code == 403
    assert bob.get(f"/api/tasks/{task_id + 100}/data/meta").status_code == 404
