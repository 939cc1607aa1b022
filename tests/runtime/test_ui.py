"""The web UI served from the API's origin: a fake single-page app made here, never a real build."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from annota.core.errors import ConfigError
from annota.runtime.app import create_app
from annota.runtime.cli import main
from annota.runtime.settings import Settings
from annota.runtime.ui import accepted_encodings, is_hashed

INDEX = b"<!doctype html><title>fake app</title><script src='/assets/app.3f9a1c7e.js'></script>"
SCRIPT = b"console.log('fake app');" * 40


@pytest.fixture
def ui_dir(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "assets" / "app.3f9a1c7e.js").write_bytes(SCRIPT)
    (root / "assets" / "app.3f9a1c7e.js.gz").write_bytes(gzip.compress(SCRIPT))
    (root / "assets" / "app.3f9a1c7e.js.br").write_bytes(b"pretend-brotli")
    (root / "assets" / "style.0a1b2c3d4e.css").write_bytes(b"body{}")
    (root / "favicon.ico").write_bytes(b"\x00\x00\x01\x00")
    (root / ".env").write_bytes(b"SECRET=1")
    (tmp_path / "outside.txt").write_bytes(b"not served")
    return root


@pytest.fixture
def annota_settings(annota_settings: Settings, ui_dir: Path) -> Settings:
    annota_settings.ui_dir = str(ui_dir)
    return annota_settings


def test_index_and_deep_links_answer_the_app(annota_client: TestClient) -> None:
    for path in ("/", "/tasks/3/jobs/7", "/auth/login", "/index.html"):
        response = annota_client.get(path)
        assert response.status_code == 200, path
        assert response.content == INDEX
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
    assert annota_client.head("/projects").status_code == 200


def test_hashed_assets_are_immutable_and_precompressed(annota_client: TestClient) -> None:
    plain = annota_client.get("/assets/app.3f9a1c7e.js", headers={"Accept-Encoding": "identity"})
    assert plain.content == SCRIPT and "content-encoding" not in plain.headers
    assert plain.headers["content-type"] == "text/javascript; charset=utf-8"
    assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert plain.headers["vary"] == "Accept-Encoding"
    zipped = annota_client.get("/assets/app.3f9a1c7e.js", headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.content == SCRIPT  # httpx inflates
    brotli = annota_client.get(
        "/assets/app.3f9a1c7e.js", headers={"Accept-Encoding": "gzip, br"}, extensions={}
    )
    assert brotli.headers["content-encoding"] == "br"
    refused = annota_client.get("/assets/app.3f9a1c7e.js", headers={"Accept-Encoding": "br;q=0, gzip"})
    assert refused.headers["content-encoding"] == "gzip"
    css = annota_client.get("/assets/style.0a1b2c3d4e.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert css.headers["cache-control"].endswith("immutable")
    icon = annota_client.get("/favicon.ico")
    assert icon.headers["cache-control"] == "no-cache" and icon.headers["content-type"] == "image/x-icon"
    again = annota_client.get("/assets/style.0a1b2c3d4e.css", headers={"If-None-Match": css.headers["etag"]})
    assert again.status_code == 304


def test_api_paths_and_missing_files_stay_404(annota_client: TestClient) -> None:
    for path in ("/api/nothing-here", "/api/tasks/1/nothing", "/api"):
        response = annota_client.get(path)
        assert response.status_code == 404 and response.json() == {"detail": "Not found."}, path
    assert annota_client.post("/api/nothing-here").status_code == 404
    assert annota_client.get("/api/server/about").json()["name"] == "annota"
    missing = annota_client.get("/assets/app.00000000.js")
    assert missing.status_code == 404 and b"fake app" not in missing.content
    for path in ("/.env", "/../outside.txt", "/assets/../../outside.txt", "/%2e%2e/outside.txt"):
        response = annota_client.get(path)
        assert b"SECRET" not in response.content and b"not served" not in response.content, path
    assert annota_client.post("/tasks").status_code == 404


def test_the_logo_is_served_and_named_by_about(annota_client: TestClient) -> None:
    about = annota_client.get("/api/server/about").json()
    assert about["logo_url"] == "http://testserver/static/logo.svg"
    logo = annota_client.get("/static/logo.svg")
    assert logo.status_code == 200 and logo.headers["content-type"] == "image/svg+xml"
    assert logo.content.startswith(b"<svg") and b"annota" in logo.content


def test_a_directory_without_index_stops_the_start(tmp_path: Path, annota_settings: Settings) -> None:
    annota_settings.ui_dir = str(tmp_path / "empty")
    with pytest.raises(ConfigError, match="index.html"):
        create_app(annota_settings)
    result = CliRunner().invoke(main, ["serve", "--ui", str(tmp_path), "--data-dir", str(tmp_path / "d")])
    assert result.exit_code != 0 and "index.html" in result.output


def test_names_with_a_content_hash() -> None:
    assert is_hashed("app.3f9a1c7e.js") and is_hashed("index-BzX9a3cQ.js") and is_hashed("3f9a1c7e0b.svg")
    assert (
        not is_hashed("index.html") and not is_hashed("favicon.ico") and not is_hashed("polyfill-ponyfill.js")
    )
    assert accepted_encodings("gzip;q=0.5, br;q=0, identity") == {"gzip", "identity"}
