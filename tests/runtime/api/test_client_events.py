"""``POST /api/events``: the web UI's own events, kept in the event log and never dispatched."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from cvat_sdk.api_client import ApiClient, Configuration, models
from cvat_sdk.api_client.model_utils import validate_and_convert_types

from annota.core import hookimpl
from annota.core.events import Event
from annota.runtime.settings import Settings


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    @hookimpl
    async def on_event(self, event: Event) -> None:
        self.events.append(event)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def annota_plugins(recorder: Recorder) -> dict[str, Any]:
    return {"recorder": recorder}


@pytest.fixture
def annota_settings(annota_settings: Settings) -> Settings:
    annota_settings.client_events_max_batch = 5
    annota_settings.client_events_max_payload_bytes = 100
    annota_settings.client_events_per_minute = 6
    return annota_settings


def stamp(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def batch(*events: dict[str, Any], sent: dt.datetime | None = None) -> dict[str, Any]:
    sent = sent or dt.datetime.now(dt.UTC)
    return {"events": list(events), "timestamp": stamp(sent), "previous_event": None}


def event(scope: str, at: dt.datetime, **fields: Any) -> dict[str, Any]:
    return {"scope": scope, "timestamp": stamp(at), "payload": "{}", **fields}


def test_the_ui_batch_is_echoed_and_logged_with_its_scope(make_user, admin_client, annota_client, recorder):
    alice = make_user("alice", email="alice@example.com")
    alice.portal = annota_client.portal  # served on the app's loop, where events are dispatched
    # the client's clock is an hour late: times move to the server's
    late = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    sent = batch(
        event("load:job", late - dt.timedelta(seconds=5), obj_id=7, job_id=7, duration=1200,
              payload=json.dumps({"frame_count": 12}), user_id=999, user_name="mallory"),
        event("change:frame", late - dt.timedelta(seconds=2), job_id=7, count=3),
        event("user:activity", late),
        sent=late,
    )  # fmt: skip
    task_id = alice.post("/api/tasks", json={"name": "t"}).json()["id"]
    sent["events"][0]["task_id"] = task_id
    response = alice.post("/api/events", json=sent)
    assert response.status_code == 201, response.text
    body = response.json()
    assert [e["scope"] for e in body["events"]] == ["load:job", "change:frame", "user:activity"]
    first = body["events"][0]
    assert (first["user_id"], first["user_name"], first["user_email"]) == (
        alice.user_id,
        "alice",
        "alice@example.com",
    )
    assert first["source"] == "client" and first["org_id"] is None
    assert json.loads(first["payload"]) == {"frame_count": 12} and first["duration"] == 1200
    moved = dt.datetime.fromisoformat(first["timestamp"])
    assert abs((dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)) - moved) < dt.timedelta(seconds=30)
    validate_and_convert_types(body, (models.ClientEvents,), ["received_data"], True, True, Configuration())

    logged = admin_client.get("/api/events", params={"type": "load:job"}).json()["results"]
    assert len(logged) == 1
    (row,) = logged
    assert (row["resource"], row["resource_id"], row["task_id"], row["job_id"]) == ("client", 7, task_id, 7)
    assert row["user_id"] == alice.user_id and row["payload"]["client"]["obj_id"] == 7
    assert abs(dt.datetime.fromisoformat(row["created_date"]) - moved) < dt.timedelta(seconds=1)
    everything = admin_client.get("/api/events", params={"user_id": alice.user_id, "page_size": 50}).json()
    client_types = sorted(e["type"] for e in everything["results"] if e["resource"] == "client")
    assert client_types == ["change:frame", "load:job"]  # user:activity only times work, as in CVAT
    assert alice.get("/api/events", params={"type": "change:frame"}).json()["count"] == 1
    # analytics only: no subscriber (webhooks) hears of them
    annota_client.portal.call(annota_client.app.state.annota.events.drain)
    assert [e.type for e in recorder.events] == ["create:task"]


def test_claimed_tasks_do_not_show_others_the_sender_events(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    bobs_task = bob.post("/api/tasks", json={"name": "bob's"}).json()["id"]
    now = dt.datetime.now(dt.UTC)
    assert alice.post("/api/events", json=batch(event("load:job", now, task_id=bobs_task))).status_code == 201
    assert bob.get("/api/events", params={"task_id": bobs_task, "type": "load:job"}).json()["count"] == 0
    assert alice.get("/api/events", params={"task_id": bobs_task, "type": "load:job"}).json()["count"] == 1


@pytest.mark.parametrize(
    ("events", "field", "words"),
    [
        ([event("create:task", dt.datetime.now(dt.UTC))], "scope", "create:task"),
        ([event("load:job", dt.datetime.now(dt.UTC), source="server")], "scope", "server"),
        ([event("load:job", dt.datetime.now(dt.UTC), payload="{not json")], "payload", "events[0]"),
        ([event("load:job", dt.datetime.now(dt.UTC), payload=json.dumps({"x": "y" * 200}))], "payload",
         "client_events_max_payload_bytes"),
        ([event("load:job", dt.datetime.now(dt.UTC))] * 6, "events", "client_events_max_batch"),
        ([{"scope": "load:job"}], "events", "timestamp"),
        ([event("load:job", dt.datetime.now(dt.UTC), duration="long")], "events", "duration"),
    ],
)  # fmt: skip
def test_bad_batches_are_refused_naming_the_field(make_user, events, field, words):
    alice = make_user("alice")
    response = alice.post("/api/events", json=batch(*events))
    assert response.status_code == 400, response.text
    detail = response.json()
    assert any(field in key for key in detail), detail
    assert words in json.dumps(detail), detail
    assert alice.post("/api/events", json={"events": []}).status_code == 400  # the batch's timestamp


def test_senders_are_rate_limited_and_anonymous_callers_refused(make_user, annota_client):
    alice, bob = make_user("alice"), make_user("bob")
    assert annota_client.post("/api/events", json=batch()).status_code == 401
    for _ in range(6):
        assert (
            alice.post("/api/events", json=batch(event("debug:info", dt.datetime.now(dt.UTC)))).status_code
            == 201
        )
    refused = alice.post("/api/events", json=batch())
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "client_events_per_minute" in refused.json()["detail"]
    assert bob.post("/api/events", json=batch()).status_code == 201  # per user


def test_what_cvat_sdk_sends_is_accepted(make_user):
    alice = make_user("alice")
    now = dt.datetime.now(dt.UTC)
    request = models.ClientEventsRequest(
        timestamp=now,
        events=[models.EventRequest(scope="send:exception", timestamp=now, payload='{"message": "boom"}')],
    )
    sent = ApiClient(Configuration()).sanitize_for_serialization(request)
    response = alice.post("/api/events", json=sent, headers={"X-Organization": ""})
    assert response.status_code == 201, response.text
    echoed = validate_and_convert_types(
        response.json(), (models.ClientEvents,), ["received_data"], True, True, Configuration()
    )
    assert echoed.events[0].scope == "send:exception" and echoed.events[0].user_id == alice.user_id
