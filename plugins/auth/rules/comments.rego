# Comments: CVAT's comments matrix. Whoever may see an issue (the people of its job, task and
# project, its author and assignee) sees its comments and adds to them; they and a comment's author
# edit or delete it; an organization's maintainers do everything in it.
package comments

import data.utils

comment := input.resource

issue := input.resource.issue

job := input.resource.job

task := input.resource.task

project := input.resource.project

user_id := input.auth.user.id

is_task_staff if utils.is_staff(task)

is_task_staff if utils.is_staff(project)

is_task_staff if utils.is_staff(task.project)

is_job_staff if is_task_staff

is_job_staff if utils.is_assignee(job)

is_issue_staff if is_job_staff

is_issue_staff if utils.is_staff(issue)

is_comment_staff if is_issue_staff

is_comment_staff if utils.is_owner(comment)

org_staff if {
	utils.has_perm("user")
	utils.has_role("maintainer")
}

default allow := false

allow if utils.is_admin

# --- sandbox ---

allow if {
	input.scope == "create@issue"
	utils.is_sandbox
	utils.in_context
	utils.has_perm("worker")
	is_issue_staff
}

allow if {
	input.scope == "view"
	utils.is_sandbox
	utils.in_context
	is_comment_staff
}

allow if {
	input.scope in {"update", "delete"}
	utils.is_sandbox
	utils.in_context
	utils.has_perm("worker")
	is_comment_staff
}

# --- organization ---

allow if {
	input.scope in {"create@issue", "view", "update", "delete"}
	utils.is_organization
	utils.in_context
	org_staff
}

allow if {
	input.scope == "create@issue"
	utils.is_organization
	utils.in_context
	utils.has_perm("worker")
	utils.is_member
	is_issue_staff
}

allow if {
	input.scope == "view"
	utils.is_organization
	utils.in_context
	utils.is_member
	is_comment_staff
}

allow if {
	input.scope in {"update", "delete"}
	utils.is_organization
	utils.in_context
	utils.has_perm("worker")
	utils.is_member
	is_comment_staff
}

# --- lists ---

own := [
	"|",
	{"owner_id": user_id},
	{"issue__owner_id": user_id},
	{"issue__assignee_id": user_id},
	{"issue__job__assignee_id": user_id},
	{"issue__job__task__owner_id": user_id},
	{"issue__job__task__assignee_id": user_id},
	{"issue__job__task__project__owner_id": user_id},
	{"issue__job__task__project__assignee_id": user_id},
]

filter := utils.scoped("organization_id", {}) if utils.is_admin
else := utils.scoped("organization_id", {}) if org_staff
else := utils.scoped("organization_id", own) if utils.is_sandbox
else := utils.scoped("organization_id", own) if utils.is_member
else := utils.nothing
