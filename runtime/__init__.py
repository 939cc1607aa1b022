"""The HTTP runtime: ASGI app, routes, settings, queues, worker and CLI."""
