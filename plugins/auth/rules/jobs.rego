# Jobs: CVAT's jobs matrix. The job's assignee joins the task's staff for viewing and annotating;
# in an organization a worker who is not a member may still work on a job assigned to them.
package jobs

import data.utils

job := input.resource

task := input.resource.task

project := input.resource.project

user_id := input.auth.user.id

is_task_staff if utils.is_staff(task)

is_task_staff if utils.is_staff(project)

is_task_staff if utils.is_staff(task.project)

is_job_staff if is_task_staff

is_job_staff if utils.is_assignee(job)

is_task_or_project_owner if utils.is_owner(task)

is_task_or_project_owner if utils.is_owner(project)

view_scopes := {"view", "view:annotations", "view:data", "view:metadata", "view:validation_layout"}

export_scopes := {"export:annotations", "export:dataset"}

work_scopes := {"update:annotations", "delete:annotations", "import:annotations", "update:metadata", "update:state", "update:validation_layout"}

manage_scopes := {"update:stage", "update:assignee"}

default allow := false

allow if utils.is_admin

# --- sandbox ---

allow if {
	input.scope in (view_scopes | export_scopes)
	utils.is_sandbox
	utils.in_context
	is_job_staff
}

allow if {
	input.scope in work_scopes
	utils.is_sandbox
	utils.in_context
	utils.has_perm("worker")
	is_job_staff
}

allow if {
	input.scope in manage_scopes
	utils.is_sandbox
	utils.in_context
	utils.has_perm("worker")
	is_task_staff
}

allow if {
	input.scope in {"create", "delete"}
	utils.is_sandbox
	utils.in_context
	utils.has_perm("user")
	is_task_staff
}

# --- organization ---

org_staff if {
	utils.has_perm("user")
	utils.has_role("maintainer")
}

allow if {
	input.scope in (view_scopes | export_scopes | work_scopes | manage_scopes | {"create", "delete"})
	utils.is_organization
	utils.in_context
	org_staff
}

allow if {
	input.scope in view_scopes
	utils.is_organization
	utils.in_context
	utils.has_role("worker")
	is_job_staff
}

# a global worker outside the organization, assigned to the job (CVAT's strict privilege rows)
outside_assignee if {
	utils.is_organization
	utils.in_context
	not utils.is_member
	input.auth.user.privilege == "worker"
	utils.is_assignee(job)
}

allow if {
	input.scope in (view_scopes | work_scopes)
	outside_assignee
}

allow if {
	input.scope in export_scopes
	utils.is_organization
	utils.in_context
	utils.has_role("supervisor")
	is_job_staff
}

allow if {
	input.scope in export_scopes
	utils.is_organization
	utils.in_context
	utils.has_role("worker")
	is_task_or_project_owner
}

allow if {
	input.scope in work_scopes
	utils.is_organization
	utils.in_context
	utils.has_perm("worker")
	utils.has_role("worker")
	is_job_staff
}

allow if {
	input.scope in manage_scopes
	utils.is_organization
	utils.in_context
	utils.has_perm("worker")
	utils.has_role("worker")
	is_task_staff
}

allow if {
	input.scope in {"create", "delete"}
	utils.is_organization
	utils.in_context
	utils.has_perm("user")
	utils.has_role("supervisor")
	is_task_staff
}

# --- lists ---

own := [
	"|",
	{"assignee_id": user_id},
	{"task__owner_id": user_id},
	{"task__assignee_id": user_id},
	{"task__project__owner_id": user_id},
	{"task__project__assignee_id": user_id},
]

filter := utils.scoped("organization_id", {}) if utils.is_admin
else := utils.scoped("organization_id", {}) if org_staff
else := utils.scoped("organization_id", own) if utils.is_sandbox
else := utils.scoped("organization_id", own) if utils.is_member
else := utils.nothing
