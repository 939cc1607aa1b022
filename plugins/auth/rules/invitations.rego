# Invitations: CVAT's invitations matrix. The resource names the inviter (`owner`), the invitee
# (`invitee`), the role offered and the organization. An invitation is always about an
# organization, so it is judged in that organization's context (the invitee's role there is none).
package invitations

import data.utils

default allow := false

allow if utils.is_admin

same_organization if input.resource.organization.id == input.auth.organization.id

is_inviter if utils.is_owner(input.resource)

is_invitee if input.resource.invitee.id == input.auth.user.id

allow if {
	input.scope == "list"
	utils.is_sandbox
}

allow if {
	input.scope == "list"
	utils.is_member
}

# maintainers invite supervisors and workers, the owner anyone but another owner
allow if {
	input.scope == "create"
	same_organization
	utils.has_perm("user")
	utils.role == "maintainer"
	# named positively: OPA leaves `not <missing role> in {…}` undefined where rego-cpp allows
	input.resource.role in {"supervisor", "worker"}
}

allow if {
	input.scope == "create"
	same_organization
	utils.has_perm("user")
	utils.is_org_owner
	input.resource.role != "owner"
}

allow if {
	input.scope == "view"
	same_organization
	is_inviter
}

allow if {
	input.scope == "view"
	same_organization
	is_invitee
}

allow if {
	input.scope in {"view", "resend", "delete"}
	same_organization
	utils.has_perm("user")
	utils.is_org_staff
}

allow if {
	input.scope in {"resend", "delete"}
	utils.has_perm("worker")
	same_organization
	is_inviter
}

allow if {
	input.scope in {"accept", "decline"}
	same_organization
	is_invitee
}

mine := ["|", {"owner_id": input.auth.user.id}, {"membership__user_id": input.auth.user.id}]

filter := {} if {
	utils.is_admin
	utils.is_sandbox
}
else := mine if utils.is_sandbox
else := {"membership__organization_id": input.auth.organization.id} if utils.is_admin
else := {"membership__organization_id": input.auth.organization.id} if {
	utils.is_org_staff
	utils.has_perm("user")
}
else := ["&", mine, {"membership__organization_id": input.auth.organization.id}] if utils.is_member
else := utils.nothing
