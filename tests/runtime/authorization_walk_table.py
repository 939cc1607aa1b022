"""How the authorization walk calls every route of the API as an outsider.

``test_authorization_walk`` walks the app's route table and looks every ``METHOD path`` up here:
either in ``PUBLIC`` (routes that answer anyone, each with the reason) or in ``PROBES`` (the calls
that aim the route at another user's objects, and what the outsider must get). A route found in
neither fails the walk: whoever adds an endpoint adds it here, saying how it is protected.

URLs, query values and bodies are templates filled from the owner's objects (``{task}``,
``{rq_quoted}`` …, the keys of ``World``); object probes are made once against the owner's
personal objects and once against their organization's (``ORGANIZATION_VARIANT``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

#: The owner's objects by name: ids, request ids, upload file ids, invitation keys.
World = Mapping[str, Any]


class Expect(Enum):
    #: the outsider is refused (a 4xx): the object is someone else's
    DENIED = "denied"
    #: a list: 2xx without any of the owner's objects (or, if ``refusable``, a 4xx)
    LISTED = "listed"
    #: the outsider acts in their own space (creates their own object): anything but a 5xx, and
    #: the owner's objects stay as they were
    OWN = "own"
    #: a directory everybody signed in may read (users): only public fields of the owner
    DIRECTORY = "directory"


@dataclass(frozen=True)
class Probe:
    """One call of a route: the URL, query, body and headers (templates), and what it must get."""

    url: str
    expect: Expect = Expect.DENIED
    params: Mapping[str, str] = field(default_factory=dict)
    json: Callable[[World], Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes | None = None
    #: for lists: the result field, and the world keys whose values must not be among the results
    hidden: tuple[str, tuple[str, ...]] = ("id", ())
    #: for lists: a refusal (4xx) is an answer too, where the query names someone else's object
    refusable: bool = False


def denied(url: str, **kwargs: Any) -> Probe:
    return Probe(url, Expect.DENIED, **kwargs)


def listed(url: str, hidden: tuple[str, ...], *, field_name: str = "id", **kwargs: Any) -> Probe:
    return Probe(url, Expect.LISTED, hidden=(field_name, hidden), **kwargs)


def own(url: str, **kwargs: Any) -> Probe:
    return Probe(url, Expect.OWN, **kwargs)


def body(value: Any) -> Callable[[World], Any]:
    """A JSON body; strings of the form ``"{key}"`` are replaced by the world's value (any type)."""

    def fill(world: World) -> Any:
        if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
            return world[value[1:-1]]
        if isinstance(value, dict):
            return {key: body(item)(world) for key, item in value.items()}
        if isinstance(value, list):
            return [body(item)(world) for item in value]
        return value

    return fill


#: Object probes run once per variant: the owner's personal objects, then their organization's.
ORGANIZATION_VARIANT = {
    "project": "org_project",
    "task": "org_task",
    "job": "org_job",
    "label": "org_label",
    "webhook": "org_webhook",
    "delivery": "org_delivery",
    "webhook_type": "org_webhook_type",
    "issue": "org_issue",
    "comment": "org_comment",
    "cloudstorage": "org_cloudstorage",
}

EXPORT_FORMAT = "CVAT for images 1.1"
IMPORT_FORMAT = "CVAT 1.1"
EMPTY_ANNOTATIONS = body({"version": 0, "tags": [], "shapes": [], "tracks": []})


def rectangle(label: str, **extra: Any) -> dict[str, Any]:
    """A rectangle on frame 0 with the label ``label`` (a template), for annotation bodies."""
    return {"type": "rectangle", "frame": 0, "label_id": label, "points": [1, 2, 3, 4], **extra}


# one's own annotations, labels and objects, naming someone else's shape, label or attribute by id
FOREIGN_SHAPE = body({"shapes": [rectangle("{b_label}", id="{shape}")]})
FOREIGN_LABEL_SHAPE = body({"shapes": [rectangle("{label}")]})
FOREIGN_ATTRIBUTE_SHAPE = body(
    {"shapes": [rectangle("{b_label}", attributes=[{"spec_id": "{attribute}", "value": "red"}])]}
)
FOREIGN_LABEL = body({"labels": [{"id": "{label}", "name": "taken by beta"}]})
FOREIGN_ATTRIBUTE = {"id": "{attribute}", "name": "taken by beta", "input_type": "text"}


