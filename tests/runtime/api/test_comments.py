"""Comments API: the conversation on an issue — adding, listing by issue, job and frame, editing,
deleting, and who may take part."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.runtime.api.test_issues import make_jobs, raise_issue
from tests.runtime.api.test_organizations import join, people


@pytest.fixture
def alice(make_user: Any) -> Any:
    return make_user("alice")


@pytest.fixture
def bob(make_user: Any) -> Any:
    return make_user("bob")


def comment(client: Any, issue: int, message: str = "more", expect: int = 201) -> Any:
    response = client.post("/api/comments", json={"issue": issue, "message": message})
    assert response.status_code == expect, response.text
    return response.json()


def test_comment_read_edit_and_delete(alice: Any, add_jobs: Any) -> None:
    _, (job, _) = make_jobs(alice, add_jobs)
    issue = raise_issue(alice, job)
    added = comment(alice, issue["id"], "second thoughts")
    assert set(added) == {"id", "issue", "owner", "message", "created_date", "updated_date"}
    assert (added["issue"], added["message"], added["owner"]["username"]) == (
        issue["id"],
        "second thoughts",
        "alice",
    )
    assert alice.get(f"/api/comments/{added['id']}").json() == added
    assert alice.get(f"/api/issues/{issue['id']}").json()["comments"]["count"] == 2

    edited = alice.patch(f"/api/comments/{added['id']}", json={"message": "on reflection", "issue": 999})
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert (body["message"], body["issue"]) == ("on reflection", issue["id"])
    assert body["updated_date"] > added["updated_date"] and body["created_date"] == added["created_date"]
    assert alice.get(f"/api/comments/{added['id']}").json() == body

    assert alice.delete(f"/api/comments/{added['id']}").status_code == 204
    assert alice.get(f"/api/comments/{added['id']}").status_code == 404
    assert alice.get(f"/api/issues/{issue['id']}").json()["comments"]["count"] == 1
    assert alice.patch("/api/comments/999", json={"message": "x"}).status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"issue": 999, "message": "m"}, "issue", 'Invalid pk "999"'),
        ({"message": "m"}, "issue", "This field is required."),
        ({"message": ""}, "message", "length >= 1"),
        ({"message": 5}, "message", "Expected `str`"),
    ],
)
def test_bad_comments_are_refused_naming_the_field(
    alice: Any, add_jobs: Any, body: dict[str, Any], field: str, words: str
) -> None:
    _, (job, _) = make_jobs(alice, add_jobs)
    issue = raise_issue(alice, job)
    payload = {"issue": issue["id"], **body}
    if field == "issue" and "issue" not in body:
        del payload["issue"]
    response = alice.post("/api/comments", json=payload)
    assert response.status_code == 400, response.text
    assert words in " ".join(response.json()[field])
    first = alice.get("/api/comments").json()["results"][0]["id"]
    refused = alice.patch(f"/api/comments/{first}", json={"message": ""})
    assert refused.status_code == 400 and "message" in refused.json()


def test_list_by_issue_job_frame_and_owner(alice: Any, bob: Any, add_jobs: Any) -> None:
    _, (first, second) = make_jobs(alice, add_jobs)
    assert alice.patch(f"/api/jobs/{first}", json={"assignee": bob.user_id}).status_code == 200
    a = raise_issue(alice, first, frame=1)
    b = raise_issue(alice, second, frame=6)
    reply = comment(bob, a["id"], "fixed")

    def messages(**params: Any) -> list[str]:
        response = alice.get("/api/comments", params=params)
        assert response.status_code == 200, response.text
        return [c["message"] for c in response.json()["results"]]

    assert messages() == ["fixed", "look here", "look here"]
    assert messages(issue_id=a["id"]) == ["fixed", "look here"]
    assert messages(job_id=second) == ["look here"]
    assert messages(frame_id=1, sort="id") == ["look here", "fixed"]
    assert messages(owner="bob") == ["fixed"]
    assert messages(search="bo") == ["fixed"]
    rule = {"==": [{"var": "issue_id"}, b["id"]]}
    assert messages(filter=json.dumps(rule)) == ["look here"]
    assert [c["id"] for c in alice.get("/api/comments", params={"sort": "-owner"}).json()["results"]][
        0
    ] == reply["id"]
    assert alice.get("/api/comments", params={"sort": "message"}).status_code == 400
    assert alice.get("/api/comments", params={"issue_id": "x"}).status_code == 400


def test_who_may_comment_edit_and_delete(alice: Any, bob: Any, make_user: Any, add_jobs: Any) -> None:
    carol = make_user("carol")
    _, (job, _) = make_jobs(alice, add_jobs)
    issue = raise_issue(alice, job)
    (first,) = alice.get("/api/comments").json()["results"]
    # bob has nothing to do with the job
    comment(bob, issue["id"], expect=403)
    assert bob.get(f"/api/comments/{first['id']}").status_code == 403
    assert bob.get("/api/comments").json()["count"] == 0
    # assigned to the issue, carol joins the conversation and sees it all
    assert alice.patch(f"/api/issues/{issue['id']}", json={"assignee": carol.user_id}).status_code == 200
    mine = comment(carol, issue["id"], "on it")
    assert [c["id"] for c in carol.get("/api/comments").json()["results"]] == [mine["id"], first["id"]]
    assert carol.patch(f"/api/comments/{mine['id']}", json={"message": "done"}).status_code == 200
    # the issue's people may edit and delete anybody's comment on it, others none
    assert bob.patch(f"/api/comments/{mine['id']}", json={"message": "x"}).status_code == 403
    assert bob.delete(f"/api/comments/{mine['id']}").status_code == 403
    assert alice.patch(f"/api/comments/{mine['id']}", json={"message": "done!"}).status_code == 200
    assert carol.delete(f"/api/comments/{first['id']}").status_code == 204
    # once the issue is handed on, carol keeps what she wrote, and no more
    assert alice.patch(f"/api/issues/{issue['id']}", json={"assignee": None}).status_code == 200
    assert [c["id"] for c in carol.get("/api/comments").json()["results"]] == [mine["id"]]
    comment(carol, issue["id"], expect=403)
    assert carol.delete(f"/api/comments/{mine['id']}").status_code == 204


def test_organization_comments(make_user: Any, add_jobs: Any) -> None:
    owner, maintainer, worker = people(make_user, "owner", "maint", "work")
    assert owner.post("/api/organizations", json={"slug": "acme"}).status_code == 201
    join(owner, maintainer, "acme", "maintainer")
    join(owner, worker, "acme", "worker")
    org = {"X-Organization": "acme"}
    task = owner.post("/api/tasks", json={"name": "t"}, headers=org).json()["id"]
    (job,) = add_jobs(task, ((0, 4),))
    issue = raise_issue(owner, job)
    comment(worker, issue["id"], expect=403)
    by_maintainer = comment(maintainer, issue["id"], "checked")
    assert worker.get("/api/comments", params={"org": "acme"}).json()["count"] == 0
    assert maintainer.get("/api/comments", params={"org": "acme"}).json()["count"] == 2
    # in the sandbox, the organization's comments are not listed
    assert maintainer.get("/api/comments", params={"org": ""}).json()["count"] == 0
    assert worker.delete(f"/api/comments/{by_maintainer['id']}", headers=org).status_code == 403
    assert maintainer.delete(f"/api/comments/{by_maintainer['id']}", headers=org).status_code == 204
