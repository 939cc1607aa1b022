"""The objects of the authorization walk, made through the API as their owners would make them.

Alpha owns a project with a task (with media, so frames and chunks exist), labels, a job with an
annotation, finished export and backup requests, uploads in progress, a webhook with a delivery, an
access token, and an organization with a project, a task, a webhook and an invitation of Gamma.
Beta has a project, a task with media, an organization and a webhook of their own. ``alpha_view``
is what Alpha sees of it all, to be compared before and after Beta's walk.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from starlette.testclient import TestClient

from annota.core.passwords import token_digest
from tests.media import make_jpeg, wait_for_request

#: In every name Alpha gives their objects: no answer to anybody else may contain it.
PRIVATE = "alpha-private"
#: the model the lambda API routes are walked with
WALK_MODEL = "faces"
ALPHA_ORG, BETA_ORG = "alpha-org", "beta-org"
ALPHA_EMAIL, BETA_EMAIL, GAMMA_EMAIL = f"{PRIVATE}@example.com", "beta@example.com", "gamma@example.com"
#: webhooks point at a closed loopback port: deliveries fail at once
WEBHOOK_TARGET = "http://127.0.0.1:9/"


def created(response: Any) -> Any:
    assert response.status_code in (200, 201, 202), response.text
    return response.json()


def first_id(client: TestClient, url: str, **params: Any) -> int:
    """The id of the first object a list answers with."""
    found: int = created(client.get(url, params=params))["results"][0]["id"]
    return found


def tus_upload(client: TestClient, url: str, **params: str) -> str:
    """Begin a TUS upload (nothing sent yet) at ``url``; the file id it answers with."""
    name = base64.b64encode(f"{PRIVATE}.zip".encode()).decode()
    headers = {"Tus-Resumable": "1.0.0", "Upload-Length": "100", "Upload-Metadata": f"filename {name}"}
    response = client.post(url, params=params, headers=headers)
    assert response.status_code == 201, response.text
    file_id: str = response.headers["Location"].rsplit("/", 1)[1]
    return file_id


def finished_export(client: TestClient, url: str, **params: str) -> str:
    request = wait_for_request(client, created(client.post(url, params=params))["rq_id"])
    assert request["status"] == "finished", request["message"]
    return str(request["id"])


def task_with_media(
    client: TestClient, name: str, project_id: int | None, headers: Mapping[str, str] | None = None
) -> int:
    """A task (of the project, if any, else with a label of its own) with two frames, processed."""
    task: dict[str, Any] = {"name": name, "project_id": project_id}
    if project_id is None:
        task["labels"] = [{"name": f"{name} label"}]
    task_id: int = created(client.post("/api/tasks", json=task, headers=headers))["id"]
    files = [(f"client_files[{i}]", (f"{i}.jpg", make_jpeg(value=40 * i))) for i in range(2)]
    response = client.post(
        f"/api/tasks/{task_id}/data", data={"image_quality": "70"}, files=files, headers=headers
    )
    request = wait_for_request(client, created(response)["rq_id"])
    assert request["status"] == "finished", request["message"]
    return task_id


def organization(client: TestClient, slug: str, name: str) -> int:
    org_id: int = created(client.post("/api/organizations", json={"slug": slug, "name": name}))["id"]
    return org_id


def webhook(client: TestClient, name: str, headers: Mapping[str, str] | None = None, **fields: Any) -> int:
    body = {"target_url": WEBHOOK_TARGET + name, "events": ["update:project"], "description": name, **fields}
    webhook_id: int = created(client.post("/api/webhooks", json=body, headers=headers))["id"]
    return webhook_id


def ping(client: TestClient, webhook_id: int) -> int:
    """Send the webhook a ping; the id of the (failed) delivery."""
    delivery_id: int = created(client.post(f"/api/webhooks/{webhook_id}/ping"))["id"]
    return delivery_id


def review(
    client: TestClient, job: int, message: str, headers: Mapping[str, str] | None = None
) -> tuple[int, int]:
    """An issue on the job's first frame with its first comment (``message``): their ids."""
    raised = {"job": job, "frame": 0, "position": [1, 2, 5, 6], "message": message}
    issue: int = created(client.post("/api/issues", json=raised, headers=headers))["id"]
    comment = first_id(client, "/api/comments", issue_id=issue)
    return issue, comment


def cloud_storage(client: TestClient, world: Mapping[str, Any], name: str, headers: Any = None) -> int:
    """A cloud storage on the walk's bucket (``bucket`` and ``bucket_attributes`` in the world)."""
    fields = {"provider_type": "AWS_S3_BUCKET", "resource": world["bucket"], "display_name": name,
              "credentials_type": "KEY_SECRET_KEY_PAIR", "key": "testing", "secret_key": f"{PRIVATE} key",
              "specific_attributes": world["bucket_attributes"], "description": PRIVATE}  # fmt: skip
    return int(created(client.post("/api/cloudstorages", json=fields, headers=headers))["id"])


