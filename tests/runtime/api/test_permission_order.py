"""As in CVAT, permission comes before validation: a caller without the right gets 403 whatever
the body holds, and 400 only once allowed."""

from __future__ import annotations

from tests.runtime.api.test_organizations import join, people

BAD = {"name": 5, "labels": "none", "stage": "nowhere", "first_name": ["x"], "role": 7, "deleted_frames": "x"}


def test_strangers_get_403_for_bad_bodies(make_user, add_jobs):
    alice, eve = make_user("alice"), make_user("eve")
    project = alice.post("/api/projects", json={"name": "p", "labels": [{"name": "car"}]}).json()
    task = alice.post("/api/tasks", json={"name": "t", "labels": [{"name": "car"}]}).json()
    (job_id,) = add_jobs(task["id"])
    label = alice.get("/api/labels", params={"task_id": task["id"]}).json()["results"][0]
    attempts = [
        ("patch", f"/api/projects/{project['id']}"),
        ("patch", f"/api/tasks/{task['id']}"),
        ("patch", f"/api/jobs/{job_id}"),
        ("patch", f"/api/labels/{label['id']}"),
        ("patch", f"/api/users/{alice.user_id}"),
        ("patch", f"/api/tasks/{task['id']}/data/meta"),
        ("patch", f"/api/jobs/{job_id}/data/meta"),
    ]
    for method, url in attempts:
        refused = getattr(eve, method)(url, json=BAD)
        assert refused.status_code == 403, (url, refused.text)
        invalid = getattr(alice, method)(url, json=BAD)
        assert invalid.status_code == 400, (url, invalid.text)
    # a task made in a project the caller cannot see
    refused = eve.post("/api/tasks", json={"name": 5, "project_id": project["id"]})
    assert refused.status_code == 403, refused.text
    assert alice.post("/api/tasks", json={"name": 5, "project_id": project["id"]}).status_code == 400


def test_organization_bodies_are_judged_after_the_role(make_user):
    alice, walt = people(make_user, "alice", "walt")
    org = alice.post("/api/organizations", json={"slug": "acme"}).json()
    headers = {"X-Organization": "acme"}
    walt_membership = join(alice, walt, "acme", "worker")
    assert walt.patch(f"/api/organizations/{org['id']}", json={"slug": 5}, headers=headers).status_code == 403
    assert (
        alice.patch(f"/api/organizations/{org['id']}", json={"slug": 5}, headers=headers).status_code == 400
    )
    # a worker changes no roles, whatever the role sent; the owner learns the role is no role
    refused = walt.patch(f"/api/memberships/{walt_membership}", json={"role": 7}, headers=headers)
    assert refused.status_code == 403, refused.text
    invalid = alice.patch(f"/api/memberships/{walt_membership}", json={"role": 7}, headers=headers)
    assert invalid.status_code == 400, invalid.text
    # a worker invites nobody, whatever the body
    assert (
        walt.post("/api/invitations", json={"email": 5, "role": "worker"}, headers=headers).status_code == 403
    )
    assert (
        alice.post("/api/invitations", json={"email": 5, "role": "worker"}, headers=headers).status_code
        == 400
    )
