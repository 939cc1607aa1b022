"""What the ``s3`` storage backend costs over raw obstore calls.

moto's S3 server runs in this process on 127.0.0.1. The same objects are put and then read back
twice, with the same number of requests in flight: through ``S3Storage`` (key validation, content
type, the ``stat`` after each put that gives ``put`` its result, re-chunking of reads) and through
obstore's ``put_async`` / ``get_async`` directly. The two alternate for ``--rounds`` rounds so that
a server warming up or slowing down counts against neither. Reported: seconds per phase, objects
per second and the ratio backend / raw (1.0 = no overhead; moto's Flask server is the bottleneck,
so the ratio shows the backend's extra requests more than its Python overhead).

    python bench/storage_s3.py [--count 200] [--size 102400] [--concurrency 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from moto.server import ThreadedMotoServer
from obstore import get_async, put_async

from annota.plugins.storage.s3 import Config, S3Storage, build_store

AUTH = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request"


async def bounded(count: int, concurrency: int, job: Callable[[int], Awaitable[Any]]) -> float:
    """Seconds to run ``job(0..count-1)`` with at most ``concurrency`` in flight."""
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            await job(index)

    started = time.perf_counter()
    await asyncio.gather(*(one(index) for index in range(count)))
    return time.perf_counter() - started


async def measure(args: argparse.Namespace, endpoint: str) -> dict[str, list[float]]:
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    httpx.put(f"{endpoint}/{bucket}", headers={"Authorization": AUTH}).raise_for_status()
    config = Config(
        bucket=bucket,
        endpoint_url=endpoint,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
    )
    store = build_store(config)
    backend = S3Storage(build_store(config), bucket=bucket)
    payload = os.urandom(args.size)
    times: dict[str, list[float]] = {"backend put": [], "raw put": [], "backend get": [], "raw get": []}

    async def backend_put(index: int) -> None:
        await backend.put(f"backend/{index:06}.jpg", payload)

    async def raw_put(index: int) -> None:
        await put_async(store, f"raw/{index:06}.jpg", payload, attributes={"Content-Type": "image/jpeg"})

    async def backend_get(index: int) -> None:
        assert len(await backend.read(f"backend/{index:06}.jpg")) == args.size

    async def raw_get(index: int) -> None:
        result = await get_async(store, f"raw/{index:06}.jpg")
        assert len(await result.bytes_async()) == args.size

    for _ in range(args.rounds):
        for name, job in (("backend put", backend_put), ("raw put", raw_put)):
            times[name].append(await bounded(args.count, args.concurrency, job))
        for name, job in (("backend get", backend_get), ("raw get", raw_get)):
            times[name].append(await bounded(args.count, args.concurrency, job))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=100 * 1024)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        times = asyncio.run(measure(args, f"http://{host}:{port}"))
    finally:
        server.stop()
    print(f"{args.count} objects x {args.size} bytes, {args.concurrency} in flight, best of {args.rounds}")
    best = {name: min(values) for name, values in times.items()}
    for name, seconds in best.items():
        print(f"  {name:12} {seconds:6.2f} s  {args.count / seconds:7.1f} objects/s")
    for phase in ("put", "get"):
        print(f"  {phase}: backend / raw = {best[f'backend {phase}'] / best[f'raw {phase}']:.2f}")


if __name__ == "__main__":
    main()
