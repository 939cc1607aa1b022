"""Shared fixtures for the authorization tests: the installed plugins' policy bundle and an OPA
server evaluating it.

To run API tests with decisions made on the OPA server, point the app at it::

    @pytest.fixture
    def annota_settings(annota_settings, opa_server):
        annota_settings.plugin_settings = {"auth": {"opa_url": opa_server.url}}
        return annota_settings
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from annota.core.policies import PolicyRegistry
from annota.runtime.settings import Settings
from annota.runtime.state import collect_policies, load_plugins
from annota.testing.opa_server import OpaServer
from tests.plugins.auth.engines import Twin

#: the engines the policy tests asked, for the run's summary
ENGINE_TIMES = pytest.StashKey[list[Twin]]()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def installed_policies() -> PolicyRegistry:
    """Every installed plugin's Rego modules, collected as an app collects them."""
    return collect_policies(load_plugins(Settings()))


@pytest.fixture
def opa_server(installed_policies: PolicyRegistry) -> Iterator[OpaServer]:
    """A running OPA server with ``installed_policies`` loaded (``opa_server.url``)."""
    with OpaServer(registry=installed_policies) as server:
        yield server


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    for twin in config.stash.get(ENGINE_TIMES, []):
        spent = ", ".join(f"{engine} {seconds:.1f} s" for engine, seconds in twin.seconds.items())
        terminalreporter.write_line(f"policy decisions asked of both engines: {twin.asked} ({spent})")
