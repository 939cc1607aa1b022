# Organizations: CVAT's organizations matrix. The resource carries the caller's own role in the
# organization (`input.resource.user.role`, active memberships only), because the request's
# context is not necessarily the organization being looked at.
package organizations

import data.utils

default allow := false

allow if utils.is_admin

allow if {
	input.scope == "create"
	utils.has_perm("user")
}

allow if {
	input.scope == "list"
	input.auth.user.id != null
}

# its owner, and its members
allow if {
	input.scope == "view"
	utils.is_owner(input.resource)
}

allow if {
	input.scope == "view"
	input.resource.user.role != null
}

# the owner and maintainers edit the name, description, contact and slug
allow if {
	input.scope == "update"
	utils.has_perm("worker")
	utils.is_owner(input.resource)
}

allow if {
	input.scope == "update"
	utils.has_perm("worker")
	input.resource.user.role in {"owner", "maintainer"}
}

# only the owner deletes it, and everything in it with it
allow if {
	input.scope == "delete"
	utils.has_perm("worker")
	utils.is_owner(input.resource)
}

filter := {} if utils.is_admin
else := ["|", {"active_member_id": input.auth.user.id}, {"owner_id": input.auth.user.id}]
