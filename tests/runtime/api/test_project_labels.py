"""Project labels through the project body: CVAT's create and update rules, and that a refused
change set leaves every label as it was."""

from __future__ import annotations

import re

import pytest

SVG = (
    '<line x1="10" y1="10" x2="20" y2="20" data-type="edge" data-node-from="1" data-node-to="2"></line>'
    '<circle r="1.5" cx="10" cy="10" data-type="element node" data-element-id="1" data-node-id="1" '
    'data-label-name="nose"></circle>'
    '<circle r="1.5" cx="20" cy="20" data-type="element node" data-element-id="2" data-node-id="2" '
    'data-label-name="eye"></circle>'
)

LABELS = [
    {
        "name": "car",
        "color": "#ff0000",
        "attributes": [
            {"name": "parked", "input_type": "checkbox", "mutable": True, "values": ["false"]},
            {"name": "kind", "input_type": "radio", "values": ["sedan", "truck"]},
            {"name": "brand", "input_type": "select", "values": ["a", "b"], "default_value": "b"},
            {"name": "speed", "input_type": "number", "values": ["0", "200", "5"], "default_value": "50"},
            {"name": "plate", "input_type": "text", "values": []},
        ],
    },
    {"name": "person", "type": "polygon"},
    {
        "name": "face",
        "type": "skeleton",
        "svg": SVG,
        "sublabels": [
            {"name": "nose", "type": "points", "attributes": [{"name": "visible", "input_type": "checkbox"}]},
            {"name": "eye"},
        ],
    },
]


def project_labels(client, project_id):
    response = client.get("/api/labels", params={"project_id": project_id, "page_size": "all"})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def by_name(items):
    return {item["name"]: item for item in items}


@pytest.fixture
def project(user_client):
    response = user_client.post("/api/projects", json={"name": "vehicles", "labels": LABELS})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_created_labels_read_back(user_client, project):
    labels = project_labels(user_client, project)
    assert [label["name"] for label in labels] == ["car", "person", "face"]
    car, person, face = labels
    assert car["color"] == "#ff0000"
    assert car["type"] == "any"
    assert car["project_id"] == project
    assert "task_id" not in car
    assert car["parent_id"] is None
    assert car["has_parent"] is False
    assert car["sublabels"] == []
    attributes = by_name(car["attributes"])
    assert {
        name: (a["input_type"], a["mutable"], a["default_value"], a["values"])
        for name, a in attributes.items()
    } == {
        "parked": ("checkbox", True, "false", ["false"]),
        "kind": ("radio", False, "sedan", ["sedan", "truck"]),
        "brand": ("select", False, "b", ["a", "b"]),
        "speed": ("number", False, "50", ["0", "200", "5"]),
        "plate": ("text", False, "", []),
    }
    assert person["type"] == "polygon"
    assert person["svg"] == ""
    colors = [person["color"], face["color"], *(sub["color"] for sub in face["sublabels"])]
    assert all(re.fullmatch(r"#[0-9a-f]{6}", color) for color in colors)
    assert len(set(colors + [car["color"]])) == 5


def test_skeleton_sublabels_and_svg(user_client, project):
    face = by_name(project_labels(user_client, project))["face"]
    assert face["type"] == "skeleton"
    nose, eye = face["sublabels"]
    assert (nose["name"], nose["type"], nose["has_parent"]) == ("nose", "points", True)
    assert [a["name"] for a in nose["attributes"]] == ["visible"]
    assert eye["type"] == "points"
    assert f'data-label-id="{nose["id"]}"' in face["svg"]
    assert f'data-label-id="{eye["id"]}"' in face["svg"]
    assert "data-label-name" not in face["svg"]
    sublabel = user_client.get(f"/api/labels/{nose['id']}").json()
    assert sublabel["parent_id"] == face["id"]
    assert sublabel["has_parent"] is True
    assert sublabel["project_id"] == project


