"""Hostile dataset files imported in every registered format: as a task's annotations
(``POST /api/tasks/{id}/annotations?format=``) and as a project's dataset
(``POST /api/projects/{id}/dataset?format=``).

Each format's own export of a small annotated task is the template: every file of it that a corpus
file can stand in for (same extension) is replaced, one corpus file at a time, and the hostile
archives are sent whole. Each import must fail naming the file it could not read (or the item in
it), leave the annotations as they were, and leave no row and no file behind. The one exception is
an empty text file standing in for a list or label file: that is a valid, empty dataset, which may
import."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from annota.runtime.settings import Settings
from annota.runtime.state import collect_formats, load_plugins
from tests.media import make_jpeg, wait_for_request
from tests.runtime.api.hostile import corpus, hostile_settings, outcome, refused, snapshot, unexpected_errors

FORMATS = sorted(fmt.display_name for fmt in collect_formats(load_plugins(Settings())).importers())
#: importers without an exporter of the same name: the export their files come from
TEMPLATE_EXPORT = {"CVAT 1.1": "CVAT for images 1.1"}
#: the corpus files that stand in for a dataset's own files, by extension
STAND_INS = {**corpus("datasets"), **corpus("media", {".png", ".jpg"})}
ARCHIVES = corpus("archives")
#: formats every hostile archive is sent in (archives are read before any format sees them)
ALL_ARCHIVES_IN = {"CVAT 1.1", "COCO 1.0"}
SOME_ARCHIVES = ("traversal.zip", "symlink.tar", "bomb.zip", "not_a_zip.zip")
#: what is also imported into a project (which builds tasks from the images: slower), per format
INTO_PROJECTS = {"billion_laughs.xml", "coco_wrong_types.json", "non_utf8.txt", "yaml_bomb.yaml",
                 "truncated.jpg", "traversal.zip", "bomb.zip"}  # fmt: skip
#: what PostgreSQL is given (SQLite takes every stand-in)
ON_POSTGRES_STAND_INS = INTO_PROJECTS | {
    "external_entity.xml",
    "coco_nan.json",
    "yolo_garbage.txt",
    "bomb.png",
}
ON_POSTGRES = {"CVAT 1.1", "YOLO 1.1"}
LABELS = [
    {"name": "car", "attributes": []},
    # the text formats (ICDAR) carry every text under this label
    {"name": "icdar", "attributes": [{"name": "text", "input_type": "text", "mutable": False, "values": []}]},
    # for the keypoint formats, which carry skeletons alone
    {"name": "person", "type": "skeleton", "attributes": [],
     "sublabels": [{"name": "head", "type": "points"}, {"name": "foot", "type": "points"}],
     "svg": '<line x1="1" y1="1" x2="2" y2="2" data-node-from="1" data-node-to="2"></line>'
            '<circle r="1" cx="1" cy="1" data-label-name="head" data-node-id="1"></circle>'
            '<circle r="1" cx="2" cy="2" data-label-name="foot" data-node-id="2"></circle>'},
]  # fmt: skip
#: stand-ins that are valid files of some formats (an empty list of images or labels)
MAY_BE_VALID = {"empty.txt"}


def params() -> list[Any]:
    chosen = [pytest.param("sqlite", name, id=f"sqlite-{name}") for name in FORMATS]
    chosen += [
        pytest.param("postgres", name, id=f"postgres-{name}", marks=pytest.mark.postgres)
        for name in FORMATS
        if name in ON_POSTGRES
    ]
    return chosen


@pytest.fixture
def annota_settings(tmp_path: Path, annota_database_url: str) -> Settings:
    return hostile_settings(tmp_path, annota_database_url)


def template(client: Any, make_media_task: Callable[..., int], export_format: str) -> tuple[int, bytes]:
    """A task with two frames and a box, and its export with images in ``export_format``."""
    task_id = make_media_task(client, [("a.jpg", make_jpeg(32, 24)), ("b.jpg", make_jpeg(32, 24, 90))],
                              labels=LABELS)  # fmt: skip
    labels = {
        label["name"]: label for label in client.get(f"/api/labels?task_id={task_id}").json()["results"]
    }
    car, person = labels["car"]["id"], labels["person"]
    elements = [{"type": "points", "label_id": sublabel["id"], "frame": 0, "points": [3 + i, 4 + i]}
                for i, sublabel in enumerate(person["sublabels"])]  # fmt: skip
    body = {"shapes": [{"type": "rectangle", "label_id": car, "frame": 0, "points": [1, 2, 10, 12]},
                       {"type": "skeleton", "label_id": person["id"], "frame": 0, "points": [],
                        "elements": elements}],
            "tags": [{"label_id": car, "frame": 1}]}  # fmt: skip
    response = client.put(f"/api/tasks/{task_id}/annotations", json=body)
    assert response.status_code == 200, response.text
    params = {"format": export_format, "location": "local", "save_images": "true"}
    response = client.post(f"/api/tasks/{task_id}/dataset/export", params=params)
    assert response.status_code == 202, response.text
    request = wait_for_request(client, response.json()["rq_id"])
    assert request["status"] == "finished", request["message"]
    download = client.get(request["result_url"])
    assert download.status_code == 200
    return task_id, download.content


def variants(archive: bytes) -> list[tuple[str, str, bytes]]:
    """``(upload name, file to be named, content)``: the export with one file replaced by a corpus
    file of its extension (cycling through the export's files), then the corpus archives."""
    with zipfile.ZipFile(io.BytesIO(archive)) as source:
        members = {name: source.read(name) for name in source.namelist() if not name.endswith("/")}
    by_suffix: dict[str, list[str]] = {}
    for name in sorted(members):
        by_suffix.setdefault(PurePosixPath(name).suffix, []).append(name)
    found = []
    used: dict[str, int] = {}
    for stand_in, content in sorted(STAND_INS.items()):
        suffix = PurePosixPath(stand_in).suffix
        candidates = by_suffix.get(suffix, [])
        if not candidates:
            continue
        target = candidates[used.get(suffix, 0) % len(candidates)]
        used[suffix] = used.get(suffix, 0) + 1
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as output:
            for name, data in members.items():
                output.writestr(name, content if name == target else data)
        found.append((f"{stand_in} as {target}", target, buffer.getvalue()))
    return found


def stripped(value: Any) -> Any:
    """Annotations without their ids and version (a re-import gives new ones)."""
    if isinstance(value, dict):
        return {key: stripped(item) for key, item in value.items() if key not in ("id", "version")}
    if isinstance(value, list):
        return [stripped(item) for item in value]
    return value


def check(client: Any, run_async: Callable[..., Any], caplog: pytest.LogCaptureFixture, label: str,
          send: Callable[[], Any], names: list[str], keep: Callable[[], Any],
          may_accept: Callable[[Any, Any], bool]) -> tuple[list[str], bool]:  # fmt: skip
    """The problems with one import, and whether it was accepted (as ``may_accept(before, after)``
    of what ``keep`` reads allows)."""
    before, kept = snapshot(client, run_async), keep()
    status, message = outcome(client, send())
    errors = [f"{label}: unexpected error {error}" for error in unexpected_errors(caplog)]
    if status == 200 and may_accept(kept, keep()):
        return errors, True
    problems = []
    why = refused(status, message, names)
    if why:
        problems.append(f"{label}: {why}")
    problems += [f"{label}: {change}" for change in before.changes(snapshot(client, run_async))]
    if keep() != kept:
        problems.append(f"{label}: what was there changed")
    return problems + errors, status == 200


@pytest.mark.parametrize(("annota_database_url", "format_name"), params(), indirect=["annota_database_url"])
def test_hostile_datasets_fail_naming_the_file_and_change_nothing(
    admin_client: Any, make_media_task: Callable[..., int], run_async: Callable[..., Any],
    caplog: pytest.LogCaptureFixture, annota_database_url: str, format_name: str,
) -> None:  # fmt: skip
    task_id, exported = template(admin_client, make_media_task, TEMPLATE_EXPORT.get(format_name, format_name))
    response = admin_client.post("/api/projects", json={"name": "target", "labels": LABELS})
    project_id = response.json()["id"]

    def annotations() -> Any:
        return admin_client.get(f"/api/tasks/{task_id}/annotations").json()

    def project_tasks() -> Any:
        return admin_client.get("/api/tasks", params={"project_id": project_id}).json()["count"]

    def to_task(name: str, content: bytes) -> Callable[[], Any]:
        return lambda: admin_client.post(f"/api/tasks/{task_id}/annotations", params={"format": format_name},
                                         files={"annotation_file": (name, content)})  # fmt: skip

    def to_project(name: str, content: bytes) -> Callable[[], Any]:
        return lambda: admin_client.post(f"/api/projects/{project_id}/dataset",
                                         params={"format": format_name},
                                         files={"dataset_file": (name, content)})  # fmt: skip

    # the template itself imports: what fails below fails for the stand-in
    sent = admin_client.post(f"/api/tasks/{task_id}/annotations", params={"format": format_name},
                             files={"annotation_file": ("dataset.zip", exported)})  # fmt: skip
    status, message = outcome(admin_client, sent)
    assert status == 200, message
    # a file's problems are told by the file, or by the item it describes; a valid but empty file
    # may leave the dataset empty as a whole
    cases = [(label, "dataset.zip", [PurePosixPath(target).name, "item '"]
              + (["dataset.zip: the dataset has no items"] if label.split(" ")[0] in MAY_BE_VALID else []),
              content)
             for label, target, content in variants(exported)]  # fmt: skip
    archives = (
        ARCHIVES if format_name in ALL_ARCHIVES_IN else {name: ARCHIVES[name] for name in SOME_ARCHIVES}
    )
    cases += [(name, name, [name], content) for name, content in sorted(archives.items())]
    assert len(cases) > len(archives), f"no file of the {format_name} export could be replaced"
    if annota_database_url.startswith("postgresql"):
        cases = [case for case in cases if case[0].split(" ")[0] in ON_POSTGRES_STAND_INS]
    problems: list[str] = []
    caplog.clear()
    for label, upload, names, content in cases:
        valid = label.split(" ")[0] in MAY_BE_VALID
        # accepted is right for a valid file, and for one the format does not read (the import
        # then gives the template's annotations again)
        found, accepted = check(
            admin_client,
            run_async,
            caplog,
            f"task {label}",
            to_task(upload, content),
            names,
            annotations,
            lambda kept, now, ok=valid: ok or stripped(kept) == stripped(now),
        )
        problems += found
        if label.split(" ")[0] in INTO_PROJECTS:
            found, _ = check(admin_client, run_async, caplog, f"project {label}", to_project(upload, content),
                             names, project_tasks, lambda kept, now, ignored=accepted: ignored)  # fmt: skip
            problems += found
        if accepted:
            assert outcome(admin_client, to_task("dataset.zip", exported)())[0] == 200
    assert not problems, f"{len(problems)} problems in {len(cases)} inputs:\n" + "\n".join(problems)
