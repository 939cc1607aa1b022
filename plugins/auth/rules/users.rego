# Users: as in CVAT, people see themselves and the members of the organizations they share;
# they edit their own account (names and username), account status and deletion are for
# administrators.
package users

import data.utils

default allow := false

allow if utils.is_admin

allow if {
	input.scope == "list"
	input.auth.user.id != null
}

allow if {
	input.scope == "view"
	input.resource.id == input.auth.user.id
}

# in an organization's context, its members
allow if {
	input.scope == "view"
	utils.is_member
	utils.organization.id in input.resource.organizations
}

# naming no context, the members of any organization both belong to
allow if {
	input.scope == "view"
	not utils.is_organization
	not input.auth.organization_specified
	some id in input.resource.organizations
	id in input.auth.member_of
}

allow if {
	input.scope == "update:personal_data"
	input.resource.id == input.auth.user.id
}

filter := ["|", {"member_of": utils.organization.id}] if utils.is_organization
else := {} if utils.is_admin
else := ["|", {"id": input.auth.user.id}] if input.auth.organization_specified
else := array.concat(["|", {"id": input.auth.user.id}], [{"member_of": id} | some id in input.auth.member_of]) if {
	is_array(input.auth.member_of)
}
else := ["|", {"id": input.auth.user.id}]
