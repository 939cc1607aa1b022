# Cloud storages: CVAT's cloudstorages matrix. In the sandbox a cloud storage is its owner's alone:
# users create them, owners see, list and change theirs. In an organization maintainers and owners
# create and change any, supervisors see every one, and other members see and change their own.
package cloudstorages

import data.utils

storage := input.resource

user_id := input.auth.user.id

is_storage_owner if utils.is_owner(storage)

default allow := false

allow if utils.is_admin

# --- sandbox ---

allow if {
	input.scope == "create"
	utils.is_sandbox
	utils.has_perm("user")
}

allow if {
	input.scope in {"view", "list:content"}
	utils.is_sandbox
	utils.in_context
	is_storage_owner
}

allow if {
	input.scope in {"update", "delete"}
	utils.is_sandbox
	utils.in_context
	utils.has_perm("worker")
	is_storage_owner
}

# --- organization ---

allow if {
	input.scope == "create"
	utils.is_organization
	utils.has_perm("user")
	utils.has_role("maintainer")
}

allow if {
	input.scope in {"view", "list:content"}
	utils.is_organization
	utils.in_context
	utils.has_role("supervisor")
}

allow if {
	input.scope in {"view", "list:content"}
	utils.is_organization
	utils.in_context
	utils.is_member
	is_storage_owner
}

allow if {
	input.scope in {"update", "delete"}
	utils.is_organization
	utils.in_context
	utils.has_perm("user")
	utils.has_role("maintainer")
}

allow if {
	input.scope in {"update", "delete"}
	utils.is_organization
	utils.in_context
	utils.has_perm("worker")
	utils.is_member
	is_storage_owner
}

# --- lists ---

own := {"owner_id": user_id}

filter := utils.scoped("organization_id", {}) if utils.is_admin
else := utils.scoped("organization_id", {}) if {
	utils.is_organization
	utils.has_role("supervisor")
}
else := utils.scoped("organization_id", own) if utils.is_sandbox
else := utils.scoped("organization_id", own) if utils.is_member
else := utils.nothing
