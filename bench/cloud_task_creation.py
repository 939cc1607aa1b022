"""Creating a task from images in an S3 bucket (moto on 127.0.0.1, in this process) with and
without a manifest, against creating it from the same images uploaded, measured in the same run;
and the first-chunk latency of a bucket task (built from the bucket on first read) against a
second read (cached) and against an uploaded task's chunk.

The server runs in-process (Starlette's TestClient, SQLite, the in-process queue). A creation's
time runs from the data request to ``finished``; the upload's includes sending the files. A
bucket task without a manifest reads the first 64 KiB of each image for its size; with a manifest
it lists the bucket once and reads only the first image (for the preview).

    python bench/cloud_task_creation.py [--count 1000] [--width 640] [--height 480]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
from moto.server import ThreadedMotoServer
from obstore import put_async
from starlette.testclient import TestClient

from annota.plugins.storage.s3 import Config, build_store
from annota.runtime.app import create_app
from annota.runtime.settings import Settings, finalize

AUTH = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request"
PASSWORD = "bench-password"


def make_images(count: int, width: int, height: int) -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    images = []
    for number in range(count):
        pixels = np.roll(base, number * 7, axis=1)
        ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 85])
        assert ok
        images.append((f"img_{number:06d}.jpg", encoded.tobytes()))
    return images


def manifest(images: list[tuple[str, bytes]], width: int, height: int) -> bytes:
    lines: list[Any] = [{"version": "1.0"}, {"type": "images"}]
    lines += [{"name": name[:-4], "extension": ".jpg", "width": width, "height": height,
               "meta": {"related_images": []}, "checksum": ""} for name, _ in images]  # fmt: skip
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


async def fill_bucket(endpoint: str, bucket: str, objects: list[tuple[str, bytes]]) -> None:
    store = build_store(Config(bucket=bucket, endpoint_url=endpoint, region="us-east-1",
                               access_key_id="testing", secret_access_key="testing"))  # fmt: skip
    gate = asyncio.Semaphore(16)

    async def put(key: str, data: bytes) -> None:
        async with gate:
            await put_async(store, key, data)

    await asyncio.gather(*(put(key, data) for key, data in objects))


def wait(client: TestClient, rq_id: str) -> None:
    while True:
        status = client.get(f"/api/requests/{rq_id}").json()
        if status["status"] in ("finished", "failed"):
            assert status["status"] == "finished", status
            return
        time.sleep(0.02)


def new_task(client: TestClient, name: str) -> int:
    response = client.post("/api/tasks", json={"name": name, "labels": [{"name": "car"}]})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def timed_creation(client: TestClient, name: str, **body: Any) -> tuple[int, float]:
    task_id = new_task(client, name)
    started = time.perf_counter()
    response = client.post(f"/api/tasks/{task_id}/data/", json={"image_quality": 70, **body})
    assert response.status_code == 202, response.text
    wait(client, response.json()["rq_id"])
    return task_id, time.perf_counter() - started


def timed_upload(client: TestClient, images: list[tuple[str, bytes]]) -> tuple[int, float]:
    task_id = new_task(client, "uploaded")
    started = time.perf_counter()
    files = [(f"client_files[{i}]", (name, data)) for i, (name, data) in enumerate(images)]
    response = client.post(f"/api/tasks/{task_id}/data", data={"image_quality": "70"}, files=files)
    assert response.status_code == 202, response.text
    wait(client, response.json()["rq_id"])
    return task_id, time.perf_counter() - started


def chunk_latency(client: TestClient, task_id: int) -> float:
    started = time.perf_counter()
    response = client.get(f"/api/tasks/{task_id}/data", params={"type": "chunk", "number": 0})
    assert response.status_code == 200, response.text
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    args = parser.parse_args()
    # moto's request log
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    images = make_images(args.count, args.width, args.height)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    httpx.put(f"{endpoint}/{bucket}", headers={"Authorization": AUTH}).raise_for_status()
    objects = [(f"set/{name}", data) for name, data in images]
    objects.append(("set/manifest.jsonl", manifest(images, args.width, args.height)))
    asyncio.run(fill_bucket(endpoint, bucket, objects))
    with tempfile.TemporaryDirectory() as tmp:
        settings = finalize(Settings(data_dir=str(Path(tmp) / "data"), secret_key="bench",
                                     cloud_storage_allow_private_endpoints=True))  # fmt: skip
        app = create_app(settings)
        with TestClient(app, base_url="http://testserver") as client:
            from annota.core.services import users as user_service

            async def admin() -> None:
                async with app.state.annota.sessionmaker.begin() as session:
                    await user_service.create_user(session, "bench", PASSWORD, superuser=True)

            assert client.portal is not None
            client.portal.call(admin)
            client.auth = ("bench", PASSWORD)
            storage = client.post("/api/cloudstorages", json={
                "provider_type": "AWS_S3_BUCKET", "resource": bucket, "display_name": "bench",
                "credentials_type": "KEY_SECRET_KEY_PAIR", "key": "testing", "secret_key": "testing",
                "specific_attributes": f"region=us-east-1&endpoint_url={endpoint}",
            })  # fmt: skip
            assert storage.status_code == 201, storage.text
            storage_id = storage.json()["id"]
            local_id, local = timed_upload(client, images)
            listed_id, listed = timed_creation(client, "bucket", cloud_storage_id=storage_id,
                                               server_files=["set/"], use_cache=True)  # fmt: skip
            manifest_id, manifested = timed_creation(
                client,
                "manifest",
                cloud_storage_id=storage_id,
                server_files=["set/manifest.jsonl"],
                use_cache=True,
            )
            cold = chunk_latency(client, manifest_id)
            warm = chunk_latency(client, manifest_id)
            local_chunk = chunk_latency(client, local_id)
            del listed_id
    moto.stop()
    print(f"{args.count} images of {args.width}x{args.height}")
    print(f"task creation, uploaded (chunks built at creation): {local:7.2f} s")
    print(
        f"task creation, bucket prefix (headers read):        {listed:7.2f} s  ({listed / local:.2f}x upload)"
    )
    ratio = manifested / local
    print(f"task creation, bucket manifest (one listing):       {manifested:7.2f} s  ({ratio:.2f}x upload)")
    print(f"first chunk of the bucket task (built from bucket): {cold * 1000:7.1f} ms")
    print(f"the same chunk again (cached in the server storage): {warm * 1000:7.1f} ms")
    print(f"first chunk of the uploaded task:                    {local_chunk * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