def created_with_foreign_label(name: str) -> Callable[[World], Any]:
    return body({"name": name, "labels": [{"id": "{label}", "name": "taken by beta"}]})


TUS_CHUNK = {
    "Content-Type": "application/offset+octet-stream",
    "Upload-Offset": "0",
    "Tus-Resumable": "1.0.0",
}
UPLOAD_START = {"Upload-Start": "true"}
BETA_HOOK = {"target_url": "http://127.0.0.1:9/beta", "events": ["update:project"]}

#: Routes that answer without consulting the policy about anybody's objects.
PUBLIC: dict[str, str] = {
    "GET /api/server/about": "server name and version, the same for everyone",
    "GET /api/server/plugins": "which plugins are installed, no user data",
    "GET /api/server/health": "liveness of the database, queue and policy, no user data",
    "GET /api/server/annotation/formats": "the registered dataset formats, no user data",
    "GET /api/schema": "the OpenAPI document",
    "GET /api/docs": "the API documentation page",
    "GET /api/webhooks/events": "the event names a webhook type may subscribe to, a constant list",
    "GET /api/users/self": "the caller's own account, found by the credentials not by an id",
    "GET /api/auth/access_tokens/self": "the token the request was made with, found by the credentials",
    "GET /api/auth/rules": "the policy bundle an OPA server loads, the same for everyone",
    "POST /api/auth/login": "exchanges the caller's own credentials for a session",
    "POST /api/auth/logout": "ends the caller's own session",
    "POST /api/auth/register": "creates a new account, guarded by the allow_registration setting",
}


