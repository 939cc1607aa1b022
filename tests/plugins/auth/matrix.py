"""The permission matrix (``matrix/<package>.csv``) expanded into policy inputs with expected answers.

Every combination of caller (global privilege, sandbox or organization, role in it) and object
(the caller's relation to it, and whether it lives in the request's context) becomes one input
document, as CVAT generates its Rego tests; the CSV rows say which of them are allowed. Sample
objects also come as database rows, so a list ``filter`` can be checked against ``allow(view)``.
The format is described in ``matrix/README.md``.
"""

from __future__ import annotations

import copy
import csv
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).with_name("matrix")

PRIVILEGES: tuple[str | None, ...] = ("admin", "user", "worker", None)
ROLES: tuple[str | None, ...] = ("owner", "maintainer", "supervisor", "worker", None)
PRIVILEGE_NAMES = {"admin": "admin", "user": "user", "worker": "worker", "none": None, "n/a": None}
ROLE_NAMES = {"owner": "owner", "maintainer": "maintainer", "supervisor": "supervisor", "worker": "worker"}
#: a minimum role of ``None`` (not a member) or ``N/A`` admits anyone
MEMBERSHIP_NAMES: dict[str, str | None] = {**ROLE_NAMES, "none": None, "n/a": None}

#: the caller, the organization the request names, another one, and that organization's owner
USER_ID = 10
ORGANIZATION_ID = 100
OTHER_ORGANIZATION_ID = 200
ORGANIZATION_OWNER_ID = 20

ANY = None  # an ``N/A`` cell


def _rank(order: tuple[str | None, ...], value: str | None) -> int:
    return order.index(value)


# --- the CSV files ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One expanded row: every cell a single value, ``None`` for ``N/A``."""

    scope: str
    context: str | None
    ownership: str | None
    privilege: str | None
    #: the minimum role, ``None`` for anyone
    membership: str | None
    strict: bool
    resource_role: str | None

    def admits(self, case: Case) -> bool:
        if self.scope != case.scope or self.context not in (ANY, case.context):
            return False
        if self.ownership not in (ANY, case.ownership):
            return False
        if self.resource_role not in (ANY, case.resource_role):
            return False
        if self.strict:
            if case.privilege != self.privilege:
                return False
        elif _rank(PRIVILEGES, case.privilege) > _rank(PRIVILEGES, self.privilege):
            return False
        return self.membership is None or _rank(ROLES, case.role) <= _rank(ROLES, self.membership)


COLUMNS = ("scope", "context", "ownership", "privilege", "membership")


def _cells(value: str | None) -> list[str]:
    parts = [part.strip().lower() for part in (value or "").split(",")]
    return [part for part in parts if part] or ["n/a"]


def _lookup(names: Mapping[str, Any], column: str, value: str, where: str) -> Any:
    if value not in names:
        raise ValueError(f"{where}: {column} {value!r} is not one of {', '.join(names)}")
    return names[value]


