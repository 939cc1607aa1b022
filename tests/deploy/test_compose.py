"""``deploy/compose``: the files against the compose-spec schema, and what they must wire together
(checked on the interpolated, merged model, as ``docker compose config`` would produce it)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from annota.core.queue import QUEUES
from tests.deploy.tools import DEPLOY, tool

COMPOSE = DEPLOY / "compose"
FILES = (COMPOSE / "compose.yaml", COMPOSE / "compose.two-node.yaml")
VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")
SERVERS = ("server-1", "server-2")


def _environment(**extra: str) -> dict[str, str]:
    values = {}
    for line in (COMPOSE / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return {**values, **extra}


def _interpolate(node: Any, environ: dict[str, str]) -> Any:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` (an unset required one fails)."""
    if isinstance(node, dict):
        return {key: _interpolate(value, environ) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate(value, environ) for value in node]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        value = environ.get(name)
        if operator in (":-", "-"):
            return value if value else (argument or "")
        if operator in (":?", "?"):
            if not value:
                raise AssertionError(f"{name} is required: {argument}")
            return value
        return value or ""

    return VARIABLE.sub(substitute, node)


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list):
        return base + override
    return override


def _model(*files: Path, **environ: str) -> dict[str, Any]:
    model: dict[str, Any] = {}
    for path in files:
        model = _merge(model, _interpolate(yaml.safe_load(path.read_text()), _environment(**environ)))
    return model


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_files_follow_the_compose_spec(path: Path) -> None:
    checker = tool("check-jsonschema", "check-jsonschema")
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_interpolated_two_node_model_follows_the_compose_spec(tmp_path: Path) -> None:
    checker = tool("check-jsonschema", "check-jsonschema")
    model = _model(*FILES, ANNOTA_PRIVATE_ADDRESS="10.0.0.1", ANNOTA_NFS_SERVER="10.0.0.9")
    merged = tmp_path / "merged.yaml"
    merged.write_text(yaml.safe_dump(model))
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(merged)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert model["services"]["postgres"]["ports"] == ["10.0.0.1:5432:5432"]
    assert model["volumes"]["data"]["driver_opts"]["o"].startswith("addr=10.0.0.9,")


def test_two_node_override_refuses_to_run_without_its_settings() -> None:
    with pytest.raises(AssertionError, match="ANNOTA_PRIVATE_ADDRESS is required"):
        _model(*FILES, ANNOTA_NFS_SERVER="10.0.0.9")


def test_migrations_run_once_before_servers_and_workers() -> None:
    services = _model(FILES[0])["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    runners = [name for name in services if name.startswith(("server-", "worker-"))]
    assert len(runners) == 5
    for name in runners:
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name


def test_servers_workers_and_their_settings() -> None:
    services = _model(FILES[0])["services"]
    for name in SERVERS:
        server = services[name]
        assert server["command"][:3] == ["serve", "--host", "0.0.0.0"]
        assert server["environment"]["PROMETHEUS_MULTIPROC_DIR"]
        assert (
            server["environment"]["ANNOTA_DATABASE_URL"]
            == "postgresql://annota:change-me@postgres:5432/annota"
        )
        assert server["environment"]["ANNOTA_AUTH_OPA_URL"] == "http://opa:8181"
        assert "data:/var/lib/annota" in server["volumes"]
    served: list[str] = []
    for name, service in services.items():
        if name.startswith("worker-"):
            command = service["command"]
            assert command[0] == "worker" and "--metrics-port" in command, name
            served += [command[i + 1] for i, word in enumerate(command) if word == "--queue"]
    # every queue has exactly one worker group
    assert sorted(served) == sorted(QUEUES)


def test_nginx_proxies_the_api_and_keeps_metrics_private() -> None:
    services = _model(FILES[0])["services"]
    template = (COMPOSE / "nginx" / "annota.conf.template").read_text()
    assert "location /api/ {" in template and "proxy_pass http://annota;" in template
    assert "location /metrics" not in template
    upstreams = services["nginx"]["environment"]["ANNOTA_UPSTREAM_SERVERS"]
    assert upstreams == "server server-1:8080; server server-2:8080;"
    assert "${ANNOTA_UPSTREAM_SERVERS}" in template


def test_opa_loads_the_bundle_annota_publishes() -> None:
    config = yaml.safe_load((COMPOSE / "opa" / "config.yaml").read_text())
    bundle = config["bundles"]["annota"]
    service = config["services"][bundle["service"]]
    # OPA fetches <service url>/<resource>
    assert f"{service['url']}/{bundle['resource']}" == "http://nginx:8080/api/auth/rules"
    from annota.plugins.auth.routes import ROUTES

    assert any(path == "/api/auth/rules" for path, *_ in ROUTES)
    opa = _model(FILES[0])["services"]["opa"]
    assert "--config-file" in opa["command"] and "./opa/config.yaml:/config/config.yaml:ro" in opa["volumes"]


def test_minio_only_with_its_profile() -> None:
    services = _model(FILES[0])["services"]
    assert services["minio"]["profiles"] == ["minio"]
    assert all("profiles" not in service for name, service in services.items() if name != "minio")
