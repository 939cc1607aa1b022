"""The HTTP runtime: ASGI app, routes, settings, queues, worker and CLI."""

# the core first: it loads the native libraries that must precede any other C++ code
import annota.core  # noqa: F401
