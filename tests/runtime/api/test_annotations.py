"""Job and task annotations: round trips of every kind of object, PATCH semantics, validation
errors that name the object, permissions, task-level merge/split and concurrent writers."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from annota.core.db.tables import Shape, Tag, Track, TrackedShape

SVG = (
    '<circle data-type="element node" data-label-name="head"></circle>'
    '<circle data-type="element node" data-label-name="tail"></circle>'
)
LABELS = [
    {
        "name": "car",
        "attributes": [
            {"name": "color", "input_type": "select", "mutable": False, "values": ["red", "blue"]},
            {"name": "parked", "input_type": "checkbox", "mutable": True, "values": ["false"]},
            {"name": "speed", "input_type": "number", "mutable": True, "values": ["0", "100", "1"]},
            {"name": "note", "input_type": "text", "mutable": False, "values": []},
        ],
    },
    {"name": "pose", "type": "skeleton", "svg": SVG, "sublabels": [{"name": "head"}, {"name": "tail"}]},
]


@dataclass
class Setup:
    task_id: int
    jobs: list[int]
    car: int
    specs: dict[str, int]
    pose: int
    head: int
    tail: int


@pytest.fixture
def alice(make_user):
    return make_user("alice")


def make_setup(client, add_jobs, ranges=((0, 9),)) -> Setup:
    task = client.post("/api/tasks", json={"name": "t", "labels": LABELS})
    assert task.status_code == 201, task.text
    body = task.json()
    jobs = add_jobs(body["id"], ranges)
    labels = client.get("/api/labels", params={"task_id": body["id"]}).json()["results"]
    by_name = {label["name"]: label for label in labels}
    pose = by_name["pose"]
    subs = {sub["name"]: sub["id"] for sub in pose["sublabels"]}
    specs = {spec["name"]: spec["id"] for spec in by_name["car"]["attributes"]}
    return Setup(body["id"], jobs, by_name["car"]["id"], specs, pose["id"], subs["head"], subs["tail"])


@pytest.fixture
def setup(alice, add_jobs) -> Setup:
    return make_setup(alice, add_jobs)


def rect(s: Setup, frame=0, points=(1, 2, 3, 4), **extra):
    return {"type": "rectangle", "label_id": s.car, "frame": frame, "points": list(points), **extra}


def count_rows(client, run_async) -> int:
    async def count():
        async with client.app.state.annota.sessionmaker() as session:
            total = 0
            for table in (Tag, Shape, Track, TrackedShape):
                total += await session.scalar(select(func.count()).select_from(table))
            return total

    return run_async(count)


def strip_ids(value):
    if isinstance(value, dict):
        return {k: strip_ids(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [strip_ids(v) for v in value]
    return value


def test_round_trip_of_every_kind(alice, setup):
    s = setup
    attrs = [{"spec_id": s.specs["color"], "value": "blue"}, {"spec_id": s.specs["speed"], "value": "42"}]
    shapes = [
        rect(
            s,
            1,
            attributes=attrs,
            rotation=370,
            group=None,
            z_order=3,
            occluded=True,
            source="auto",
            score=0.5,
        ),
        {"type": "ellipse", "label_id": s.car, "frame": 2, "points": [5, 5, 8, 2]},
        {"type": "polygon", "label_id": s.car, "frame": 2, "points": [0, 0, 4, 0, 4, 4]},
        {"type": "polyline", "label_id": s.car, "frame": 3, "points": [0, 0, 4.5, 1.25]},
        {"type": "points", "label_id": s.car, "frame": 3, "points": [7, 7]},
        {"type": "cuboid", "label_id": s.car, "frame": 4, "points": list(range(16))},
        # a 3x2 box: runs 1 background, 4 foreground, 1 background
        {"type": "mask", "label_id": s.car, "frame": 5, "points": [1, 4, 1, 10, 20, 12, 21]},
        {
            "type": "skeleton",
            "label_id": s.pose,
            "frame": 6,
            "points": [],
            "elements": [
                {"type": "points", "label_id": s.head, "frame": 6, "points": [1, 1]},
                {"type": "points", "label_id": s.tail, "frame": 6, "points": [2, 2], "outside": True},
            ],
        },
    ]
    tags = [{"label_id": s.car, "frame": 0, "attributes": [{"spec_id": s.specs["note"], "value": "hi"}]}]
    tracks = [
        {
            "label_id": s.car,
            "frame": 0,
            "attributes": [{"spec_id": s.specs["color"], "value": "red"}],
            "shapes": [
                {"type": "rectangle", "frame": 4, "points": [2, 2, 3, 3], "outside": True},
                {
                    "type": "rectangle",
                    "frame": 0,
                    "points": [0, 0, 1, 1],
                    "attributes": [{"spec_id": s.specs["parked"], "value": "true"}],
                },
            ],  # fmt: skip
        }
    ]
    job = s.jobs[0]
    put = alice.put(f"/api/jobs/{job}/annotations", json={"shapes": shapes, "tags": tags, "tracks": tracks})
    assert put.status_code == 200, put.text
    got = alice.get(f"/api/jobs/{job}/annotations/")
    assert got.status_code == 200
    body = got.json()
    assert body == put.json()
    assert body["version"] == 1 and body["intervals"] == []
    assert len(body["shapes"]) == 8 and all(isinstance(shape["id"], int) for shape in body["shapes"])
    first = body["shapes"][0]
    assert (first["rotation"], first["group"], first["z_order"], first["occluded"]) == (10.0, 0, 3, True)
    assert (first["source"], first["score"], first["attributes"]) == ("auto", 0.5, attrs)
    assert body["shapes"][6]["points"] == [1, 4, 1, 10, 20, 12, 21]
    skeleton = body["shapes"][7]
    assert [e["label_id"] for e in skeleton["elements"]] == [s.head, s.tail]
    assert skeleton["elements"][1]["outside"] is True
    assert body["tags"][0]["attributes"] == tags[0]["attributes"]
    (track,) = body["tracks"]
    assert [k["frame"] for k in track["shapes"]] == [0, 4]
    assert track["shapes"][1]["outside"] is True
    assert track["shapes"][0]["attributes"] == [{"spec_id": s.specs["parked"], "value": "true"}]
    assert track["attributes"] == [{"spec_id": s.specs["color"], "value": "red"}]
    # a second PUT replaces everything
    again = alice.put(f"/api/jobs/{job}/annotations", json={"shapes": [rect(s)]}).json()
    assert (again["version"], len(again["shapes"]), again["tags"], again["tracks"]) == (2, 1, [], [])


def test_skeleton_track_round_trip(alice, setup):
    s = setup
    keyframe = {"type": "points", "frame": 0, "points": [1, 1]}
    track = {
        "label_id": s.pose,
        "frame": 0,
        "shapes": [{"type": "skeleton", "frame": 0, "points": []}],
        "elements": [
            {"label_id": s.head, "frame": 0, "shapes": [keyframe]},
            {"label_id": s.tail, "frame": 0, "shapes": [{**keyframe, "frame": 2}]},
        ],
    }
    assert alice.put(f"/api/jobs/{s.jobs[0]}/annotations", json={"tracks": [track]}).status_code == 200
    (read,) = alice.get(f"/api/jobs/{s.jobs[0]}/annotations").json()["tracks"]
    assert [element["label_id"] for element in read["elements"]] == [s.head, s.tail]
    assert read["elements"][1]["shapes"][0]["frame"] == 2


def test_patch_create_update_delete(alice, setup):
    s = setup
    url = f"/api/jobs/{s.jobs[0]}/annotations"
    created = alice.patch(url, params={"action": "create"}, json={"shapes": [rect(s), rect(s, 1)]})
    assert created.status_code == 200, created.text
    first, second = created.json()["shapes"]
    changed = alice.patch(
        url,
        params={"action": "update"},
        json={"shapes": [{**first, "points": [9, 9, 10, 10]}, rect(s, 2)], "tags": []},
    )
    assert changed.status_code == 200, changed.text
    updated, added = changed.json()["shapes"]
    assert updated["id"] == first["id"] and added["id"] not in (first["id"], second["id"])
    shapes = {shape["id"]: shape for shape in alice.get(url).json()["shapes"]}
    assert shapes[first["id"]]["points"] == [9, 9, 10, 10] and set(shapes) == {
        first["id"],
        second["id"],
        added["id"],
    }
    deleted = alice.patch(url, params={"action": "delete"}, json={"shapes": [{**second}]})
    assert deleted.status_code == 200, deleted.text
    assert {shape["id"] for shape in alice.get(url).json()["shapes"]} == {first["id"], added["id"]}
    missing = alice.patch(url, params={"action": "delete"}, json={"shapes": [{**second}]})
    assert missing.status_code == 400
    assert "shapes[0].id" in missing.json() and str(second["id"]) in missing.json()["shapes[0].id"][0]
    assert alice.patch(url, params={"action": "bogus"}, json={}).status_code == 400
    assert alice.delete(url).status_code == 204
    assert alice.get(url).json()["shapes"] == []


@pytest.mark.parametrize(
    ("shape", "path", "message"),
    [
        ({"points": [1, 2, 3]}, "shapes[1].points", "rectangle needs 4 values, got 3"),
        ({"type": "polygon", "points": [1, 2, 3, 4]}, "shapes[1].points", "at least 6"),
        ({"type": "polyline", "points": [1, 2, 3]}, "shapes[1].points", "at least 4"),
        ({"type": "points", "points": []}, "shapes[1].points", "at least 2"),
        ({"type": "cuboid", "points": [1] * 15}, "shapes[1].points", "cuboid needs 16"),
        ({"type": "mask", "points": [1, 4, 1, 10, 20, 12, 22]}, "shapes[1].points", "sum to 6"),
        ({"type": "skeleton", "points": [1, 2]}, "shapes[1].points", "must be empty"),
        ({"label_id": 99999}, "shapes[1].label_id", "not a label of this task"),
        ({"frame": 10}, "shapes[1].frame", "outside the job's frames"),
        ({"type": "hexagon"}, "shapes[1].type", "Invalid enum value"),
        (
            {"attributes": [{"spec_id": 99999, "value": "x"}]},
            "shapes[1].attributes[0].spec_id",
            "not an attribute",
        ),
        ({"score": 2}, "shapes[1].score", "between 0 and 1"),
    ],
)
def test_bad_shapes_are_refused_whole(alice, setup, run_async, shape, path, message):
    s = setup
    body = {"shapes": [rect(s), {**rect(s), **shape}], "tags": [{"label_id": s.car, "frame": 0}]}
    for method, params in (("PUT", {}), ("PATCH", {"action": "create"})):
        response = alice.request(method, f"/api/jobs/{s.jobs[0]}/annotations", params=params, json=body)
        assert response.status_code == 400, response.text
        assert path in response.json(), response.json()
        assert message in response.json()[path][0]
    assert count_rows(alice, run_async) == 0


def test_bad_attribute_values_and_elements(alice, setup, run_async):
    s = setup
    url = f"/api/jobs/{s.jobs[0]}/annotations"

    def error(body):
        response = alice.put(url, json=body)
        assert response.status_code == 400, response.text
        return response.json()

    assert "tags[0].attributes[0].value" in error(
        {
            "tags": [
                {
                    "label_id": s.car,
                    "frame": 0,
                    "attributes": [{"spec_id": s.specs["color"], "value": "pink"}],
                }
            ]
        }
    )
    assert "shapes[0].attributes[0].value" in error(
        {"shapes": [rect(s, attributes=[{"spec_id": s.specs["speed"], "value": "101"}])]}
    )
    assert "shapes[0].attributes[0].value" in error(
        {"shapes": [rect(s, attributes=[{"spec_id": s.specs["parked"], "value": "maybe"}])]}
    )
    head = {"type": "points", "label_id": s.head, "frame": 0, "points": [1, 1]}
    head_only = {"type": "skeleton", "label_id": s.pose, "frame": 0, "points": [], "elements": [head]}
    assert "shapes[0].elements" in error({"shapes": [head_only]})
    two_keyframes = {"label_id": s.car, "frame": 0, "shapes": [rect(s, 1), rect(s, 1)]}
    assert "tracks[0].shapes[1].frame" in error({"tracks": [two_keyframes]})
    assert "tracks[0].shapes[0].points" in error(
        {"tracks": [{"label_id": s.car, "frame": 0, "shapes": [rect(s, 1, points=[1])]}]}
    )
    assert count_rows(alice, run_async) == 0


def test_non_finite_numbers_name_the_shape(alice, setup, run_async):
    s = setup
    for bad in ("NaN", "Infinity", "-Infinity", "1e999"):
        text = json.dumps({"shapes": [rect(s)]}).replace("[1, 2, 3, 4]", f"[1, 2, {bad}, 4]")
        response = alice.put(
            f"/api/jobs/{s.jobs[0]}/annotations", content=text, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert "shapes[0].points" in response.json() or "shapes[0].points[2]" in response.json(), (
            response.json()
        )
    assert count_rows(alice, run_async) == 0


def test_other_users_are_refused(alice, setup, make_user):
    s = setup
    bob = make_user("bob")
    alice.put(f"/api/jobs/{s.jobs[0]}/annotations", json={"shapes": [rect(s)]})
    for url in (f"/api/jobs/{s.jobs[0]}/annotations", f"/api/tasks/{s.task_id}/annotations"):
        assert bob.get(url).status_code == 403
        assert bob.put(url, json={}).status_code == 403
        assert bob.patch(url, params={"action": "create"}, json={}).status_code == 403
        assert bob.delete(url).status_code == 403
    assert len(alice.get(f"/api/jobs/{s.jobs[0]}/annotations").json()["shapes"]) == 1


def test_task_level_split_and_merge_with_overlap(alice, add_jobs):
    s = make_setup(alice, add_jobs, ((0, 9), (5, 14)))
    first, second = s.jobs
    body = {
        "shapes": [rect(s, 2), rect(s, 7), rect(s, 12)],
        "tags": [{"label_id": s.car, "frame": 6}],
        "tracks": [
            {
                "label_id": s.car,
                "frame": 0,
                "shapes": [
                    {"type": "rectangle", "frame": 0, "points": [0, 0, 1, 1]},
                    {"type": "rectangle", "frame": 12, "points": [5, 5, 6, 6]},
                ],
            },
        ],  # fmt: skip
    }
    put = alice.put(f"/api/tasks/{s.task_id}/annotations", json=body)
    assert put.status_code == 200, put.text
    one = alice.get(f"/api/jobs/{first}/annotations").json()
    two = alice.get(f"/api/jobs/{second}/annotations").json()
    # the overlap (frames 5-9) is in both jobs
    assert sorted(shape["frame"] for shape in one["shapes"]) == [2, 7]
    assert sorted(shape["frame"] for shape in two["shapes"]) == [7, 12]
    # sliced: the first piece ends hidden after its last frame, the second starts interpolated
    assert [(k["frame"], k["outside"]) for k in one["tracks"][0]["shapes"]] == [(0, False), (10, True)]
    assert [(k["frame"], k["outside"]) for k in two["tracks"][0]["shapes"]] == [(5, False), (12, False)]
    merged = alice.get(f"/api/tasks/{s.task_id}/annotations").json()
    assert merged == put.json()
    assert sorted(shape["frame"] for shape in merged["shapes"]) == [2, 7, 12]
    assert [tag["frame"] for tag in merged["tags"]] == [6]
    assert [[k["frame"] for k in track["shapes"]] for track in merged["tracks"]] == [[0, 12]]
    # PATCH at task level: new objects go to their frames' jobs, updates stay where they are
    (owned_by_second,) = [shape for shape in merged["shapes"] if shape["frame"] == 12]
    patched = alice.patch(
        f"/api/tasks/{s.task_id}/annotations",
        params={"action": "update"},
        json={"shapes": [{**owned_by_second, "points": [0, 0, 9, 9]}, rect(s, 3)]},
    )
    assert patched.status_code == 200, patched.text
    assert sorted(
        shape["frame"] for shape in alice.get(f"/api/jobs/{first}/annotations").json()["shapes"]
    ) == [2, 3, 7]
    two = alice.get(f"/api/jobs/{second}/annotations").json()
    assert [shape["points"] for shape in two["shapes"] if shape["frame"] == 12] == [[0, 0, 9, 9]]
    # an updated object stays in its job: moving it to a frame that job lacks is refused
    moved = alice.patch(
        f"/api/tasks/{s.task_id}/annotations",
        params={"action": "update"},
        json={"shapes": [{**owned_by_second, "frame": 1}]},
    )
    assert moved.status_code == 400 and "shapes[0].frame" in moved.json(), moved.text
    assert alice.put(f"/api/tasks/{s.task_id}/annotations", json={"shapes": [rect(s, 15)]}).status_code == 400
    assert alice.delete(f"/api/tasks/{s.task_id}/annotations").status_code == 204
    assert strip_ids(alice.get(f"/api/tasks/{s.task_id}/annotations").json()) == {
        "version": 0, "tags": [], "shapes": [], "tracks": [], "intervals": []
    }  # fmt: skip


def test_legacy_export_parameters_are_gone(alice, setup):
    for name in ("format", "filename", "action", "location", "cloud_storage_id"):
        response = alice.get(f"/api/tasks/{setup.task_id}/annotations", params={name: "x"})
        assert response.status_code == 410, (name, response.text)
    assert alice.get(f"/api/tasks/{setup.task_id}/annotations").status_code == 200


def test_stale_version_put_is_a_conflict(alice, setup):
    url = f"/api/jobs/{setup.jobs[0]}/annotations"
    seen = alice.get(url).json()
    assert seen["version"] == 0
    alice.patch(url, params={"action": "create"}, json={"shapes": [rect(setup)]})
    current = alice.get(url).json()["version"]
    assert current == 1
    stale = alice.put(url, json={"version": 1, "shapes": []})
    assert stale.status_code == 200
    conflict = alice.put(url, json={"version": 1, "shapes": []})
    assert conflict.status_code == 409
    assert "annotations changed since version 1" in conflict.text


def test_concurrent_patches_both_survive(alice, setup, make_user):
    s = setup
    url = f"/api/jobs/{s.jobs[0]}/annotations"
    errors: list[str] = []

    def writer(frame: int) -> None:
        for _ in range(5):
            response = alice.patch(url, params={"action": "create"}, json={"shapes": [rect(s, frame)]})
            if response.status_code != 200:
                errors.append(response.text)

    threads = [threading.Thread(target=writer, args=(frame,)) for frame in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    body = alice.get(url).json()
    assert sorted(shape["frame"] for shape in body["shapes"]) == [1] * 5 + [2] * 5
    assert body["version"] == 10


def test_large_body_is_accepted(alice, setup):
    s = setup
    shape = rect(s, 1, points=(1.123456789, 2.123456789, 3.123456789, 4.123456789),
                 attributes=[{"spec_id": s.specs["note"], "value": "x" * 40}])  # fmt: skip
    count = 85_000
    body = json.dumps({"shapes": [shape] * count}).encode()
    # past the 16 MiB limit of ordinary JSON bodies
    assert len(body) > 16 * 1024 * 1024
    response = alice.put(
        f"/api/jobs/{s.jobs[0]}/annotations", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text[:300]
    assert len(response.json()["shapes"]) == count


def track_body(s: Setup, keyframes, **extra):
    """A car track; ``keyframes`` are ``(frame, points)`` or ``(frame, points, outside)``."""
    shapes = [
        {"type": "rectangle", "frame": k[0], "points": list(k[1]), "outside": len(k) > 2 and k[2]}
        for k in keyframes
    ]
    return {"label_id": s.car, "frame": shapes[0]["frame"], "shapes": shapes, **extra}


def keyframes_of(track):
    return [(k["frame"], k["points"], k["outside"]) for k in track["shapes"]]


@pytest.mark.parametrize(
    "ranges",
    [((0, 9), (10, 19)), ((0, 9), (5, 14)), ((0, 9), (10, 19), (20, 29)), ((0, 9), (5, 14), (10, 19))],
)
def test_tracks_round_trip_through_task_level_put_and_get(alice, add_jobs, ranges):
    s = make_setup(alice, add_jobs, ranges)
    last = ranges[-1][1]
    tracks = [
        track_body(s, [(0, (0, 0, 10, 10)), (last, (last, last, last + 10, last + 10))]),
        track_body(s, [(2, (1, 1, 2, 2)), (6, (5, 5, 7, 7)), (11, (9, 9, 9, 9))], group=3),
        # hidden, then back on an interior frame
        track_body(s, [(1, (0, 0, 4, 4)), (3, (0, 0, 4, 4), True), (7, (2, 2, 6, 6)), (12, (4, 4, 8, 8))]),
        # ends on the last frame of the first job, hidden from the next frame
        track_body(s, [(4, (0, 0, 1, 1)), (9, (1, 1, 2, 2)), (10, (1, 1, 2, 2), True)]),
    ]
    put = alice.put(f"/api/tasks/{s.task_id}/annotations", json={"tracks": tracks})
    assert put.status_code == 200, put.text
    got = alice.get(f"/api/tasks/{s.task_id}/annotations").json()
    assert got == put.json()
    assert [keyframes_of(track) for track in got["tracks"]] == [
        [(k["frame"], k["points"], k["outside"]) for k in track["shapes"]] for track in tracks
    ]
    assert [track["group"] for track in got["tracks"]] == [0, 3, 0, 0]


def test_second_job_starts_with_the_interpolated_keyframe(alice, add_jobs):
    s = make_setup(alice, add_jobs, ((0, 9), (10, 19)))
    track = track_body(s, [(0, (0, 0, 10, 10)), (20 - 1, (19, 38, 29, 48))])
    assert alice.put(f"/api/tasks/{s.task_id}/annotations", json={"tracks": [track]}).status_code == 200
    one = alice.get(f"/api/jobs/{s.jobs[0]}/annotations").json()["tracks"]
    two = alice.get(f"/api/jobs/{s.jobs[1]}/annotations").json()["tracks"]
    # the first job's piece is hidden from frame 10, where it would have been
    assert keyframes_of(one[0]) == [(0, [0, 0, 10, 10], False), (10, [10, 20, 20, 30], True)]
    assert keyframes_of(two[0]) == [(10, [10, 20, 20, 30], False), (19, [19, 38, 29, 48], False)]
    assert two[0]["frame"] == 10
    merged = alice.get(f"/api/tasks/{s.task_id}/annotations").json()["tracks"]
    assert [keyframes_of(t) for t in merged] == [[(0, [0, 0, 10, 10], False), (19, [19, 38, 29, 48], False)]]
    # a job's annotations as read can be written back: the closing outside keyframe is accepted
    url = f"/api/jobs/{s.jobs[0]}/annotations"
    back = alice.put(url, json=alice.get(url).json())
    assert back.status_code == 200, back.text
    assert keyframes_of(back.json()["tracks"][0]) == keyframes_of(one[0])
    # but only as a track's last keyframe, hidden
    for bad, path in [
        ({"shapes": [rect(s, 10)]}, "shapes[0].frame"),
        ({"tracks": [track_body(s, [(0, (0, 0, 1, 1)), (10, (0, 0, 1, 1))])]}, "tracks[0].shapes[1].frame"),
        ({"tracks": [track_body(s, [(0, (0, 0, 1, 1)), (10, (0, 0, 1, 1), True), (11, (0, 0, 1, 1), True)])]},
         "tracks[0].shapes[1].frame"),
    ]:  # fmt: skip
        refused = alice.put(url, json=bad)
        assert refused.status_code == 400 and path in refused.json(), refused.text


def test_outside_gap_across_a_job_boundary(alice, add_jobs):
    s = make_setup(alice, add_jobs, ((0, 9), (10, 19)))
    keyframes = [(0, (0, 0, 2, 2)), (8, (0, 0, 2, 2), True), (12, (4, 4, 6, 6)), (15, (7, 7, 9, 9))]
    put = alice.put(f"/api/tasks/{s.task_id}/annotations", json={"tracks": [track_body(s, keyframes)]})
    assert put.status_code == 200, put.text
    one = alice.get(f"/api/jobs/{s.jobs[0]}/annotations").json()["tracks"]
    two = alice.get(f"/api/jobs/{s.jobs[1]}/annotations").json()["tracks"]
    # hidden at the boundary: no interpolated start, no outside keyframe after the first job
    assert [keyframes_of(t) for t in one] == [[(0, [0, 0, 2, 2], False), (8, [0, 0, 2, 2], True)]]
    assert [keyframes_of(t) for t in two] == [[(12, [4, 4, 6, 6], False), (15, [7, 7, 9, 9], False)]]
    # nothing links the pieces, so the task shows them as two tracks, hidden on frames 8-11
    merged = alice.get(f"/api/tasks/{s.task_id}/annotations").json()["tracks"]
    assert [keyframes_of(t) for t in merged] == [keyframes_of(t) for t in one + two]
    # a gap that closes before the boundary keeps one track
    keyframes = [(0, (0, 0, 2, 2)), (3, (0, 0, 2, 2), True), (6, (0, 0, 2, 2)), (16, (10, 10, 12, 12))]
    assert (
        alice.put(
            f"/api/tasks/{s.task_id}/annotations", json={"tracks": [track_body(s, keyframes)]}
        ).status_code
        == 200
    )
    two = alice.get(f"/api/jobs/{s.jobs[1]}/annotations").json()["tracks"]
    assert keyframes_of(two[0])[0] == (10, [4, 4, 6, 6], False)
    merged = alice.get(f"/api/tasks/{s.task_id}/annotations").json()["tracks"]
    assert [keyframes_of(t) for t in merged] == [[(k[0], list(k[1]), len(k) > 2) for k in keyframes]]


def test_skeleton_track_round_trips_across_jobs(alice, add_jobs):
    s = make_setup(alice, add_jobs, ((0, 9), (10, 19)))

    def element(label_id, points_at_0, points_at_19):
        return {
            "label_id": label_id,
            "frame": 0,
            "shapes": [
                {"type": "points", "frame": 0, "points": points_at_0},
                {"type": "points", "frame": 19, "points": points_at_19},
            ],
        }

    track = {
        "label_id": s.pose,
        "frame": 0,
        "shapes": [
            {"type": "skeleton", "frame": 0, "points": []},
            {"type": "skeleton", "frame": 19, "points": []},
        ],
        "elements": [element(s.head, [0, 0], [19, 19]), element(s.tail, [1, 1], [1, 39])],
    }
    put = alice.put(f"/api/tasks/{s.task_id}/annotations", json={"tracks": [track]})
    assert put.status_code == 200, put.text
    two = alice.get(f"/api/jobs/{s.jobs[1]}/annotations").json()["tracks"][0]
    assert [keyframes_of(e)[0] for e in two["elements"]] == [(10, [10, 10], False), (10, [1, 21], False)]
    merged = alice.get(f"/api/tasks/{s.task_id}/annotations").json()["tracks"]
    assert len(merged) == 1
    assert [[k["frame"] for k in e["shapes"]] for e in merged[0]["elements"]] == [[0, 19], [0, 19]]
    assert [k["frame"] for k in merged[0]["shapes"]] == [0, 19]