def test_update_rename_append_add_and_delete(user_client, project):
    labels = by_name(project_labels(user_client, project))
    car, person = labels["car"], labels["person"]
    kind = by_name(car["attributes"])["kind"]
    body = {
        "labels": [
            {
                "id": car["id"],
                "name": "automobile",
                "attributes": [
                    {
                        "id": kind["id"],
                        "name": "kind",
                        "input_type": "radio",
                        "values": ["sedan", "truck", "van"],
                    },
                    {"name": "doors", "input_type": "number", "values": ["2", "5", "1"]},
                ],
            },
            {"id": person["id"], "deleted": True},
            {"name": "bicycle", "type": "rectangle"},
        ]
    }
    response = user_client.patch(f"/api/projects/{project}", json=body)
    assert response.status_code == 200, response.text
    labels = by_name(project_labels(user_client, project))
    assert sorted(labels) == ["automobile", "bicycle", "face"]
    automobile = labels["automobile"]
    assert automobile["id"] == car["id"]
    assert automobile["color"] == "#ff0000"
    attributes = by_name(automobile["attributes"])
    assert attributes["kind"]["values"] == ["sedan", "truck", "van"]
    assert attributes["kind"]["id"] == kind["id"]
    assert attributes["doors"]["default_value"] == "2"
    assert len(attributes) == 6
    assert labels["bicycle"]["type"] == "rectangle"
    assert user_client.get(f"/api/labels/{person['id']}").status_code == 404


def test_attribute_matched_by_name_is_updated_not_duplicated(user_client, project):
    car = by_name(project_labels(user_client, project))["car"]
    body = {
        "labels": [
            {
                "id": car["id"],
                "attributes": [
                    {
                        "name": "brand",
                        "input_type": "select",
                        "values": ["a", "b", "c"],
                        "default_value": "c",
                    },
                ],
            }
        ]
    }
    assert user_client.patch(f"/api/projects/{project}", json=body).status_code == 200
    attributes = by_name(by_name(project_labels(user_client, project))["car"]["attributes"])
    assert len(attributes) == 5
    assert (attributes["brand"]["values"], attributes["brand"]["default_value"]) == (["a", "b", "c"], "c")


def test_skeleton_gets_a_new_sublabel_and_loses_one(user_client, project):
    face = by_name(project_labels(user_client, project))["face"]
    nose, eye = face["sublabels"]
    svg = f'<circle data-label-id="{nose["id"]}"></circle><circle data-label-name="mouth"></circle>'
    body = {
        "labels": [
            {
                "id": face["id"],
                "svg": svg,
                "sublabels": [
                    {"id": eye["id"], "name": "eye", "deleted": True},
                    {"name": "mouth"},
                ],
            }
        ]
    }
    response = user_client.patch(f"/api/projects/{project}", json=body)
    assert response.status_code == 200, response.text
    face = by_name(project_labels(user_client, project))["face"]
    assert [sub["name"] for sub in face["sublabels"]] == ["nose", "mouth"]
    mouth = face["sublabels"][1]
    assert (
        face["svg"]
        == f'<circle data-label-id="{nose["id"]}"></circle><circle data-label-id="{mouth["id"]}"></circle>'
    )
    assert "eye" not in {
        sub["name"] for label in project_labels(user_client, project) for sub in label["sublabels"]
    }


INVALID_NEW_LABELS = [
    pytest.param([{"name": "a"}, {"name": "a"}], "All label names must be unique", id="duplicate-name"),
    pytest.param([{"color": "#00ff00"}], "name", id="missing-name"),
    pytest.param(
        [{"name": "s", "type": "skeleton", "svg": SVG}], "sublabels", id="skeleton-without-sublabels"
    ),
    pytest.param(
        [{"name": "s", "type": "skeleton", "svg": SVG, "sublabels": [{"name": "p", "type": "rectangle"}]}],
        "points",
        id="sublabel-not-points",
    ),
    pytest.param(
        [{"name": "s", "type": "skeleton", "svg": SVG, "sublabels": [{"name": "p"}, {"name": "p"}]}],
        "duplicated",
        id="duplicate-sublabel",
    ),
    pytest.param([{"name": "a", "sublabels": [{"name": "p"}]}], "sublabels", id="sublabels-on-non-skeleton"),
    pytest.param(
        [{"name": "a", "attributes": [{"name": "r", "input_type": "radio", "values": []}]}],
        "value",
        id="radio-without-values",
    ),
    pytest.param(
        [
            {
                "name": "a",
                "attributes": [{"name": "r", "input_type": "select", "values": ["x"], "default_value": "y"}],
            }
        ],
        "default",
        id="select-default-not-a-value",
    ),
    pytest.param(
        [{"name": "a", "attributes": [{"name": "n", "input_type": "number", "values": ["5", "1", "1"]}]}],
        "minimum",
        id="number-min-above-max",
    ),
    pytest.param(
        [{"name": "a", "attributes": [{"name": "n", "input_type": "number", "values": ["0", "9", "0"]}]}],
        "step",
        id="number-zero-step",
    ),
    pytest.param(
        [{"name": "a", "attributes": [{"name": "n", "input_type": "number", "values": ["0", "x", "1"]}]}],
        "not a number",
        id="number-not-numeric",
    ),
    pytest.param(
        [{"name": "a", "attributes": [{"name": "n", "input_type": "number", "values": ["0", "9"]}]}],
        "min, max, step",
        id="number-two-values",
    ),
    pytest.param(
        [
            {
                "name": "a",
                "attributes": [
                    {"name": "n", "input_type": "number", "values": ["0", "9", "1"], "default_value": "10"},
                ],
            }
        ],
        "outside",
        id="number-default-out-of-range",
    ),
    pytest.param(
        [{"name": "a", "attributes": [{"name": "c", "input_type": "checkbox", "default_value": "maybe"}]}],
        "true",
        id="checkbox-default",
    ),
    pytest.param(
        [
            {
                "name": "a",
                "attributes": [{"name": "t", "input_type": "text"}, {"name": "t", "input_type": "text"}],
            }
        ],
        "duplicated",
        id="duplicate-attribute",
    ),
]


