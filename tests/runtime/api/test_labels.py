"""``/api/labels``: lookups by task, job and project as cvat-sdk does them, per-label edits, list
scoping, and the label service used by projects and tasks."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from sqlalchemy import event, func, select

from annota.core.db.tables import Label, Task
from annota.core.errors import ValidationError
from annota.core.schemas.labels import LabelWrite
from annota.core.services import attribute_specs
from annota.core.services import labels as label_service

SVG = '<circle data-type="element node" data-label-name="head"></circle>'

TASK_LABELS = [
    {"name": "cat", "attributes": [{"name": "age", "input_type": "number", "values": ["0", "30", "1"]}]},
    {"name": "dog", "type": "rectangle"},
    {"name": "pose", "type": "skeleton", "svg": SVG, "sublabels": [{"name": "head"}]},
]


def _sessionmaker(client):
    return client.app.state.annota.sessionmaker


@pytest.fixture
def make_task(annota_client, run_async):
    """``make_task(owner_client, labels=[...], project_id=None)`` -> task id (tasks made in the database)."""

    def make(owner, *, labels=(), project_id=None, assignee=None):
        async def create():
            async with _sessionmaker(annota_client).begin() as session:
                task = Task(
                    name="task",
                    owner_id=owner.user_id,
                    project_id=project_id,
                    assignee_id=assignee.user_id if assignee else None,
                )
                session.add(task)
                await session.flush()
                changes = msgspec.convert(list(labels), list[LabelWrite])
                await label_service.apply_changes(session, changes, task_id=task.id, creating=True)
                return task.id

        return run_async(create)

    return make


def labels_of(client, **params):
    response = client.get("/api/labels", params={"page_size": "all", **params})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_task_labels_as_cvat_sdk_reads_them(user_client, make_task):
    from cvat_sdk.api_client import Configuration
    from cvat_sdk.api_client.model.paginated_label_list import PaginatedLabelList
    from cvat_sdk.api_client.model_utils import validate_and_convert_types

    task_id = make_task(user_client, labels=TASK_LABELS)
    response = user_client.get("/api/labels", params={"task_id": task_id, "org": "", "page": 1})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["count"], body["next"], body["previous"]) == (3, None, None)
    cat, dog, pose = body["results"]
    assert set(cat) == {
        "id",
        "name",
        "color",
        "attributes",
        "type",
        "svg",
        "sublabels",
        "has_parent",
        "parent_id",
        "task_id",
    }
    assert (cat["name"], cat["type"], cat["task_id"], cat["sublabels"]) == ("cat", "any", task_id, [])
    assert cat["attributes"][0] == {
        "id": cat["attributes"][0]["id"],
        "name": "age",
        "mutable": False,
        "input_type": "number",
        "default_value": "0",
        "values": ["0", "30", "1"],
    }
    assert dog["type"] == "rectangle"
    (head,) = pose["sublabels"]
    assert set(head) == {"id", "name", "color", "attributes", "type", "has_parent"}
    assert pose["svg"] == f'<circle data-type="element node" data-label-id="{head["id"]}"></circle>'
    parsed = validate_and_convert_types(
        body, (PaginatedLabelList,), ["received_data"], True, True, configuration=Configuration()
    )
    assert [label.name for label in parsed.results] == ["cat", "dog", "pose"]
    assert parsed.results[2].sublabels[0].name == "head"


def test_labels_created_with_a_task(user_client):
    response = user_client.post("/api/tasks", json={"name": "t", "labels": TASK_LABELS})
    assert response.status_code == 201, response.text
    labels = labels_of(user_client, task_id=response.json()["id"], org="")
    assert [(label["name"], label["type"]) for label in labels] == [
        ("cat", "any"),
        ("dog", "rectangle"),
        ("pose", "skeleton"),
    ]


def test_task_in_a_project_uses_the_project_labels(user_client, make_task):
    project_id = user_client.post("/api/projects", json={"name": "p", "labels": [{"name": "tree"}]}).json()[
        "id"
    ]
    task_id = make_task(user_client, project_id=project_id)
    (tree,) = labels_of(user_client, task_id=task_id)
    assert (tree["name"], tree["project_id"]) == ("tree", project_id)
    assert "task_id" not in tree


def test_labels_of_a_job(make_user, make_task, add_jobs):
    owner, worker, stranger = make_user("owner"), make_user("worker"), make_user("stranger")
    task_id = make_task(owner, labels=TASK_LABELS)
    (job_id,) = add_jobs(task_id, assignee_id=worker.user_id)
    assert [label["name"] for label in labels_of(worker, job_id=job_id)] == ["cat", "dog", "pose"]
    assert [label["name"] for label in labels_of(worker)] == ["cat", "dog", "pose"]
    assert stranger.get("/api/labels", params={"job_id": job_id}).status_code == 403
    assert stranger.get("/api/labels", params={"task_id": task_id}).status_code == 403
    assert labels_of(stranger) == []


def test_object_filters_are_checked(user_client, make_task):
    task_id = make_task(user_client)
    both = user_client.get("/api/labels", params={"task_id": task_id, "project_id": 1})
    assert both.status_code == 400
    assert user_client.get("/api/labels", params={"task_id": 9999}).status_code == 404
    assert user_client.get("/api/labels", params={"job_id": 9999}).status_code == 404
    assert user_client.get("/api/labels", params={"project_id": 9999}).status_code == 404
    assert user_client.get("/api/labels", params={"task_id": "x"}).status_code == 400
    assert labels_of(user_client, task_id=task_id) == []


def test_list_scoping(make_user, admin_client, make_task):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    make_task(alice, labels=[{"name": "a1"}, {"name": "a2"}])
    make_task(bob, labels=[{"name": "b1"}], assignee=carol)
    bob.post("/api/projects", json={"name": "p", "labels": [{"name": "b2"}]})
    assert sorted(label["name"] for label in labels_of(alice)) == ["a1", "a2"]
    assert sorted(label["name"] for label in labels_of(bob)) == ["b1", "b2"]
    assert [label["name"] for label in labels_of(carol)] == ["b1"]
    assert sorted(label["name"] for label in labels_of(admin_client)) == ["a1", "a2", "b1", "b2"]
    assert admin_client.get("/api/labels", params={"org": ""}).json()["count"] == 4


def test_list_filters_sort_search_and_pages(user_client, make_task):
    labels = [
        {"name": name, "type": kind}
        for name, kind in [("zebra", "polygon"), ("ant", "rectangle"), ("bee", "polygon"), ("bear", "points")]
    ]
    task_id = make_task(user_client, labels=[*labels, *TASK_LABELS[2:]])
    names = [label["name"] for label in labels_of(user_client, task_id=task_id)]
    assert names == ["zebra", "ant", "bee", "bear", "pose"]
    assert [label["name"] for label in labels_of(user_client, task_id=task_id, sort="name")] == sorted(names)
    assert [label["name"] for label in labels_of(user_client, task_id=task_id, type="polygon")] == [
        "zebra",
        "bee",
    ]
    assert [label["name"] for label in labels_of(user_client, name="ant")] == ["ant"]
    assert [label["name"] for label in labels_of(user_client, search="BE")] == ["bee", "bear"]
    assert labels_of(user_client, parent="pose") == []
    page = user_client.get("/api/labels", params={"task_id": task_id, "page_size": 2, "org": ""}).json()
    assert page["count"] == 5
    assert "page=2" in page["next"]
    assert [label["name"] for label in user_client.get(page["next"]).json()["results"]] == ["bee", "bear"]
    assert user_client.get("/api/labels", params={"sort": "owner"}).status_code == 400


def test_patch_a_label(user_client, make_task):
    task_id = make_task(user_client, labels=TASK_LABELS)
    cat = labels_of(user_client, task_id=task_id)[0]
    age = cat["attributes"][0]
    body = {
        "name": "kitten",
        "color": "#123456",
        "attributes": [
            {"id": age["id"], "name": "age", "input_type": "number", "default_value": "3"},
            {"name": "color", "input_type": "select", "values": ["black", "white"]},
        ],
    }
    response = user_client.patch(f"/api/labels/{cat['id']}", json=body)
    assert response.status_code == 200, response.text
    kitten = response.json()
    assert (kitten["id"], kitten["name"], kitten["color"], kitten["task_id"]) == (
        cat["id"],
        "kitten",
        "#123456",
        task_id,
    )
    assert [(a["name"], a["default_value"]) for a in kitten["attributes"]] == [
        ("age", "3"),
        ("color", "black"),
    ]
    assert user_client.get(f"/api/labels/{cat['id']}").json() == kitten


def test_patch_a_sublabel_alone(user_client, make_task):
    task_id = make_task(user_client, labels=TASK_LABELS)
    pose = labels_of(user_client, task_id=task_id)[2]
    head = pose["sublabels"][0]
    response = user_client.patch(f"/api/labels/{head['id']}", json={"name": "skull"})
    assert response.status_code == 200, response.text
    assert (response.json()["name"], response.json()["parent_id"]) == ("skull", pose["id"])
    assert labels_of(user_client, task_id=task_id)[2]["sublabels"][0]["name"] == "skull"
    refused = user_client.patch(f"/api/labels/{head['id']}", json={"type": "polygon"})
    assert refused.status_code == 400
    assert "points" in refused.json()[0]


def test_patch_refuses_invalid_changes(user_client, make_task):
    task_id = make_task(user_client, labels=TASK_LABELS)
    before = labels_of(user_client, task_id=task_id)
    cat, dog = before[0], before[1]
    assert user_client.patch(f"/api/labels/{cat['id']}", json={"name": "dog"}).status_code == 400
    # a label does not become a skeleton: refused, where CVAT silently keeps the old type
    refused = user_client.patch(f"/api/labels/{dog['id']}", json={"type": "skeleton"})
    assert refused.status_code == 400 and "skeleton" in refused.json()[0]
    deleted = user_client.patch(f"/api/labels/{dog['id']}", json={"deleted": True})
    assert deleted.status_code == 400
    assert deleted.json() == {
        "non_field_errors": [
            "Labels cannot be deleted by updating in this endpoint. Please use the DELETE method instead."
        ]
    }
    assert user_client.patch(f"/api/labels/{dog['id']}", json={"name": ""}).json() == {
        "name": ["Expected `str` of length >= 1"]
    }
    assert user_client.patch("/api/labels/9999", json={"name": "x"}).status_code == 404
    assert labels_of(user_client, task_id=task_id) == before


def test_delete_a_skeleton_with_its_sublabels(user_client, make_task, admin_client):
    task_id = make_task(user_client, labels=TASK_LABELS)
    pose = labels_of(user_client, task_id=task_id)[2]
    assert user_client.delete(f"/api/labels/{pose['id']}").status_code == 204
    assert user_client.get(f"/api/labels/{pose['id']}").status_code == 404
    assert user_client.get(f"/api/labels/{pose['sublabels'][0]['id']}").status_code == 404
    assert [label["name"] for label in labels_of(user_client, task_id=task_id)] == ["cat", "dog"]
    assert user_client.delete(f"/api/labels/{pose['id']}").status_code == 404


def test_label_changes_touch_the_task(user_client, make_task, annota_client, run_async):
    task_id = make_task(user_client, labels=TASK_LABELS)

    async def updated_date():
        async with _sessionmaker(annota_client).begin() as session:
            return (await session.get(Task, task_id)).updated_date

    before = run_async(updated_date)
    dog = labels_of(user_client, task_id=task_id)[1]
    assert user_client.patch(f"/api/labels/{dog['id']}", json={"name": "wolf"}).status_code == 200
    assert run_async(updated_date) > before


def test_anonymous_is_401(annota_client, user_client, make_task):
    task_id = make_task(user_client, labels=TASK_LABELS)
    label_id = labels_of(user_client, task_id=task_id)[0]["id"]
    assert annota_client.get("/api/labels").status_code == 401
    assert annota_client.get("/api/labels", params={"task_id": task_id}).status_code == 401
    assert annota_client.get(f"/api/labels/{label_id}").status_code == 401
    assert annota_client.delete(f"/api/labels/{label_id}").status_code == 401


# --- the service ----------------------------------------------------------------------------


def test_a_task_in_a_project_cannot_have_labels(user_client, make_task, annota_client, run_async):
    project_id = user_client.post("/api/projects", json={"name": "p"}).json()["id"]
    task_id = make_task(user_client, project_id=project_id)

    async def add_label():
        async with _sessionmaker(annota_client).begin() as session:
            await label_service.apply_changes(
                session, [LabelWrite(name="x")], task_id=task_id, creating=False
            )

    with pytest.raises(ValidationError) as refused:
        run_async(add_label)
    assert "project's labels" in refused.value.detail[0]
    with pytest.raises(ValidationError):
        label_service.check_task_may_have_labels(project_id, [LabelWrite(name="x")])
    label_service.check_task_may_have_labels(project_id, [])


def test_reading_labels_takes_the_same_queries_for_few_and_many(
    user_client, make_task, annota_client, run_async
):
    skeleton = TASK_LABELS[2]
    few = make_task(user_client, labels=[skeleton])
    many = make_task(
        user_client, labels=[{**skeleton, "name": f"pose{i}"} for i in range(20)] + TASK_LABELS[:2]
    )
    engine = annota_client.app.state.annota.engine.sync_engine
    statements = []

    def count(*args):
        task = asyncio.current_task()
        # the server's periodic tasks (named annota-…) may run meanwhile: not the read's statements
        if task is None or not task.get_name().startswith("annota-"):
            statements.append(args[2])

    async def read(task_id):
        async with _sessionmaker(annota_client).begin() as session:
            return await label_service.read_labels(session, task_id=task_id)

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert len(run_async(read, few)) == 1
        queries_for_few = len(statements)
        statements.clear()
        labels = run_async(read, many)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(labels) == 22
    assert all(label.sublabels[0].name == "head" for label in labels[:20])
    assert len(statements) == queries_for_few


def test_failed_change_set_writes_nothing_in_the_transaction(
    user_client, make_task, annota_client, run_async
):
    task_id = make_task(user_client, labels=TASK_LABELS)

    async def attempt():
        async with _sessionmaker(annota_client).begin() as session:
            changes = [LabelWrite(name="new"), LabelWrite(name="cat")]
            await label_service.apply_changes(session, changes, task_id=task_id, creating=False)

    async def count():
        async with _sessionmaker(annota_client).begin() as session:
            return (await session.execute(select(func.count()).select_from(Label))).scalar_one()

    before = run_async(count)
    with pytest.raises(ValidationError):
        run_async(attempt)
    assert run_async(count) == before


def test_colors_come_from_the_palette_in_order():
    used = set(label_service.PALETTE[:2])
    assert label_service.pick_color("x", used) == label_service.PALETTE[2]
    everything = set(label_service.PALETTE)
    first = label_service.pick_color("x", everything)
    assert first not in everything
    assert label_service.pick_color("x", everything) == first
    assert label_service.pick_color("x", everything | {first}) != first


@pytest.mark.parametrize(
    ("input_type", "values", "default", "stored"),
    [
        ("checkbox", [], None, ("false", ["false"])),
        ("checkbox", ["TRUE"], None, ("true", ["true"])),
        ("radio", ["a", "b"], None, ("a", ["a", "b"])),
        ("number", ["-1.5", "1.5", "0.5"], None, ("-1.5", ["-1.5", "1.5", "0.5"])),
        ("text", ["hint"], None, ("", ["hint"])),
    ],
)
def test_attribute_defaults(input_type, values, default, stored):
    assert attribute_specs.checked_values("a", input_type, values, default) == stored


def test_attribute_values_are_limited_in_length():
    with pytest.raises(ValidationError):
        attribute_specs.checked_values("a", "select", ["x" * 3000, "y" * 3000], None)
