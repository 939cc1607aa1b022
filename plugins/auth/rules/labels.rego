# Labels follow the task or project they belong to: its staff see them and, with the worker
# privilege, change them; an organization's maintainers see and change every label in it.
package labels

import data.utils

label := input.resource

user_id := input.auth.user.id

is_staff if utils.is_staff(label.task)

is_staff if utils.is_staff(label.task.project)

is_staff if utils.is_staff(label.project)

org_staff if {
	utils.has_perm("user")
	utils.has_role("maintainer")
}

default allow := false

allow if utils.is_admin

allow if {
	input.scope == "view"
	utils.is_sandbox
	utils.in_context
	is_staff
}

allow if {
	input.scope in {"update", "delete"}
	utils.is_sandbox
	utils.in_context
	utils.has_perm("worker")
	is_staff
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
	is_staff
}

allow if {
	input.scope in {"update", "delete"}
	utils.is_organization
	utils.in_context
	utils.has_perm("worker")
	utils.has_role("worker")
	is_staff
}

# --- lists: labels of visible tasks and projects ---

own := [
	"|",
	{"task__owner_id": user_id},
	{"task__assignee_id": user_id},
	{"task__project__owner_id": user_id},
	{"task__project__assignee_id": user_id},
	{"project__owner_id": user_id},
	{"project__assignee_id": user_id},
	# a job's assignee sees the labels of the job's task
	{"task__job__assignee_id": user_id},
]

context := ["|", {"task__organization_id": input.auth.organization.id}, {"project__organization_id": input.auth.organization.id}] if {
	utils.is_organization
} else := ["|", {"task__organization_id": null}, {"project__organization_id": null}] if {
	input.auth.organization_specified
} else := ["|", utils.anywhere("task__organization_id"), utils.anywhere("project__organization_id")] if {
	not utils.is_admin
	is_array(input.auth.member_of)
} else := {}

filter := ["&", context, {}] if utils.is_admin
else := ["&", context, {}] if org_staff
else := ["&", context, own] if utils.is_sandbox
else := ["&", context, own] if utils.is_member
else := utils.nothing