def load(package: str) -> list[Rule]:
    """The package's rows, each cell's list expanded."""
    path = HERE / f"{package}.csv"
    numbered = [
        (number, line)
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    reader = csv.DictReader(line for _, line in numbered)
    missing = set(COLUMNS) - {name.strip().lower() for name in reader.fieldnames or ()}
    if missing:
        raise ValueError(f"{path.name}: no column {', '.join(sorted(missing))}")
    rules: list[Rule] = []
    for (number, _), row in zip(numbered[1:], reader, strict=True):
        row = {key.strip().lower(): value for key, value in row.items() if key}
        where = f"{path.name} line {number}"
        strict = (row.get("strict_privilege") or "").strip().lower() == "true"
        for scope, context, ownership, privilege, membership, resource_role in itertools.product(
            _cells(row["scope"]),
            _cells(row["context"]),
            _cells(row["ownership"]),
            _cells(row["privilege"]),
            _cells(row["membership"]),
            _cells(row.get("resource_role")),
        ):
            if context not in ("sandbox", "organization", "n/a"):
                raise ValueError(f"{where}: Context {context!r} is not Sandbox, Organization or N/A")
            rules.append(
                Rule(
                    scope=scope,
                    context=None if context == "n/a" else context,
                    ownership=None if ownership == "n/a" else ownership,
                    privilege=_lookup(PRIVILEGE_NAMES, "Privilege", privilege, where),
                    membership=_lookup(MEMBERSHIP_NAMES, "Membership", membership, where),
                    strict=strict,
                    resource_role=None
                    if resource_role == "n/a"
                    else _lookup(ROLE_NAMES, "Resource_Role", resource_role, where),
                )
            )
    return rules


# --- what a package's objects look like -------------------------------------------------------

Document = dict[str, Any]
#: puts the caller into an input document in some relation; False when it cannot apply
Relation = Callable[[Document], bool]


def person(*paths: tuple[str, ...]) -> Relation:
    """The caller is the ``id`` of the object at ``path`` under ``input.resource`` (``()``: the
    resource itself), for every path that exists in this sample object."""

    def apply(document: Document) -> bool:
        applied = False
        for path in paths:
            node = document["resource"]
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node["id"] = USER_ID
                applied = True
        return applied

    return apply


def fellow_member(document: Document) -> bool:
    """The user the resource is belongs to the organization the caller acts in (none in the sandbox)."""
    organization = document["auth"]["organization"]
    if organization is None:
        return False
    document["resource"]["organizations"].append(organization["id"])
    return True


def token(read_only: bool | None) -> Relation:
    """The request carries a personal access token (``None``: it does not)."""

    def apply(document: Document) -> bool:
        document["auth"]["token"] = None if read_only is None else {"id": 7, "read_only": read_only}
        return True

    return apply


def _people(owner: int, assignee: int, organization: int | None) -> Document:
    return {"owner": {"id": owner}, "assignee": {"id": assignee}, "organization": {"id": organization}}


def project_document(organization: int | None) -> Document:
    return {"id": 1, **_people(31, 32, organization)}


def task_document(organization: int | None) -> Document:
    return {"id": 2, **_people(33, 34, organization), "project": project_document(organization)}


def job_document(organization: int | None) -> Document:
    task = task_document(organization)
    return {
        "id": 3,
        "assignee": {"id": 35},
        "organization": {"id": organization},
        "task": task,
        "project": copy.deepcopy(task["project"]),
    }


def label_documents(organization: int | None) -> list[Document]:
    task = task_document(organization)
    on_task = {"id": 4, "task": task, "project": copy.deepcopy(task["project"])}
    on_project = {"id": 5, "task": None, "project": project_document(organization)}
    return [
        {**on_task, "organization": {"id": organization}},
        {**on_project, "organization": {"id": organization}},
    ]


def webhook_document(organization: int | None) -> Document:
    return {
        "id": 6,
        "owner": {"id": 36},
        "project": project_document(organization),
        "organization": {"id": organization},
        "type": "project",
    }


def issue_document(organization: int | None) -> Document:
    job = job_document(organization)
    return {
        "id": 12,
        "owner": {"id": 44},
        "assignee": {"id": 45},
        "job": {"id": job["id"], "assignee": job["assignee"]},
        "task": job["task"],
        "project": job["project"],
        "organization": {"id": organization},
    }


def comment_document(organization: int | None) -> Document:
    issue = issue_document(organization)
    return {
        "id": 13,
        "owner": {"id": 46},
        "issue": {"id": issue["id"], "owner": issue["owner"], "assignee": issue["assignee"]},
        **{key: issue[key] for key in ("job", "task", "project", "organization")},
    }


def _ids(node: Any, *path: str) -> frozenset[Any]:
    """The ``id`` at ``path`` as a set of row values (empty when an object on the way is absent)."""
    for key in path:
        if not isinstance(node, dict):
            return frozenset()
        node = node.get(key)
    return frozenset([node]) if not isinstance(node, dict) else frozenset([node.get("id")])


def task_row(task: Document) -> Row:
    return {
        "id": _ids(task, "id"),
        "owner_id": _ids(task, "owner"),
        "assignee_id": _ids(task, "assignee"),
        "organization_id": _ids(task, "organization"),
        "project_id": _ids(task, "project"),
        "project__owner_id": _ids(task, "project", "owner"),
        "project__assignee_id": _ids(task, "project", "assignee"),
        # the sample tasks' jobs are assigned to nobody
        "job__assignee_id": frozenset(),
    }


def project_row(project: Document) -> Row:
    return {
        "id": _ids(project, "id"),
        "owner_id": _ids(project, "owner"),
        "assignee_id": _ids(project, "assignee"),
        "organization_id": _ids(project, "organization"),
    }


def job_row(job: Document) -> Row:
    return {
        "id": _ids(job, "id"),
        "assignee_id": _ids(job, "assignee"),
        "task_id": _ids(job, "task"),
        "organization_id": _ids(job, "organization"),
        "task__owner_id": _ids(job, "task", "owner"),
        "task__assignee_id": _ids(job, "task", "assignee"),
        "task__project__owner_id": _ids(job, "task", "project", "owner"),
        "task__project__assignee_id": _ids(job, "task", "project", "assignee"),
    }


def label_row(label: Document) -> Row:
    # a task's label has no project of its own in the database: the task's project is reached
    # through the task
    own_project = label["project"] if label["task"] is None else None
    return {
        "id": _ids(label, "id"),
        "task_id": _ids(label, "task"),
        "project_id": _ids(own_project),
        "task__owner_id": _ids(label, "task", "owner"),
        "task__assignee_id": _ids(label, "task", "assignee"),
        "task__organization_id": _ids(label, "task", "organization"),
        "task__project__owner_id": _ids(label, "task", "project", "owner"),
        "task__project__assignee_id": _ids(label, "task", "project", "assignee"),
        "task__job__assignee_id": frozenset(),
        "project__owner_id": _ids(own_project, "owner"),
        "project__assignee_id": _ids(own_project, "assignee"),
        "project__organization_id": _ids(own_project, "organization"),
    }


def webhook_row(hook: Document) -> Row:
    return {
        "id": _ids(hook, "id"),
        "owner_id": _ids(hook, "owner"),
        "project_id": _ids(hook, "project"),
        "project__owner_id": _ids(hook, "project", "owner"),
        "organization_id": _ids(hook, "organization"),
    }


def request_row(request: Document) -> Row:
    return {
        "id": _ids(request, "id"),
        "owner_id": _ids(request, "owner"),
        "org_id": _ids(request, "organization"),
    }


def cloud_storage_row(storage: Document) -> Row:
    return {
        "id": _ids(storage, "id"),
        "owner_id": _ids(storage, "owner"),
        "organization_id": _ids(storage, "organization"),
    }


def issue_row(issue: Document) -> Row:
    return {
        "id": _ids(issue, "id"),
        "owner_id": _ids(issue, "owner"),
        "assignee_id": _ids(issue, "assignee"),
        "job__assignee_id": _ids(issue, "job", "assignee"),
        "job__task__owner_id": _ids(issue, "task", "owner"),
        "job__task__assignee_id": _ids(issue, "task", "assignee"),
        "job__task__project__owner_id": _ids(issue, "task", "project", "owner"),
        "job__task__project__assignee_id": _ids(issue, "task", "project", "assignee"),
        "organization_id": _ids(issue, "organization"),
    }


def comment_row(comment: Document) -> Row:
    on_issue = issue_row({**comment, **comment["issue"]})
    return {
        "id": _ids(comment, "id"),
        "owner_id": _ids(comment, "owner"),
        **{f"issue__{name}": values for name, values in on_issue.items() if name != "organization_id"},
        "organization_id": _ids(comment, "organization"),
    }


#: a database row as the filter sees it: each field's values (several through a to-many relation)
Row = dict[str, frozenset[Any]]


@dataclass(frozen=True)
class Package:
    name: str
    #: sample objects in an organization (or in the sandbox: ``None``)
    objects: Callable[[int | None], list[Document]]
    ownerships: Mapping[str, Relation]
    #: whether objects live in organizations (else the other-organization cases are left out)
    organized: bool = True
    #: scopes about an object not created yet: it is always in the request's context
    creation_scopes: frozenset[str] = frozenset()
    #: whether creating scopes describe the object to be (else ``input.resource`` is null)
    creation_document: bool = True
    #: scopes answered by ``filter`` alone
    list_scopes: frozenset[str] = frozenset({"list"})
    #: the database row of a sample object, for packages whose filter is checked against ``allow``
    row: Callable[[Document], Row] | None = None
    #: the roles an object may carry (``input.resource.role``), for packages that use Resource_Role
    resource_roles: tuple[str, ...] = ()
    #: whether the caller may have no relation to the object (``None`` ownership)
    unrelated: bool = True
    #: whether administrators pass whatever the rows say (a read-only token binds them too)
    admin_always: bool = True

    def relations(self) -> list[str]:
        return (["none"] if self.unrelated else []) + list(self.ownerships)


PROJECT_PEOPLE = {
    "project:owner": person(("project", "owner")),
    "project:assignee": person(("project", "assignee")),
}
TASK_IN_PROJECT = {
    "project:owner": person(("project", "owner"), ("task", "project", "owner")),
    "project:assignee": person(("project", "assignee"), ("task", "project", "assignee")),
    "task:owner": person(("task", "owner")),
    "task:assignee": person(("task", "assignee")),
}

JOB_PEOPLE = {"job:assignee": person(("job", "assignee")), **TASK_IN_PROJECT}

PACKAGES: dict[str, Package] = {
    "tasks": Package(
        "tasks",
        lambda org: [task_document(org)],
        {"owner": person(("owner",)), "assignee": person(("assignee",)), **PROJECT_PEOPLE},
        creation_scopes=frozenset({"create", "import:backup", "create@project"}),
        row=task_row,
    ),
    "projects": Package(
        "projects",
        lambda org: [project_document(org)],
        {"owner": person(("owner",)), "assignee": person(("assignee",))},
        creation_scopes=frozenset({"create", "import:backup"}),
        creation_document=False,
        row=project_row,
    ),
    "jobs": Package(
        "jobs",
        lambda org: [job_document(org)],
        {"assignee": person(("assignee",)), **TASK_IN_PROJECT},
        row=job_row,
    ),
    "labels": Package("labels", label_documents, TASK_IN_PROJECT, row=label_row),
    "webhooks": Package(
        "webhooks",
        lambda org: [webhook_document(org)],
        {"owner": person(("owner",)), "project:owner": person(("project", "owner"))},
        creation_scopes=frozenset({"create", "create@project", "create@organization"}),
        row=webhook_row,
    ),
    "requests": Package(
        "requests",
        lambda org: [{"id": 8, "owner": {"id": 37}, "organization": {"id": org}}],
        {"owner": person(("owner",))},
        organized=False,
        row=request_row,
    ),
    "access_tokens": Package(
        "access_tokens",
        lambda org: [{"id": 7, "owner": {"id": 38}}],
        {"owner": person(("owner",))},
        organized=False,
        creation_scopes=frozenset({"create"}),
    ),
    "access_token_plugin": Package(
        "access_token_plugin",
        lambda org: [{"id": 9, "owner": {"id": USER_ID}}],
        {"session": token(None), "readwrite": token(False), "readonly": token(True)},
        organized=False,
        list_scopes=frozenset(),
        unrelated=False,
        admin_always=False,
    ),
    "cloudstorages": Package(
        "cloudstorages",
        lambda org: [{"id": 14, "owner": {"id": 46}, "organization": {"id": org}}],
        {"owner": person(("owner",))},
        creation_scopes=frozenset({"create"}),
        row=cloud_storage_row,
    ),
    "issues": Package(
        "issues",
        lambda org: [issue_document(org)],
        {"owner": person(("owner",)), "assignee": person(("assignee",)), **JOB_PEOPLE},
        creation_scopes=frozenset({"create@job"}),
        row=issue_row,
    ),
    "comments": Package(
        "comments",
        lambda org: [comment_document(org)],
        {
            "owner": person(("owner",)),
            "issue:owner": person(("issue", "owner")),
            "issue:assignee": person(("issue", "assignee")),
            **JOB_PEOPLE,
        },
        creation_scopes=frozenset({"create@issue"}),
        row=comment_row,
    ),
    "users": Package(
        "users",
        lambda org: [{"id": 39, "organizations": [OTHER_ORGANIZATION_ID]}],
        {"self": person(()), "member": fellow_member},
        organized=False,
    ),
    "server": Package("server", lambda org: [{}], {}, organized=False, list_scopes=frozenset()),
    # models belong to no organization; who may run one depends on the request's context alone
    "lambda": Package("lambda", lambda org: [{"id": "face"}], {}, organized=False, list_scopes=frozenset()),
    "events": Package("events", lambda org: [{}], {}, organized=False),
    # one object is decided by the tasks and projects packages: only the list is theirs
    "quality_settings": Package(
        "quality_settings", lambda org: [{}], {}, organized=False, list_scopes=frozenset()
    ),
    "consensus_settings": Package(
        "consensus_settings", lambda org: [{}], {}, organized=False, list_scopes=frozenset()
    ),
}


def guide_document(organization: int | None) -> Document:
    target = {"owner": {"id": 44}, "assignee": {"id": 45}, "is_job_staff": False}
    return {"id": 12, "target": target, "organization": {"id": organization}}


def job_staff(document: Document) -> bool:
    """The caller is assigned a job of the guide's task or project."""
    document["resource"]["target"]["is_job_staff"] = True
    return True


PACKAGES["annotationguides"] = Package(
    "annotationguides",
    lambda org: [guide_document(org)],
    {
        "target:owner": person(("target", "owner")),
        "target:assignee": person(("target", "assignee")),
        "job_staff": job_staff,
    },
    list_scopes=frozenset(),
)


def organization_role(role: str) -> Relation:
    """The caller holds ``role`` in the organization the object is (``owner``: and owns it)."""

    def apply(document: Document) -> bool:
        if document["resource"] is None:
            return False
        document["resource"]["user"]["role"] = role
        if role == "owner":
            document["resource"]["owner"]["id"] = USER_ID
        return True

    return apply


PACKAGES.update(
    {
        "organizations": Package(
            "organizations",
            lambda org: [{"id": 300, "owner": {"id": 43}, "user": {"role": None}}],
            {role: organization_role(role) for role in ("owner", "maintainer", "supervisor", "worker")},
            organized=False,
            creation_scopes=frozenset({"create"}),
            creation_document=False,
        ),
        "memberships": Package(
            "memberships",
            lambda org: [
                {
                    "id": 11,
                    "role": "worker",
                    "is_active": True,
                    "user": {"id": 40},
                    "organization": {"id": org},
                }
            ],
            {"self": person(("user",))},
            resource_roles=("owner", "maintainer", "supervisor", "worker"),
        ),
        "invitations": Package(
            "invitations",
            lambda org: [
                {"owner": {"id": 41}, "invitee": {"id": 42}, "role": "worker", "organization": {"id": org}}
            ],
            {"owner": person(("owner",)), "invitee": person(("invitee",))},
            creation_scopes=frozenset({"create"}),
            resource_roles=("owner", "maintainer", "supervisor", "worker"),
        ),
    }
)


# --- the cases --------------------------------------------------------------------------------


@dataclass
class Case:
    scope: str
    context: str
    privilege: str | None
    role: str | None
    ownership: str
    same_org: bool
    resource_role: str | None
    document: Document
    expected: bool = False

    def __str__(self) -> str:
        where = "same org" if self.same_org else "other org"
        role = f" role={self.role}" if self.context == "organization" else ""
        extra = f" resource_role={self.resource_role}" if self.resource_role else ""
        return (
            f"{self.scope}: {self.context}{role} privilege={self.privilege} "
            f"ownership={self.ownership} {where}{extra}"
        )


def auth(privilege: str | None, organization: Mapping[str, Any] | None, specified: bool) -> Document:
    """``input.auth`` of the caller in ``organization`` (``{"id", "role"}``) or in the sandbox."""
    org = None
    if organization is not None:
        role = organization["role"]
        owner = USER_ID if role == "owner" else ORGANIZATION_OWNER_ID
        org = {"id": organization["id"], "owner": {"id": owner}, "user": {"role": role}}
    return {
        "user": {"id": USER_ID, "privilege": privilege},
        "organization": org,
        "organization_specified": specified,
        "token": None,
    }


def callers() -> Iterator[tuple[str, str | None, str | None]]:
    """(context, privilege, role) of every caller: roles only in an organization."""
    for privilege in PRIVILEGES:
        yield "sandbox", privilege, None
        for role in ROLES:
            yield "organization", privilege, role


def scopes(rules: list[Rule]) -> list[str]:
    return list(dict.fromkeys(rule.scope for rule in rules))


def cases(package: str, rules: list[Rule] | None = None) -> list[Case]:
    """Every ``allow`` case of the package, with the answer its CSV expects."""
    spec = PACKAGES[package]
    rules = load(package) if rules is None else rules
    ownerships = spec.relations()
    unknown = {rule.ownership for rule in rules} - {None, *ownerships}
    if unknown:
        raise ValueError(f"{package}.csv: unknown ownership {', '.join(sorted(map(str, unknown)))}")
    found: list[Case] = []
    for scope in scopes(rules):
        if scope in spec.list_scopes:
            continue
        creating = scope in spec.creation_scopes
        for context, privilege, role in callers():
            here = ORGANIZATION_ID if context == "organization" else None
            placements = [True] if creating or not spec.organized else [True, False]
            for same_org, ownership, resource_role in itertools.product(
                placements, ownerships, spec.resource_roles or (None,)
            ):
                # elsewhere: another organization's object, or an organization's from the sandbox
                where = here if same_org else OTHER_ORGANIZATION_ID if here else ORGANIZATION_ID
                for sample in spec.objects(where):
                    document = {
                        "scope": scope,
                        "auth": auth(
                            privilege,
                            None if here is None else {"id": here, "role": role},
                            context == "organization",
                        ),
                        "resource": copy.deepcopy(sample) if spec.creation_document or not creating else None,
                    }
                    if resource_role is not None:
                        document["resource"]["role"] = resource_role
                    if ownership != "none" and not spec.ownerships[ownership](document):
                        continue
                    case = Case(scope, context, privilege, role, ownership, same_org, resource_role, document)
                    case.expected = expected(spec, rules, case)
                    found.append(case)
    return found


def expected(spec: Package, rules: list[Rule], case: Case) -> bool:
    if case.privilege == "admin" and spec.admin_always:
        return True
    if not case.same_org:
        return False
    return any(rule.admits(case) for rule in rules)


def may_list(package: str, rules: list[Rule], context: str, privilege: str | None, role: str | None) -> bool:
    """Whether the caller's list filter may match anything (a ``list`` row admits them)."""
    if privilege == "admin":
        return True
    probe = Case("list", context, privilege, role, "none", True, None, {})
    return any(rule.admits(probe) for rule in rules)


# --- list filters -----------------------------------------------------------------------------


def matches(spec: Any, row: Row) -> bool:
    """Whether a ``Filter`` (``core.access``'s format) selects ``row``; an unknown field raises
    ``KeyError`` as the SQL translation would refuse it."""
    if isinstance(spec, dict):
        return all(value in row[name] for name, value in spec.items())
    if not isinstance(spec, list) or not spec or spec[0] not in ("|", "&", "~"):
        raise ValueError(f"malformed filter {spec!r}")
    op, *operands = spec
    if op == "~":
        if len(operands) != 1:
            raise ValueError(f"'~' takes exactly one filter: {spec!r}")
        return not matches(operands[0], row)
    results = [matches(operand, row) for operand in operands]
    return any(results) if op == "|" else all(results)


def fields(spec: Any) -> set[str]:
    """The field names a filter uses."""
    if isinstance(spec, dict):
        return set(spec)
    return set().union(*(fields(operand) for operand in spec[1:])) if isinstance(spec, list) else set()


@dataclass
class ListCaller:
    """A caller asking for a list: in the sandbox with ``org=`` (``specified``), in the sandbox
    naming no context, or in the organization (where they have ``role``)."""

    context: str
    specified: bool
    privilege: str | None
    role: str | None

    def __str__(self) -> str:
        where = "organization" if self.context == "organization" else "sandbox"
        if self.context == "sandbox":
            where += " (org=)" if self.specified else " (no org named)"
        return f"{where} role={self.role} privilege={self.privilege}"

    @property
    def member_of(self) -> list[int]:
        """The organizations the caller is an active member of: theirs, when they hold a role."""
        return [] if self.role is None else [ORGANIZATION_ID]

    def list_document(self, scope: str = "list") -> Document:
        org = {"id": ORGANIZATION_ID, "role": self.role} if self.context == "organization" else None
        document = auth(self.privilege, org, self.specified)
        document["member_of"] = self.member_of
        return {"scope": scope, "auth": document, "resource": None}

    def sees_context(self, organization: int | None) -> bool:
        """Whether an object in ``organization`` belongs in this caller's lists at all."""
        if self.context == "organization":
            return organization == ORGANIZATION_ID
        return organization is None or not self.specified

    def view_document(
        self, resource: Document, organization: int | None, role: str | None = None
    ) -> Document:
        """``allow(view)`` input for an object in ``organization``, as the server builds it: the
        context the request named, else the object's own (with the caller's role there, or
        ``role`` instead when given)."""
        role = role if role is not None and self.role is not None else self.role
        if self.specified or self.context == "organization":
            org = {"id": ORGANIZATION_ID, "role": role} if self.context == "organization" else None
        elif organization is None:
            org = None
        else:
            # naming no context, the caller acts in the object's organization; they hold ``role``
            # in the request's organization and none in the other one
            org = {"id": organization, "role": role if organization == ORGANIZATION_ID else None}
        return {"scope": "view", "auth": auth(self.privilege, org, self.specified), "resource": resource}


def list_callers() -> Iterator[ListCaller]:
    for privilege in PRIVILEGES:
        yield ListCaller("sandbox", True, privilege, None)
        for role in ROLES:
            yield ListCaller("sandbox", False, privilege, role)
            yield ListCaller("organization", True, privilege, role)


def sample_objects(package: str) -> Iterator[tuple[str, int | None, Document]]:
    """(ownership, organization, resource) of sample objects in the sandbox, the caller's
    organization and another one, the caller in each relation to them."""
    spec = PACKAGES[package]
    for organization in (None, ORGANIZATION_ID, OTHER_ORGANIZATION_ID):
        for sample in spec.objects(organization):
            for ownership in spec.relations():
                document = {"auth": {}, "resource": copy.deepcopy(sample)}
                if ownership != "none" and not spec.ownerships[ownership](document):
                    continue
                yield ownership, organization, document["resource"]
