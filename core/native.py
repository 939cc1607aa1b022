"""Native libraries that must be loaded before any other C++ code in the process.

rego-cpp's shared library (behind ``regopy``, the embedded policy evaluator) defines its own global
``operator new`` and ``operator delete``. Loaded after another C++ runtime (OpenCV, greenlet), its
allocations and frees are served by different allocators: every policy decision leaks memory, or
the process aborts on an invalid free. Loaded first and globally, one allocator serves the whole
process.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os

_loaded = False


def preload() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    spec = importlib.util.find_spec("regopy")
    if spec is None or spec.origin is None:
        return
    library = os.path.join(os.path.dirname(spec.origin), "librego_shared.so")
    if os.path.exists(library):
        ctypes.CDLL(library, mode=ctypes.RTLD_GLOBAL)
