"""moto's S3 server on 127.0.0.1 for the tests of the ``s3`` storage backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

#: moto accepts any signature; an Authorization header names the (fake) account's key
AUTH = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request"


class Moto:
    """A moto S3 server on a free loopback port, and what is needed to make buckets in it."""

    def __init__(self) -> None:
        moto_server = pytest.importorskip("moto.server")
        self.server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.stop()

    def create_bucket(self) -> str:
        name = f"annota-{uuid.uuid4().hex[:12]}"
        response = httpx.put(f"{self.endpoint}/{name}", headers={"Authorization": AUTH})
        response.raise_for_status()
        return name

    def settings(self, bucket: str, **overrides: Any) -> dict[str, Any]:
        """The ``s3`` plugin's configuration for ``bucket`` on this server."""
        values: dict[str, Any] = {
            "bucket": bucket,
            "endpoint_url": self.endpoint,
            "region": "us-east-1",
            "access_key_id": "testing",
            "secret_access_key": "testing",
            "max_retries": 0,
            "timeout": 5.0,
        }
        values.update(overrides)
        return values


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    pytest.importorskip("obstore")
    server = Moto()
    try:
        yield server
    finally:
        server.stop()
