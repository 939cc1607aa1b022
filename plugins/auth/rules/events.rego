# Events (the analytics log): administrators read all of them, an organization's owners and
# maintainers its events; everyone else sees only events about themselves or about tasks and
# projects they may see (the server adds those).
package events

import data.utils

default allow := false

allow if utils.is_admin

allow if {
	input.scope == "list"
	input.auth.user.id != null
}

# the web UI reports its own events (analytics), whoever is signed in
allow if {
	input.scope == "send:events"
	input.auth.user.id != null
}

filter := utils.scoped("org_id", {}) if utils.is_admin
else := {"org_id": input.auth.organization.id} if {
	utils.is_organization
	utils.has_perm("user")
	utils.has_role("maintainer")
}
else := utils.nothing
