"""Tasks API: CRUD, validation, moving into projects, listing and who may see what."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from annota.core.db.tables import AttributeSpec, Data, Job, Label, Shape, Task


def count_rows(client, run_async, model, *where):
    async def count():
        async with client.app.state.annota.sessionmaker() as session:
            return await session.scalar(select(func.count()).select_from(model).where(*where))

    return run_async(count)


def test_create_and_retrieve_task(user_client):
    response = user_client.post(
        "/api/tasks", json={"name": "t1", "subset": "train", "bug_tracker": "http://bt"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    task_id = body["id"]
    assert body["url"] == f"http://testserver/api/tasks/{task_id}"
    assert body["name"] == "t1"
    assert body["owner"]["username"] == "user1"
    assert body["assignee"] is None
    assert body["project_id"] is None and body["project_name"] is None
    assert body["subset"] == "train" and body["bug_tracker"] == "http://bt"
    assert body["jobs"] == {
        "count": 0,
        "completed": 0,
        "validation": 0,
        "url": f"http://testserver/api/jobs?task_id={task_id}",
    }
    assert body["labels"] == {"url": f"http://testserver/api/labels?task_id={task_id}"}
    assert body["size"] == 0 and body["data"] is None
    assert body["status"] == "annotation" and body["media_type"] == "" and body["dimension"] == "2d"
    assert body["segment_size"] == 0 and body["overlap"] is None
    assert body["organization"] is None and body["organization_id"] is None
    assert body["validation_mode"] is None and body["consensus_enabled"] is False
    # no media yet: CVAT leaves the chunk description out
    for absent in (
        "image_quality",
        "data_chunk_size",
        "data_compressed_chunk_type",
        "data_original_chunk_type",
    ):
        assert absent not in body
    assert user_client.get(f"/api/tasks/{task_id}").json() == body
    assert user_client.get(f"/api/tasks/{task_id}/").status_code == 200


def test_create_with_write_once_fields_people_and_storage(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    response = alice.post(
        "/api/tasks",
        json={
            "name": "t",
            "overlap": 2,
            "segment_size": 10,
            "consensus_replicas": 3,
            "assignee_id": bob.user_id,
            "target_storage": {"location": "local"},
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["overlap"], body["segment_size"], body["consensus_enabled"]) == (2, 10, True)
    assert body["assignee"]["username"] == "bob"
    assert body["assignee_updated_date"] is not None
    storage_id = body["target_storage"]["id"]
    assert body["target_storage"] == {"id": storage_id, "location": "local", "cloud_storage_id": None}
    assert isinstance(storage_id, int) and body["source_storage"] is None
    # the assignee can see and list it
    assert bob.get(f"/api/tasks/{body['id']}").status_code == 200
    assert bob.get("/api/tasks").json()["count"] == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"bug_tracker": "x"}, "name"),
        ({"name": ""}, "name"),
        ({"name": 5}, "name"),
        ({"name": "t", "owner_id": 9999}, "owner_id"),
        ({"name": "t", "assignee_id": 9999}, "assignee_id"),
        ({"name": "t", "project_id": 9999}, "project_id"),
        ({"name": "t", "consensus_replicas": 1}, "consensus_replicas"),
        ({"name": "t", "consensus_replicas": 12}, "consensus_replicas"),
        ({"name": "t", "segment_size": -1}, "segment_size"),
        ({"name": "t", "overlap": -1}, "overlap"),
        ({"name": "t", "subset": "s" * 65}, "subset"),
        ({"name": "t", "target_storage": {"location": "ftp"}}, "target_storage.location"),
    ],
)
def test_invalid_create_names_the_field_and_writes_nothing(user_client, payload, field):
    response = user_client.post("/api/tasks", json=payload)
    assert response.status_code == 400, response.text
    assert field in response.json()
    assert user_client.get("/api/tasks").json()["count"] == 0


def test_labels_and_project_id_together_are_refused(user_client):
    project_id = user_client.post("/api/projects", json={"name": "p"}).json()["id"]
    response = user_client.post(
        "/api/tasks", json={"name": "t", "project_id": project_id, "labels": [{"name": "car"}]}
    )
    assert response.status_code == 400
    assert response.json() == ["Task must have only one of Label set or project_id"]
    assert user_client.get("/api/tasks").json()["count"] == 0


def test_create_in_project(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    project_id = alice.post("/api/projects", json={"name": "p"}).json()["id"]
    response = alice.post("/api/tasks", json={"name": "t", "project_id": project_id, "subset": "val"})
    assert response.status_code == 201, response.text
    assert (response.json()["project_id"], response.json()["project_name"]) == (project_id, "p")
    project = alice.get(f"/api/projects/{project_id}").json()
    assert project["tasks"]["count"] == 1
    assert project["task_subsets"] == ["val"]
    # bob can neither see the project nor put tasks into it
    assert bob.post("/api/tasks", json={"name": "intruder", "project_id": project_id}).status_code == 403
    assert alice.get("/api/tasks").json()["count"] == 1
    assert alice.get(f"/api/projects/{project_id}").json()["tasks"]["count"] == 1


def test_project_assignee_may_create_tasks_in_it(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    project_id = alice.post("/api/projects", json={"name": "p", "assignee_id": bob.user_id}).json()["id"]
    response = bob.post("/api/tasks", json={"name": "t", "project_id": project_id})
    assert response.status_code == 201, response.text
    assert response.json()["owner"]["username"] == "bob"
    # the project owner sees a task owned by someone else in their project
    assert alice.get("/api/tasks").json()["count"] == 1


def test_patch_fields_and_updated_date(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    created = alice.post("/api/tasks", json={"name": "t"}).json()
    task_id = created["id"]
    response = alice.patch(
        f"/api/tasks/{task_id}",
        json={"name": "renamed", "bug_tracker": "http://x", "subset": "test", "assignee_id": bob.user_id},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["bug_tracker"], body["subset"]) == ("renamed", "http://x", "test")
    assert body["assignee"]["id"] == bob.user_id
    assert body["assignee_updated_date"] is not None
    assert body["updated_date"] > created["updated_date"]
    assert body["created_date"] == created["created_date"]
    # even a PATCH that changes nothing is a new revision
    again = alice.patch(f"/api/tasks/{task_id}", json={}).json()
    assert again["updated_date"] > body["updated_date"]
    assert alice.get(f"/api/tasks/{task_id}").json() == again


def test_write_once_fields_are_ignored_on_patch(user_client):
    task = user_client.post("/api/tasks", json={"name": "t", "overlap": 1, "segment_size": 5}).json()
    response = user_client.patch(
        f"/api/tasks/{task['id']}", json={"overlap": 3, "segment_size": 50, "consensus_replicas": 4}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["overlap"], body["segment_size"], body["consensus_enabled"]) == (1, 5, False)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"owner_id": 9999}, "owner_id"),
        ({"assignee_id": 9999}, "assignee_id"),
        ({"project_id": 9999}, "project_id"),
        ({"organization_id": "acme"}, "organization_id"),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_patch_names_the_field_and_changes_nothing(user_client, payload, field):
    task = user_client.post("/api/tasks", json={"name": "t"}).json()
    response = user_client.patch(f"/api/tasks/{task['id']}", json={"name": "changed", **payload})
    assert response.status_code == 400, response.text
    assert field in response.json()
    assert user_client.get(f"/api/tasks/{task['id']}").json() == task


def test_other_users_cannot_see_or_change_a_task(make_user, admin_client):
    alice, bob = make_user("alice"), make_user("bob")
    task_id = alice.post("/api/tasks", json={"name": "secret"}).json()["id"]
    assert bob.get("/api/tasks").json()["count"] == 0
    assert bob.get(f"/api/tasks/{task_id}").status_code == 403
    assert bob.patch(f"/api/tasks/{task_id}", json={"name": "mine"}).status_code == 403
    assert bob.patch(f"/api/tasks/{task_id}", json={"owner_id": bob.user_id}).status_code == 403
    assert bob.delete(f"/api/tasks/{task_id}").status_code == 403
    assert alice.get(f"/api/tasks/{task_id}").json()["name"] == "secret"
    assert admin_client.get("/api/tasks").json()["count"] == 1
    assert admin_client.patch(f"/api/tasks/{task_id}", json={"name": "by admin"}).status_code == 200
    assert bob.get("/api/tasks/9999").status_code == 404


def test_assignee_cannot_change_owner_or_delete(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    task_id = alice.post("/api/tasks", json={"name": "t", "assignee_id": bob.user_id}).json()["id"]
    assert bob.patch(f"/api/tasks/{task_id}", json={"name": "edited by bob"}).status_code == 200
    assert bob.patch(f"/api/tasks/{task_id}", json={"owner_id": bob.user_id}).status_code == 403
    assert bob.delete(f"/api/tasks/{task_id}").status_code == 403
    storage = {"source_storage": {"location": "local"}}
    assert bob.patch(f"/api/tasks/{task_id}", json=storage).status_code == 403
    task = alice.get(f"/api/tasks/{task_id}").json()
    assert (task["owner"]["username"], task["source_storage"]) == ("alice", None)
    patched = alice.patch(f"/api/tasks/{task_id}", json=storage).json()
    assert patched["source_storage"]["location"] == "local" and isinstance(
        patched["source_storage"]["id"], int
    )


def test_job_assignee_sees_the_task_in_lists(make_user, add_jobs):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    task_id = alice.post("/api/tasks", json={"name": "t"}).json()["id"]
    alice.post("/api/tasks", json={"name": "other"})
    add_jobs(task_id, [(0, 4)], assignee_id=bob.user_id)
    assert [t["id"] for t in bob.get("/api/tasks").json()["results"]] == [task_id]
    assert carol.get("/api/tasks").json()["count"] == 0


def test_list_pagination_sort_search_and_filters(user_client):
    project_id = user_client.post("/api/projects", json={"name": "proj"}).json()["id"]
    for name in ["b", "a", "c"]:
        user_client.post("/api/tasks", json={"name": name})
    user_client.post("/api/tasks", json={"name": "ab", "project_id": project_id, "subset": "train"})

    page = user_client.get("/api/tasks", params={"page_size": 2, "sort": "name"}).json()
    assert page["count"] == 4
    assert [t["name"] for t in page["results"]] == ["a", "ab"]
    assert page["previous"] is None and "page=2" in page["next"]
    second = user_client.get(page["next"]).json()
    assert [t["name"] for t in second["results"]] == ["b", "c"]
    assert second["next"] is None and second["previous"] is not None
    assert user_client.get("/api/tasks", params={"page": 3, "page_size": 2}).status_code == 404

    default = [t["name"] for t in user_client.get("/api/tasks").json()["results"]]
    assert default == ["ab", "c", "a", "b"]  # newest first
    assert [t["name"] for t in user_client.get("/api/tasks", params={"sort": "-name"}).json()["results"]] == [
        "c", "b", "ab", "a",
    ]  # fmt: skip

    def names(**params):
        return sorted(t["name"] for t in user_client.get("/api/tasks", params=params).json()["results"])

    assert names(project_id=project_id) == ["ab"]
    assert names(project_name="proj") == ["ab"]
    assert names(name="b") == ["b"]
    assert names(subset="train") == ["ab"]
    assert names(owner="user1") == ["a", "ab", "b", "c"]
    assert names(owner="nobody") == []
    assert names(search="b") == ["ab", "b"]
    assert names(search="PROJ") == ["ab"]
    assert names(status="annotation", dimension="2d") == ["a", "ab", "b", "c"]
    assert names(validation_mode="gt") == []
    logic = {"or": [{"==": [{"var": "name"}, "c"]}, {"==": [{"var": "project_id"}, project_id]}]}
    assert names(filter=json.dumps(logic)) == ["ab", "c"]
    assert names(filter=json.dumps({"==": [{"var": "project_id"}, None]})) == ["a", "b", "c"]
    assert names(filter=json.dumps({"in": ["a", {"var": "name"}]})) == ["a", "ab"]
    assert user_client.get("/api/tasks", params={"sort": "bogus"}).status_code == 400
    assert user_client.get("/api/tasks", params={"project_id": "x"}).status_code == 400
    bad_var = json.dumps({"==": [{"var": "secret"}, 1]})
    assert user_client.get("/api/tasks", params={"filter": bad_var}).status_code == 400
    assert user_client.get("/api/tasks", params={"page_size": "all"}).json()["count"] == 4


def test_jobs_summary_and_media_fields(user_client, add_jobs):
    task_id = user_client.post("/api/tasks", json={"name": "t"}).json()["id"]
    job_ids = add_jobs(task_id, [(0, 4), (5, 9), (10, 11)], chunk_size=4)
    user_client.patch(f"/api/jobs/{job_ids[0]}", json={"stage": "acceptance", "state": "completed"})
    user_client.patch(f"/api/jobs/{job_ids[1]}", json={"stage": "validation"})
    body = user_client.get(f"/api/tasks/{task_id}").json()
    assert body["jobs"] == {
        "count": 3,
        "completed": 1,
        "validation": 1,
        "url": f"http://testserver/api/jobs?task_id={task_id}",
    }
    assert body["size"] == 12 and isinstance(body["data"], int)
    assert body["media_type"] == "image" and body["mode"] == "annotation"
    assert body["image_quality"] == 70 and body["data_chunk_size"] == 4
    assert body["data_compressed_chunk_type"] == "imageset" and body["data_original_chunk_type"] == "imageset"
    listed = user_client.get("/api/tasks").json()["results"]
    assert listed == [body]


def test_reading_tasks_takes_the_same_queries_for_few_and_many(make_user, add_jobs, count_queries):
    alice, bob = make_user("alice"), make_user("bob")

    def add_task(number):
        project_id = alice.post("/api/projects", json={"name": f"p{number}"}).json()["id"]
        task = {"name": f"t{number}", "project_id": project_id, "assignee_id": bob.user_id}
        task_id = alice.post("/api/tasks", json=task).json()["id"]
        add_jobs(task_id, [(0, 1), (2, 3)], assignee_id=bob.user_id)
        return task_id

    first = add_task(0)
    one = count_queries(lambda: alice.get("/api/tasks").raise_for_status())
    assert one > 4  # the page, its count and the related rows are all counted
    single = count_queries(lambda: alice.get(f"/api/tasks/{first}").raise_for_status())
    for number in range(1, 6):
        add_task(number)
    assert alice.get("/api/tasks").json()["count"] == 6
    assert count_queries(lambda: alice.get("/api/tasks").raise_for_status()) == one
    assert count_queries(lambda: alice.get(f"/api/tasks/{first}").raise_for_status()) == single


def test_delete_task_removes_jobs_and_media(user_client, add_jobs, run_async):
    task_id = user_client.post("/api/tasks", json={"name": "t"}).json()["id"]
    kept_id = user_client.post("/api/tasks", json={"name": "kept"}).json()["id"]
    job_id, *_ = add_jobs(task_id, [(0, 1), (2, 3)])
    add_jobs(kept_id, [(0, 1)])
    assert user_client.delete(f"/api/tasks/{task_id}").status_code == 204
    assert user_client.get(f"/api/tasks/{task_id}").status_code == 404
    assert user_client.get(f"/api/jobs/{job_id}").status_code == 404
    assert user_client.delete(f"/api/tasks/{task_id}").status_code == 404
    assert count_rows(user_client, run_async, Job) == 1
    assert count_rows(user_client, run_async, Data) == 1
    assert [t["id"] for t in user_client.get("/api/tasks").json()["results"]] == [kept_id]


def test_deleting_a_project_deletes_its_tasks_and_media(user_client, add_jobs, run_async):
    project_id = user_client.post("/api/projects", json={"name": "p"}).json()["id"]
    task_id = user_client.post("/api/tasks", json={"name": "t", "project_id": project_id}).json()["id"]
    add_jobs(task_id, [(0, 1)])
    assert user_client.delete(f"/api/projects/{project_id}").status_code == 204
    assert user_client.get(f"/api/tasks/{task_id}").status_code == 404
    assert count_rows(user_client, run_async, Data) == 0
    assert count_rows(user_client, run_async, Job) == 0


def test_move_task_without_labels_into_project(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    project_id = alice.post("/api/projects", json={"name": "p"}).json()["id"]
    foreign_id = bob.post("/api/projects", json={"name": "bob's"}).json()["id"]
    task_id = alice.post("/api/tasks", json={"name": "t"}).json()["id"]
    assert alice.patch(f"/api/tasks/{task_id}", json={"project_id": foreign_id}).status_code == 403
    response = alice.patch(f"/api/tasks/{task_id}", json={"project_id": project_id})
    assert response.status_code == 200, response.text
    assert (response.json()["project_id"], response.json()["project_name"]) == (project_id, "p")
    # null does not take a task out of its project (CVAT ignores it)
    assert alice.patch(f"/api/tasks/{task_id}", json={"project_id": None}).json()["project_id"] == project_id
    # a task in a project has no labels of its own
    refused = alice.patch(f"/api/tasks/{task_id}", json={"labels": [{"name": "car"}]})
    assert refused.status_code == 400 and "labels" in refused.json()


COLOR = {"name": "color", "input_type": "select", "values": ["red", "blue"]}


def _add_shape(client, run_async, task_id, job_id, label_name):
    """A shape on the task's label ``label_name`` with every attribute of that label set."""

    async def write():
        async with client.app.state.annota.sessionmaker.begin() as session:
            label = await session.scalar(
                select(Label).where(Label.task_id == task_id, Label.name == label_name)
            )
            specs = (
                await session.execute(select(AttributeSpec).where(AttributeSpec.label_id == label.id))
            ).scalars()
            attributes = json.dumps([[spec.id, "red"] for spec in specs])
            shape = Shape(job_id=job_id, label_id=label.id, frame=0, type="rectangle", points="[0,0,1,1]",
                          attributes=attributes)  # fmt: skip
            session.add(shape)
            await session.flush()
            return shape.id

    return run_async(write)


