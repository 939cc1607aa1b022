"""annota's built-in plugins, each registered through the ``annota`` entry-point group."""

# the core first: it loads the native libraries that must precede any other C++ code
import annota.core  # noqa: F401
