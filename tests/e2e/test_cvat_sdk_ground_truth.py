"""The unmodified cvat-sdk makes, annotates, lists and removes a task's ground-truth job."""

from __future__ import annotations

from pathlib import Path

import pytest
from cvat_sdk import make_client
from cvat_sdk.api_client import models
from PIL import Image

from tests.e2e.conftest import ADMIN, LiveServer

pytestmark = pytest.mark.slow


def test_sdk_makes_and_removes_a_ground_truth_job(live_server: LiveServer, tmp_path: Path) -> None:
    images = []
    for number in range(6):
        path = tmp_path / f"frame{number}.png"
        Image.new("RGB", (32, 24), (40 * number, 0, 0)).save(path)
        images.append(str(path))
    with make_client("http://127.0.0.1", port=live_server.port, credentials=ADMIN) as client:
        task = client.tasks.create_from_data(
            models.TaskWriteRequest(
                name="gt", segment_size=3, labels=[models.PatchedLabelRequest(name="car")]
            ),
            resources=images,
        )
        jobs_api = client.api_client.jobs_api
        created, response = jobs_api.create(
            models.JobWriteRequest(
                type=models.JobType("ground_truth"),
                task_id=task.id,
                frame_selection_method=models.FrameSelectionMethod("manual"),
                frames=[1, 4],
            )
        )
        assert response.status == 201
        assert (created.type, created.task_id, created.frame_count) == ("ground_truth", task.id, 2)

        listed = jobs_api.list(task_id=task.id, type="ground_truth")[0].results
        assert [job.id for job in listed] == [created.id]
        assert len(jobs_api.list(task_id=task.id, type="annotation")[0].results) == 2

        job = client.jobs.retrieve(created.id)
        assert job.get_meta().included_frames == [1, 4]
        # as CVAT: every frame of the job's span, those it does not include as placeholders
        names = [frame.name for frame in job.get_frames_info()]
        assert len(names) == 6 and {n for i, n in enumerate(names) if i not in (1, 4)} == {"placeholder.jpg"}
        (label,) = task.get_labels()
        job.set_annotations(
            models.LabeledDataRequest(
                shapes=[
                    models.LabeledShapeRequest(
                        type=models.ShapeType("rectangle"), frame=4, label_id=label.id, points=[1, 2, 9, 10]
                    )
                ]
            )
        )
        assert [shape.frame for shape in job.get_annotations().shapes] == [4]
        assert task.get_annotations().shapes == []
        layout, _ = client.api_client.tasks_api.retrieve_validation_layout(task.id)
        assert layout.mode.value == "gt" and layout.validation_frames == [1, 4]

        second, response = jobs_api.create(
            models.JobWriteRequest(
                type=models.JobType("ground_truth"),
                task_id=task.id,
                frame_selection_method=models.FrameSelectionMethod("random_uniform"),
                frame_count=2,
            ),
            _check_status=False,
            _parse_response=False,
        )
        assert response.status == 400

        jobs_api.destroy(created.id)
        assert [j.type for j in client.tasks.retrieve(task.id).get_jobs()] == ["annotation", "annotation"]
