# Asked in addition to a resource's own policy when the request carries a personal access token:
# a read-only token reads (views, lists, downloads, exports) and changes nothing.
package access_token_plugin

default allow := false

read_scopes := {"view", "list", "download:exported_file", "list:content"}

allow if not input.auth.token.read_only

allow if input.scope in read_scopes

allow if {
	is_string(input.scope) # OPA fails on startswith of a non-string, rego-cpp is undefined
	startswith(input.scope, "view:")
}

# an export writes only a result file for the caller, not the exported object; one sent to a
# cloud storage writes into a bucket, which a read-only token may not
allow if {
	is_string(input.scope)
	startswith(input.scope, "export:")
	not input.resource.destination == "cloud_storage"
}
