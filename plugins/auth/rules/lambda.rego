# Auto-annotation models (CVAT's lambda functions): every signed-in user sees them; running one
# (online on a frame, or as a request over a task or job) takes at least the worker privilege and,
# in an organization, membership. Running one also needs the right to change the annotations of
# the task or job, which the tasks and jobs policies decide.
package lambda

import data.utils

default allow := false

allow if utils.is_admin

allow if {
	input.scope in {"list", "view"}
	input.auth.user.id != null
}

allow if {
	input.scope in {"call:online", "call:offline"}
	utils.is_sandbox
	utils.has_perm("worker")
}

allow if {
	input.scope in {"call:online", "call:offline"}
	utils.is_organization
	utils.has_perm("worker")
	utils.has_role("worker")
}
