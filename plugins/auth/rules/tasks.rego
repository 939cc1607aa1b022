# Tasks: CVAT's tasks matrix (cvat-api §6.5). Admins may do anything; elsewhere a rule applies
# only to a task in the request's context (the sandbox, or the caller's organization).
package tasks

import data.utils

task := input.resource

project := input.resource.project

user_id := input.auth.user.id

is_task_staff if utils.is_staff(task)

is_task_staff if utils.is_staff(project)

is_project_staff if utils.is_staff(project)

is_owner_or_project_owner if utils.is_owner(task)

is_owner_or_project_owner if utils.is_owner(project)

view_scopes := {"view", "view:annotations", "view:data", "view:metadata", "view:validation_layout", "view:status"}

export_scopes := {"export:dataset", "export:annotations", "export:backup"}

edit_scopes := {
	"update:desc", "update:annotations", "delete:annotations", "upload:data", "update:metadata",
	"import:annotations", "import:dataset", "update:validation_layout",
}

ownership_scopes := {"update:owner", "update:assignee", "update:project", "delete", "update:organization"}

default allow := false

allow if utils.is_admin

# --- sandbox ---

allow if {
	input.scope in {"create", "import:backup"}
	utils.is_sandbox
	utils.has_perm("user")
}

allow if {
	input.scope == "create@project"
	utils.is_sandbox
	utils.has_perm("user")
	is_project_staff
}

allow if {
	input.scope in (view_scopes | export_scopes)
	utils.is_sandbox
	utils.in_context
	is_task_staff
}

allow if {
	input.scope in edit_scopes
	utils.is_sandbox
	utils.in_context
	utils.has_perm("worker")
	is_task_staff
}

allow if {
	input.scope in ownership_scopes
	utils.is_sandbox
	utils.in_context
	utils.has_perm("worker")
	is_owner_or_project_staff
}

allow if {
	input.scope == "update:associated_storage"
	utils.is_sandbox
	utils.in_context
	utils.has_perm("worker")
	is_owner_or_project_owner
}

is_owner_or_project_staff if utils.is_owner(task)

is_owner_or_project_staff if is_project_staff

# --- organization ---

org_staff if {
	utils.has_perm("user")
	utils.has_role("maintainer")
}

allow if {
	input.scope in {"create", "import:backup"}
	utils.in_context
	utils.has_perm("user")
	utils.has_role("supervisor")
}

allow if {
	input.scope == "create@project"
	utils.is_organization
	utils.in_context
	utils.has_perm("user")
	utils.has_role("supervisor")
}

allow if {
	input.scope == "create@project"
	utils.is_organization
	utils.in_context
	utils.has_perm("user")
	utils.has_role("worker")
	is_project_staff
}

allow if {
	input.scope in (view_scopes | export_scopes | edit_scopes | ownership_scopes | {"update:associated_storage"})
	utils.is_organization
	utils.in_context
	org_staff
}

allow if {
	input.scope in view_scopes
	utils.is_organization
	utils.in_context
	utils.has_role("worker")
	is_task_staff
}

allow if {
	input.scope in export_scopes
	utils.is_organization
	utils.in_context
	utils.has_role("supervisor")
	is_task_staff
}

allow if {
	input.scope in export_scopes
	utils.is_organization
	utils.in_context
	utils.has_role("worker")
	is_owner_or_project_owner
}

allow if {
	input.scope in edit_scopes
	utils.is_organization
	utils.in_context
	utils.has_perm("worker")
	utils.has_role("worker")
	is_task_staff
}

allow if {
	input.scope in ownership_scopes
	utils.is_organization
	utils.in_context
	utils.has_perm("worker")
	utils.has_role("worker")
	is_owner_or_project_staff
}

allow if {
	input.scope == "update:associated_storage"
	utils.is_organization
	utils.in_context
	utils.has_perm("worker")
	utils.has_role("worker")
	is_owner_or_project_owner
}

# --- lists ---

own := [
	"|",
	{"owner_id": user_id},
	{"assignee_id": user_id},
	{"project__owner_id": user_id},
	{"project__assignee_id": user_id},
	# a job's assignee finds the job's task in lists
	{"job__assignee_id": user_id},
]

filter := utils.scoped("organization_id", {}) if utils.is_admin
else := utils.scoped("organization_id", {}) if org_staff
else := utils.scoped("organization_id", own) if utils.is_sandbox
else := utils.scoped("organization_id", own) if utils.is_member
else := utils.nothing
