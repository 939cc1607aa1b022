"""Issues API: raising an issue on a job's frame with its first comment, the list's filters,
resolving and reassigning, deleting with the comments, and who may do what."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from annota.core.db.tables import Comment, Issue
from tests.runtime.api.test_organizations import join, people


@pytest.fixture
def alice(make_user: Any) -> Any:
    return make_user("alice")


@pytest.fixture
def bob(make_user: Any) -> Any:
    return make_user("bob")


def make_jobs(
    client: Any, add_jobs: Any, ranges: Any = ((0, 4), (5, 9)), **fields: Any
) -> tuple[int, list[int]]:
    task = client.post("/api/tasks", json={"name": "t", **fields})
    assert task.status_code == 201, task.text
    return task.json()["id"], add_jobs(task.json()["id"], ranges)


def raise_issue(client: Any, job: int, frame: int = 0, expect: int = 201, **fields: Any) -> Any:
    body = {"job": job, "frame": frame, "position": [1.0, 2.0, 30.5, 40.0], "message": "look here", **fields}
    response = client.post("/api/issues", json=body)
    assert response.status_code == expect, response.text
    return response.json()


def count_rows(run_async: Any, annota_client: Any, model: Any) -> int:
    async def go() -> int:
        async with annota_client.app.state.annota.sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    return int(run_async(go))


def test_raise_an_issue_with_its_first_comment(alice: Any, bob: Any, add_jobs: Any) -> None:
    _, (first, second) = make_jobs(alice, add_jobs)
    issue = raise_issue(alice, second, frame=7, assignee=bob.user_id)
    assert set(issue) == {
        "id", "frame", "position", "job", "owner", "assignee", "created_date", "updated_date", "resolved",
        "comments",
    }  # fmt: skip
    assert (issue["frame"], issue["job"], issue["resolved"]) == (7, second, False)
    assert issue["position"] == [1.0, 2.0, 30.5, 40.0]
    assert issue["owner"] == {
        "url": f"http://testserver/api/users/{alice.user_id}", "id": alice.user_id, "username": "alice",
        "first_name": "", "last_name": "",
    }  # fmt: skip
    assert issue["assignee"]["username"] == "bob"
    assert issue["comments"] == {"url": f"http://testserver/api/comments?issue_id={issue['id']}", "count": 1}
    assert alice.get(f"/api/issues/{issue['id']}").json() == issue
    (comment,) = alice.get("/api/comments", params={"issue_id": issue["id"]}).json()["results"]
    assert (comment["message"], comment["issue"], comment["owner"]["username"]) == (
        "look here",
        issue["id"],
        "alice",
    )
    # the job counts its issues
    assert alice.get(f"/api/jobs/{second}").json()["issues"]["count"] == 1
    assert alice.get(f"/api/jobs/{first}").json()["issues"]["count"] == 0
    assert alice.get("/api/issues/999").status_code == 404


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"frame": 5}, "frame", "Frame 5 is not a frame of job"),
        ({"frame": -1}, "frame", ">= 0"),
        ({"position": [1.0, 2.0, 3.0]}, "position", "even number"),
        ({"position": []}, "position", "at least 2"),
        ({"position": ["a", 1]}, "position[0]", "Expected `float`"),
        ({"job": 9999}, "job", 'Invalid pk "9999"'),
        ({"message": ""}, "message", "length >= 1"),
        ({"assignee": 9999}, "assignee", 'Invalid pk "9999"'),
        ({"resolved": "yes"}, "resolved", "Expected `bool`"),
    ],
)
def test_bad_issues_are_refused_naming_the_field(
    alice: Any, add_jobs: Any, change: dict[str, Any], field: str, words: str
) -> None:
    _, (first, _) = make_jobs(alice, add_jobs)
    body = {"job": first, "frame": 0, "position": [0, 0, 1, 1], "message": "m", **change}
    response = alice.post("/api/issues", json=body)
    assert response.status_code == 400, response.text
    assert words in " ".join(response.json()[field])
    missing = alice.post("/api/issues", json={"job": first, "position": [0, 0], "message": "m"})
    assert missing.status_code == 400 and missing.json() == {"frame": ["This field is required."]}


def test_a_job_of_specific_frames_takes_only_its_frames(
    alice: Any, add_jobs: Any, run_async: Any, annota_client: Any
) -> None:
    from annota.core.db.tables import Segment

    _, (job,) = make_jobs(alice, add_jobs, ((0, 9),))

    async def pick() -> None:
        async with annota_client.app.state.annota.sessionmaker.begin() as session:
            segment = (await session.execute(select(Segment))).scalars().one()
            segment.type, segment.frames = "specific_frames", "[2, 5, 9]"

    run_async(pick)
    raise_issue(alice, job, frame=5)
    refused = raise_issue(alice, job, frame=4, expect=400)
    assert refused == {"frame": [f"Frame 4 is not a frame of job {job} (2, 5, 9)."]}


def test_list_filters_search_sort_and_pages(alice: Any, bob: Any, add_jobs: Any) -> None:
    task_id, (first, second) = make_jobs(alice, add_jobs)
    other_task, (third,) = make_jobs(alice, add_jobs, ((0, 2),))
    a = raise_issue(alice, first, frame=1)
    b = raise_issue(alice, first, frame=3, assignee=bob.user_id, resolved=True)
    c = raise_issue(alice, second, frame=6, assignee=bob.user_id)
    d = raise_issue(alice, third, frame=1)

    def ids(**params: Any) -> list[int]:
        response = alice.get("/api/issues", params=params)
        assert response.status_code == 200, response.text
        return [issue["id"] for issue in response.json()["results"]]

    assert ids() == [d["id"], c["id"], b["id"], a["id"]]
    assert ids(job_id=first, page_size=500) == [b["id"], a["id"]]
    assert ids(task_id=task_id) == [c["id"], b["id"], a["id"]]
    assert ids(task_id=other_task) == [d["id"]]
    assert ids(frame_id=1) == [d["id"], a["id"]]
    assert ids(resolved="true") == [b["id"]]
    assert ids(resolved="false") == [d["id"], c["id"], a["id"]]
    assert ids(assignee="bob") == [c["id"], b["id"]]
    assert ids(owner="alice", job_id=second) == [c["id"]]
    assert ids(search="bo") == [c["id"], b["id"]]
    # ties go to the newest first
    assert ids(sort="frame_id") == [d["id"], a["id"], b["id"], c["id"]]
    assert ids(sort="-job_id,id") == [d["id"], c["id"], a["id"], b["id"]]
    rule = {"and": [{"==": [{"var": "resolved"}, False]}, {">": [{"var": "frame_id"}, 1]}]}
    assert ids(filter=json.dumps(rule)) == [c["id"]]
    page = alice.get("/api/issues", params={"page_size": 3, "page": 2}).json()
    assert page["count"] == 4 and [i["id"] for i in page["results"]] == [a["id"]] and page["next"] is None
    bad = alice.get("/api/issues", params={"resolved": "maybe"})
    assert bad.status_code == 400 and "resolved" in bad.json()
    assert alice.get("/api/issues", params={"sort": "message"}).status_code == 400
    assert alice.get("/api/issues", params={"job_id": "x"}).status_code == 400


def test_update_resolves_reassigns_and_moves(alice: Any, bob: Any, add_jobs: Any) -> None:
    _, (job, _) = make_jobs(alice, add_jobs)
    issue = raise_issue(alice, job, frame=2)
    response = alice.patch(
        f"/api/issues/{issue['id']}",
        json={"resolved": True, "assignee": bob.user_id, "position": [5, 5, 6, 6]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resolved"] is True and body["assignee"]["id"] == bob.user_id
    assert body["position"] == [5.0, 5.0, 6.0, 6.0]
    assert body["updated_date"] > issue["updated_date"] and body["created_date"] == issue["created_date"]
    # the frame and the job are written once
    unchanged = alice.patch(
        f"/api/issues/{issue['id']}", json={"frame": 4, "job": 999, "assignee": None}
    ).json()
    assert (unchanged["frame"], unchanged["job"], unchanged["assignee"]) == (2, job, None)
    assert alice.get(f"/api/issues/{issue['id']}").json() == unchanged
    bad = alice.patch(f"/api/issues/{issue['id']}", json={"position": [1]})
    assert bad.status_code == 400 and "position" in bad.json()
    assert alice.patch(f"/api/issues/{issue['id']}", json={"assignee": 999}).status_code == 400
    assert alice.patch("/api/issues/999", json={"resolved": True}).status_code == 404


def test_delete_takes_the_comments_along(
    alice: Any, add_jobs: Any, run_async: Any, annota_client: Any
) -> None:
    _, (job, _) = make_jobs(alice, add_jobs)
    issue = raise_issue(alice, job)
    kept = raise_issue(alice, job, frame=1)
    assert alice.post("/api/comments", json={"issue": issue["id"], "message": "second"}).status_code == 201
    assert count_rows(run_async, annota_client, Comment) == 3
    assert alice.delete(f"/api/issues/{issue['id']}").status_code == 204
    assert alice.get(f"/api/issues/{issue['id']}").status_code == 404
    assert count_rows(run_async, annota_client, Comment) == 1
    assert [c["issue"] for c in alice.get("/api/comments").json()["results"]] == [kept["id"]]
    assert alice.delete(f"/api/issues/{issue['id']}").status_code == 404


def test_deleting_the_task_or_project_removes_its_issues(
    alice: Any, add_jobs: Any, run_async: Any, annota_client: Any
) -> None:
    project = alice.post("/api/projects", json={"name": "p"}).json()["id"]
    task_id, (job, _) = make_jobs(alice, add_jobs)
    in_project, (other,) = make_jobs(alice, add_jobs, ((0, 3),), project_id=project)
    raise_issue(alice, job)
    raise_issue(alice, other)
    assert alice.delete(f"/api/tasks/{task_id}").status_code == 204
    assert count_rows(run_async, annota_client, Issue) == 1
    assert count_rows(run_async, annota_client, Comment) == 1
    assert alice.delete(f"/api/projects/{project}").status_code == 204
    assert count_rows(run_async, annota_client, Issue) == 0
    assert count_rows(run_async, annota_client, Comment) == 0
    assert alice.get("/api/issues").json()["count"] == 0


def test_who_may_raise_see_change_and_delete(alice: Any, bob: Any, make_user: Any, add_jobs: Any) -> None:
    carol = make_user("carol")
    _, (job, other_job) = make_jobs(alice, add_jobs)
    # bob annotates the first job only
    assert alice.patch(f"/api/jobs/{job}", json={"assignee": bob.user_id}).status_code == 200
    by_alice = raise_issue(alice, job)
    by_bob = raise_issue(bob, job, frame=1, assignee=carol.user_id)
    raise_issue(bob, other_job, frame=5, expect=403)
    raise_issue(carol, job, expect=403)

    assert [i["id"] for i in bob.get("/api/issues").json()["results"]] == [by_bob["id"], by_alice["id"]]
    # carol sees the issue assigned to her and nothing else of the job
    assert [i["id"] for i in carol.get("/api/issues").json()["results"]] == [by_bob["id"]]
    assert carol.get(f"/api/issues/{by_alice['id']}").status_code == 403
    assert carol.patch(f"/api/issues/{by_bob['id']}", json={"resolved": True}).status_code == 200
    # the issue's assignee resolves it, but only its author and the task's staff delete it
    assert carol.delete(f"/api/issues/{by_bob['id']}").status_code == 403
    assert bob.patch(f"/api/issues/{by_alice['id']}", json={"resolved": True}).status_code == 200
    assert bob.delete(f"/api/issues/{by_alice['id']}").status_code == 403
    assert bob.delete(f"/api/issues/{by_bob['id']}").status_code == 204
    assert alice.delete(f"/api/issues/{by_alice['id']}").status_code == 204
    # a worker (global privilege) may look but not raise issues
    dave = make_user("dave", privilege=None)
    assert alice.patch(f"/api/jobs/{job}", json={"assignee": dave.user_id}).status_code == 200
    raise_issue(dave, job, expect=403)


def test_organization_maintainers_see_every_issue_members_their_own(make_user: Any, add_jobs: Any) -> None:
    owner, maintainer, worker, outsider = people(make_user, "owner", "maint", "work", "out")
    assert owner.post("/api/organizations", json={"slug": "acme"}).status_code == 201
    join(owner, maintainer, "acme", "maintainer")
    join(owner, worker, "acme", "worker")
    org = {"X-Organization": "acme"}
    task = owner.post("/api/tasks", json={"name": "t"}, headers=org).json()["id"]
    first, second = add_jobs(task, ((0, 4), (5, 9)))
    assert (
        owner.patch(f"/api/jobs/{first}", json={"assignee": worker.user_id}, headers=org).status_code == 200
    )
    on_first = raise_issue(worker, first)
    on_second = raise_issue(maintainer, second, frame=6)
    assert (
        worker.post(
            "/api/issues", json={"job": second, "frame": 5, "position": [0, 0], "message": "m"}
        ).status_code
        == 403
    )

    def listed(client: Any, **params: Any) -> list[int]:
        response = client.get("/api/issues", params=params)
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["results"]]

    assert listed(maintainer, org="acme") == [on_second["id"], on_first["id"]]
    assert listed(worker, org="acme") == [on_first["id"]]
    assert listed(worker) == [on_first["id"]]
    assert listed(worker, org="") == []
    assert listed(outsider) == []
    assert outsider.get("/api/issues", params={"org": "acme"}).status_code == 403
    assert outsider.get(f"/api/issues/{on_first['id']}").status_code == 403
    assert worker.get(f"/api/issues/{on_second['id']}").status_code == 403
    assert maintainer.delete(f"/api/issues/{on_first['id']}", headers=org).status_code == 204
