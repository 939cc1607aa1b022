# Issues: CVAT's issues matrix. The people of the job, its task and project, and the issue's author
# and assignee see an issue and, with the worker privilege, change it; the task's staff and the
# author delete it; an organization's maintainers do everything in it.
package issues

import data.utils

issue := input.resource

job := input.resource.job

task := input.resource.task

project := input.resource.project

user_id := input.auth.user.id

is_task_staff if utils.is_staff(task)

is_task_staff if utils.is_staff(project)

is_task_staff if utils.is_staff(task.project)

is_job_staff if is_task_staff

is_job_staff if utils.is_assignee(job)

# who may delete the issue: the task's staff and its author
is_issue_admin if is_task_staff

is_issue_admin if utils.is_owner(issue)

is_issue_staff if is_job_staff

is_issue_staff if is_issue_admin

is_issue_staff if utils.is_assignee(issue)

org_staff if {
	utils.has_perm("user")
	utils.has_role("maintainer")
}

default allow := false

allow if utils.is_admin

# --- sandbox ---

allow if {
	input.scope == "create@job"
	utils.is_sandbox
	utils.in_context
	utils.has_perm("worker")
	is_job_staff
}

allow if {
	input.scope == "view"
	utils.is_sandbox
	utils.in_context
	is_issue_staff
}

allow if {
	input.scope == "update"
	utils.is_sandbox
	utils.in_context
	utils.has_perm("worker")
	is_issue_staff
}

allow if {
	input.scope == "delete"
	utils.is_sandbox
	utils.in_context
	utils.has_perm("worker")
	is_issue_admin
}

# --- organization ---

allow if {
	input.scope in {"create@job", "view", "update", "delete"}
	utils.is_organization
	utils.in_context
	org_staff
}

allow if {
	input.scope == "create@job"
	utils.is_organization
	utils.in_context
	utils.has_perm("worker")
	utils.is_member
	is_job_staff
}

allow if {
	input.scope == "view"
	utils.is_organization
	utils.in_context
	utils.is_member
	is_issue_staff
}

allow if {
	input.scope == "update"
	utils.is_organization
	utils.in_context
	utils.has_perm("worker")
	utils.is_member
	is_issue_staff
}

allow if {
	input.scope == "delete"
	utils.is_organization
	utils.in_context
	utils.has_perm("worker")
	utils.is_member
	is_issue_admin
}

# --- lists ---

own := [
	"|",
	{"owner_id": user_id},
	{"assignee_id": user_id},
	{"job__assignee_id": user_id},
	{"job__task__owner_id": user_id},
	{"job__task__assignee_id": user_id},
	{"job__task__project__owner_id": user_id},
	{"job__task__project__assignee_id": user_id},
]

filter := utils.scoped("organization_id", {}) if utils.is_admin
else := utils.scoped("organization_id", {}) if org_staff
else := utils.scoped("organization_id", own) if utils.is_sandbox
else := utils.scoped("organization_id", own) if utils.is_member
else := utils.nothing
