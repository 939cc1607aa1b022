# The server's own information is open to every signed-in user.
package server

import data.utils

default allow := false

allow if utils.is_admin

allow if {
	input.scope in {"view", "list:content", "view:plugins"}
	input.auth.user.id != null
}