@pytest.mark.parametrize(("labels", "message"), INVALID_NEW_LABELS)
def test_invalid_labels_refuse_the_whole_project(user_client, labels, message):
    response = user_client.post("/api/projects", json={"name": "p", "labels": labels})
    assert response.status_code == 400, response.text
    (error,) = response.json()
    assert message in error
    assert user_client.get("/api/projects").json()["count"] == 0
    assert user_client.get("/api/labels").json()["count"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"name": "p", "labels": [{"name": "a", "attributes": [{"name": "x", "input_type": "slider"}]}]},
            "labels[0].attributes[0].input_type",
        ),
        ({"name": "p", "labels": [{"name": "a", "color": "red"}]}, "labels[0].color"),
        ({"name": "p", "labels": [{"name": "a", "type": "blob"}]}, "labels[0].type"),
        ({"name": "p", "labels": [{"name": "x" * 65}]}, "labels[0].name"),
    ],
)
def test_malformed_labels_name_the_field(user_client, body, field):
    response = user_client.post("/api/projects", json=body)
    assert response.status_code == 400
    assert field in response.json()


def test_refused_update_writes_nothing(user_client, project):
    before = project_labels(user_client, project)
    car = by_name(before)["car"]
    # a valid new label, a valid rename and a duplicate: all or nothing
    body = {"labels": [{"name": "truck"}, {"id": car["id"], "name": "auto"}, {"name": "person"}]}
    response = user_client.patch(f"/api/projects/{project}", json=body)
    assert response.status_code == 400
    assert response.json() == ["All label names must be unique: 'person' is used twice."]
    assert project_labels(user_client, project) == before


def _update_rule_cases(labels):
    car, face = labels["car"], labels["face"]
    attributes = by_name(car["attributes"])
    kind, speed, parked = attributes["kind"], attributes["speed"], attributes["parked"]
    return [
        ({"id": face["sublabels"][0]["id"], "type": "rectangle"}, "points"),
        (
            {"id": car["id"], "attributes": [{"id": kind["id"], "name": "kind", "input_type": "select"}]},
            "input type",
        ),
        (
            {
                "id": car["id"],
                "attributes": [
                    {"id": parked["id"], "name": "parked", "input_type": "checkbox", "mutable": False}
                ],
            },
            "mutable",
        ),
        (
            {
                "id": car["id"],
                "attributes": [
                    {"id": kind["id"], "name": "kind", "input_type": "radio", "values": ["truck", "van"]}
                ],
            },
            "'sedan' is missing",
        ),
        (
            {
                "id": car["id"],
                "attributes": [
                    {"id": speed["id"], "name": "speed", "input_type": "number", "values": ["0", "300", "5"]}
                ],
            },
            "cannot be changed",
        ),
        (
            {
                "id": car["id"],
                "attributes": [
                    {"id": speed["id"], "name": "speed", "input_type": "number", "default_value": "500"}
                ],
            },
            "outside",
        ),
        (
            {"id": car["id"], "attributes": [{"id": kind["id"], "name": "plate", "input_type": "radio"}]},
            "duplicated",
        ),
        (
            {
                "id": face["id"],
                "sublabels": [
                    {"id": face["sublabels"][0]["id"], "deleted": True},
                    {"id": face["sublabels"][1]["id"], "deleted": True},
                ],
            },
            "at least one",
        ),
        ({"id": face["id"], "sublabels": [{"id": car["id"], "name": "car"}]}, "not a sublabel"),
        ({"id": car["id"], "name": "person"}, "must be unique"),
        ({"id": face["sublabels"][0]["id"], "name": "eye"}, "must be unique"),
        ({"deleted": True, "name": "car"}, "by id"),
        ({"id": car["id"], "svg": "<circle/>"}, "svg"),
    ]


