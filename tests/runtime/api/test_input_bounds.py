"""Input no database can take is a 4xx, never a server error: integers past their column's range,
text holding NUL, JSON nested past what can be decoded, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import base64
import json

import pytest

INT4_PAST = 2**31  # past PostgreSQL's integer
INT8_PAST = 2**63  # past SQLite's integer and PostgreSQL's bigint
NUL = "a\x00b"


@pytest.fixture
def project(admin_client):
    response = admin_client.post("/api/projects", json={"name": "bounds", "labels": [{"name": "car"}]})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def job(admin_client, project, add_jobs):
    task = admin_client.post("/api/tasks", json={"name": "t", "project_id": project["id"]}).json()
    (job_id,) = add_jobs(task["id"])
    label_id = admin_client.get("/api/labels", params={"project_id": project["id"]}).json()["results"][0][
        "id"
    ]
    return {"id": job_id, "task": task["id"], "label": label_id}


# --- integers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [INT4_PAST, INT8_PAST, 10**30])
@pytest.mark.parametrize(
    "url", ["/api/projects/{}", "/api/tasks/{}", "/api/jobs/{}/annotations", "/api/webhooks/1/deliveries/{}"]
)
def test_a_path_id_past_its_column_is_no_object(admin_client, project, url, value):
    if "deliveries" in url and value == INT4_PAST:
        value = INT8_PAST  # delivery ids are bigints
    response = admin_client.get(url.format(value))
    assert response.status_code == 404, response.text


def test_path_integers_match_up_to_their_columns_maximum(annota_client):
    (route,) = [
        route
        for route in annota_client.app.router.routes
        if getattr(route, "path", "") == "/api/webhooks/{id:int}/deliveries/{delivery_id:int64}"
        and "GET" in (route.methods or ())
    ]
    assert route.path_regex.match(f"/api/webhooks/{INT4_PAST - 1}/deliveries/{INT8_PAST - 1}")
    assert route.path_regex.match("/api/webhooks/0/deliveries/007")
    assert not route.path_regex.match(f"/api/webhooks/{INT4_PAST}/deliveries/1")
    assert not route.path_regex.match(f"/api/webhooks/1/deliveries/{INT8_PAST}")


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/api/projects", "id"),
        ("/api/tasks", "project_id"),
        ("/api/labels", "project_id"),
        ("/api/events", "task_id"),
        ("/api/projects", "page_size"),
        ("/api/projects", "page"),
        ("/api/projects", "org_id"),
        ("/api/jobs/{job}/data", "number"),
    ],
)
@pytest.mark.parametrize("value", [INT4_PAST, INT8_PAST])
def test_an_integer_query_parameter_past_its_range_is_400_naming_it(admin_client, job, url, name, value):
    params = {name: str(value)}
    if name == "number":
        params["type"] = "frame"
    response = admin_client.get(url.format(job=job["id"]), params=params)
    assert response.status_code == 400, response.text
    assert name in response.json(), response.text


def test_an_unknown_id_in_range_is_404_or_an_empty_list(admin_client):
    assert admin_client.get(f"/api/projects/{INT4_PAST - 1}").status_code == 404
    assert admin_client.get("/api/projects", params={"id": str(INT4_PAST - 1)}).json()["count"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "p", "assignee_id": INT4_PAST}, "assignee_id"),
        ({"name": "p", "owner_id": INT8_PAST}, "owner_id"),
        ({"name": "p", "labels": [{"name": "l", "id": INT4_PAST}]}, "labels[0].id"),
        (
            {"name": "p", "labels": [{"name": "l", "sublabels": [{"id": INT8_PAST}]}]},
            "labels[0].sublabels[0].id",
        ),
    ],
)
def test_an_integer_body_field_past_its_range_is_400_naming_it(admin_client, body, field):
    response = admin_client.post("/api/projects", json=body)
    assert response.status_code == 400, response.text
    assert field in response.json(), response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "t", "overlap": INT4_PAST}, "overlap"),
        ({"name": "t", "segment_size": INT8_PAST}, "segment_size"),
        ({"name": "t", "project_id": INT4_PAST}, "project_id"),
    ],
)
def test_task_integers_past_their_range(admin_client, body, field):
    response = admin_client.post("/api/tasks", json=body)
    assert response.status_code == 400, response.text
    assert field in response.json(), response.text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"frame": INT4_PAST}, "shapes[0].frame"),
        ({"z_order": INT4_PAST}, "shapes[0].z_order"),
        ({"z_order": -INT4_PAST - 1}, "shapes[0].z_order"),
        ({"group": INT8_PAST}, "shapes[0].group"),
        ({"label_id": INT4_PAST}, "shapes[0].label_id"),
        ({"id": INT8_PAST}, "shapes[0].id"),
    ],
)
def test_annotation_integers_past_their_range(admin_client, job, change, field):
    shape = {"type": "rectangle", "frame": 0, "label_id": job["label"], "points": [0, 0, 1, 1], **change}
    response = admin_client.put(f"/api/jobs/{job['id']}/annotations", json={"shapes": [shape]})
    assert response.status_code == 400, response.text
    assert field in response.json(), response.text


def test_integer_bounds_are_declared_in_the_schema(admin_client):
    schema = admin_client.get("/api/schema").json()
    (param,) = schema["paths"]["/api/projects/{id}"]["get"]["parameters"]
    assert param["schema"] == {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
    components = schema["components"]["schemas"]
    assert components["ProjectWrite"]["properties"]["assignee_id"]["maximum"] == 2**31 - 1
    assert components["LabeledShape"]["properties"]["id"]["maximum"] == 2**63 - 1
    unbounded = []

    def walk(node, where):
        if isinstance(node, dict):
            if node.get("type") == "integer" and ("minimum" not in node or "maximum" not in node):
                unbounded.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(schema, "")
    assert not unbounded


# --- filters ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        {"==": [{"var": "id"}, INT4_PAST]},
        {"==": [{"var": "id"}, INT8_PAST]},
        {"in": [{"var": "id"}, [1, INT4_PAST]]},
        {"==": [{"var": "name"}, NUL]},
        {"in": [NUL, {"var": "name"}]},
        {"==": [{"var": "name"}, {"nested": "object"}]},
        {"==": [{"var": "name"}, [1, 2]]},
        {"==": [{"var": "id"}, "text"]},
        {"==": [{"var": "updated_date"}, "not a date"]},
        {"==": [{"var": 5}, 1]},
        {"!": []},
    ],
)
def test_a_filter_value_the_database_cannot_compare_is_400(admin_client, project, rule):
    response = admin_client.get("/api/projects", params={"filter": json.dumps(rule)})
    assert response.status_code == 400, response.text
    assert "filter" in response.json(), response.text


def test_a_filter_by_date_still_works(admin_client, project):
    rule = {">": [{"var": "updated_date"}, "2000-01-01T00:00:00"]}
    response = admin_client.get("/api/projects", params={"filter": json.dumps(rule)})
    assert response.status_code == 200, response.text
    assert response.json()["count"] == 1


def test_a_filter_nested_2000_deep_is_400(admin_client):
    rule = '{"!":' * 2000 + '{"==":[{"var":"id"},1]}' + "}" * 2000
    response = admin_client.get("/api/projects", params={"filter": rule})
    assert response.status_code == 400, response.text
    assert "nested deeper" in response.json()["filter"][0]


def test_a_filter_nested_past_what_json_decodes_is_400(admin_client):
    rule = "[" * 10_000 + "]" * 10_000
    response = admin_client.get("/api/projects", params={"filter": rule})
    assert response.status_code == 400, response.text


# --- text no database stores -------------------------------------------------------------------


def test_nul_in_a_login_is_400(annota_client, admin_client):
    for body in ({"username": NUL, "password": "x"}, {"email": NUL, "password": "x"}):
        response = annota_client.post("/api/auth/login", json=body)
        assert response.status_code == 400, response.text
    # the password never reaches the database as text: NUL there is just a wrong password
    assert annota_client.post("/api/auth/login", json={"username": "admin", "password": NUL}).status_code in (
        400,
        401,
    )


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic " + base64.b64encode(f"{NUL}:secret".encode()).decode(),
        f"Token {NUL}",
        f"Bearer {NUL}",
    ],
)
def test_nul_in_credentials_is_400(annota_client, authorization):
    response = annota_client.get("/api/projects", headers={"Authorization": authorization})
    assert response.status_code == 400, response.text
    assert "Authorization" in response.json()


def test_nul_in_a_session_cookie_is_400(annota_client):
    annota_client.cookies.set("sessionid", NUL)
    try:
        assert annota_client.get("/api/projects").status_code == 400
    finally:
        annota_client.cookies.clear()


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("POST", "/api/projects", {"name": NUL}, "name"),
        ("POST", "/api/projects", {"name": "p", "labels": [{"name": NUL}]}, "labels[0].name"),
        ("POST", "/api/organizations", {"slug": "org", "name": "o", "contact": {NUL: "x"}}, "contact."),
        ("POST", "/api/tasks", {"name": "t", "subset": NUL}, "subset"),
    ],
)
def test_nul_in_a_body_is_400_naming_the_field(admin_client, method, url, body, field):
    response = admin_client.request(method, url, json=body)
    assert response.status_code == 400, response.text
    (name,) = response.json()
    assert name.startswith(field) and "NUL" in response.json()[name][0]


@pytest.mark.parametrize(
    ("url", "params", "name"),
    [
        ("/api/projects", {"search": NUL}, "search"),
        ("/api/projects", {"name": NUL}, "name"),
        ("/api/projects", {"sort": NUL}, "sort"),
        ("/api/users", {"search": NUL}, "search"),
        ("/api/invitations/a%00b", {}, "key"),
        ("/api/requests/a%00b", {}, "rq_id"),
    ],
)
def test_nul_in_a_query_or_path_is_400_naming_it(admin_client, url, params, name):
    response = admin_client.get(url, params=params)
    assert response.status_code == 400, response.text
    assert name in response.json(), response.text


# --- depth --------------------------------------------------------------------------------------------


def test_a_body_nested_50000_deep_is_400(admin_client):
    for body in ("[" * 50_000 + "]" * 50_000, '{"name": "p", "labels": ' + "[" * 50_000 + "]" * 50_000 + "}"):
        response = admin_client.post(
            "/api/projects", content=body.encode(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, response.text
    deep = '{"slug": "deep", "name": "o", "contact": {"a": ' + "[" * 50_000 + "]" * 50_000 + "}}"
    response = admin_client.post(
        "/api/organizations", content=deep.encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert "nested too deeply" in response.json()["non_field_errors"][0]
