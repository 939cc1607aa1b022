"""Projects and tasks moved between the sandbox and organizations with ``organization_id``, as
CVAT's UI moves them: what goes along, what is handed over, who may, what is refused, the events."""

from __future__ import annotations

from typing import Any

from tests.runtime.api.test_organizations import join, people

ACME = {"X-Organization": "acme"}


def events(admin: Any, **params: Any) -> list[tuple[str, int | None]]:
    log = admin.get("/api/events", params={"page_size": 100, **params}).json()["results"]
    return [(e["type"], e["org_id"]) for e in reversed(log)]


def names(client: Any, path: str, headers: dict[str, str] | None = None) -> list[str]:
    return sorted(item["name"] for item in client.get(path, headers=headers or {}).json()["results"])


def test_a_task_moves_into_an_organization_and_back(make_user, add_jobs):
    alice, bob = people(make_user, "alice", "bob")
    admin = make_user("admin", superuser=True)
    org_id = alice.post("/api/organizations", json={"slug": "acme"}).json()["id"]
    task = alice.post(
        "/api/tasks", json={"name": "mine", "labels": [{"name": "car"}], "assignee_id": bob.user_id}
    ).json()
    (job_id,) = add_jobs(task["id"], [(0, 4)], assignee_id=bob.user_id)
    label_id = alice.get("/api/labels", params={"task_id": task["id"]}).json()["results"][0]["id"]
    box = {"type": "rectangle", "label_id": label_id, "frame": 1, "points": [1, 2, 3, 4]}
    assert alice.put(f"/api/jobs/{job_id}/annotations", json={"shapes": [box]}).status_code == 200

    moved = alice.patch(f"/api/tasks/{task['id']}", json={"organization_id": org_id})
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert body["organization_id"] == org_id and body["organization"] == org_id
    # the mover owns it now; the people it was given to may not be in the organization
    assert body["owner"]["id"] == alice.user_id and body["assignee"] is None
    assert body["assignee_updated_date"] is not None
    job = alice.get(f"/api/jobs/{job_id}").json()
    assert job["organization"] == org_id and job["assignee"] is None
    # its labels and annotations came along
    assert [
        label["id"] for label in alice.get("/api/labels", params={"task_id": task["id"]}).json()["results"]
    ] == [label_id]
    assert [s["frame"] for s in alice.get(f"/api/jobs/{job_id}/annotations").json()["shapes"]] == [1]
    assert names(alice, "/api/tasks", ACME) == ["mine"]
    assert names(alice, "/api/tasks", {"X-Organization": ""}) == []
    assert bob.get(f"/api/tasks/{task['id']}").status_code == 403

    assert events(admin, task_id=task["id"], type="delete:task") == [("delete:task", None)]
    assert events(admin, task_id=task["id"], type="create:task")[-1] == ("create:task", org_id)
    assert events(admin, task_id=task["id"], type="update:task") == []

    back = alice.patch(f"/api/tasks/{task['id']}", json={"organization_id": None}, headers=ACME)
    assert back.status_code == 200, back.text
    assert back.json()["organization_id"] is None
    assert names(alice, "/api/tasks", {"X-Organization": ""}) == ["mine"]
    assert events(admin, task_id=task["id"], type="delete:task") == [
        ("delete:task", None),
        ("delete:task", org_id),
    ]


def test_a_project_moves_with_its_tasks_and_jobs(make_user, add_jobs):
    alice, bob = people(make_user, "alice", "bob")
    admin = make_user("admin", superuser=True)
    org_id = alice.post("/api/organizations", json={"slug": "acme"}).json()["id"]
    project = alice.post("/api/projects", json={"name": "p", "labels": [{"name": "car"}]}).json()
    task_id = alice.post(
        "/api/tasks", json={"name": "inside", "project_id": project["id"], "assignee_id": bob.user_id}
    ).json()["id"]
    (job_id,) = add_jobs(task_id, [(0, 2)], assignee_id=bob.user_id)

    # a task in a project moves only with its project
    alone = alice.patch(f"/api/tasks/{task_id}", json={"organization_id": org_id})
    assert alone.status_code == 400
    assert alone.json() == {"non_field_errors": ["Only top-level resources can be moved between workspaces"]}

    moved = alice.patch(f"/api/projects/{project['id']}", json={"organization_id": org_id})
    assert moved.status_code == 200, moved.text
    assert moved.json()["organization_id"] == org_id and moved.json()["owner"]["id"] == alice.user_id
    task = alice.get(f"/api/tasks/{task_id}").json()
    assert (task["organization_id"], task["owner"]["id"], task["assignee"]) == (org_id, alice.user_id, None)
    assert alice.get(f"/api/jobs/{job_id}").json()["assignee"] is None
    assert names(alice, "/api/projects", ACME) == ["p"] and names(alice, "/api/tasks", ACME) == ["inside"]
    assert len(alice.get("/api/labels", params={"project_id": project["id"]}).json()["results"]) == 1
    assert [e for e in events(admin, project_id=project["id"]) if e[0].endswith(":project")] == [
        ("create:project", None),
        ("delete:project", None),
        ("create:project", org_id),
    ]


def test_what_a_move_refuses(make_user):
    alice, olga, walt = people(make_user, "alice", "olga", "walt")
    org_id = alice.post("/api/organizations", json={"slug": "acme"}).json()["id"]
    foreign = olga.post("/api/organizations", json={"slug": "other"}).json()["id"]
    join(alice, walt, "acme", "worker")
    task_id = alice.post("/api/tasks", json={"name": "t"}).json()["id"]
    project_id = alice.post("/api/projects", json={"name": "p"}).json()["id"]

    def move(body: dict[str, Any], client: Any = alice, path: str = f"/api/tasks/{task_id}") -> Any:
        return client.patch(path, json=body)

    other_fields = move({"organization_id": org_id, "name": "renamed"})
    assert other_fields.status_code == 400
    assert other_fields.json() == {
        "non_field_errors": ["Fields {'name'} cannot be updated when transferring to another workspace"]
    }
    with_project = move({"organization_id": org_id, "project_id": project_id})
    assert with_project.json() == {
        "non_field_errors": [
            "A task cannot be moved into a project and into an organization at the same time"
        ]
    }
    unknown = move({"organization_id": 99999})
    assert unknown.status_code == 400 and unknown.json() == ["Invalid organization id"]
    assert move({"organization_id": "acme"}).status_code == 400
    for not_an_id in (False, True):
        assert move({"organization_id": not_an_id}).status_code == 400
        assert move({"organization_id": not_an_id}, path=f"/api/projects/{project_id}").status_code == 400
    # the mover must be allowed to create such an object where it goes
    assert move({"organization_id": foreign}).status_code == 403
    assert move({"organization_id": foreign}, path=f"/api/projects/{project_id}").status_code == 403
    walt_task = walt.post("/api/tasks", json={"name": "walt's"}).json()["id"]
    assert move({"organization_id": org_id}, walt, f"/api/tasks/{walt_task}").status_code == 403
    # ... and to move it from where it is
    assert move({"organization_id": None}, walt).status_code == 403
    # nothing moved
    assert alice.get(f"/api/tasks/{task_id}").json()["organization_id"] is None
    assert alice.get(f"/api/tasks/{task_id}").json()["name"] == "t"
    assert alice.get(f"/api/projects/{project_id}").json()["organization_id"] is None
    # moving to where it is already changes nothing and is no move
    same = move({"organization_id": None})
    assert same.status_code == 200 and same.json()["organization_id"] is None