def _shape(client, run_async, shape_id):
    async def read():
        async with client.app.state.annota.sessionmaker() as session:
            shape = await session.get(Shape, shape_id)
            label = await session.get(Label, shape.label_id)
            return label.project_id, label.name, json.loads(shape.attributes)

    return run_async(read)


def test_move_task_relabels_annotations_by_name(user_client, add_jobs, run_async):
    project = user_client.post(
        "/api/projects",
        json={"name": "p", "labels": [{"name": "person"}, {"name": "car", "attributes": [COLOR]}]},
    ).json()
    task_id = user_client.post(
        "/api/tasks", json={"name": "t", "labels": [{"name": "car", "attributes": [COLOR]}]}
    ).json()["id"]
    (job_id,) = add_jobs(task_id, [(0, 4)])
    shape_id = _add_shape(user_client, run_async, task_id, job_id, "car")

    response = user_client.patch(f"/api/tasks/{task_id}", json={"project_id": project["id"]})
    assert response.status_code == 200, response.text
    project_id, name, attributes = _shape(user_client, run_async, shape_id)
    assert (project_id, name) == (project["id"], "car")
    (target_spec,) = run_async(_spec_ids, user_client, project["id"])
    assert attributes == [[target_spec, "red"]]
    # the task's own labels are gone; the project's are untouched
    assert count_rows(user_client, run_async, Label, Label.task_id == task_id) == 0
    assert count_rows(user_client, run_async, Label, Label.project_id == project["id"]) == 2


