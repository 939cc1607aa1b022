"""Events from the core: every change reaches ``on_event`` once committed, with the resource as the
API shows it; background requests tell when they end; the event log lists and prunes them."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from annota.core import event_dispatch, hookimpl
from annota.core.db.tables import EventRecord
from annota.core.db.types import utcnow
from annota.core.events import Event
from annota.core.queue import JobContext
from annota.core.services import events as event_service
from annota.runtime import housekeeping
from tests.media import make_jpeg, wait_for_request

BASE = "http://testserver"


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    @hookimpl
    async def on_event(self, event: Event) -> None:
        self.events.append(event)


class BrokenSubscriber:
    @hookimpl
    def on_event(self, event: Event) -> None:
        raise RuntimeError("subscriber bug")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def annota_plugins(recorder: Recorder) -> dict[str, Any]:
    # failing subscribers on both sides: whichever order the hooks run in, one fails before the recorder
    return {"broken-first": BrokenSubscriber(), "recorder": recorder, "broken-last": BrokenSubscriber()}


@pytest.fixture
def user(make_user: Any, annota_client: Any) -> Callable[..., Any]:
    """``make_user`` whose client is served on the app's event loop. A client used outside ``with``
    serves each request on a loop of its own, which ends when the response is sent, and with it the
    dispatch of the events the request committed."""

    def make(username: str, **options: Any) -> Any:
        client = make_user(username, **options)
        client.portal = annota_client.portal
        return client

    return make


@pytest.fixture
def admin(user: Callable[..., Any]) -> Any:
    return user("admin", superuser=True)


@pytest.fixture
def take(annota_client: Any, recorder: Recorder) -> Callable[[], list[Event]]:
    """The events delivered since the last call, once the dispatches under way are done."""

    def taken() -> list[Event]:
        annota_client.portal.call(annota_client.app.state.annota.events.drain)
        events, recorder.events[:] = list(recorder.events), []
        return events

    return taken


def relative(answer: Any) -> Any:
    """An API answer with the URLs an event made outside of an HTTP request has (no host)."""
    return msgspec.json.decode(msgspec.json.encode(answer).replace(BASE.encode(), b""))


def get(client: Any, path: str) -> Any:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


# --- tasks and labels ---------------------------------------------------------------------------


def test_task_and_label_changes_are_events_with_the_api_answers(admin: Any, take: Any) -> None:
    created = admin.post("/api/tasks", json={"name": "t1", "labels": [{"name": "car"}, {"name": "sky"}]})
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    events = take()
    assert [e.type for e in events] == ["create:task", "create:label", "create:label"]
    task_event = events[0]
    assert task_event.payload["task"] == created.json() == get(admin, f"/api/tasks/{task_id}")
    assert task_event.payload["sender"]["username"] == "admin"
    assert (task_event.resource, task_event.resource_id, task_event.task_id) == ("task", task_id, task_id)
    assert task_event.project_id is None and task_event.org_id is None
    car, sky = (e.payload["label"] for e in events[1:])
    assert car == get(admin, f"/api/labels/{car['id']}") and car["name"] == "car"
    assert sky == get(admin, f"/api/labels/{sky['id']}") and sky["name"] == "sky"
    assert all(e.task_id == task_id and e.resource == "label" for e in events[1:])

    # one PATCH: the task's name, a renamed label, a deleted one and a new one
    labels = [
        {"id": car["id"], "name": "auto"},
        {"id": sky["id"], "name": "sky", "deleted": True},
        {"name": "tree"},
    ]
    patched = admin.patch(f"/api/tasks/{task_id}", json={"name": "t2", "labels": labels})
    assert patched.status_code == 200, patched.text
    events = take()
    assert [e.type for e in events] == ["update:task", "update:label", "create:label", "delete:label"]
    task_update, car_update, tree_create, sky_delete = events
    assert task_update.payload["task"] == patched.json() == get(admin, f"/api/tasks/{task_id}")
    assert task_update.payload["changes"] == {"name": {"from": "t1", "to": "t2"}}
    assert task_update.payload["before_update"] == {"name": "t1"} and task_update.changed_fields == ["name"]
    assert car_update.payload["label"] == get(admin, f"/api/labels/{car['id']}")
    assert car_update.payload["changes"] == {"name": {"from": "car", "to": "auto"}}
    tree = tree_create.payload["label"]
    assert tree == get(admin, f"/api/labels/{tree['id']}") and tree["name"] == "tree"
    assert sky_delete.payload["label"] == sky and sky_delete.resource_id == sky["id"]

    # refused changes are rolled back and tell nothing
    assert admin.patch(f"/api/tasks/{task_id}", json={"owner_id": 999}).status_code == 400
    duplicate = {"labels": [{"name": "auto"}], "name": "t3"}
    assert admin.patch(f"/api/tasks/{task_id}", json=duplicate).status_code == 400
    assert admin.patch(f"/api/labels/{tree['id']}", json={"name": "auto"}).status_code == 400
    assert take() == []

    # the per-label endpoints
    assert admin.patch(f"/api/labels/{tree['id']}", json={"name": "plant"}).status_code == 200
    assert admin.patch(f"/api/labels/{tree['id']}", json={"name": "plant"}).status_code == 200
    (label_update,) = take()  # the second PATCH changed nothing
    assert label_update.type == "update:label"
    assert label_update.payload["label"] == get(admin, f"/api/labels/{tree['id']}")
    assert label_update.payload["changes"] == {"name": {"from": "tree", "to": "plant"}}
    plant = get(admin, f"/api/labels/{tree['id']}")
    assert admin.delete(f"/api/labels/{tree['id']}").status_code == 204
    (label_delete,) = take()
    assert label_delete.type == "delete:label" and label_delete.payload["label"] == plant

    # a PATCH changing only labels is no task update; a deletion carries the task as it was
    before = get(admin, f"/api/tasks/{task_id}")
    assert admin.patch(f"/api/tasks/{task_id}", json={"labels": [{"name": "bus"}]}).status_code == 200
    assert [e.type for e in take()] == ["create:label"]
    snapshot = get(admin, f"/api/tasks/{task_id}")
    assert snapshot["updated_date"] != before["updated_date"]
    assert admin.delete(f"/api/tasks/{task_id}").status_code == 204
    (task_delete,) = take()
    assert task_delete.type == "delete:task" and task_delete.payload["task"] == snapshot


def test_moving_a_task_into_a_project_deletes_its_own_labels(admin: Any, take: Any) -> None:
    project = admin.post("/api/projects", json={"name": "p", "labels": [{"name": "car"}]}).json()
    task = admin.post("/api/tasks", json={"name": "t", "labels": [{"name": "car"}]}).json()
    (own,) = get(admin, f"/api/labels?task_id={task['id']}")["results"]
    take()
    moved = admin.patch(f"/api/tasks/{task['id']}", json={"project_id": project["id"]})
    assert moved.status_code == 200, moved.text
    task_update, label_delete = take()
    assert task_update.type == "update:task" and task_update.project_id == project["id"]
    assert task_update.payload["changes"]["project_id"] == {"from": None, "to": project["id"]}
    assert label_delete.type == "delete:label" and label_delete.payload["label"] == own


# --- jobs and background requests ---------------------------------------------------------------


def _export(client: Any, task_id: int, save_images: bool) -> dict[str, Any]:
    params = {"format": "COCO 1.0", "location": "local", "save_images": str(save_images).lower()}
    response = client.post(f"/api/tasks/{task_id}/dataset/export", params=params)
    assert response.status_code == 202, response.text
    finished: dict[str, Any] = wait_for_request(client, response.json()["rq_id"])
    return finished


def test_media_jobs_and_requests_are_events(admin: Any, take: Any, make_media_task: Any) -> None:
    frames = [(f"{i}.jpg", make_jpeg(value=40 * i)) for i in range(3)]
    task_id = make_media_task(admin, frames, segment_size=2)
    events = take()
    assert [e.type for e in events] == [
        "create:task", "create:label", "create:job", "create:job", "completed:request[create:task]",
    ]  # fmt: skip
    jobs = [e.payload["job"] for e in events[2:4]]
    for event, job in zip(events[2:4], jobs, strict=True):
        # made by a worker, outside of any HTTP request: relative URLs, and the requester as sender
        assert job == relative(get(admin, f"/api/jobs/{job['id']}"))
        assert (event.task_id, event.job_id, event.resource_id) == (task_id, job["id"], job["id"])
        assert event.payload["sender"]["username"] == "admin"
    completed = events[4]
    request = completed.payload["request"]
    assert request["status"] == "finished" and request["operation"]["type"] == "create:task"
    assert request == get(admin, f"/api/requests/{request['id']}")
    assert completed.task_id == task_id and completed.user_id == admin.user_id

    # a job's workflow: the second job in validation moves the task to validation too
    first, second = (job["id"] for job in jobs)
    assert admin.patch(f"/api/jobs/{first}", json={"stage": "validation"}).status_code == 200
    (job_update,) = take()
    assert job_update.type == "update:job" and job_update.job_id == first and job_update.task_id == task_id
    assert job_update.payload["job"] == get(admin, f"/api/jobs/{first}")
    assert job_update.payload["changes"] == {
        "stage": {"from": "annotation", "to": "validation"},
        "status": {"from": "annotation", "to": "validation"},
    }
    assert admin.patch(f"/api/jobs/{second}", json={"stage": "validation"}).status_code == 200
    job_update, task_update = take()
    assert (job_update.type, task_update.type) == ("update:job", "update:task")
    assert task_update.payload["task"] == get(admin, f"/api/tasks/{task_id}")
    assert task_update.payload["changes"]["status"] == {"from": "annotation", "to": "validation"}
    assert admin.patch(f"/api/jobs/{first}", json={"assignee": 999}).status_code == 400
    assert take() == []

    for save_images, operation in ((False, "export:annotations"), (True, "export:dataset")):
        finished = _export(admin, task_id, save_images)
        (export_event,) = take()
        assert export_event.type == f"completed:request[{operation}]"
        assert export_event.payload["request"] == get(admin, f"/api/requests/{finished['id']}")

    # a deleted task takes its jobs with it: one event each, as they were
    snapshots = [get(admin, f"/api/jobs/{job_id}") for job_id in (first, second)]
    assert admin.delete(f"/api/tasks/{task_id}").status_code == 204
    events = take()
    assert [e.type for e in events] == ["delete:job", "delete:job", "delete:task"]
    assert [e.payload["job"] for e in events[:2]] == snapshots


def test_a_failed_request_is_an_event_too(admin: Any, take: Any) -> None:
    task_id = admin.post("/api/tasks", json={"name": "broken", "labels": [{"name": "car"}]}).json()["id"]
    take()
    response = admin.post(
        f"/api/tasks/{task_id}/data",
        data={"image_quality": "70"},
        files=[("client_files[0]", ("a.jpg", b"no"))],
    )
    assert response.status_code == 202, response.text
    failed = wait_for_request(admin, response.json()["rq_id"])
    assert failed["status"] == "failed"
    (event,) = take()
    assert event.type == "completed:request[create:task]" and event.payload["request"] == failed


# --- delivery -------------------------------------------------------------------------------------


def test_a_failing_subscriber_breaks_neither_the_request_nor_the_others(
    admin: Any, take: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="annota.core.event_dispatch"):
        response = admin.post("/api/tasks", json={"name": "t"})
        assert response.status_code == 201
        (event,) = take()
    assert event.type == "create:task"
    failures = [r for r in caplog.records if "failed to handle event" in r.getMessage()]
    assert len(failures) == 2 and all(event.id in r.getMessage() for r in failures)


def test_the_sweep_delivers_what_a_dying_process_left(admin: Any, take: Any, run_async: Any) -> None:
    state = admin.app.state.annota
    # a session without the dispatcher: committed, never dispatched, as if the process died right then
    bare = async_sessionmaker(state.engine, expire_on_commit=False)

    async def record(age: dt.timedelta) -> str:
        async with bare.begin() as session:
            event_id = await event_service.record(
                session, "update:task", "task", {"id": 7, "name": "lost"}, resource_id=7, task_id=7
            )
        async with bare.begin() as session:
            await session.execute(
                update(EventRecord).where(EventRecord.uuid == event_id).values(created_date=utcnow() - age)
            )
        return event_id

    async def sweep() -> None:
        await event_dispatch.sweep(JobContext("sweep", state.sessionmaker, state.settings, state.plugins))

    async def dispatched(event_id: str) -> bool:
        async with state.sessionmaker() as session:
            row = await session.scalar(select(EventRecord).where(EventRecord.uuid == event_id))
            return bool(row.dispatched)

    lost = run_async(record, dt.timedelta(seconds=30))
    fresh = run_async(record, dt.timedelta(0))
    run_async(sweep)
    delivered = [e for e in take() if e.id in (lost, fresh)]
    # at least once: the periodic sweep may have delivered the lost one as well
    assert {e.id for e in delivered} == {lost}
    assert delivered[0].payload == {"event": "update:task", "task": {"id": 7, "name": "lost"}}
    assert run_async(dispatched, lost) and not run_async(dispatched, fresh)


# --- the event log ------------------------------------------------------------------------------


def test_event_log_filters_pages_and_refuses_bad_parameters(admin: Any, user: Any, take: Any) -> None:
    alice, bob = user("alice"), user("bob")
    task_a = alice.post("/api/tasks", json={"name": "a", "labels": [{"name": "car"}]}).json()["id"]
    task_b = bob.post("/api/tasks", json={"name": "b"}).json()["id"]
    assert alice.patch(f"/api/tasks/{task_a}", json={"name": "a2"}).status_code == 200
    delivered = {e.id: e for e in take()}

    log = get(admin, f"/api/events?task_id={task_a}")
    assert log["count"] == 3 and [item["type"] for item in log["results"]] == [
        "update:task", "create:label", "create:task",
    ]  # fmt: skip
    newest = log["results"][0]
    event = delivered[newest["id"]]
    assert newest == {
        "id": event.id, "type": "update:task", "resource": "task", "resource_id": task_a, "org_id": None,
        "project_id": None, "task_id": task_a, "job_id": None, "user_id": alice.user_id,
        "created_date": newest["created_date"], "payload": event.payload,
    }  # fmt: skip
    assert dt.datetime.fromisoformat(newest["created_date"]) == event.created_date
    assert [i["task_id"] for i in get(admin, "/api/events?type=create:task")["results"]] == [
        task_b,
        task_a,
    ]
    assert {i["task_id"] for i in get(admin, f"/api/events?user_id={bob.user_id}")["results"]} == {task_b}
    assert get(admin, "/api/events?job_id=1&task_id=" + str(task_a))["count"] == 0

    # time range: both ends included
    created = log["results"][2]["created_date"]
    updated = newest["created_date"]
    window = admin.get("/api/events", params={"task_id": task_a, "from": created, "to": created}).json()
    assert [i["type"] for i in window["results"]] == ["create:task"]
    since = admin.get("/api/events", params={"from": updated}).json()
    assert [i["type"] for i in since["results"]] == ["update:task"]
    naive = dt.datetime.fromisoformat(updated).astimezone(dt.UTC).replace(tzinfo=None).isoformat()
    assert admin.get("/api/events", params={"from": naive}).json()["count"] == 1

    # pages, newest first
    first = get(admin, "/api/events?page_size=2")
    second = get(admin, "/api/events?page_size=2&page=2")
    assert first["count"] == 4 and len(first["results"]) == 2 and first["next"] and first["previous"] is None
    assert [i["type"] for i in first["results"] + second["results"]] == [
        "update:task", "create:task", "create:label", "create:task",
    ]  # fmt: skip
    assert admin.get("/api/events?page=9").status_code == 404

    for query, name in (
        ("task_id=abc", "task_id"), ("org_id=1.5", "org_id"), ("from=yesterday", "from"),
        ("to=2026-13-01", "to"), ("from=2026-02-01&to=2026-01-01", "from"), ("page_size=0", "page_size"),
    ):  # fmt: skip
        response = admin.get(f"/api/events?{query}")
        assert response.status_code == 400 and name in response.json(), (query, response.text)


def test_event_log_shows_what_the_caller_may_see(
    admin: Any, user: Any, annota_client: Any, take: Any
) -> None:
    alice, bob = user("alice"), user("bob")
    task_a = alice.post("/api/tasks", json={"name": "a"}).json()["id"]
    project_b = bob.post("/api/projects", json={"name": "pb", "labels": [{"name": "car"}]}).json()["id"]
    task_b = bob.post("/api/tasks", json={"name": "b", "project_id": project_b}).json()["id"]
    take()

    def seen(client: Any) -> set[tuple[str, int | None, int | None]]:
        results = get(client, "/api/events?page_size=all")["results"]
        return {(item["type"], item["project_id"], item["task_id"]) for item in results}

    alices = {("create:task", None, task_a)}
    bobs = {
        ("create:project", project_b, None),
        ("create:label", project_b, None),
        ("create:task", project_b, task_b),
    }
    assert seen(alice) == alices and seen(bob) == bobs and seen(admin) == alices | bobs
    assert annota_client.get("/api/events").status_code == 401

    # what alice changes in bob's project is hers to see, and bob's: the project is his
    assert bob.patch(f"/api/projects/{project_b}", json={"assignee_id": alice.user_id}).status_code == 200
    assert alice.patch(f"/api/tasks/{task_b}", json={"name": "b2"}).status_code == 200
    assert ("update:task", project_b, task_b) in seen(alice) & seen(bob)
    assert ("create:task", None, task_a) not in seen(bob)
    # events of a deleted task stay visible to whoever deleted it
    assert alice.delete(f"/api/tasks/{task_a}").status_code == 204
    assert ("delete:task", None, task_a) in seen(alice) and ("delete:task", None, task_a) not in seen(bob)


def test_dispatched_events_expire_after_the_retention(admin: Any, run_async: Any) -> None:
    state = admin.app.state.annota

    async def add(days: float, dispatched: bool) -> str:
        async with state.sessionmaker.begin() as session:
            row = EventRecord(
                uuid=f"{days}-{dispatched}", type="update:task", resource="task", payload="{}",
                created_date=utcnow() - dt.timedelta(days=days), dispatched=dispatched,
            )  # fmt: skip
            session.add(row)
        return row.uuid

    async def left() -> set[str]:
        async with state.sessionmaker() as session:
            return set(await session.scalars(select(EventRecord.uuid)))

    ids = {(days, done): run_async(add, days, done) for days in (40, 10, 1) for done in (True, False)}
    run_async(housekeeping.prune, state.sessionmaker, state.storage, state.settings)
    # the default keeps 30 days; undispatched events wait for the sweep whatever their age
    assert run_async(left) == set(ids.values()) - {ids[40, True]}
    settings = msgspec.structs.replace(state.settings, event_retention_days=5)
    context = JobContext("housekeeping", state.sessionmaker, settings, state.plugins, storage=state.storage)
    run_async(housekeeping.housekeeping_job, context)
    assert run_async(left) == {ids[40, False], ids[10, False], ids[1, True], ids[1, False]}
