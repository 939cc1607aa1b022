# Quality settings: whoever works in the sandbox or an organization lists them; the server keeps
# the list to the settings of tasks and projects the caller may see, and asks the tasks and projects
# packages about one object (view: "view", change: "update:desc"), as CVAT does.
package quality_settings

import data.utils

default allow := false

allow if utils.is_admin

allow if {
	input.scope == "list"
	input.auth.user.id != null
	utils.is_sandbox
}

allow if {
	input.scope == "list"
	utils.is_member
}
