# Users: anyone signed in may look users up and edit their own names; account status and
# deletion are for administrators.
package users

import data.utils

default allow := false

allow if utils.is_admin

allow if {
	input.scope in {"view", "list"}
	input.auth.user.id != null
}

allow if {
	input.scope == "update:personal_data"
	input.resource.id == input.auth.user.id
}

filter := {}
