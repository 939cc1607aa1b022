"""Hostile headers and query strings (``tests/data/hostile/requests.json``) at the upload and import
endpoints: each refused with a 4xx whose message names the header or parameter, and nothing stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.runtime.api.hostile import (
    outcome,
    refused,
    requests_corpus,
    snapshot,
    tus_metadata,
    unexpected_errors,
)

CORPUS = requests_corpus()
TUS = {"Tus-Resumable": "1.0.0"}


def test_hostile_headers_and_query_strings_are_refused(
    admin_client: Any, run_async: Callable[..., Any], caplog: Any
) -> None:
    response = admin_client.post("/api/tasks", json={"name": "hostile", "labels": [{"name": "car"}]})
    task_id = response.json()["id"]
    response = admin_client.post("/api/projects", json={"name": "hostile", "labels": [{"name": "car"}]})
    project_id = response.json()["id"]
    sent: list[tuple[str, Any, list[str]]] = []
    before = snapshot(admin_client, run_async)
    for length in CORPUS["tus_upload_length"]:
        headers = {**TUS, "Upload-Length": length, "Upload-Metadata": tus_metadata("a.jpg")}
        for path in (
            f"/api/tasks/{task_id}/data/",
            f"/api/tasks/{task_id}/annotations/",
            "/api/tasks/backup/",
        ):
            sent.append((f"Upload-Length {length!r} to {path}", admin_client.post(path, headers=headers),
                         ["Upload-Length"]))  # fmt: skip
    for metadata in CORPUS["tus_upload_metadata"]:
        headers = {**TUS, "Upload-Length": "10", "Upload-Metadata": metadata}
        response = admin_client.post(f"/api/tasks/{task_id}/data/", headers=headers)
        sent.append((f"Upload-Metadata {metadata!r}", response, ["Upload-Metadata", "filename"]))
    for params in CORPUS["import_query"]:
        file = {"annotation_file": ("a.zip", b"PK")}
        response = admin_client.post(f"/api/tasks/{task_id}/annotations", params=params, files=file)
        names = [key for key in params if key != "format" or len(params) == 1] or ["format"]
        sent.append((f"task import {params!r}", response, names))
        file = {"dataset_file": ("a.zip", b"PK")}
        response = admin_client.post(f"/api/projects/{project_id}/dataset", params=params, files=file)
        sent.append((f"project import {params!r}", response, names))
    problems = []
    for label, response, names in sent:
        if why := refused(*outcome(admin_client, response), names):
            problems.append(f"{label}: {why}")
    for filename in CORPUS["upload_finish_filename"]:
        for path in (f"/api/tasks/{task_id}/annotations", f"/api/projects/{project_id}/dataset"):
            response = admin_client.post(path, params={"format": "COCO 1.0", "filename": filename},
                                         headers={"Upload-Finish": ""})  # fmt: skip
            # only the base name is ever used, and nothing of that name was uploaded; one import at
            # a time, so each is seen out before the next
            base = filename.replace("\\", "/").rsplit("/", 1)[-1]
            if why := refused(*outcome(admin_client, response), ["filename", base or "filename"]):
                problems.append(f"Upload-Finish of {filename!r} to {path}: {why}")
    problems += before.changes(snapshot(admin_client, run_async))
    problems += unexpected_errors(caplog)
    assert not problems, "\n".join(problems)