async def _spec_ids(client, project_id):
    async with client.app.state.annota.sessionmaker() as session:
        rows = await session.execute(
            select(AttributeSpec.id)
            .join(Label, Label.id == AttributeSpec.label_id)
            .where(Label.project_id == project_id)
        )
        return list(rows.scalars())


@pytest.mark.parametrize(
    ("project_labels", "message"),
    [
        ([{"name": "person"}], 'label with name "car"'),
        ([{"name": "car", "attributes": [{**COLOR, "values": ["red"]}]}], '"color" attribute'),
    ],
)
def test_move_is_refused_when_labels_do_not_match(user_client, add_jobs, run_async, project_labels, message):
    project_id = user_client.post("/api/projects", json={"name": "p", "labels": project_labels}).json()["id"]
    labels = [{"name": "car", "attributes": [COLOR]}]
    task_id = user_client.post("/api/tasks", json={"name": "t", "labels": labels}).json()["id"]
    (job_id,) = add_jobs(task_id, [(0, 4)])
    shape_id = _add_shape(user_client, run_async, task_id, job_id, "car")
    task = user_client.get(f"/api/tasks/{task_id}").json()

    response = user_client.patch(f"/api/tasks/{task['id']}", json={"project_id": project_id})
    assert response.status_code == 400
    assert message in response.json()["project_id"][0]
    assert user_client.get(f"/api/tasks/{task['id']}").json() == task
    assert _shape(user_client, run_async, shape_id)[:2] == (None, "car")
    assert count_rows(user_client, run_async, Label, Label.task_id == task["id"]) == 1