def _task_routes() -> dict[str, tuple[Probe, ...]]:
    task = "/api/tasks/{task}"
    return {
        "GET /api/tasks": (
            listed("/api/tasks", ("task", "org_task", "upload_task")),
            listed("/api/tasks", ("task", "org_task"), params={"project_id": "{project}"}),
            listed("/api/tasks", ("task",), params={"search": "alpha"}),
        ),
        "POST /api/tasks": (
            own("/api/tasks", json=body({"name": "beta task"})),
            own("/api/tasks", json=created_with_foreign_label("beta task")),
            denied("/api/tasks", json=body({"name": "beta task", "project_id": "{project}"})),
            denied("/api/tasks", json=body({"name": "beta task", "project_id": "{org_project}"})),
        ),
        "GET /api/tasks/{id:int}": (denied(task),),
        "PATCH /api/tasks/{id:int}": (
            denied(task, json=body({"name": "renamed by beta"})),
            denied(task, json=body({"assignee_id": "{b_user}"})),
            denied(task, json=body({"owner_id": "{b_user}"})),
            # moving one's own task into someone else's project writes into that project
            denied("/api/tasks/{b_task}", json=body({"project_id": "{project}"})),
            denied("/api/tasks/{b_task}", json=FOREIGN_LABEL),
        ),
        "DELETE /api/tasks/{id:int}": (denied(task),),
        "POST /api/tasks/{id:int}/data": (
            denied("/api/tasks/{upload_task}/data", headers=UPLOAD_START),
            denied(
                "/api/tasks/{upload_task}/data",
                json=body({"image_quality": 70, "server_files": ["a.jpg"]}),
                headers={"Upload-Finish": "true"},
            ),
        ),
        "HEAD /api/tasks/{id:int}/data/{file_id:tus_file_id}": (
            denied("/api/tasks/{upload_task}/data/{data_upload}"),
        ),
        "PATCH /api/tasks/{id:int}/data/{file_id:tus_file_id}": (
            denied("/api/tasks/{upload_task}/data/{data_upload}", headers=TUS_CHUNK, content=b"x"),
        ),
        "GET /api/tasks/{id:int}/data": (
            denied(task + "/data", params={"type": "chunk", "number": "0"}),
            denied(task + "/data", params={"type": "frame", "number": "0", "quality": "original"}),
            denied(task + "/data", params={"type": "context_image", "number": "0"}),
        ),
        "GET /api/tasks/{id:int}/data/meta": (denied(task + "/data/meta"),),
        "PATCH /api/tasks/{id:int}/data/meta": (
            denied(task + "/data/meta", json=body({"deleted_frames": [0]})),
        ),
        "GET /api/tasks/{id:int}/preview": (denied(task + "/preview"),),
        "GET /api/tasks/{id:int}/annotations": (denied(task + "/annotations"),),
        "PUT /api/tasks/{id:int}/annotations": (denied(task + "/annotations", json=EMPTY_ANNOTATIONS),),
        "PATCH /api/tasks/{id:int}/annotations": (
            denied(task + "/annotations", params={"action": "delete"}, json=EMPTY_ANNOTATIONS),
            *(
                denied("/api/tasks/{b_task}/annotations", params={"action": action}, json=FOREIGN_SHAPE)
                for action in ("update", "delete")
            ),
        ),
        "DELETE /api/tasks/{id:int}/annotations": (denied(task + "/annotations"),),
        "POST /api/tasks/{id:int}/annotations": (
            denied(task + "/annotations", params={"format": IMPORT_FORMAT}, headers=UPLOAD_START),
        ),
        "HEAD /api/tasks/{id:int}/annotations/{file_id:tus_file_id}": (
            denied("/api/tasks/{task}/annotations/{task_import_upload}"),
        ),
        "PATCH /api/tasks/{id:int}/annotations/{file_id:tus_file_id}": (
            denied("/api/tasks/{task}/annotations/{task_import_upload}", headers=TUS_CHUNK, content=b"x"),
        ),
        "POST /api/tasks/{id:int}/dataset/export": (
            denied(task + "/dataset/export", params={"format": EXPORT_FORMAT}),
            denied(task + "/dataset/export", params={"format": EXPORT_FORMAT, "save_images": "true"}),
        ),
        "GET /api/tasks/{id:int}/dataset/download": (
            denied("/api/tasks/{task}/dataset/download", params={"rq_id": "{rq}"}),
            # someone else's export through one's own task
            denied("/api/tasks/{b_task}/dataset/download", params={"rq_id": "{rq}"}),
        ),
        "POST /api/tasks/{id:int}/backup/export": (denied(task + "/backup/export"),),
        "GET /api/tasks/{id:int}/backup/download": (
            denied("/api/tasks/{task}/backup/download", params={"rq_id": "{backup_rq}"}),
        ),
        "POST /api/tasks/backup": (own("/api/tasks/backup", headers=UPLOAD_START),),
        "HEAD /api/tasks/backup/{file_id:tus_file_id}": (denied("/api/tasks/backup/{task_backup_upload}"),),
        "PATCH /api/tasks/backup/{file_id:tus_file_id}": (
            denied("/api/tasks/backup/{task_backup_upload}", headers=TUS_CHUNK, content=b"x"),
        ),
    }


