"""The unmodified cvat-sdk and cvat-cli against a real annota server, on SQLite and on
PostgreSQL + Redis with an arq worker."""

from __future__ import annotations

import json
import logging

import pytest
from cvat_sdk import make_client
from cvat_sdk.api_client import models

from tests.e2e.conftest import ADMIN, LiveServer

pytestmark = pytest.mark.slow


def test_sdk_and_cli_manage_projects_and_tasks(
    live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="cvat_sdk"):
        client = make_client("http://127.0.0.1", port=live_server.port, credentials=ADMIN)
    with client:
        assert not [r for r in caplog.records if "not compatible" in r.getMessage()]
        assert client.api_client.users_api.retrieve_self()[0].username == ADMIN[0]

        project = client.projects.create(models.ProjectWriteRequest(name="birds"))
        assert project.id and project.name == "birds"
        task = client.tasks.create(
            models.TaskWriteRequest(
                name="crows",
                labels=[
                    models.PatchedLabelRequest(name="crow"),
                    models.PatchedLabelRequest(
                        name="raven",
                        attributes=[
                            models.AttributeRequest(
                                name="age",
                                mutable=False,
                                input_type="select",
                                values=["young", "adult"],
                                default_value="young",
                            )
                        ],
                    ),
                ],
            )
        )
        assert task.name == "crows"
        assert sorted(label.name for label in task.get_labels()) == ["crow", "raven"]
        in_project = client.tasks.create(models.TaskWriteRequest(name="in project", project_id=project.id))
        assert in_project.project_id == project.id
        assert sorted(t.name for t in client.tasks.list()) == ["crows", "in project"]
        assert [p.name for p in client.projects.list()] == ["birds"]

    listed = live_server.cvat_cli("task", "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    assert sorted(t["name"] for t in json.loads(listed.stdout)) == ["crows", "in project"]
    plain = live_server.cvat_cli("task", "ls")
    assert plain.returncode == 0, plain.stderr
    assert sorted(int(line) for line in plain.stdout.split()) == sorted([task.id, in_project.id])