def test_move_between_projects_keeps_the_source_project_labels(user_client, add_jobs, run_async):
    first = user_client.post("/api/projects", json={"name": "a", "labels": [{"name": "car"}]}).json()["id"]
    second = user_client.post("/api/projects", json={"name": "b", "labels": [{"name": "car"}]}).json()["id"]
    task_id = user_client.post("/api/tasks", json={"name": "t", "project_id": first}).json()["id"]
    (job_id,) = add_jobs(task_id, [(0, 0)])

    async def add_shape():
        async with user_client.app.state.annota.sessionmaker.begin() as session:
            label_id = await session.scalar(select(Label.id).where(Label.project_id == first))
            shape = Shape(job_id=job_id, label_id=label_id, frame=0, type="points", points="[1,1]")
            session.add(shape)
            await session.flush()
            return shape.id

    shape_id = run_async(add_shape)
    assert user_client.patch(f"/api/tasks/{task_id}", json={"project_id": second}).status_code == 200
    assert _shape(user_client, run_async, shape_id)[:2] == (second, "car")
    assert count_rows(user_client, run_async, Label, Label.project_id == first) == 1
    assert user_client.get(f"/api/projects/{first}").json()["tasks"]["count"] == 0
    assert user_client.get(f"/api/projects/{second}").json()["tasks"]["count"] == 1


