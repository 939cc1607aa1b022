# Background requests (exports, imports, task creation): only the user who started one sees,
# cancels or downloads it; lists keep to the request's context.
package requests

import data.utils

default allow := false

allow if utils.is_admin

allow if {
	input.scope in {"view", "cancel", "update", "delete", "download:exported_file"}
	utils.is_owner(input.resource)
}

filter := utils.scoped("org_id", {}) if utils.is_admin
else := utils.scoped("org_id", {"owner_id": input.auth.user.id})
