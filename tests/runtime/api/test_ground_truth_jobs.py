"""Ground-truth jobs as CVAT makes them: frame selection, one per task, its frames, annotations,
validation layout, removal, the ``type`` filter and who may do what."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from tests.media import make_jpeg


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def media_task(alice, make_media_task):
    """A task of 10 images in jobs of 4 frames (chunks of 3 frames): frame ``n`` has gray level 20n."""
    files = [(f"f{n}.jpg", make_jpeg(value=20 * n)) for n in range(10)]
    return make_media_task(alice, files, segment_size=4, chunk_size=3)


def gt(client, task_id, **fields):
    return client.post("/api/jobs", json={"type": "ground_truth", "task_id": task_id, **fields})


def test_manual_ground_truth_job_serves_its_frames_and_keeps_its_annotations(alice, media_task):
    created = gt(alice, media_task, frame_selection_method="manual", frames=[7, 2, 5], assignee=alice.user_id)
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["type"] == "ground_truth" and job["task_id"] == media_task
    assert (job["start_frame"], job["stop_frame"], job["frame_count"]) == (0, 9, 3)
    assert job["assignee"]["id"] == alice.user_id and job["assignee_updated_date"] is not None
    assert (job["stage"], job["state"], job["data_compressed_chunk_type"]) == (
        "annotation",
        "new",
        "imageset",
    )
    job_id = job["id"]

    meta = alice.get(f"/api/jobs/{job_id}/data/meta").json()
    assert meta["size"] == 3 and meta["included_frames"] == [2, 5, 7]
    # as CVAT: the job's span (the whole task) with placeholders, so CVAT's UI, which finds a
    # frame's entry at its offset from start_frame and numbers the job's frames from the job's
    # start_frame, shows f2.jpg as frame 2 (not as frame 0)
    assert (meta["start_frame"], meta["stop_frame"]) == (job["start_frame"], job["stop_frame"])
    names = [frame["name"] for frame in meta["frames"]]
    assert len(names) == 10 and [names[i] for i in (2, 5, 7)] == ["f2.jpg", "f5.jpg", "f7.jpg"]
    assert {name for i, name in enumerate(names) if i not in (2, 5, 7)} == {"placeholder.jpg"}
    # the job's chunk 0 holds its three frames, taken from three task chunks
    chunk = alice.get(f"/api/jobs/{job_id}/data", params={"type": "chunk", "index": 0, "quality": "original"})
    assert chunk.status_code == 200, chunk.text
    with zipfile.ZipFile(io.BytesIO(chunk.content)) as archive:
        assert len(archive.infolist()) == 3
    frame = alice.get(
        f"/api/jobs/{job_id}/data", params={"type": "frame", "number": 5, "quality": "original"}
    )
    assert frame.status_code == 200
    assert alice.get(f"/api/jobs/{job_id}/data", params={"type": "frame", "number": 4}).status_code == 400

    label_id = alice.get("/api/labels", params={"task_id": media_task}).json()["results"][0]["id"]
    box = {"type": "rectangle", "label_id": label_id, "frame": 5, "points": [1, 2, 10, 12]}
    saved = alice.put(f"/api/jobs/{job_id}/annotations", json={"shapes": [box]})
    assert saved.status_code == 200, saved.text
    assert [s["frame"] for s in alice.get(f"/api/jobs/{job_id}/annotations").json()["shapes"]] == [5]
    outside = alice.put(f"/api/jobs/{job_id}/annotations", json={"shapes": [{**box, "frame": 4}]})
    assert outside.status_code == 400
    # the reference annotations are not the task's
    assert alice.get(f"/api/tasks/{media_task}/annotations").json()["shapes"] == []

    task = alice.get(f"/api/tasks/{media_task}").json()
    assert task["validation_mode"] == "gt"
    layout = alice.get(f"/api/tasks/{media_task}/validation_layout").json()
    assert layout == {"mode": "gt", "validation_frames": [2, 5, 7], "disabled_frames": []}
    assert alice.get(f"/api/jobs/{job_id}/validation_layout").json() == {}

    jobs = alice.get("/api/jobs", params={"type": "ground_truth"}).json()["results"]
    assert [j["id"] for j in jobs] == [job_id]
    annotation_jobs = alice.get("/api/jobs", params={"type": "annotation", "task_id": media_task}).json()
    assert annotation_jobs["count"] == 3
    assert [t["id"] for t in alice.get("/api/tasks", params={"validation_mode": "gt"}).json()["results"]] == [
        media_task
    ]

    second = gt(alice, media_task, frame_selection_method="manual", frames=[1])
    assert second.status_code == 400
    assert second.json() == ['Task with validation mode "gt" cannot have more than 1 GT job']

    removed = alice.delete(f"/api/jobs/{job_id}")
    assert removed.status_code == 204
    assert alice.get(f"/api/jobs/{job_id}").status_code == 404
    assert alice.get(f"/api/tasks/{media_task}/validation_layout").json() == {"mode": None}
    assert alice.get(f"/api/tasks/{media_task}").json()["validation_mode"] is None
    # a new one may be made once the old one is gone; its frames are its own
    again = gt(alice, media_task, frame_selection_method="manual", frames=[1, 3])
    assert again.status_code == 201
    assert alice.get(f"/api/jobs/{again.json()['id']}/data/meta").json()["included_frames"] == [1, 3]
    assert alice.get(f"/api/jobs/{again.json()['id']}/annotations").json()["shapes"] == []


def test_random_frame_selection_is_cvats(alice, media_task):
    uniform = gt(alice, media_task, frame_selection_method="random_uniform", frame_count=4, random_seed=42)
    assert uniform.status_code == 201, uniform.text
    meta = alice.get(f"/api/jobs/{uniform.json()['id']}/data/meta").json()
    # the frames CVAT draws for the same request: NumPy's MT19937 with the seed, without replacement
    rng = np.random.Generator(np.random.MT19937(seed=42))
    expected = sorted(int(f) for f in rng.choice(list(range(10)), size=4, shuffle=False, replace=False))
    assert meta["included_frames"] == expected
    assert alice.delete(f"/api/jobs/{uniform.json()['id']}").status_code == 204

    shared = gt(alice, media_task, frame_selection_method="random_uniform", frame_share=0.25, random_seed=1)
    assert shared.status_code == 201 and shared.json()["frame_count"] == 2
    assert alice.delete(f"/api/jobs/{shared.json()['id']}").status_code == 204

    per_job = gt(
        alice, media_task, frame_selection_method="random_per_job", frames_per_job_count=2, random_seed=7
    )
    assert per_job.status_code == 201, per_job.text
    frames = alice.get(f"/api/jobs/{per_job.json()['id']}/data/meta").json()["included_frames"]
    # two frames from each job of four (0-3, 4-7) and both frames of the last (8-9)
    assert len(frames) == 6
    assert [sum(1 for f in frames if start <= f <= stop) for start, stop in ((0, 3), (4, 7), (8, 9))] == [
        2,
        2,
        2,
    ]
    assert alice.delete(f"/api/jobs/{per_job.json()['id']}").status_code == 204

    per_share = gt(alice, media_task, frame_selection_method="random_per_job", frames_per_job_share=0.5)
    assert per_share.status_code == 201 and per_share.json()["frame_count"] == 6


@pytest.mark.parametrize(
    ("fields", "answer"),
    [
        ({"frame_selection_method": "random_uniform"},
         {"non_field_errors": ['One of the fields "frame_count", "frame_share" required']}),
        ({"frame_selection_method": "random_uniform", "frame_count": 2, "frame_share": 0.5},
         {"non_field_errors": ['Only 1 of the fields "frame_count", "frame_share" can be used']}),
        ({"frame_selection_method": "random_per_job"},
         {"non_field_errors": ['One of the fields "frames_per_job_count", "frames_per_job_share" required']}),
        ({"frame_selection_method": "manual"}, {"non_field_errors": ['The "frames" field is required']}),
        ({"frame_selection_method": "random_uniform", "frame_count": 1, "frames": [1]},
         {"non_field_errors": ['"frames" can only be used when "frame_selection_method" is "manual"']}),
        ({"frame_selection_method": "random_uniform", "frame_count": 11},
         ["The number of frames requested (11) must not be greater than the number of the task frames (10)"]),
        ({"frame_selection_method": "manual", "frames": [1, 1]}, ["Frames must not repeat"]),
        ({"frame_selection_method": "manual", "frames": [3, 12, 10]},
         ["The following frames do not exist in the task: 10, 12"]),
        ({}, ["Unexpected frame selection method 'None'"]),
        ({"type": "annotation", "frame_selection_method": "manual", "frames": [1]},
         ["Unexpected job type 'annotation'"]),
    ],
)  # fmt: skip
def test_bad_requests_answer_cvats_messages(alice, media_task, fields, answer):
    response = gt(alice, media_task, **fields)
    assert response.status_code == 400
    assert response.json() == answer
    assert alice.get("/api/jobs", params={"task_id": media_task}).json()["count"] == 3


def test_field_errors_name_the_field(alice, media_task):
    for fields, field in (
        ({"frame_selection_method": "manual", "frames": []}, "frames"),
        ({"frame_selection_method": "random_uniform", "frame_share": 1.5}, "frame_share"),
        ({"frame_selection_method": "random_uniform", "frame_count": 0}, "frame_count"),
        ({"frame_selection_method": "sometimes", "frame_count": 1}, "frame_selection_method"),
        ({"frame_selection_method": "random_uniform", "frame_count": 1, "random_seed": -1}, "random_seed"),
    ):
        response = gt(alice, media_task, **fields)
        assert response.status_code == 400 and field in response.json(), (fields, response.text)
    missing = alice.post("/api/jobs", json={"type": "ground_truth"})
    assert missing.status_code == 400 and "task_id" in missing.json()
    too_big = gt(alice, 2**40, frame_selection_method="manual", frames=[1])
    assert too_big.status_code == 400 and "task_id" in too_big.json()
    many = gt(alice, media_task, frame_selection_method="manual", frames=list(range(5, 25)))
    listed = ", ".join(map(str, range(10, 20)))
    assert many.json() == [f"The following frames do not exist in the task: {listed} (and 5 more)"]
    unknown = gt(alice, 99999, frame_selection_method="manual", frames=[1])
    assert unknown.status_code == 400 and "task_id" in unknown.json()


def test_a_task_without_media_has_no_ground_truth(alice):
    task_id = alice.post("/api/tasks", json={"name": "empty"}).json()["id"]
    response = gt(alice, task_id, frame_selection_method="manual", frames=[0])
    assert response.status_code == 400
    assert response.json() == ["This task has no data attached yet. Please set up task data and try again"]


def test_only_ground_truth_jobs_are_removed(alice, media_task):
    annotation_job = alice.get("/api/jobs", params={"task_id": media_task}).json()["results"][0]["id"]
    response = alice.delete(f"/api/jobs/{annotation_job}")
    assert response.status_code == 400 and response.json() == ["Only ground truth jobs can be removed"]
    assert alice.get(f"/api/jobs/{annotation_job}").status_code == 200


def test_who_may_make_and_remove_ground_truth(alice, make_user, media_task):
    bob = make_user("bob")
    assert gt(bob, media_task, frame_selection_method="manual", frames=[1]).status_code == 403
    # permission comes before validation, as in CVAT
    assert gt(bob, media_task, frame_selection_method="manual").status_code == 403
    job_id = gt(alice, media_task, frame_selection_method="manual", frames=[1]).json()["id"]
    assert bob.delete(f"/api/jobs/{job_id}").status_code == 403
    # the task's assignee is its staff: may make and remove its ground truth
    alice.patch(f"/api/tasks/{media_task}", json={"assignee_id": bob.user_id})
    assert bob.delete(f"/api/jobs/{job_id}").status_code == 204
    assert gt(bob, media_task, frame_selection_method="manual", frames=[2]).status_code == 201


def test_events_of_ground_truth_jobs(alice, make_user, media_task):
    admin = make_user("admin", superuser=True)
    job_id = gt(alice, media_task, frame_selection_method="manual", frames=[1]).json()["id"]
    assert alice.delete(f"/api/jobs/{job_id}").status_code == 204
    log = admin.get("/api/events", params={"job_id": job_id}).json()["results"]
    assert [(e["type"], e["resource_id"], e["task_id"]) for e in log] == [
        ("delete:job", job_id, media_task),
        ("create:job", job_id, media_task),
    ]
    assert log[1]["payload"]["job"]["type"] == "ground_truth"