def test_update_rules(user_client, project):
    before = project_labels(user_client, project)
    for change, message in _update_rule_cases(by_name(before)):
        response = user_client.patch(f"/api/projects/{project}", json={"labels": [change]})
        assert response.status_code == 400, (change, response.text)
        assert message in response.json()[0], (change, response.json())
    assert project_labels(user_client, project) == before


def test_a_label_does_not_become_or_stop_being_a_skeleton(user_client, project):
    # refused in CVAT's bare-list shape (CVAT itself answers 200 and keeps the old type)
    labels = by_name(project_labels(user_client, project))
    for change in (
        {"id": labels["person"]["id"], "type": "skeleton"},
        {"id": labels["face"]["id"], "type": "any"},
    ):
        response = user_client.patch(f"/api/projects/{project}", json={"labels": [change]})
        assert response.status_code == 400, response.text
        assert "cannot be changed to or from 'skeleton'" in response.json()[0]
    after = by_name(project_labels(user_client, project))
    assert (after["person"]["type"], after["face"]["type"]) == (labels["person"]["type"], "skeleton")


def test_labels_of_another_project_cannot_be_changed(user_client, project):
    other = user_client.post("/api/projects", json={"name": "other", "labels": [{"name": "tree"}]}).json()[
        "id"
    ]
    tree = project_labels(user_client, other)[0]
    response = user_client.patch(
        f"/api/projects/{project}", json={"labels": [{"id": tree["id"], "name": "bush"}]}
    )
    # CVAT's answer for a label that is not the project's
    assert response.status_code == 404
    assert response.json() == {"detail": f"Not found label with id #{tree['id']} to change"}
    ghost = user_client.patch(f"/api/projects/{project}", json={"labels": [{"id": 987654, "name": "ghost"}]})
    assert ghost.status_code == 404
    assert project_labels(user_client, other)[0]["name"] == "tree"


def test_same_names_in_different_projects_and_skeletons(user_client, project):
    body = {
        "name": "second",
        "labels": [
            {"name": "car"},
            {
                "name": "hand",
                "type": "skeleton",
                "svg": SVG,
                "sublabels": [{"name": "nose"}, {"name": "eye"}],
            },
        ],
    }
    assert user_client.post("/api/projects", json=body).status_code == 201
    # a sublabel may share its name with a top-level label
    response = user_client.patch(f"/api/projects/{project}", json={"labels": [{"name": "nose"}]})
    assert response.status_code == 200, response.text


def test_other_users_do_not_see_project_labels(make_user, admin_client, project, user_client):
    bob = make_user("bob")
    car = by_name(project_labels(user_client, project))["car"]
    assert bob.get("/api/labels", params={"project_id": project}).status_code == 403
    assert bob.get(f"/api/labels/{car['id']}").status_code == 403
    assert bob.patch(f"/api/labels/{car['id']}", json={"name": "mine"}).status_code == 403
    assert bob.delete(f"/api/labels/{car['id']}").status_code == 403
    assert bob.patch(f"/api/projects/{project}", json={"labels": [{"name": "x"}]}).status_code == 403
    assert bob.get("/api/labels").json()["count"] == 0
    assert user_client.get("/api/labels").json()["count"] == 3
    assert admin_client.get("/api/labels").json()["count"] == 3
    assert admin_client.get(f"/api/labels/{car['id']}").status_code == 200


def test_assignee_of_the_project_sees_its_labels(make_user, user_client, project):
    carol = make_user("carol")
    assert (
        user_client.patch(f"/api/projects/{project}", json={"assignee_id": carol.user_id}).status_code == 200
    )
    assert carol.get("/api/labels").json()["count"] == 3
    assert len(project_labels(carol, project)) == 3


def test_deleting_the_project_deletes_its_labels(admin_client, user_client, project):
    assert user_client.delete(f"/api/projects/{project}").status_code == 204
    assert admin_client.get("/api/labels").json()["count"] == 0
