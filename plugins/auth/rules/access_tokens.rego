# Personal access tokens: users with a privilege list and create their own; only the owner sees,
# changes or revokes one. Lists are personal, administrators' included.
package access_tokens

import data.utils

default allow := false

allow if utils.is_admin

allow if {
	input.scope in {"list", "create"}
	utils.has_perm("worker")
}

allow if {
	input.scope in {"view", "update", "delete"}
	utils.has_perm("worker")
	utils.is_owner(input.resource)
}

filter := {"owner_id": input.auth.user.id} if utils.has_perm("worker")
else := utils.nothing
