# Memberships: CVAT's memberships matrix. `input.resource.role` is the role the rule is judged on:
# a role change is asked twice, for the membership's current role and for the role it would get,
# so that nobody hands out a role they could not manage.
package memberships

import data.utils

default allow := false

allow if utils.is_admin

same_organization if input.resource.organization.id == input.auth.organization.id

is_self if input.resource.user.id == input.auth.user.id

allow if {
	input.scope == "list"
	utils.is_sandbox
}

allow if {
	input.scope == "list"
	utils.is_member
}

# one's own membership, active or still an invitation
allow if {
	input.scope == "view"
	is_self
	same_organization
}

allow if {
	input.scope == "view"
	same_organization
	utils.is_org_staff
}

allow if {
	input.scope == "view"
	same_organization
	utils.is_member
	input.resource.is_active
}

# maintainers manage supervisors and workers other than themselves
allow if {
	input.scope in {"change:role", "delete"}
	same_organization
	utils.has_perm("user")
	utils.role == "maintainer"
	# named positively: OPA leaves `not <missing role> in {…}` undefined where rego-cpp allows
	input.resource.role in {"supervisor", "worker"}
	not is_self
}

# the owner manages everyone but themselves; nobody else can become the owner
allow if {
	input.scope in {"change:role", "delete"}
	same_organization
	utils.has_perm("user")
	utils.is_org_owner
	input.resource.role != "owner"
	not is_self
}

# members leave, except the owner
allow if {
	input.scope == "delete"
	same_organization
	utils.has_perm("worker")
	utils.is_member
	input.resource.is_active
	is_self
	input.resource.role != "owner"
}

filter := {} if {
	utils.is_admin
	utils.is_sandbox
}
else := ["&", {"user_id": input.auth.user.id}, {"is_active": true}] if utils.is_sandbox
else := {"organization_id": input.auth.organization.id} if utils.is_admin
else := {"organization_id": input.auth.organization.id} if utils.is_org_staff
else := ["&", {"organization_id": input.auth.organization.id}, {"is_active": true}] if utils.is_member
else := utils.nothing