def _job_routes() -> dict[str, tuple[Probe, ...]]:
    job = "/api/jobs/{job}"
    return {
        "GET /api/jobs": (
            listed("/api/jobs", ("job", "org_job")),
            listed("/api/jobs", ("job", "org_job"), params={"task_id": "{task}"}),
            listed("/api/jobs", ("job", "org_job"), params={"project_id": "{project}"}),
        ),
        "GET /api/jobs/{id:int}": (denied(job),),
        "PATCH /api/jobs/{id:int}": (
            denied(job, json=body({"state": "completed"})),
            denied(job, json=body({"assignee": "{b_user}"})),
        ),
        "GET /api/jobs/{id:int}/data": (
            denied(job + "/data", params={"type": "chunk", "number": "0"}),
            denied(job + "/data", params={"type": "frame", "number": "0"}),
        ),
        "GET /api/jobs/{id:int}/data/meta": (denied(job + "/data/meta"),),
        "PATCH /api/jobs/{id:int}/data/meta": (
            denied(job + "/data/meta", json=body({"deleted_frames": [0]})),
        ),
        "GET /api/jobs/{id:int}/preview": (denied(job + "/preview"),),
        "GET /api/jobs/{id:int}/annotations": (denied(job + "/annotations"),),
        "PUT /api/jobs/{id:int}/annotations": (
            denied(job + "/annotations", json=EMPTY_ANNOTATIONS),
            # one's own job, annotated with someone else's label
            denied("/api/jobs/{b_job}/annotations", json=FOREIGN_LABEL_SHAPE),
            denied("/api/jobs/{b_job}/annotations", json=FOREIGN_ATTRIBUTE_SHAPE),
        ),
        "PATCH /api/jobs/{id:int}/annotations": (
            denied(job + "/annotations", params={"action": "create"}, json=EMPTY_ANNOTATIONS),
            denied("/api/jobs/{b_job}/annotations", params={"action": "create"}, json=FOREIGN_LABEL_SHAPE),
            *(
                denied("/api/jobs/{b_job}/annotations", params={"action": action}, json=FOREIGN_SHAPE)
                for action in ("update", "delete")
            ),
        ),
        "DELETE /api/jobs/{id:int}/annotations": (denied(job + "/annotations"),),
        "POST /api/jobs/{id:int}/annotations": (
            denied(job + "/annotations", params={"format": IMPORT_FORMAT}, headers=UPLOAD_START),
        ),
        "HEAD /api/jobs/{id:int}/annotations/{file_id:tus_file_id}": (
            denied("/api/jobs/{job}/annotations/{job_import_upload}"),
        ),
        "PATCH /api/jobs/{id:int}/annotations/{file_id:tus_file_id}": (
            denied("/api/jobs/{job}/annotations/{job_import_upload}", headers=TUS_CHUNK, content=b"x"),
        ),
        "POST /api/jobs/{id:int}/dataset/export": (
            denied(job + "/dataset/export", params={"format": EXPORT_FORMAT}),
        ),
        "GET /api/jobs/{id:int}/dataset/download": (
            denied("/api/jobs/{job}/dataset/download", params={"rq_id": "{rq}"}),
            denied("/api/jobs/{b_job}/dataset/download", params={"rq_id": "{rq}"}),
        ),
    }


def _project_routes() -> dict[str, tuple[Probe, ...]]:
    project = "/api/projects/{project}"
    return {
        "GET /api/projects": (
            listed("/api/projects", ("project", "org_project")),
            listed("/api/projects", ("project", "org_project"), params={"search": "alpha"}),
        ),
        "POST /api/projects": (
            own("/api/projects", json=body({"name": "beta project"})),
            own("/api/projects", json=created_with_foreign_label("beta project")),
            # the body's organization is not where a project is made: that is the request's context
            own("/api/projects", json=body({"name": "beta project", "organization_id": "{org}"})),
        ),
        "GET /api/projects/{id:int}": (denied(project),),
        "PATCH /api/projects/{id:int}": (
            denied(project, json=body({"name": "renamed by beta"})),
            denied(project, json=body({"owner_id": "{b_user}"})),
            denied(project, json=body({"labels": [{"name": "beta label"}]})),
            denied("/api/projects/{b_project}", json=FOREIGN_LABEL),
        ),
        "DELETE /api/projects/{id:int}": (denied(project),),
        "GET /api/projects/{id:int}/preview": (denied(project + "/preview"),),
        "POST /api/projects/{id:int}/dataset": (
            denied(project + "/dataset", params={"format": IMPORT_FORMAT}, headers=UPLOAD_START),
        ),
        "HEAD /api/projects/{id:int}/dataset/{file_id:tus_file_id}": (
            denied("/api/projects/{project}/dataset/{project_import_upload}"),
        ),
        "PATCH /api/projects/{id:int}/dataset/{file_id:tus_file_id}": (
            denied(
                "/api/projects/{project}/dataset/{project_import_upload}", headers=TUS_CHUNK, content=b"x"
            ),
        ),
        "POST /api/projects/{id:int}/dataset/export": (
            denied(project + "/dataset/export", params={"format": EXPORT_FORMAT}),
        ),
        "GET /api/projects/{id:int}/dataset/download": (
            denied("/api/projects/{project}/dataset/download", params={"rq_id": "{rq}"}),
        ),
        "POST /api/projects/{id:int}/backup/export": (denied(project + "/backup/export"),),
        "GET /api/projects/{id:int}/backup/download": (
            denied("/api/projects/{project}/backup/download", params={"rq_id": "{backup_rq}"}),
        ),
        "POST /api/projects/backup": (own("/api/projects/backup", headers=UPLOAD_START),),
        "HEAD /api/projects/backup/{file_id:tus_file_id}": (
            denied("/api/projects/backup/{project_backup_upload}"),
        ),
        "PATCH /api/projects/backup/{file_id:tus_file_id}": (
            denied("/api/projects/backup/{project_backup_upload}", headers=TUS_CHUNK, content=b"x"),
        ),
    }


