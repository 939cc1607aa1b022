# Webhooks: a project's webhooks are added by the project's owner (or, in an organization, its
# owners and maintainers), an organization's by its owners and maintainers, server-wide ones by
# administrators. The webhook's owner, its project's owner and the organization's maintainers
# manage it afterwards.
package webhooks

import data.utils

hook := input.resource

user_id := input.auth.user.id

org_staff if {
	utils.has_perm("user")
	utils.has_role("maintainer")
}

# a project's owner manages the project's webhooks, whoever added them
is_project_owner if utils.is_owner(hook.project)

own := ["|", {"owner_id": user_id}, {"project__owner_id": user_id}]

default allow := false

allow if utils.is_admin

allow if {
	input.scope == "create@project"
	utils.is_sandbox
	utils.in_context
	utils.has_perm("user")
	utils.is_owner(hook.project)
}

allow if {
	input.scope == "create@project"
	utils.is_organization
	utils.in_context
	org_staff
}

allow if {
	input.scope == "create@project"
	utils.is_organization
	utils.in_context
	utils.has_perm("user")
	utils.has_role("worker")
	utils.is_owner(hook.project)
}

allow if {
	input.scope == "create@organization"
	utils.is_organization
	utils.in_context
	org_staff
}

allow if {
	input.scope == "list"
	user_id != null
}

allow if {
	input.scope == "view"
	utils.is_sandbox
	utils.in_context
	utils.is_owner(hook)
}

allow if {
	input.scope == "view"
	utils.is_sandbox
	utils.in_context
	is_project_owner
}

# changing a webhook takes a privilege, as changing anything else does
allow if {
	input.scope in {"update", "delete"}
	utils.is_sandbox
	utils.in_context
	utils.has_perm("worker")
	utils.is_owner(hook)
}

allow if {
	input.scope in {"update", "delete"}
	utils.is_sandbox
	utils.in_context
	utils.has_perm("worker")
	is_project_owner
}

allow if {
	input.scope in {"view", "update", "delete"}
	utils.is_organization
	utils.in_context
	org_staff
}

allow if {
	input.scope == "view"
	utils.is_organization
	utils.in_context
	utils.has_role("worker")
	utils.is_owner(hook)
}

allow if {
	input.scope == "view"
	utils.is_organization
	utils.in_context
	utils.has_role("worker")
	is_project_owner
}

allow if {
	input.scope in {"update", "delete"}
	utils.is_organization
	utils.in_context
	utils.has_perm("worker")
	utils.has_role("worker")
	utils.is_owner(hook)
}

allow if {
	input.scope in {"update", "delete"}
	utils.is_organization
	utils.in_context
	utils.has_perm("worker")
	utils.has_role("worker")
	is_project_owner
}

filter := utils.scoped("organization_id", {}) if utils.is_admin
else := utils.scoped("organization_id", {}) if org_staff
else := utils.scoped("organization_id", own) if utils.is_sandbox
else := utils.scoped("organization_id", own) if utils.is_member
else := utils.nothing
