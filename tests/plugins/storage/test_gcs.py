"""The ``gcs`` storage backend against fake-gcs-server on 127.0.0.1: the shared contract, V4
signed URLs from a service-account key, the credential forms, and failures (a missing bucket, an
unreachable endpoint, a missing extra). Every client gets a token or a key whose token endpoint
is on loopback, so nothing asks a metadata server or Google for credentials."""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from annota.core.cloud import BucketNotFound
from annota.core.errors import ConfigError
from annota.core.plugins import PluginManager
from annota.core.storage import StorageError
from annota.plugins.storage.gcs import MISSING_EXTRA, Config, GCSStorage, create
from tests.cloud_emulators import FakeGcs, free_port, require_module
from tests.plugins.storage.contract import *  # noqa: F403 - the shared contract, run on this backend
from tests.plugins.storage.contract import keys, run

require_module("google.cloud.storage")


@pytest.fixture
def storage(fake_gcs: FakeGcs) -> GCSStorage:
    return create(Config(**fake_gcs.settings(fake_gcs.create_bucket())), None)


def test_the_key_prefix_keeps_objects_inside_it(fake_gcs: FakeGcs) -> None:
    bucket = fake_gcs.create_bucket()
    tenant = create(Config(**fake_gcs.settings(bucket, prefix="tenant-a")), None)
    everything = create(Config(**fake_gcs.settings(bucket)), None)

    async def scenario() -> None:
        await tenant.put("data/1/a.jpg", b"a", content_type="image/jpeg")
        await everything.put("tenant-ab/x", b"b")
        assert await keys(tenant) == ["data/1/a.jpg"]
        assert (await tenant.stat("data/1/a.jpg")).content_type == "image/jpeg"
        assert await keys(everything) == ["tenant-a/data/1/a.jpg", "tenant-ab/x"]
        assert await tenant.delete_prefix("data") == 1

    run(scenario)


class TokenEndpoint(BaseHTTPRequestHandler):
    """OAuth's token endpoint on loopback: any signed assertion gets a token."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"access_token": "loopback-token", "expires_in": 3600, "token_type": "Bearer"})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def token_uri() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), TokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/token"
    server.shutdown()


def service_account_key(token_uri: str) -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "type": "service_account",
        "project_id": "annota-test",
        "private_key_id": "1",
        "private_key": pem.decode(),
        "client_email": "annota@annota-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }


def test_a_service_account_key_file_signs_urls_a_plain_http_client_follows(
    fake_gcs: FakeGcs, token_uri: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(service_account_key(token_uri)))
    settings = fake_gcs.settings(fake_gcs.create_bucket(), prefix="p", bearer_token="")
    storage = create(Config(**settings, service_account_key_file=str(key_file)), None)

    async def scenario() -> str | None:
        await storage.put("data/1/raw/a b.jpg", b"jpeg bytes")
        return await storage.presigned_url("data/1/raw/a b.jpg", dt.timedelta(minutes=5))

    url = run(scenario)
    assert url is not None and "X-Goog-Signature=" in url and url.startswith(fake_gcs.endpoint)
    assert "X-Goog-Credential=annota%40annota-test.iam.gserviceaccount.com" in url
    response = httpx.get(url)
    assert (response.status_code, response.content) == (200, b"jpeg bytes")


def test_without_a_signing_key_there_is_no_presigned_url(storage: GCSStorage) -> None:
    assert run(lambda: storage.presigned_url("a.jpg", dt.timedelta(minutes=5))) is None


def test_a_large_stream_goes_in_resumable_parts_and_arrives_whole(storage: GCSStorage) -> None:
    import os

    data = os.urandom(20 * 1024 * 1024 + 5)

    async def parts() -> Any:
        for start in range(0, len(data), 1 << 20):
            yield data[start : start + (1 << 20)]

    async def scenario() -> bytes:
        info = await storage.put("video.mp4", parts())
        assert info.size == len(data) and info.content_type == "video/mp4"
        return await storage.read("video.mp4")

    assert run(scenario) == data


# --- failures -------------------------------------------------------------------------------


def test_a_missing_bucket_fails_check_and_writes(fake_gcs: FakeGcs) -> None:
    storage = create(Config(**fake_gcs.settings("no-such-bucket")), None)

    async def scenario() -> None:
        with pytest.raises(BucketNotFound, match="gcs bucket 'no-such-bucket' is not reachable"):
            await storage.check()
        with pytest.raises(StorageError, match="no-such-bucket"):
            await storage.put("a", b"x")

    run(scenario)


def test_an_unreachable_endpoint_fails_check_quickly() -> None:
    config = Config(
        bucket="b",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        bearer_token="t",
        max_retries=0,
        timeout=2.0,
    )
    with pytest.raises(StorageError, match="not reachable"):
        run(create(config, None).check)


# --- configuration --------------------------------------------------------------------------


def test_the_configuration_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a bucket name"):
        create(Config(bearer_token="t"), None)
    with pytest.raises(ConfigError, match="give one of bearer_token, anonymous, not several"):
        create(Config(bucket="b", bearer_token="t", anonymous=True), None)
    with pytest.raises(ConfigError, match="service_account_key_file: not a usable service-account key"):
        create(Config(bucket="b", service_account_key_file=str(tmp_path / "missing.json")), None)
    with pytest.raises(ConfigError, match="service_account_key: not a usable service-account key"):
        create(Config(bucket="b", service_account_key='{"type": "service_account"}'), None)


def test_settings_come_from_the_environment_with_secrets_from_files(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    manager = PluginManager()
    manager.load_entry_points()
    manager.configure(
        {"gcs": {"bearer_token": {"file": str(token)}}},
        {"ANNOTA_GCS_BUCKET": "media", "ANNOTA_GCS_MAX_CONCURRENCY": "4", "ANNOTA_GCS_ANONYMOUS": "false"},
    )
    config = manager.config("gcs")
    assert (config.bucket, config.max_concurrency, config.anonymous) == ("media", 4, False)
    assert create(config, None).client._credentials.token == "secret-token"


def test_selecting_gcs_without_google_cloud_storage_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.cloud.storage", None)
    with pytest.raises(ConfigError, match=r"pip install 'annota\[gcs\]'"):
        create(Config(bucket="media", bearer_token="t"), None)
    assert "annota[gcs]" in MISSING_EXTRA