def alpha_objects(alpha: TestClient, world: dict[str, Any]) -> None:
    color = {"name": "color", "input_type": "select", "values": ["red", "blue"], "default_value": "red"}
    labels = [{"name": f"{PRIVATE} car", "attributes": [color]}]
    project = {"name": f"{PRIVATE} project", "labels": labels}
    world["project"] = created(alpha.post("/api/projects", json=project))["id"]
    (label,) = created(alpha.get("/api/labels", params={"project_id": world["project"]}))["results"]
    world["label"], world["attribute"] = label["id"], label["attributes"][0]["id"]
    world["task"] = task_with_media(alpha, f"{PRIVATE} task", world["project"])
    world["job"] = first_id(alpha, "/api/jobs", task_id=world["task"])
    world["quality"] = first_id(alpha, "/api/quality/settings", task_id=world["task"])
    replicated = {"name": f"{PRIVATE} replicated", "consensus_replicas": 2}
    world["consensus_task"] = created(alpha.post("/api/tasks", json=replicated))["id"]
    world["consensus"] = first_id(alpha, "/api/consensus/settings", task_id=world["consensus_task"])
    world["guide"] = created(alpha.post("/api/guides", json={"task_id": world["task"], "markdown": PRIVATE}))[
        "id"
    ]
    pdf = {"file": ("guide.pdf", b"%PDF-1.4 " + PRIVATE.encode(), "application/pdf")}
    world["asset"] = created(alpha.post("/api/assets", data={"guide_id": str(world["guide"])}, files=pdf))[
        "uuid"
    ]
    shape = {"type": "rectangle", "frame": 0, "label_id": world["label"], "points": [1, 2, 10, 20]}
    annotated = created(alpha.put(f"/api/jobs/{world['job']}/annotations", json={"shapes": [shape]}))
    world["shape"] = annotated["shapes"][0]["id"]
    task_url = f"/api/tasks/{world['task']}"
    world["rq"] = finished_export(alpha, f"{task_url}/dataset/export", format="CVAT for images 1.1")
    world["rq_quoted"] = quote(world["rq"], safe="")
    world["backup_rq"] = finished_export(alpha, f"{task_url}/backup/export")
    call = created(alpha.post("/api/lambda/requests", json={"function": WALK_MODEL, "task": world["task"]}))
    lambda_request = wait_for_request(alpha, call["id"])
    assert lambda_request["status"] == "finished", lambda_request["message"]
    world["lambda_rq"] = call["id"]
    world["lambda_rq_quoted"] = quote(call["id"], safe="")
    world["upload_task"] = created(alpha.post("/api/tasks", json={"name": f"{PRIVATE} upload"}))["id"]
    world["data_upload"] = tus_upload(alpha, f"/api/tasks/{world['upload_task']}/data")
    world["task_import_upload"] = tus_upload(alpha, f"{task_url}/annotations", format="CVAT 1.1")
    world["job_import_upload"] = tus_upload(alpha, f"/api/jobs/{world['job']}/annotations", format="CVAT 1.1")
    world["project_import_upload"] = tus_upload(
        alpha, f"/api/projects/{world['project']}/dataset", format="CVAT 1.1"
    )
    world["task_backup_upload"] = tus_upload(alpha, "/api/tasks/backup")
    world["project_backup_upload"] = tus_upload(alpha, "/api/projects/backup")
    secret = f"{PRIVATE} secret"
    world["webhook"] = webhook(alpha, PRIVATE, type="project", project_id=world["project"], secret=secret)
    world["webhook_type"] = "project"
    world["delivery"] = ping(alpha, world["webhook"])
    world["token"] = created(alpha.post("/api/auth/access_tokens", json={"name": f"{PRIVATE} token"}))["id"]
    world["issue"], world["comment"] = review(alpha, world["job"], f"{PRIVATE} issue")
    world["cloudstorage"] = cloud_storage(alpha, world, f"{PRIVATE} bucket")


def alpha_organization(alpha: TestClient, gamma: TestClient, world: dict[str, Any]) -> None:
    world["org"] = organization(alpha, ALPHA_ORG, f"{PRIVATE} organization")
    world["org_slug"] = ALPHA_ORG
    in_org = {"X-Organization": ALPHA_ORG}
    org_project = {"name": f"{PRIVATE} org project"}
    world["org_project"] = created(alpha.post("/api/projects", json=org_project, headers=in_org))["id"]
    world["org_task"] = task_with_media(alpha, f"{PRIVATE} org task", None, in_org)
    world["org_label"] = first_id(alpha, "/api/labels", task_id=world["org_task"])
    world["org_job"] = first_id(alpha, "/api/jobs", task_id=world["org_task"])
    world["org_issue"], world["org_comment"] = review(alpha, world["org_job"], f"{PRIVATE} org issue", in_org)
    world["org_cloudstorage"] = cloud_storage(alpha, world, f"{PRIVATE} org bucket", in_org)
    world["org_webhook"] = webhook(alpha, f"{PRIVATE}-org", in_org, type="organization")
    world["org_webhook_type"] = "organization"
    world["org_delivery"] = ping(alpha, world["org_webhook"])
    invited = {"role": "supervisor", "email": GAMMA_EMAIL}
    world["invitation"] = created(alpha.post("/api/invitations", headers=in_org, json=invited))["key"]
    world["invitation_digest"] = token_digest(world["invitation"])
    members = created(alpha.get("/api/memberships", headers=in_org))["results"]
    by_user = {member["user"]["id"]: member["id"] for member in members}
    world["membership"] = by_user[world["a_user"]]
    world["invitee_membership"] = by_user[gamma.user_id]  # type: ignore[attr-defined]


