"""``GET /api/auth/rules``: the policy bundle an OPA server downloads, with every plugin's modules."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from annota.core import hookimpl
from annota.plugins.auth.plugin import RULES

EXTRA_RULE = """package annota_extra

import rego.v1

default allow := false
"""


class ExtraPolicies:
    """A plugin adding one module, to see every plugin's policies in the bundle."""

    def __init__(self, directory: Path) -> None:
        self.file = directory / "annota_extra.rego"
        self.file.write_text(EXTRA_RULE)

    @hookimpl
    def register_policies(self, register: Any) -> None:
        register(self.file)


@pytest.fixture
def annota_database_url(sqlite_database_url: str) -> str:
    # the bundle does not depend on the database: SQLite only
    return sqlite_database_url


@pytest.fixture
def annota_plugins(tmp_path: Path) -> dict[str, Any]:
    return {"extra-policies": ExtraPolicies(tmp_path)}


def unpack(archive: bytes) -> dict[str, str]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {
            member.name: tar.extractfile(member).read().decode()  # type: ignore[union-attr]
            for member in tar.getmembers()
        }


def test_bundle_holds_every_registered_module_and_a_manifest(annota_client):
    response = annota_client.get("/api/auth/rules")  # anonymous, as OPA downloads it
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/gzip"
    files = unpack(response.content)
    manifest = json.loads(files.pop(".manifest"))

    registry = annota_client.app.state.annota.policies
    assert files == {module.name: module.source for module in registry.modules}
    # the auth plugin's files exactly as on disk, the other plugins' next to them
    for path in RULES.glob("*.rego"):
        assert files[path.name] == path.read_text()
    assert files["annota_extra.rego"] == EXTRA_RULE
    assert "webhooks.rego" in files
    assert manifest["revision"] == registry.digest()
    assert manifest["roots"] == sorted(registry.packages)
    assert "annota_extra" in manifest["roots"] and "tasks" in manifest["roots"]
    assert response.headers["etag"] == f'"{registry.digest()}"'


def test_unchanged_bundle_answers_304_to_its_etag(annota_client):
    first = annota_client.get("/api/auth/rules")
    etag = first.headers["etag"]

    again = annota_client.get("/api/auth/rules", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag

    stale = annota_client.get("/api/auth/rules", headers={"If-None-Match": '"an-older-revision"'})
    assert stale.status_code == 200
    # built once per revision: the same bytes every time
    assert stale.content == first.content
