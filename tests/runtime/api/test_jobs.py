"""Jobs API: reading, listing, the stage/state workflow and who may change what."""

from __future__ import annotations

import json

import pytest

from annota.core.db.tables import Job, Segment


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


def make_task(client, add_jobs, ranges=((0, 4), (5, 9)), **fields):
    task = client.post("/api/tasks", json={"name": "t", **fields}).json()
    return task["id"], add_jobs(task["id"], ranges)


def test_retrieve_job(alice, add_jobs):
    project_id = alice.post("/api/projects", json={"name": "p", "bug_tracker": "http://project"}).json()["id"]
    task_id, (first, second) = make_task(
        alice, add_jobs, ((0, 4), (5, 7)), project_id=project_id, consensus_replicas=2
    )
    response = alice.get(f"/api/jobs/{second}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["url"] == f"http://testserver/api/jobs/{second}"
    assert (body["id"], body["task_id"], body["task_name"]) == (second, task_id, "t")
    assert (body["project_id"], body["project_name"]) == (project_id, "p")
    assert (body["start_frame"], body["stop_frame"], body["frame_count"]) == (5, 7, 3)
    assert (body["stage"], body["state"], body["status"], body["type"]) == (
        "annotation",
        "new",
        "annotation",
        "annotation",
    )
    assert body["assignee"] is None and body["assignee_updated_date"] is None
    assert (body["dimension"], body["mode"], body["media_type"]) == ("2d", "annotation", "image")
    assert body["data_chunk_size"] == 36
    assert body["data_compressed_chunk_type"] == "imageset" and body["data_original_chunk_type"] == "imageset"
    assert body["issues"] == {"url": f"http://testserver/api/issues?job_id={second}", "count": 0}
    assert body["labels"] == {"url": f"http://testserver/api/labels?job_id={second}"}
    # the task has no tracker of its own: the project's shows through
    assert body["bug_tracker"] == "http://project"
    assert body["consensus_replicas"] == 2
    assert body["organization"] is None and body["parent_job_id"] is None and body["guide_id"] is None
    assert alice.get(f"/api/jobs/{second}/").status_code == 200
    assert alice.get("/api/jobs/9999").status_code == 404


def test_list_jobs_filters_sort_and_pagination(alice, add_jobs):
    project_id = alice.post("/api/projects", json={"name": "proj"}).json()["id"]
    first_task, first_jobs = make_task(alice, add_jobs, project_id=project_id)
    second_task = alice.post("/api/tasks", json={"name": "other"}).json()["id"]
    second_jobs = add_jobs(second_task, [(0, 2)])
    alice.patch(
        f"/api/jobs/{first_jobs[1]}",
        json={"stage": "validation", "state": "in progress", "assignee": alice.user_id},
    )

    def ids(**params):
        return [job["id"] for job in alice.get("/api/jobs", params=params).json()["results"]]

    everything = first_jobs + second_jobs
    assert ids() == sorted(everything, reverse=True)
    assert ids(sort="id") == sorted(everything)
    assert ids(task_id=first_task, sort="id") == first_jobs
    assert ids(project_id=project_id, sort="id") == first_jobs
    assert ids(project_name="proj", sort="id") == first_jobs
    assert ids(task_name="other") == second_jobs
    assert ids(stage="validation") == [first_jobs[1]]
    assert ids(state="new", sort="id") == [first_jobs[0], *second_jobs]
    assert ids(assignee="alice") == [first_jobs[1]]
    assert ids(type="annotation", dimension="2d", sort="id") == everything
    assert ids(search="OTH") == second_jobs
    assert ids(sort="-stage,id") == [first_jobs[1], first_jobs[0], *second_jobs]
    logic = {"and": [{"==": [{"var": "task_id"}, first_task]}, {"!=": [{"var": "stage"}, "validation"]}]}
    assert ids(filter=json.dumps(logic)) == [first_jobs[0]]

    page = alice.get("/api/jobs", params={"page_size": 2, "sort": "id"}).json()
    assert page["count"] == 3
    assert [job["id"] for job in page["results"]] == everything[:2]
    assert [job["id"] for job in alice.get(page["next"]).json()["results"]] == everything[2:]
    assert alice.get("/api/jobs", params={"sort": "secret"}).status_code == 400
    assert alice.get("/api/jobs", params={"task_id": "x"}).status_code == 400


def test_reading_jobs_takes_the_same_queries_for_few_and_many(alice, bob, add_jobs, count_queries):
    def add_task(number):
        project_id = alice.post("/api/projects", json={"name": f"p{number}"}).json()["id"]
        task_id = alice.post("/api/tasks", json={"name": f"t{number}", "project_id": project_id}).json()["id"]
        return add_jobs(task_id, [(0, 1), (2, 3)], assignee_id=bob.user_id)

    add_task(0)
    one = count_queries(lambda: alice.get("/api/jobs").raise_for_status())
    assert one > 4  # the page, its count and the related rows are all counted
    for number in range(1, 4):
        add_task(number)
    assert alice.get("/api/jobs").json()["count"] == 8
    assert count_queries(lambda: alice.get("/api/jobs").raise_for_status()) == one


def test_jobs_are_scoped_to_the_people_of_their_task(make_user, alice, bob, admin_client, add_jobs):
    carol = make_user("carol")
    task_id, (first, second) = make_task(alice, add_jobs)
    alice.patch(f"/api/jobs/{first}", json={"assignee": bob.user_id})

    assert sorted(job["id"] for job in alice.get("/api/jobs").json()["results"]) == [first, second]
    assert [job["id"] for job in bob.get("/api/jobs").json()["results"]] == [first]
    assert bob.get(f"/api/jobs/{first}").status_code == 200
    assert bob.get(f"/api/jobs/{second}").status_code == 403
    assert carol.get("/api/jobs").json()["count"] == 0
    assert carol.get(f"/api/jobs/{first}").status_code == 403
    assert carol.patch(f"/api/jobs/{first}", json={"state": "in progress"}).status_code == 403
    assert admin_client.get("/api/jobs").json()["count"] == 2
    # the task's assignee sees every job of the task
    alice.patch(f"/api/tasks/{task_id}", json={"assignee_id": carol.user_id})
    assert carol.get("/api/jobs").json()["count"] == 2


def test_project_staff_see_the_jobs_of_the_project(alice, bob, add_jobs):
    project_id = alice.post("/api/projects", json={"name": "p", "assignee_id": bob.user_id}).json()["id"]
    _, jobs = make_task(alice, add_jobs, project_id=project_id)
    assert sorted(job["id"] for job in bob.get("/api/jobs").json()["results"]) == jobs
    assert bob.patch(f"/api/jobs/{jobs[0]}", json={"stage": "validation"}).status_code == 200


def test_stage_changes_restart_the_state(alice, add_jobs):
    _, (job_id, _) = make_task(alice, add_jobs)
    started = alice.patch(f"/api/jobs/{job_id}", json={"state": "in progress"}).json()
    assert (started["stage"], started["state"], started["status"]) == (
        "annotation",
        "in progress",
        "annotation",
    )
    moved = alice.patch(f"/api/jobs/{job_id}", json={"stage": "validation"}).json()
    assert (moved["stage"], moved["state"], moved["status"]) == ("validation", "new", "validation")
    assert moved["updated_date"] > started["updated_date"]
    done = alice.patch(f"/api/jobs/{job_id}", json={"stage": "acceptance", "state": "completed"}).json()
    assert (done["stage"], done["state"], done["status"]) == ("acceptance", "completed", "completed")
    same_stage = alice.patch(f"/api/jobs/{job_id}", json={"stage": "acceptance"}).json()
    assert same_stage["state"] == "completed"
    assert alice.get(f"/api/jobs/{job_id}").json() == same_stage


def test_task_status_follows_its_jobs(alice, add_jobs):
    task_id, (first, second) = make_task(alice, add_jobs)
    finished = {"stage": "acceptance", "state": "completed"}
    alice.patch(f"/api/jobs/{first}", json=finished)
    assert alice.get(f"/api/tasks/{task_id}").json()["status"] == "annotation"
    before = alice.get(f"/api/tasks/{task_id}").json()["updated_date"]
    alice.patch(f"/api/jobs/{second}", json={"stage": "validation"})
    assert alice.get(f"/api/tasks/{task_id}").json()["status"] == "validation"
    alice.patch(f"/api/jobs/{second}", json=finished)
    task = alice.get(f"/api/tasks/{task_id}").json()
    assert task["status"] == "completed"
    assert task["updated_date"] > before
    assert task["jobs"]["completed"] == 2
    assert [t["id"] for t in alice.get("/api/tasks", params={"status": "completed"}).json()["results"]] == [
        task_id
    ]


def test_job_assignee_may_change_state_but_not_stage_or_assignee(make_user, alice, bob, add_jobs):
    carol = make_user("carol")
    _, (job_id, _) = make_task(alice, add_jobs)
    assigned = alice.patch(f"/api/jobs/{job_id}", json={"assignee": bob.user_id})
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["assignee"]["username"] == "bob"
    assert assigned.json()["assignee_updated_date"] is not None

    assert bob.patch(f"/api/jobs/{job_id}", json={"state": "in progress"}).status_code == 200
    assert bob.patch(f"/api/jobs/{job_id}", json={"stage": "acceptance"}).status_code == 403
    assert (
        bob.patch(f"/api/jobs/{job_id}", json={"state": "completed", "stage": "acceptance"}).status_code
        == 403
    )
    assert bob.patch(f"/api/jobs/{job_id}", json={"assignee": carol.user_id}).status_code == 403
    # an empty PATCH only needs the right to see the job
    assert bob.patch(f"/api/jobs/{job_id}", json={}).status_code == 200
    job = alice.get(f"/api/jobs/{job_id}").json()
    assert (job["stage"], job["state"], job["assignee"]["id"]) == ("annotation", "in progress", bob.user_id)

    assert alice.patch(f"/api/jobs/{job_id}", json={"assignee": None}).json()["assignee"] is None
    assert bob.get(f"/api/jobs/{job_id}").status_code == 403


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"stage": "review"}, "stage"),
        ({"state": "done"}, "state"),
        ({"state": None}, "state"),
        ({"assignee": 9999}, "assignee"),
        ({"assignee": "bob"}, "assignee"),
    ],
)
def test_invalid_job_patch_names_the_field_and_changes_nothing(alice, add_jobs, payload, field):
    _, (job_id, _) = make_task(alice, add_jobs)
    before = alice.get(f"/api/jobs/{job_id}").json()
    response = alice.patch(f"/api/jobs/{job_id}", json={"state": "in progress", **payload})
    assert response.status_code == 400, response.text
    assert field in response.json()
    assert alice.get(f"/api/jobs/{job_id}").json() == before


