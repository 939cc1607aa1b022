"""Services: the rules of the domain, shared by HTTP handlers, the CLI and workers."""
