"""``/api/cloudstorages`` against S3 buckets on moto (127.0.0.1): CRUD, who may see and change a
cloud storage, credentials that never come back, the endpoint guard, content paging, status,
actions and preview."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from annota.core.db.tables import CloudStorage
from annota.runtime.settings import Settings
from tests.media import make_jpeg
from tests.moto_s3 import AUTH, Moto
from tests.runtime.api.test_organizations import join, people

pytest.importorskip("obstore")

SECRET = "very-secret-key-0123456789"


@pytest.fixture
def annota_settings(annota_settings: Settings) -> Settings:
    # moto listens on loopback, which the guard refuses by default
    annota_settings.cloud_storage_allow_private_endpoints = True
    return annota_settings


@pytest.fixture
def bucket(moto: Moto) -> str:
    return moto.create_bucket()


def put_object(moto: Moto, bucket: str, key: str, data: bytes) -> None:
    response = httpx.put(f"{moto.endpoint}/{bucket}/{key}", content=data, headers={"Authorization": AUTH})
    response.raise_for_status()


def storage_body(moto: Moto, bucket: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "provider_type": "AWS_S3_BUCKET",
        "resource": bucket,
        "display_name": "my bucket",
        "credentials_type": "KEY_SECRET_KEY_PAIR",
        "key": "testing",
        "secret_key": SECRET,
        "specific_attributes": f"region=us-east-1&endpoint_url={moto.endpoint}",
    }
    body.update(overrides)
    return body


def create_storage(
    client: Any, moto: Moto, bucket: str, headers: Any = None, **overrides: Any
) -> dict[str, Any]:
    response = client.post(
        "/api/cloudstorages", json=storage_body(moto, bucket, **overrides), headers=headers
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def test_crud_never_returns_or_stores_the_credentials_in_clear(
    user_client: Any, moto: Moto, bucket: str, run_async: Any
) -> None:
    created = create_storage(user_client, moto, bucket, manifests=[])
    assert created["provider_type"] == "AWS_S3_BUCKET"
    assert created["owner"]["username"] == "user1"
    assert created["organization"] is None
    assert created["resource"] == bucket
    storage_id = created["id"]
    for answer in (
        created,
        user_client.get(f"/api/cloudstorages/{storage_id}").json(),
        user_client.get("/api/cloudstorages").json()["results"][0],
    ):
        assert not {"key", "secret_key", "session_token", "credentials"} & answer.keys()
        assert SECRET not in str(answer)

    async def stored() -> str:
        app = user_client.app.state.annota
        async with app.sessionmaker() as session:
            return str(await session.scalar(select(CloudStorage.credentials)))

    assert SECRET not in run_async(stored)

    changed = user_client.patch(f"/api/cloudstorages/{storage_id}", json={"display_name": "renamed"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["display_name"] == "renamed"
    # the stored credentials still work after a change that did not name them
    assert user_client.get(f"/api/cloudstorages/{storage_id}/status").json() == "AVAILABLE"
    assert user_client.get(f"/api/cloudstorages/{storage_id}/actions").json() == ["read", "write"]
    assert user_client.delete(f"/api/cloudstorages/{storage_id}").status_code == 204
    assert user_client.get(f"/api/cloudstorages/{storage_id}").status_code == 404


def test_bad_input_is_refused_naming_the_field(user_client: Any, moto: Moto, bucket: str) -> None:
    def refused(field: str, **overrides: Any) -> str:
        response = user_client.post("/api/cloudstorages", json=storage_body(moto, bucket, **overrides))
        assert response.status_code == 400, response.text
        assert field in response.json(), response.json()
        return str(response.json()[field])

    refused("secret_key", secret_key="")
    refused("credentials_type", credentials_type="CONNECTION_STRING", connection_string="x")
    refused("resource", resource="Bad_Name")
    refused("specific_attributes", specific_attributes="prefix=../up")
    refused("specific_attributes", specific_attributes="color=blue")
    assert "not found" in refused("resource", resource=f"{bucket}-missing")
    assert "images.jsonl" in refused("manifests", manifests=["images.jsonl"])
    assert user_client.get("/api/cloudstorages").json()["count"] == 0


def test_private_endpoints_are_refused_at_creation_and_at_every_use(
    user_client: Any, moto: Moto, bucket: str
) -> None:
    created = create_storage(user_client, moto, bucket)
    settings = user_client.app.state.annota.settings
    settings.cloud_storage_allow_private_endpoints = False
    try:
        for endpoint in (moto.endpoint, "http://169.254.169.254", "http://[::1]:9000"):
            response = user_client.post(
                "/api/cloudstorages",
                json=storage_body(moto, bucket, specific_attributes=f"endpoint_url={endpoint}"),
            )
            assert response.status_code == 400, response.text
            assert "not a public address" in str(response.json()["specific_attributes"])
        # the storage saved while allowed is refused at its next connection
        for path in ("status", "content-v2", "preview", "actions"):
            response = user_client.get(f"/api/cloudstorages/{created['id']}/{path}")
            assert response.status_code == 400, (path, response.text)
            assert "127.0.0.1" in response.text
    finally:
        settings.cloud_storage_allow_private_endpoints = True


def test_only_the_owner_sees_a_sandbox_storage(make_user: Any, moto: Moto, bucket: str) -> None:
    alice, bob = people(make_user, "alice", "bob")
    created = create_storage(alice, moto, bucket)
    path = f"/api/cloudstorages/{created['id']}"
    assert bob.get(path).status_code == 403
    assert bob.get(f"{path}/content-v2").status_code == 403
    assert bob.patch(path, json={"display_name": "mine"}).status_code == 403
    assert bob.delete(path).status_code == 403
    assert bob.get("/api/cloudstorages").json()["count"] == 0
    # a worker (global privilege) creates none
    worker = make_user("walter", privilege="worker")
    assert worker.post("/api/cloudstorages", json=storage_body(moto, bucket)).status_code == 403


def test_organization_storages_follow_the_roles(make_user: Any, moto: Moto, bucket: str) -> None:
    owner, maintainer, supervisor, worker, outsider = people(
        make_user, "owner", "maint", "superv", "work", "out"
    )
    assert owner.post("/api/organizations", json={"slug": "acme"}).status_code == 201
    join(owner, maintainer, "acme", "maintainer")
    join(owner, supervisor, "acme", "supervisor")
    join(owner, worker, "acme", "worker")
    org = {"X-Organization": "acme"}
    created = create_storage(maintainer, moto, bucket, headers=org)
    assert created["organization"] is not None
    path = f"/api/cloudstorages/{created['id']}"
    assert worker.post("/api/cloudstorages", json=storage_body(moto, bucket), headers=org).status_code == 403
    assert (
        supervisor.post("/api/cloudstorages", json=storage_body(moto, bucket), headers=org).status_code == 403
    )
    assert supervisor.get(path, headers=org).status_code == 200
    assert supervisor.patch(path, json={"description": "x"}, headers=org).status_code == 403
    assert worker.get(path, headers=org).status_code == 403
    assert worker.get("/api/cloudstorages", headers=org).json()["count"] == 0
    assert supervisor.get("/api/cloudstorages", headers=org).json()["count"] == 1
    assert outsider.get(path).status_code == 403
    assert owner.patch(path, json={"description": "ours"}, headers=org).status_code == 200
    # the sandbox does not list the organization's storages
    assert maintainer.get("/api/cloudstorages", params={"org": ""}).json()["count"] == 0
    # the organization's storages go with it
    org_id = owner.get("/api/organizations").json()["results"][0]["id"]
    assert owner.delete(f"/api/organizations/{org_id}").status_code == 204
    assert owner.get(path).status_code == 404


def test_content_pages_through_files_and_folders(user_client: Any, moto: Moto, bucket: str) -> None:
    # "dir1/" is a folder marker, as consoles create them
    for key in (
        "a.jpg",
        "b.png",
        "c.txt",
        "dir1/x.jpg",
        "dir1/sub/y.jpg",
        "dir2/z.jpg",
        "manifest.jsonl",
    ):
        put_object(moto, bucket, key, b"x")
    put_object(moto, bucket, "dir1/", b"")
    storage_id = create_storage(user_client, moto, bucket)["id"]

    def pages(**params: Any) -> list[list[tuple[str, str, str]]]:
        seen = []
        token = None
        while True:
            query = {**params, **({"next_token": token} if token else {})}
            response = user_client.get(f"/api/cloudstorages/{storage_id}/content-v2", params=query)
            assert response.status_code == 200, response.text
            body = response.json()
            seen.append([(e["name"], e["type"], e["mime_type"]) for e in body["content"]])
            token = body["next"]
            if token is None:
                return seen

    assert pages(page_size=2) == [
        [("a.jpg", "REG", "image"), ("b.png", "REG", "image")],
        [("c.txt", "REG", "text"), ("dir1", "DIR", "DIR")],
        [("dir2", "DIR", "DIR"), ("manifest.jsonl", "REG", "manifest")],
    ]
    assert pages(prefix="dir1/") == [[("sub", "DIR", "DIR"), ("x.jpg", "REG", "image")]]
    bad = user_client.get(f"/api/cloudstorages/{storage_id}/content-v2", params={"prefix": "../etc/"})
    assert bad.status_code == 400 and "prefix" in bad.json()
    bad = user_client.get(f"/api/cloudstorages/{storage_id}/content-v2", params={"page_size": 501})
    assert bad.status_code == 400


def test_status_of_a_bucket_that_disappeared_or_credentials_that_cannot_be_read(
    user_client: Any, moto: Moto, bucket: str
) -> None:
    storage_id = create_storage(user_client, moto, bucket)["id"]
    assert user_client.get(f"/api/cloudstorages/{storage_id}/status").json() == "AVAILABLE"
    httpx.delete(f"{moto.endpoint}/{bucket}", headers={"Authorization": AUTH}).raise_for_status()
    assert user_client.get(f"/api/cloudstorages/{storage_id}/status").json() == "NOT_FOUND"
    assert user_client.get(f"/api/cloudstorages/{storage_id}/actions").json() == []
    # a server whose secret key changed cannot decrypt the stored credentials
    settings = user_client.app.state.annota.settings
    settings.secret_key, previous = "another-secret", settings.secret_key
    try:
        assert user_client.get(f"/api/cloudstorages/{storage_id}/status").json() == "FORBIDDEN"
    finally:
        settings.secret_key = previous


def test_preview_is_a_thumbnail_of_the_first_image(user_client: Any, moto: Moto, bucket: str) -> None:
    put_object(moto, bucket, "notes.txt", b"text")
    put_object(moto, bucket, "photos/big.jpg", make_jpeg(640, 480, 90))
    storage_id = create_storage(user_client, moto, bucket)["id"]
    response = user_client.get(f"/api/cloudstorages/{storage_id}/preview")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (192, 256)
    empty = create_storage(user_client, moto, moto.create_bucket())["id"]
    assert user_client.get(f"/api/cloudstorages/{empty}/preview").status_code == 404


def test_preview_of_an_empty_or_broken_first_image_is_refused_naming_it(
    user_client: Any, moto: Moto, bucket: str
) -> None:
    # the Cloud Storages page of CVAT's UI asks every listed storage for its preview
    put_object(moto, bucket, "images/a.png", b"")
    storage_id = create_storage(user_client, moto, bucket)["id"]
    response = user_client.get(f"/api/cloudstorages/{storage_id}/preview", params={"org": ""})
    assert response.status_code == 400, response.text
    assert "images/a.png" in response.text and "cannot be decoded" in response.text
    put_object(moto, bucket, "images/a.png", b"not an image")
    broken = user_client.get(f"/api/cloudstorages/{storage_id}/preview", params={"org": ""})
    assert broken.status_code == 400 and "images/a.png" in broken.text


def test_anonymous_access_needs_no_credentials(user_client: Any, moto: Moto, bucket: str) -> None:
    put_object(moto, bucket, "a.jpg", b"x")
    created = create_storage(
        user_client, moto, bucket, credentials_type="ANONYMOUS_ACCESS", key="", secret_key=""
    )
    assert created["credentials_type"] == "ANONYMOUS_ACCESS"
    listed = user_client.get(f"/api/cloudstorages/{created['id']}/content-v2").json()
    assert [e["name"] for e in listed["content"]] == ["a.jpg"]


@pytest.fixture(scope="module")
def strict_moto() -> Iterator[str]:
    """A moto S3 server that checks credentials (it knows none, so every key is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(endpoint, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.1)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_refused_credentials_are_forbidden(
    user_client: Any, moto: Moto, bucket: str, strict_moto: str, run_async: Any
) -> None:
    attributes = f"region=us-east-1&endpoint_url={strict_moto}"
    refused = user_client.post(
        "/api/cloudstorages", json=storage_body(moto, bucket, specific_attributes=attributes)
    )
    assert refused.status_code == 400
    assert "credentials are refused" in str(refused.json()["resource"])
    # a storage whose credentials stop being accepted reports FORBIDDEN
    storage_id = create_storage(user_client, moto, bucket)["id"]

    async def move() -> None:
        async with user_client.app.state.annota.sessionmaker.begin() as session:
            row = await session.get(CloudStorage, storage_id)
            row.specific_attributes = attributes

    run_async(move)
    assert user_client.get(f"/api/cloudstorages/{storage_id}/status").json() == "FORBIDDEN"
    assert user_client.get(f"/api/cloudstorages/{storage_id}/content-v2").status_code == 403