def _other_routes() -> dict[str, tuple[Probe, ...]]:
    label = "/api/labels/{label}"
    webhook = "/api/webhooks/{webhook}"
    token = "/api/auth/access_tokens/{token}"
    return {
        "GET /api/labels": (
            listed("/api/labels", ("label", "org_label")),
            listed("/api/labels", ("label", "org_label"), params={"task_id": "{task}"}, refusable=True),
            listed("/api/labels", ("label", "org_label"), params={"job_id": "{job}"}, refusable=True),
            listed("/api/labels", ("label", "org_label"), params={"project_id": "{project}"}, refusable=True),
        ),
        "GET /api/labels/{id:int}": (denied(label),),
        "PATCH /api/labels/{id:int}": (
            denied(label, json=body({"name": "renamed by beta"})),
            denied("/api/labels/{b_label}", json=body({"attributes": [FOREIGN_ATTRIBUTE]})),
        ),
        "DELETE /api/labels/{id:int}": (denied(label),),
        # as in CVAT, people see only the members of the organizations they share
        "GET /api/users": (
            listed("/api/users", ("a_user",)),
            listed("/api/users", ("a_user",), params={"search": "alpha"}),
        ),
        "GET /api/users/{id:int}": (denied("/api/users/{a_user}"),),
        "PATCH /api/users/{id:int}": (
            denied("/api/users/{a_user}", json=body({"first_name": "beta"})),
            denied("/api/users/{a_user}", json=body({"is_active": False})),
        ),
        "DELETE /api/users/{id:int}": (denied("/api/users/{a_user}"),),
        "GET /api/requests": (
            listed("/api/requests", ("rq", "backup_rq")),
            listed("/api/requests", ("rq", "backup_rq"), params={"action": "export"}),
        ),
        "GET /api/requests/{rq_id:path}": (
            denied("/api/requests/{rq_quoted}"),
            denied("/api/requests/{lambda_rq_quoted}"),
        ),
        # running a model on someone else's task or job
        "POST /api/lambda/functions/{func_id}": (
            denied("/api/lambda/functions/faces", json=body({"task": "{task}", "frame": 0})),
            denied("/api/lambda/functions/faces", json=body({"job": "{job}", "frame": 0})),
        ),
        "POST /api/lambda/requests": (
            denied("/api/lambda/requests", json=body({"function": "faces", "task": "{task}"})),
            denied(
                "/api/lambda/requests", json=body({"function": "faces", "task": "{task}", "job": "{job}"})
            ),
        ),
        "GET /api/lambda/requests": (listed("/api/lambda/requests", ("lambda_rq",)),),
        "GET /api/lambda/requests/{rq_id:path}": (denied("/api/lambda/requests/{lambda_rq_quoted}"),),
        "DELETE /api/lambda/requests/{rq_id:path}": (denied("/api/lambda/requests/{lambda_rq_quoted}"),),
        "POST /api/requests/{rq_id:path}/cancel": (denied("/api/requests/{rq_quoted}/cancel"),),
        "GET /api/events": (
            listed("/api/events", ("a_user",), field_name="user_id"),
            listed("/api/events", ("a_user",), field_name="user_id", params={"task_id": "{task}"}),
            listed("/api/events", ("a_user",), field_name="user_id", params={"project_id": "{org_project}"}),
            listed("/api/events", ("a_user",), field_name="user_id", params={"user_id": "{a_user}"}),
        ),
        "GET /api/webhooks": (listed("/api/webhooks", ("webhook", "org_webhook")),),
        "POST /api/webhooks": (
            denied("/api/webhooks", json=body({**BETA_HOOK, "type": "project", "project_id": "{project}"})),
            own("/api/webhooks", json=body({**BETA_HOOK, "type": "organization"})),
        ),
        "GET /api/webhooks/{id:int}": (denied(webhook),),
        "PUT /api/webhooks/{id:int}": (denied(webhook, json=body({**BETA_HOOK, "type": "{webhook_type}"})),),
        "PATCH /api/webhooks/{id:int}": (
            denied(webhook, json=body({"target_url": BETA_HOOK["target_url"]})),
        ),
        "DELETE /api/webhooks/{id:int}": (denied(webhook),),
        "GET /api/webhooks/{id:int}/deliveries": (denied(webhook + "/deliveries"),),
        "GET /api/webhooks/{id:int}/deliveries/{delivery_id:int64}": (
            denied(webhook + "/deliveries/{delivery}"),
            # someone else's delivery through one's own webhook
            denied("/api/webhooks/{b_webhook}/deliveries/{delivery}"),
        ),
        "POST /api/webhooks/{id:int}/deliveries/{delivery_id:int64}/redelivery": (
            denied(webhook + "/deliveries/{delivery}/redelivery"),
            denied("/api/webhooks/{b_webhook}/deliveries/{delivery}/redelivery"),
        ),
        "POST /api/webhooks/{id:int}/ping": (denied(webhook + "/ping"),),
        "GET /api/auth/access_tokens": (listed("/api/auth/access_tokens", ("token",)),),
        "POST /api/auth/access_tokens": (own("/api/auth/access_tokens", json=body({"name": "beta token"})),),
        "GET /api/auth/access_tokens/{id:int}": (denied(token),),
        "PATCH /api/auth/access_tokens/{id:int}": (denied(token, json=body({"read_only": False})),),
        "DELETE /api/auth/access_tokens/{id:int}": (denied(token),),
    }


