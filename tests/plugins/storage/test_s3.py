"""The ``s3`` storage backend against moto's S3 server on 127.0.0.1: the shared contract, the
bucket key prefix, presigned URLs, the configuration, and failures (missing bucket, a server that
goes away mid-upload)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from annota.core.errors import ConfigError
from annota.core.plugins import PluginManager
from annota.core.storage import StorageError
from annota.plugins.storage.s3 import MISSING_EXTRA, Config, S3Storage, build_store, create
from tests.moto_s3 import Moto
from tests.plugins.storage.contract import *  # noqa: F403 - the shared contract, run on this backend
from tests.plugins.storage.contract import keys, run

pytest.importorskip("obstore")


@pytest.fixture
def storage(moto: Moto) -> S3Storage:
    return create(Config(**moto.settings(moto.create_bucket())), None)


def raw_keys(moto: Moto, bucket: str) -> list[str]:
    """Every key in the bucket, read past the backend (and its prefix)."""
    store = build_store(Config(**moto.settings(bucket)))

    async def scenario() -> list[str]:
        return await keys(S3Storage(store, bucket=bucket))

    return run(scenario)


# --- S3 specifics ---------------------------------------------------------------------------


def test_the_key_prefix_keeps_objects_inside_it(moto: Moto) -> None:
    bucket = moto.create_bucket()
    tenant = create(Config(**moto.settings(bucket, prefix="tenant-a/")), None)
    other = create(Config(**moto.settings(bucket, prefix="tenant-b")), None)

    async def scenario() -> None:
        await tenant.put("data/1/a.jpg", b"a", content_type="image/jpeg")
        await other.put("data/1/a.jpg", b"b")
        assert await keys(tenant) == ["data/1/a.jpg"]
        assert await tenant.read("data/1/a.jpg") == b"a"
        assert (await tenant.stat("data/1/a.jpg")).content_type == "image/jpeg"
        assert await tenant.delete_prefix("data/") == 1

    run(scenario)
    assert raw_keys(moto, bucket) == ["tenant-b/data/1/a.jpg"]


def test_presigned_urls_give_the_object_to_a_plain_http_client(storage: S3Storage) -> None:
    async def scenario() -> str | None:
        await storage.put("data/1/raw/a.jpg", b"jpeg bytes")
        return await storage.presigned_url("data/1/raw/a.jpg", dt.timedelta(minutes=5))

    url = run(scenario)
    assert url is not None and "X-Amz-Signature=" in url and url.startswith("http://127.0.0.1:")
    assert httpx.get(url).content == b"jpeg bytes"


def test_large_streamed_uploads_go_in_parts_and_arrive_whole(storage: S3Storage) -> None:
    data = os.urandom(12 * 1024 * 1024 + 17)

    async def parts() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 1 << 20):
            yield data[start : start + (1 << 20)]

    async def scenario() -> bytes:
        info = await storage.put("video.mp4", parts())
        assert info.size == len(data) and info.content_type == "video/mp4"
        # a multipart upload's ETag ("<md5 of the parts' md5s>-<parts>"), as the put answered it
        assert "-" in info.etag and info.etag == (await storage.stat("video.mp4")).etag
        return await storage.read("video.mp4")

    assert run(scenario) == data


# --- failures -------------------------------------------------------------------------------


def test_a_missing_bucket_fails_check_and_every_request(moto: Moto) -> None:
    storage = create(Config(**moto.settings("no-such-bucket")), None)

    async def scenario() -> None:
        with pytest.raises(StorageError, match="'no-such-bucket' is not reachable"):
            await storage.check()
        with pytest.raises(StorageError, match="no-such-bucket"):
            await storage.put("a", b"x")

    run(scenario)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_endpoint_fails_check_quickly() -> None:
    config = Config(
        bucket="bucket",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region="us-east-1",
        access_key_id="k",
        secret_access_key="s",
        max_retries=0,
        timeout=2.0,
    )

    async def scenario() -> None:
        with pytest.raises(StorageError, match="not reachable"):
            await asyncio.wait_for(create(config, None).check(), 10)

    run(scenario)


def test_a_server_that_stops_mid_upload_is_a_clear_error_and_stores_nothing() -> None:
    server = Moto()
    bucket = server.create_bucket()
    storage = create(Config(**server.settings(bucket)), None)
    stopped = False

    async def upload() -> AsyncIterator[bytes]:
        nonlocal stopped
        for index in range(20):
            if index == 8 and not stopped:
                # the emulator goes away after the first parts are sent
                await asyncio.to_thread(server.stop)
                stopped = True
            yield os.urandom(1 << 20)

    async def scenario() -> None:
        await storage.put("keep", b"previous")
        with pytest.raises(StorageError, match=f"bucket '{bucket}': cannot store 'video.bin'"):
            await storage.put("video.bin", upload())

    try:
        run(scenario)
    finally:
        if not stopped:
            server.stop()
    assert stopped
    # moto keeps its buckets in the process: a new server shows what the old one stored
    restarted = Moto()
    try:
        assert raw_keys(restarted, bucket) == ["keep"]
    finally:
        restarted.stop()


# --- configuration --------------------------------------------------------------------------


def test_the_configuration_is_validated() -> None:
    with pytest.raises(ConfigError, match="needs a bucket name"):
        build_store(Config())
    with pytest.raises(ConfigError, match="both access_key_id and secret_access_key"):
        build_store(Config(bucket="b", access_key_id="only-the-id"))


def test_settings_come_from_the_environment_with_secrets_from_files(tmp_path: Any) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    manager = PluginManager()
    manager.load_entry_points()
    manager.configure(
        {"s3": {"secret_access_key": {"file": str(secret)}}},
        {
            "ANNOTA_S3_BUCKET": "media",
            "ANNOTA_S3_ADDRESSING_STYLE": "path",
            "ANNOTA_S3_REGION": "eu-west-1",
            "ANNOTA_S3_TIMEOUT": "2.5",
            "ANNOTA_S3_MAX_RETRIES": "1",
        },
    )
    config = manager.config("s3")
    assert (config.bucket, config.addressing_style, config.region) == ("media", "path", "eu-west-1")
    assert (config.timeout, config.max_retries) == (2.5, 1)
    assert config.secret_access_key.strip() == "from-a-file"
    with pytest.raises(ConfigError, match="addressing_style"):
        manager.configure({}, {"ANNOTA_S3_BUCKET": "media", "ANNOTA_S3_ADDRESSING_STYLE": "sideways"})


def test_selecting_s3_without_obstore_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "obstore", None)
    with pytest.raises(ConfigError, match=r"pip install 'annota\[s3\]'"):
        create(Config(bucket="media"), None)
    assert "annota[s3]" in MISSING_EXTRA


@pytest.fixture
def strict_moto(tmp_path: Any) -> Iterator[str]:
    """A moto server in its own process that checks credentials (moto's are process-wide)."""
    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    log = open(tmp_path / "moto.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "moto did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_wrong_credentials_fail_check(strict_moto: str) -> None:
    config = Config(
        bucket="some-bucket",
        endpoint_url=strict_moto,
        region="us-east-1",
        access_key_id="AKIAWRONGWRONGWRONG1",
        secret_access_key="wrong",
        max_retries=0,
    )

    async def scenario() -> None:
        with pytest.raises(StorageError, match="(?s)'some-bucket' is not reachable.*InvalidAccessKeyId"):
            await create(config, None).check()

    run(scenario)
