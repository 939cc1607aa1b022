"""Validation layouts: what CVAT answers for tasks and jobs without validation frames."""

from __future__ import annotations

from cvat_sdk.api_client import Configuration, models
from cvat_sdk.api_client.model_utils import validate_and_convert_types


def check(data: object, model: type) -> None:
    validate_and_convert_types(data, (model,), ["received_data"], True, True, Configuration())


def test_tasks_and_jobs_have_no_validation_frames(make_user, add_jobs):
    alice, bob = make_user("alice"), make_user("bob")
    task_id = alice.post("/api/tasks", json={"name": "t"}).json()["id"]
    (job_id,) = add_jobs(task_id, [(0, 4)])
    task = alice.get(f"/api/tasks/{task_id}/validation_layout")
    assert task.status_code == 200 and task.json() == {"mode": None}
    check(task.json(), models.TaskValidationLayoutRead)
    job = alice.get(f"/api/jobs/{job_id}/validation_layout")
    assert job.status_code == 200 and job.json() == {}
    check(job.json(), models.JobValidationLayoutRead)
    assert bob.get(f"/api/tasks/{task_id}/validation_layout").status_code == 403
    assert bob.get(f"/api/jobs/{job_id}/validation_layout").status_code == 403
    assert alice.get("/api/tasks/999/validation_layout").status_code == 404
    assert alice.get("/api/jobs/999/validation_layout").status_code == 404