def _organization_routes() -> dict[str, tuple[Probe, ...]]:
    org = "/api/organizations/{org}"
    members = ("membership", "invitee_membership")
    #: an invitation is named by its secret key or, once created, by the key's digest
    invitations = ("invitation", "invitation_digest")
    return {
        "GET /api/organizations": (
            listed("/api/organizations", ("org",)),
            listed("/api/organizations", ("org",), params={"search": "alpha"}),
        ),
        "POST /api/organizations": (
            own("/api/organizations", json=body({"slug": "beta-two", "name": "beta two"})),
        ),
        "GET /api/organizations/{id:int}": (denied(org),),
        "PATCH /api/organizations/{id:int}": (denied(org, json=body({"name": "renamed by beta"})),),
        "DELETE /api/organizations/{id:int}": (denied(org),),
        "GET /api/memberships": (
            listed("/api/memberships", members),
            listed("/api/memberships", members, params={"user": "alpha"}),
            # naming Alpha's organization: Beta is not a member
            listed("/api/memberships", members, params={"org": "{org_slug}"}, refusable=True),
        ),
        "GET /api/memberships/{id:int}": (denied("/api/memberships/{membership}"),),
        "PATCH /api/memberships/{id:int}": (
            denied("/api/memberships/{invitee_membership}", json=body({"role": "maintainer"})),
            denied("/api/memberships/{membership}", json=body({"role": "worker"})),
        ),
        "DELETE /api/memberships/{id:int}": (
            denied("/api/memberships/{invitee_membership}"),
            denied("/api/memberships/{membership}"),
        ),
        "GET /api/invitations": (
            listed("/api/invitations", invitations, field_name="key"),
            listed(
                "/api/invitations",
                invitations,
                field_name="key",
                params={"org": "{org_slug}"},
                refusable=True,
            ),
        ),
        "POST /api/invitations": (
            # inviting oneself (or anyone) into Alpha's organization
            denied(
                "/api/invitations",
                params={"org": "{org_slug}"},
                json=body({"role": "maintainer", "email": "{b_email}"}),
            ),
            own("/api/invitations", json=body({"role": "worker", "email": "{c_email}"})),
        ),
        **{
            f"{method} /api/invitations/{{key}}{tail}": tuple(
                denied(f"/api/invitations/{{{key}}}{tail}") for key in ("invitation", "invitation_digest")
            )
            for method, tail in (
                ("GET", ""),
                ("DELETE", ""),
                ("POST", "/accept"),
                ("POST", "/decline"),
                ("POST", "/resend"),
            )
        },
    }


