"""Policy decisions do not grow the process's memory, whatever C++ libraries the server loaded
before the policy engine (OpenCV, greenlet): rego-cpp must not mix its allocator with theirs."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import os
import annota.runtime.state  # SQLAlchemy, greenlet, OpenCV: the server's own imports
import cv2
from annota.core.policies import PolicyRegistry
from annota.plugins.auth.embedded import CompiledBundle
from annota.plugins.auth.plugin import RULES

def resident():
    with open(f"/proc/{os.getpid()}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

registry = PolicyRegistry()
registry.register("auth", RULES)
bundle = CompiledBundle(registry.modules, remember=0)  # every decision evaluated
document = {
    "scope": "view",
    "auth": {"user": {"id": 3, "privilege": "user"}, "organization": None, "organization_specified": False},
    "resource": {"owner": {"id": 3}, "assignee": {"id": None}, "organization": {"id": None}, "project": None},
}
for _ in range(300):
    assert bundle.query("tasks", "allow", document) is True
before = resident()
for _ in range(2000):
    bundle.query("tasks", "allow", document)
print((resident() - before) / 2000)
"""


def test_policy_decisions_do_not_leak_memory() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    bytes_per_decision = float(result.stdout.strip().splitlines()[-1])
    # without the preload each decision kept tens of kilobytes
    assert bytes_per_decision < 1024, f"{bytes_per_decision:.0f} bytes kept per decision"
