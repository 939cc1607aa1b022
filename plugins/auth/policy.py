"""The built-in sandbox policy: CVAT's rules for users outside organizations (cvat-api.md §6.5).

Admins may do everything; other users act on what they own or are assigned to (directly, or
through the task's project). Decisions read the same input document CVAT's Rego policies read,
and list scoping is returned as a filter the server turns into SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from annota.core.access import MATCH_ALL, MATCH_NONE, Filter, Identity, Resource


def _id(doc: Mapping[str, Any] | None, *path: str) -> Any:
    node: Any = doc
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _is(user_id: int | None, doc: Mapping[str, Any] | None, *path: str) -> bool:
    return user_id is not None and _id(doc, *path, "id") == user_id


def _project_staff(uid: int | None, project: Mapping[str, Any] | None) -> bool:
    return _is(uid, project, "owner") or _is(uid, project, "assignee")


def _task_staff(uid: int | None, task: Mapping[str, Any] | None) -> bool:
    return _is(uid, task, "owner") or _is(uid, task, "assignee") or _project_staff(uid, _id(task, "project"))


TASK_VIEW = {
    "view",
    "view:annotations",
    "view:data",
    "view:metadata",
    "export:dataset",
    "export:annotations",
    "export:backup",
    "view:validation_layout",
    "view:status",
}
TASK_EDIT = {
    "update:desc",
    "update:annotations",
    "delete:annotations",
    "upload:data",
    "update:metadata",
    "import:annotations",
    "update:validation_layout",
    "import:dataset",
}
TASK_OWNERSHIP = {"update:owner", "update:assignee", "update:project", "delete", "update:organization"}


def _projects(who: Identity, scope: str, doc: Mapping[str, Any] | None) -> bool:
    uid = who.user_id
    if scope in ("create", "import:backup"):
        return who.has_privilege("user")
    if scope in TASK_VIEW or scope in ("export:dataset", "export:annotations", "export:backup"):
        return _project_staff(uid, doc)
    if scope in TASK_EDIT or scope in ("update:assignee", "update:associated_storage", "create@task"):
        return who.has_privilege("worker") and _project_staff(uid, doc)
    if scope in ("update:owner", "delete", "update:organization"):
        return who.has_privilege("worker") and _is(uid, doc, "owner")
    return False


def _tasks(who: Identity, scope: str, doc: Mapping[str, Any] | None) -> bool:
    uid = who.user_id
    if scope in ("create", "import:backup"):
        return who.has_privilege("user")
    if scope == "create@project":
        return who.has_privilege("user") and _project_staff(uid, _id(doc, "project"))
    if scope in TASK_VIEW:
        return _task_staff(uid, doc)
    if scope in TASK_EDIT:
        return who.has_privilege("worker") and _task_staff(uid, doc)
    if scope == "update:associated_storage":
        return who.has_privilege("worker") and (_is(uid, doc, "owner") or _is(uid, doc, "project", "owner"))
    if scope in TASK_OWNERSHIP:
        return who.has_privilege("worker") and (
            _is(uid, doc, "owner") or _project_staff(uid, _id(doc, "project"))
        )
    return False


def _jobs(who: Identity, scope: str, doc: Mapping[str, Any] | None) -> bool:
    uid = who.user_id
    task = _id(doc, "task")
    staff = _task_staff(uid, task)
    if scope in (
        "view",
        "view:annotations",
        "view:data",
        "view:metadata",
        "export:annotations",
        "export:dataset",
        "view:validation_layout",
    ):
        return staff or _is(uid, doc, "assignee")
    if scope in (
        "update:annotations",
        "delete:annotations",
        "import:annotations",
        "update:metadata",
        "update:state",
        "update:validation_layout",
    ):
        return who.has_privilege("worker") and (staff or _is(uid, doc, "assignee"))
    if scope in ("update:stage", "update:assignee"):
        return who.has_privilege("worker") and staff
    if scope in ("create", "delete"):
        return who.has_privilege("user") and staff
    return False


def _labels(who: Identity, scope: str, doc: Mapping[str, Any] | None) -> bool:
    owner_doc = _id(doc, "task") or _id(doc, "project")
    kind = _tasks if _id(doc, "task") else _projects
    if scope == "view":
        return kind(who, "view", owner_doc)
    if scope in ("update", "delete"):
        return kind(who, "update:desc", owner_doc)
    return False


def _owned(who: Identity, scope: str, doc: Mapping[str, Any] | None) -> bool:
    """Requests: only their owner."""
    owner_scopes = ("view", "cancel", "update", "delete", "download:exported_file")
    return scope in owner_scopes and _is(who.user_id, doc, "owner")


def _access_tokens(who: Identity, scope: str, doc: Mapping[str, Any] | None) -> bool:
    """CVAT's ``access_tokens.rego``: users with a privilege list and create their own tokens; only
    the owner views, changes or revokes one."""
    if not who.has_privilege("worker"):
        return False
    if scope in ("list", "create"):
        return True
    return scope in ("view", "update", "delete") and _is(who.user_id, doc, "owner")


def _users(who: Identity, scope: str, doc: Mapping[str, Any] | None) -> bool:
    """Anyone may look users up and edit their own names; account status (``update``) and
    deletion are for administrators, who are allowed before any rule is consulted."""
    if scope in ("view", "list"):
        return True
    return scope == "update:personal_data" and _id(doc, "id") == who.user_id


def _server(who: Identity, scope: str, doc: Mapping[str, Any] | None) -> bool:
    return scope in ("view", "list:content", "view:plugins")


RULES: dict[str, Callable[[Identity, str, Mapping[str, Any] | None], bool]] = {
    "projects": _projects,
    "tasks": _tasks,
    "jobs": _jobs,
    "labels": _labels,
    "requests": _owned,
    "access_tokens": _access_tokens,
    "users": _users,
    "server": _server,
}


def allow(who: Identity, scope: str, resource: Resource) -> bool:
    if not who.is_authenticated:
        return False
    if who.read_only and not _read_only_allows(scope):
        return False
    if who.is_admin:
        return True
    rule = RULES.get(resource.kind)
    return bool(rule and rule(who, scope, resource.document))


def _read_only_allows(scope: str) -> bool:
    return scope in ("view", "list", "download:exported_file") or scope.startswith(("view:", "export:"))


def list_filter(who: Identity, resource_type: str) -> Filter:
    if not who.is_authenticated:
        return MATCH_NONE
    if resource_type == "access_tokens":
        # a personal list, administrators included (they reach other people's tokens by id)
        return {"owner_id": who.user_id}
    if who.is_admin:
        return MATCH_ALL
    uid = who.user_id
    if resource_type == "projects":
        return ["|", {"owner_id": uid}, {"assignee_id": uid}]
    if resource_type == "tasks":
        return [
            "|",
            {"owner_id": uid},
            {"assignee_id": uid},
            {"project__owner_id": uid},
            {"project__assignee_id": uid},
            {"job__assignee_id": uid},
        ]
    if resource_type == "jobs":
        return [
            "|",
            {"assignee_id": uid},
            {"task__owner_id": uid},
            {"task__assignee_id": uid},
            {"task__project__owner_id": uid},
            {"task__project__assignee_id": uid},
        ]
    if resource_type == "labels":
        return [
            "|",
            {"task__owner_id": uid},
            {"task__assignee_id": uid},
            {"task__project__owner_id": uid},
            {"task__project__assignee_id": uid},
            {"project__owner_id": uid},
            {"project__assignee_id": uid},
            {"task__job__assignee_id": uid},
        ]
    if resource_type == "requests":
        return {"owner_id": uid}
    if resource_type == "users":
        return MATCH_ALL
    return MATCH_NONE
