# Shared vocabulary of every policy: global privileges, organization roles and contexts.
# The input is CVAT's document: {"scope", "auth": {"user", "organization", "organization_specified",
# "token"}, "resource"}.
package utils

privilege_rank := {"admin": 0, "user": 75, "worker": 100}

role_rank := {"owner": 0, "maintainer": 50, "supervisor": 75, "worker": 100}

user := input.auth.user

organization := input.auth.organization

# a missing privilege ranks below every named one
rank_of_privilege(name) := privilege_rank[name]

rank_of_privilege(name) := 1000 if not privilege_rank[name]

# the caller's global privilege is at least `minimum`
has_perm(minimum) if rank_of_privilege(user.privilege) <= privilege_rank[minimum]

is_admin if user.privilege == "admin"

is_sandbox if input.auth.organization == null

is_organization if input.auth.organization != null

# the object lives where the request acts: the sandbox, or the same organization
in_context if {
	is_sandbox
	object_organization == null
}

in_context if {
	is_organization
	object_organization == organization.id
}

# a default rather than `null if not …`: with an id of `false` both bodies would hold, which OPA
# reports as a conflict
default object_organization := null

object_organization := input.resource.organization.id

# --- organization roles (active memberships only reach the input) ---

role := organization.user.role

is_member if role != null

has_role(minimum) if {
	is_member
	role_rank[role] <= role_rank[minimum]
}

# the organization's owner must also hold the owner role
is_org_owner if {
	has_role("owner")
	organization.owner.id == user.id
}

is_org_staff if has_role("maintainer")

# --- ownership ---

is_owner(object) if object.owner.id == user.id

is_assignee(object) if object.assignee.id == user.id

is_staff(object) if is_owner(object)

is_staff(object) if is_assignee(object)

# --- list filters: CVAT's Q-object arrays, prefix form ---

# `inner` restricted to the request's context: the organization it names, the sandbox when it named
# the sandbox (`org=`), else the sandbox and the organizations the caller is an active member of
# (anywhere, for a host whose input does not list them)
scoped(field, inner) := ["&", {field: organization.id}, inner] if is_organization
else := ["&", {field: null}, inner] if input.auth.organization_specified
else := ["&", anywhere(field), inner] if {
	not is_admin
	is_array(input.auth.member_of)
}
else := inner

# naming no context: the sandbox or one of the caller's organizations (`input.auth.member_of`,
# their ids), so nobody lists what they left behind in an organization they no longer belong to
anywhere(field) := array.concat(["|", {field: null}], [{field: id} | some id in input.auth.member_of])

nothing := ["|"]
