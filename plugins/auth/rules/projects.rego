# Projects: CVAT's projects matrix. Owner and assignee are the project's staff; handing a project
# over (owner, organization, deletion, storage) is the owner's alone.
package projects

import data.utils

project := input.resource

user_id := input.auth.user.id

view_scopes := {"view", "view:status"}

export_scopes := {"export:dataset", "export:annotations", "export:backup"}

staff_scopes := {"update:desc", "update:assignee", "import:dataset", "update:annotations", "delete:annotations", "create@task"}

owner_scopes := {"update:owner", "delete", "update:associated_storage", "update:organization"}

default allow := false

allow if utils.is_admin

# --- sandbox ---

allow if {
	input.scope in {"create", "import:backup"}
	utils.is_sandbox
	utils.has_perm("user")
}

allow if {
	input.scope in (view_scopes | export_scopes)
	utils.is_sandbox
	utils.in_context
	utils.is_staff(project)
}

allow if {
	input.scope in staff_scopes
	utils.is_sandbox
	utils.in_context
	utils.has_perm("worker")
	utils.is_staff(project)
}

allow if {
	input.scope in owner_scopes
	utils.is_sandbox
	utils.in_context
	utils.has_perm("worker")
	utils.is_owner(project)
}

# --- organization ---

org_staff if {
	utils.has_perm("user")
	utils.has_role("maintainer")
}

# a new project has no document yet: it is made in the request's organization
allow if {
	input.scope in {"create", "import:backup"}
	utils.is_organization
	utils.has_perm("user")
	utils.has_role("supervisor")
}

allow if {
	input.scope in (view_scopes | export_scopes | staff_scopes | owner_scopes)
	utils.is_organization
	utils.in_context
	org_staff
}

allow if {
	input.scope in view_scopes
	utils.is_organization
	utils.in_context
	utils.has_role("worker")
	utils.is_staff(project)
}

allow if {
	input.scope in export_scopes
	utils.is_organization
	utils.in_context
	utils.has_role("supervisor")
	utils.is_staff(project)
}

allow if {
	input.scope in export_scopes
	utils.is_organization
	utils.in_context
	utils.has_role("worker")
	utils.is_owner(project)
}

allow if {
	input.scope in staff_scopes
	utils.is_organization
	utils.in_context
	utils.has_perm("worker")
	utils.has_role("worker")
	utils.is_staff(project)
}

allow if {
	input.scope in owner_scopes
	utils.is_organization
	utils.in_context
	utils.has_perm("worker")
	utils.has_role("worker")
	utils.is_owner(project)
}

# --- lists ---

own := ["|", {"owner_id": user_id}, {"assignee_id": user_id}]

filter := utils.scoped("organization_id", {}) if utils.is_admin
else := utils.scoped("organization_id", {}) if org_staff
else := utils.scoped("organization_id", own) if utils.is_sandbox
else := utils.scoped("organization_id", own) if utils.is_member
else := utils.nothing
