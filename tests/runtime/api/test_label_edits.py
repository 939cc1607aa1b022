"""Label bodies as CVAT's clients send them: skeletons without a drawing, copied ids on create,
and attribute deletions, renames and checkbox changes through ``PATCH /api/labels/{id}``."""

from __future__ import annotations

from typing import Any

import pytest

SVG = '<circle data-type="element node" data-label-name="head"></circle>'


def _attribute(
    name: str, input_type: str = "text", values: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {"name": name, "input_type": input_type, "mutable": False, "values": values or [], **extra}


def _labels(client: Any, task_id: int) -> list[dict[str, Any]]:
    body = client.get("/api/labels", params={"task_id": task_id}).json()
    results: list[dict[str, Any]] = body["results"]
    return results


def _task(client: Any, labels: list[dict[str, Any]]) -> int:
    response = client.post("/api/tasks", json={"name": "t", "labels": labels})
    assert response.status_code == 201, response.text
    task_id: int = response.json()["id"]
    return task_id


def test_skeleton_without_svg_is_created_with_an_empty_drawing(user_client):
    task_id = _task(user_client, [{"name": "pose", "type": "skeleton", "sublabels": [{"name": "head"}]}])
    (pose,) = _labels(user_client, task_id)
    assert (pose["type"], pose["svg"], [s["name"] for s in pose["sublabels"]]) == ("skeleton", "", ["head"])


def test_ids_in_a_create_body_are_ignored(user_client):
    copied = [
        {
            "id": 9001,
            "name": "pose",
            "type": "skeleton",
            "svg": SVG,
            "attributes": [_attribute("kind", id=77)],
            "sublabels": [{"id": 9002, "name": "head", "attributes": [_attribute("visible", id=78)]}],
        }
    ]
    task_id = _task(user_client, copied)
    (pose,) = _labels(user_client, task_id)
    (head,) = pose["sublabels"]
    assert pose["id"] != 9001 and head["id"] != 9002
    assert pose["attributes"][0]["name"] == "kind" and pose["attributes"][0]["id"] != 77
    assert head["attributes"][0]["name"] == "visible" and head["attributes"][0]["id"] != 78
    assert pose["svg"] == f'<circle data-type="element node" data-label-id="{head["id"]}"></circle>'


def test_a_deleted_attribute_gives_its_name_to_a_renamed_one(user_client):
    task_id = _task(user_client, [{"name": "car", "attributes": [_attribute("color"), _attribute("paint")]}])
    (car,) = _labels(user_client, task_id)
    color, paint = car["attributes"]
    response = user_client.patch(
        f"/api/labels/{car['id']}",
        json={"attributes": [{**color, "deleted": True}, {**paint, "name": "color"}]},
    )
    assert response.status_code == 200, response.text
    assert [(a["id"], a["name"]) for a in response.json()["attributes"]] == [(paint["id"], "color")]


def test_deleting_an_attribute_drops_its_values_from_annotations(user_client, add_jobs):
    task_id = _task(user_client, [{"name": "car", "attributes": [_attribute("color"), _attribute("model")]}])
    (car,) = _labels(user_client, task_id)
    color, model = car["attributes"]
    (job_id,) = add_jobs(task_id)
    values = [{"spec_id": color["id"], "value": "red"}, {"spec_id": model["id"], "value": "T"}]
    shape = {
        "type": "rectangle",
        "frame": 0,
        "label_id": car["id"],
        "points": [0, 0, 1, 1],
        "attributes": values,
    }
    track = {
        "frame": 0,
        "label_id": car["id"],
        "attributes": values[:1],
        "shapes": [{**shape, "attributes": []}],
    }
    tag = {"frame": 0, "label_id": car["id"], "attributes": values}
    saved = user_client.put(
        f"/api/jobs/{job_id}/annotations", json={"shapes": [shape], "tags": [tag], "tracks": [track]}
    )
    assert saved.status_code == 200, saved.text
    response = user_client.patch(
        f"/api/labels/{car['id']}", json={"attributes": [{**color, "deleted": True}]}
    )
    assert response.status_code == 200, response.text
    assert [a["name"] for a in response.json()["attributes"]] == ["model"]
    annotations = user_client.get(f"/api/jobs/{job_id}/annotations").json()
    assert annotations["shapes"][0]["attributes"] == [{"spec_id": model["id"], "value": "T"}]
    assert annotations["tags"][0]["attributes"] == [{"spec_id": model["id"], "value": "T"}]
    assert annotations["tracks"][0]["attributes"] == []


def test_attributes_of_skeletons_and_their_points_can_be_deleted(user_client):
    task_id = _task(
        user_client,
        [
            {
                "name": "pose",
                "type": "skeleton",
                "svg": SVG,
                "attributes": [_attribute("kind")],
                "sublabels": [{"name": "head", "attributes": [_attribute("visible")]}],
            }
        ],
    )
    (pose,) = _labels(user_client, task_id)
    (head,) = pose["sublabels"]
    response = user_client.patch(
        f"/api/labels/{pose['id']}",
        json={
            "attributes": [{**pose["attributes"][0], "deleted": True}],
            "sublabels": [{"id": head["id"], "attributes": [{**head["attributes"][0], "deleted": True}]}],
        },
    )
    assert response.status_code == 200, response.text
    (pose,) = _labels(user_client, task_id)
    assert pose["attributes"] == [] and pose["sublabels"][0]["attributes"] == []
    # a sublabel's own endpoint deletes its attributes too
    head_id = pose["sublabels"][0]["id"]
    user_client.patch(f"/api/labels/{head_id}", json={"attributes": [_attribute("seen")]})
    (seen,) = user_client.get(f"/api/labels/{head_id}").json()["attributes"]
    response = user_client.patch(f"/api/labels/{head_id}", json={"attributes": [{**seen, "deleted": True}]})
    assert response.status_code == 200, response.text
    assert response.json()["attributes"] == []


def test_unknown_or_foreign_attributes_are_not_found(user_client):
    task_id = _task(user_client, [{"name": "car", "attributes": [_attribute("color")]}, {"name": "bus"}])
    car, bus = _labels(user_client, task_id)
    color = car["attributes"][0]
    for label, attribute_id in ((car, 999999), (bus, color["id"])):
        for deleted in (True, False):
            response = user_client.patch(
                f"/api/labels/{label['id']}",
                json={"attributes": [{**color, "id": attribute_id, "deleted": deleted}]},
            )
            assert response.status_code == 404, response.text
            assert response.json() == {"detail": f"Attribute with id #{attribute_id} does not exist"}
    assert _labels(user_client, task_id)[0]["attributes"] == [color]


def test_a_deleted_attribute_needs_an_id(user_client):
    task_id = _task(user_client, [{"name": "car", "attributes": [_attribute("color")]}])
    (car,) = _labels(user_client, task_id)
    response = user_client.patch(
        f"/api/labels/{car['id']}", json={"attributes": [{**_attribute("color"), "deleted": True}]}
    )
    assert response.status_code == 400, response.text
    assert "must have an id" in response.json()[0]
    assert _labels(user_client, task_id)[0]["attributes"] == car["attributes"]


@pytest.mark.parametrize(("before", "after"), [("true", "false"), ("false", "true")])
def test_changing_a_checkbox_value_takes_effect(user_client, before, after):
    task_id = _task(
        user_client, [{"name": "car", "attributes": [_attribute("parked", "checkbox", [before])]}]
    )
    (car,) = _labels(user_client, task_id)
    parked = car["attributes"][0]
    assert (parked["values"], parked["default_value"]) == ([before], before)
    response = user_client.patch(
        f"/api/labels/{car['id']}", json={"attributes": [{**parked, "values": [after]}]}
    )
    assert response.status_code == 200, response.text
    (changed,) = response.json()["attributes"]
    assert (changed["values"], changed["default_value"]) == ([after], after)