def _review_routes() -> dict[str, tuple[Probe, ...]]:
    issue, comment = "/api/issues/{issue}", "/api/comments/{comment}"
    raised = {"frame": 0, "position": [1, 2, 3, 4], "message": "raised by beta"}
    return {
        "GET /api/issues": (
            listed("/api/issues", ("issue", "org_issue")),
            listed("/api/issues", ("issue", "org_issue"), params={"job_id": "{job}"}),
            listed("/api/issues", ("issue", "org_issue"), params={"search": "alpha"}),
        ),
        "POST /api/issues": (
            denied("/api/issues", json=body({**raised, "job": "{job}"})),
            own("/api/issues", json=body({**raised, "job": "{b_job}", "assignee": "{b_user}"})),
        ),
        "GET /api/issues/{id:int}": (denied(issue),),
        "PATCH /api/issues/{id:int}": (
            denied(issue, json=body({"resolved": True})),
            denied(issue, json=body({"assignee": "{b_user}"})),
        ),
        "DELETE /api/issues/{id:int}": (denied(issue),),
        "GET /api/comments": (
            listed("/api/comments", ("comment", "org_comment")),
            listed("/api/comments", ("comment", "org_comment"), params={"issue_id": "{issue}"}),
            listed("/api/comments", ("comment", "org_comment"), params={"job_id": "{job}"}),
        ),
        "POST /api/comments": (
            denied("/api/comments", json=body({"issue": "{issue}", "message": "by beta"})),
            own("/api/comments", json=body({"issue": "{b_issue}", "message": "by beta"})),
        ),
        "GET /api/comments/{id:int}": (denied(comment),),
        "PATCH /api/comments/{id:int}": (denied(comment, json=body({"message": "edited by beta"})),),
        "DELETE /api/comments/{id:int}": (denied(comment),),
    }


def _cloud_storage_routes() -> dict[str, tuple[Probe, ...]]:
    storage = "/api/cloudstorages/{cloudstorage}"
    own_storage = body({
        "provider_type": "AWS_S3_BUCKET", "resource": "{bucket}", "display_name": "beta's",
        "credentials_type": "ANONYMOUS_ACCESS", "specific_attributes": "{bucket_attributes}",
    })  # fmt: skip
    return {
        "GET /api/cloudstorages": (
            listed("/api/cloudstorages", ("cloudstorage", "org_cloudstorage")),
            listed("/api/cloudstorages", ("cloudstorage", "org_cloudstorage"), params={"search": "alpha"}),
        ),
        "POST /api/cloudstorages": (own("/api/cloudstorages", json=own_storage),),
        "GET /api/cloudstorages/{id:int}": (denied(storage),),
        "PATCH /api/cloudstorages/{id:int}": (denied(storage, json=body({"display_name": "beta's now"})),),
        "DELETE /api/cloudstorages/{id:int}": (denied(storage),),
        "GET /api/cloudstorages/{id:int}/content-v2": (denied(f"{storage}/content-v2"),),
        "GET /api/cloudstorages/{id:int}/status": (denied(f"{storage}/status"),),
        "GET /api/cloudstorages/{id:int}/actions": (denied(f"{storage}/actions"),),
        "GET /api/cloudstorages/{id:int}/preview": (denied(f"{storage}/preview"),),
    }