def beta_objects(beta: TestClient, world: dict[str, Any]) -> None:
    world["b_project"] = created(beta.post("/api/projects", json={"name": "beta project"}))["id"]
    world["b_task"] = task_with_media(beta, "beta task", None)
    world["b_job"] = first_id(beta, "/api/jobs", task_id=world["b_task"])
    world["b_label"] = first_id(beta, "/api/labels", task_id=world["b_task"])
    world["b_issue"], _ = review(beta, world["b_job"], "beta issue")
    world["b_org"] = organization(beta, BETA_ORG, "beta organization")
    world["b_webhook"] = webhook(beta, "beta", {"X-Organization": BETA_ORG}, type="organization")
    world["b_token"] = created(beta.post("/api/auth/access_tokens", json={"name": "beta's"}))["value"]


def build_world(
    alpha: TestClient, beta: TestClient, gamma: TestClient, bucket: tuple[str, str]
) -> dict[str, Any]:
    """Everyone's objects, by the names the walk's table fills its templates with; ``bucket`` is
    the name and endpoint of an S3 bucket the cloud storages are made on."""
    world: dict[str, Any] = {
        "bucket": bucket[0],
        "bucket_attributes": f"region=us-east-1&endpoint_url={bucket[1]}",
        "a_user": alpha.user_id,  # type: ignore[attr-defined]
        "b_user": beta.user_id,  # type: ignore[attr-defined]
        "b_email": BETA_EMAIL,
        "c_email": GAMMA_EMAIL,
    }
    alpha_objects(alpha, world)
    alpha_organization(alpha, gamma, world)
    beta_objects(beta, world)
    return world


def alpha_view(alpha: TestClient, world: Mapping[str, Any]) -> dict[str, Any]:
    """What Alpha sees of their objects (answers by URL); the walk must leave it as it was."""
    task, job = f"/api/tasks/{world['task']}", f"/api/jobs/{world['job']}"
    reads = [
        *(f"/api/projects/{world[key]}" for key in ("project", "org_project")),
        *(f"/api/tasks/{world[key]}" for key in ("task", "org_task", "upload_task")),
        *(f"/api/jobs/{world[key]}" for key in ("job", "org_job")),
        *(f"/api/labels/{world[key]}" for key in ("label", "org_label")),
        *(f"/api/issues/{world[key]}" for key in ("issue", "org_issue")),
        *(f"/api/cloudstorages/{world[key]}" for key in ("cloudstorage", "org_cloudstorage")),
        *(f"/api/comments/{world[key]}" for key in ("comment", "org_comment")),
        *(f"/api/webhooks/{world[key]}" for key in ("webhook", "org_webhook")),
        *(f"/api/webhooks/{world[key]}/deliveries" for key in ("webhook", "org_webhook")),
        f"{job}/annotations",
        f"{task}/annotations",
        f"{task}/data/meta",
        f"/api/labels?project_id={world['project']}",
        f"/api/labels?task_id={world['org_task']}",
        f"/api/requests/{world['rq_quoted']}",
        f"/api/requests/{quote(world['backup_rq'], safe='')}",
        f"/api/auth/access_tokens/{world['token']}",
        f"/api/organizations/{world['org']}",
        "/api/users/self",
        *(
            f"/api/{kind}"
            for kind in (
                "projects",
                "tasks",
                "jobs",
                "requests",
                "webhooks",
                "auth/access_tokens",
                "issues",
                "comments",
                "cloudstorages",
            )
        ),
        *(f"/api/{kind}?org={ALPHA_ORG}" for kind in ("projects", "tasks", "webhooks", "memberships")),
        f"/api/invitations?org={ALPHA_ORG}",
    ]
    view: dict[str, Any] = {}
    for url in reads:
        response = alpha.get(url)
        assert response.status_code == 200, f"{url}: {response.text}"
        view[url] = response.json()
    chunk = alpha.get(f"{task}/data", params={"type": "chunk", "number": "0"})
    view["chunk 0"] = (chunk.status_code, chunk.headers.get("X-Checksum"))
    export = alpha.get(f"{task}/dataset/download", params={"rq_id": world["rq"]})
    view["export"] = (export.status_code, len(export.content))
    uploads = {
        f"/api/tasks/{world['upload_task']}/data/{world['data_upload']}",
        f"{task}/annotations/{world['task_import_upload']}",
        f"/api/tasks/backup/{world['task_backup_upload']}",
    }
    for url in uploads:
        head = alpha.head(url)
        view[url] = (head.status_code, head.headers.get("Upload-Offset"))
    return view
