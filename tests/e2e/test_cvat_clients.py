"""The unmodified cvat-sdk and cvat-cli against a real annota server, on SQLite and on
PostgreSQL + Redis with an arq worker."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from cvat_sdk import make_client
from cvat_sdk.api_client import ApiException, models
from PIL import Image

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


def test_sdk_reviews_a_job_with_issues_and_comments(live_server: LiveServer, tmp_path: Path) -> None:
    images = []
    for number in range(4):
        path = tmp_path / f"frame{number}.png"
        Image.new("RGB", (32, 24), (40 * number, 0, 0)).save(path)
        images.append(str(path))
    with make_client("http://127.0.0.1", port=live_server.port, credentials=ADMIN) as client:
        task = client.tasks.create_from_data(
            models.TaskWriteRequest(
                name="review", segment_size=2, labels=[models.PatchedLabelRequest(name="car")]
            ),
            resources=images,
        )
        first, second = sorted(task.get_jobs(), key=lambda job: job.start_frame)
        issue = client.issues.create(
            models.IssueWriteRequest(
                frame=3, position=[1.0, 2.0, 10.0, 12.0], job=second.id, message="blurry"
            )
        )
        assert (issue.frame, issue.job, issue.resolved) == (3, second.id, False)
        assert issue.owner.username == ADMIN[0] and issue.comments.count == 1
        assert [i.id for i in client.issues.list()] == [issue.id]
        assert client.jobs.retrieve(second.id).issues.count == 1

        issue.update(models.PatchedIssueWriteRequest(resolved=True))
        assert issue.resolved is True and client.issues.retrieve(issue.id).resolved is True

        (first_comment,) = issue.get_comments()
        assert first_comment.message == "blurry"
        reply = client.comments.create(models.CommentWriteRequest(issue=issue.id, message="fixed"))
        assert reply.issue == issue.id and reply.owner.username == ADMIN[0]
        reply.update(models.PatchedCommentWriteRequest(message="fixed, really"))
        assert client.comments.retrieve(reply.id).message == "fixed, really"
        assert sorted(c.message for c in client.comments.list()) == ["blurry", "fixed, really"]
        reply.remove()
        assert [c.id for c in client.comments.list()] == [first_comment.id]

        # a frame outside the job is refused, naming the field
        with pytest.raises(ApiException) as refused:
            client.issues.create(
                models.IssueWriteRequest(frame=0, position=[0, 0], job=second.id, message="m")
            )
        assert refused.value.status == 400 and "frame" in json.loads(refused.value.body)

        issue.remove()
        assert client.issues.list() == [] and client.comments.list() == []
