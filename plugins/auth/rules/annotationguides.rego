# Annotation guides follow their task or project: its owner and assignee read and write them (with
# at least the user privilege to write), whoever is assigned a job there reads them, and an
# organization's maintainers and owners do everything with those of the organization.
package annotationguides

import data.utils

default allow := false

target := input.resource.target

is_target_staff if target.owner.id == utils.user.id

is_target_staff if target.assignee.id == utils.user.id

allow if utils.is_admin

allow if {
	input.scope == "view"
	utils.in_context
	utils.has_perm("worker")
	utils.is_sandbox
	readers
}

allow if {
	input.scope in {"create", "update", "delete"}
	utils.in_context
	utils.is_sandbox
	utils.has_perm("user")
	is_target_staff
}

allow if {
	input.scope in {"create", "update", "delete", "view"}
	utils.in_context
	utils.is_organization
	utils.has_perm("user")
	utils.has_role("maintainer")
}

allow if {
	input.scope in {"create", "update", "delete"}
	utils.in_context
	utils.is_member
	utils.has_perm("user")
	is_target_staff
}

allow if {
	input.scope == "view"
	utils.in_context
	utils.is_member
	readers
}

readers if is_target_staff

readers if target.is_job_staff == true