PUBLIC["GET /static/logo.svg"] = "annota's logo for the login page, the same for everyone"
PUBLIC["GET /api/user-agreements"] = "the registration form's agreements, from the settings"
PUBLIC["GET /api/server/ready"] = "readiness of the database, queue, storage and policy, no user data"
PUBLIC["GET /api/lambda/functions"] = "the declared models, the same for every signed-in user"
PUBLIC["GET /api/lambda/functions/{func_id}"] = "one declared model, the same for every signed-in user"


BOUNDARY = "walk-boundary"
#: an asset for Alpha's guide: the form names the guide, and ``_filled`` puts its id in
ASSET_FORM = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="guide_id"\r\n\r\n{{guide}}\r\n'
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="b.pdf"\r\n'
    f"Content-Type: application/pdf\r\n\r\n%PDF-1.4 beta\r\n--{BOUNDARY}--\r\n"
).encode()


def _web_ui_routes() -> dict[str, tuple[Probe, ...]]:
    """What CVAT's web UI calls besides the resources above."""
    now = "2026-01-01T00:00:00Z"
    return {
        "POST /api/events": (
            own(
                "/api/events",
                json=body(
                    {
                        "timestamp": now,
                        "events": [{"scope": "load:job", "timestamp": now, "task_id": "{task}"}],
                    }
                ),
            ),
        ),  # fmt: skip
        "GET /api/tasks/{id:int}/validation_layout": (denied("/api/tasks/{task}/validation_layout"),),
        "GET /api/jobs/{id:int}/validation_layout": (denied("/api/jobs/{job}/validation_layout"),),
        "GET /api/quality/settings": (
            listed("/api/quality/settings", ("quality",)),
            listed("/api/quality/settings", ("quality",), params={"task_id": "{task}"}, refusable=True),
            listed("/api/quality/settings", ("quality",), params={"project_id": "{project}"}, refusable=True),
        ),
        "GET /api/quality/settings/{id:int}": (denied("/api/quality/settings/{quality}"),),
        "PATCH /api/quality/settings/{id:int}": (
            denied("/api/quality/settings/{quality}", json=body({"iou_threshold": 0.1})),
        ),
        "GET /api/consensus/settings": (
            listed("/api/consensus/settings", ("consensus",)),
            listed(
                "/api/consensus/settings",
                ("consensus",),
                params={"task_id": "{consensus_task}"},
                refusable=True,
            ),
        ),
        "POST /api/guides": (
            denied("/api/guides", json=body({"task_id": "{task}", "markdown": "beta"})),
            own("/api/guides", json=body({"task_id": "{b_task}", "markdown": "beta"})),
        ),
        "GET /api/guides/{id:int}": (denied("/api/guides/{guide}"),),
        "PATCH /api/guides/{id:int}": (denied("/api/guides/{guide}", json=body({"markdown": "beta"})),),
        "DELETE /api/guides/{id:int}": (denied("/api/guides/{guide}"),),
        "POST /api/assets": (
            denied(
                "/api/assets",
                headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
                content=ASSET_FORM,
            ),
        ),
        "GET /api/assets/{uuid}": (denied("/api/assets/{asset}"),),
        "DELETE /api/assets/{uuid}": (denied("/api/assets/{asset}"),),
        "GET /api/consensus/settings/{id:int}": (denied("/api/consensus/settings/{consensus}"),),
        "PATCH /api/consensus/settings/{id:int}": (
            denied("/api/consensus/settings/{consensus}", json=body({"iou_threshold": 0.1})),
        ),
    }


PROBES: dict[str, tuple[Probe, ...]] = {
    **_web_ui_routes(),
    **_organization_routes(),
    **_task_routes(),
    **_job_routes(),
    **_project_routes(),
    **_other_routes(),
    **_review_routes(),
    **_cloud_storage_routes(),
}
