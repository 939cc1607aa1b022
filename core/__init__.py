"""annota's core: the domain model, wire types, services and the plugin contract.

Third-party plugins import from here (``from annota.core import hookimpl``) and from nothing
in ``annota.runtime`` except the small web toolkit ``annota.runtime.web``.
"""

from annota.core import native

# before anything below (or any plugin) brings in another C++ runtime
native.preload()

import pluggy  # noqa: E402

__version__ = "0.1.0"

#: The CVAT API version annota speaks; clients compare it with their own.
CVAT_COMPATIBLE_VERSION = "2.80.0"

PROJECT_NAME = "annota"

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
hookspec = pluggy.HookspecMarker(PROJECT_NAME)

__all__ = ["CVAT_COMPATIBLE_VERSION", "PROJECT_NAME", "__version__", "hookimpl", "hookspec"]