def test_move_needs_the_same_dimension(user_client, run_async):
    project_id = user_client.post("/api/projects", json={"name": "p"}).json()["id"]
    user_client.post("/api/tasks", json={"name": "in project", "project_id": project_id})
    task_id = user_client.post("/api/tasks", json={"name": "3d"}).json()["id"]

    async def make_3d():
        async with user_client.app.state.annota.sessionmaker.begin() as session:
            (await session.get(Task, task_id)).dimension = "3d"

    run_async(make_3d)
    response = user_client.patch(f"/api/tasks/{task_id}", json={"project_id": project_id})
    assert response.status_code == 400
    assert "Dimension" in response.json()["project_id"][0]


def test_task_labels_are_created_with_the_task(user_client, run_async):
    response = user_client.post(
        "/api/tasks", json={"name": "t", "labels": [{"name": "car"}, {"name": "car"}]}
    )
    assert response.status_code == 400
    assert "All label names must be unique" in response.json()[0]
    assert user_client.get("/api/tasks").json()["count"] == 0
    assert count_rows(user_client, run_async, Label) == 0
    task_id = user_client.post("/api/tasks", json={"name": "t", "labels": [{"name": "car"}]}).json()["id"]
    assert count_rows(user_client, run_async, Label, Label.task_id == task_id, Label.name == "car") == 1


def test_anonymous_is_401(annota_client, user_client):
    task_id = user_client.post("/api/tasks", json={"name": "t"}).json()["id"]
    assert annota_client.get("/api/tasks").status_code == 401
    assert annota_client.post("/api/tasks", json={"name": "t"}).status_code == 401
    assert annota_client.get(f"/api/tasks/{task_id}").status_code == 401
    assert annota_client.delete(f"/api/tasks/{task_id}").status_code == 401
    assert user_client.get("/api/tasks").json()["count"] == 1