def test_ground_truth_jobs(alice, add_jobs, run_async):
    """Jobs of specific frames count those frames and report image-set chunks."""
    task_id = alice.post("/api/tasks", json={"name": "t"}).json()["id"]
    (regular,) = add_jobs(task_id, [(0, 9)])

    async def add_ground_truth():
        async with alice.app.state.annota.sessionmaker.begin() as session:
            segment = Segment(
                task_id=task_id, start_frame=0, stop_frame=9, type="specific_frames", frames="[1,4,7]"
            )
            session.add(segment)
            await session.flush()
            job = Job(segment_id=segment.id, task_id=task_id, type="ground_truth")
            session.add(job)
            await session.flush()
            return job.id

    ground_truth = run_async(add_ground_truth)
    body = alice.get(f"/api/jobs/{ground_truth}").json()
    assert (body["type"], body["frame_count"], body["consensus_replicas"]) == ("ground_truth", 3, 0)
    assert body["data_compressed_chunk_type"] == "imageset"
    assert alice.get("/api/jobs", params={"type": "ground_truth"}).json()["count"] == 1
    # ground-truth jobs do not count towards the task's annotation status
    alice.patch(f"/api/jobs/{regular}", json={"stage": "acceptance", "state": "completed"})
    assert alice.get(f"/api/tasks/{task_id}").json()["status"] == "completed"


def test_anonymous_is_401(annota_client, alice, add_jobs):
    _, (job_id, _) = make_task(alice, add_jobs)
    assert annota_client.get("/api/jobs").status_code == 401
    assert annota_client.get(f"/api/jobs/{job_id}").status_code == 401
    assert annota_client.patch(f"/api/jobs/{job_id}", json={"state": "completed"}).status_code == 401
    assert alice.get(f"/api/jobs/{job_id}").json()["state"] == "new"
