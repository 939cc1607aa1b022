"""Task creation from local images through the HTTP API against a raw baseline measured in the same run.

N Full HD JPEGs (default 500, ~0.4-0.6 MB each at quality 90) go up the way cvat-sdk sends them:
``Upload-Start``, ``Upload-Multiple`` batches of at most 100 MiB, ``Upload-Finish`` with
``image_quality`` 70, then ``/api/requests`` is polled until the task is created; the time runs
from the first upload request to ``finished``. The baseline does the least any server must do
with the same files in one process: read each image's size from its header (Pillow), copy the
files, and build the original and compressed stored-ZIP chunks (cv2 decode + JPEG encode at
quality 70) of the chunk size the server chose, once on one thread and once on a thread pool.

    python bench/task_creation.py [--count 500] [--repeat 1] [--database sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import urllib.parse
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx2 as httpx
import numpy as np
from PIL import Image
from serving import serving

from annota.core.db.engine import create_engine
from annota.core.services import users as user_service
from annota.runtime.settings import Settings, finalize
from annota.testing.databases import (
    create_postgres_database,
    drop_postgres_database,
    migrated_sqlite_template,
)

PASSWORD = "bench-password"
POSTGRES_SERVER_URL = os.environ.get(
    "ANNOTA_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
WIDTH, HEIGHT = 1920, 1080
IMAGE_QUALITY = 70
#: cvat-sdk puts files into one Upload-Multiple request up to this many bytes
MAX_REQUEST_SIZE = 100 * 1024 * 1024


# --- media ------------------------------------------------------------------------------------


def generate_images(directory: Path, count: int, seed: int = 0) -> list[Path]:
    """Full HD JPEGs at quality 90 that compress like photos: smooth colour gradients under noise
    of a random amplitude (plain noise would make 1.5 MB files, plain gradients 50 KB ones)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    bases = []
    for variant in range(4):
        a, b, c = rng.uniform(0, 2 * np.pi, 3)
        channels = [
            128 + 100 * np.sin(xx / (200 + 50 * variant) + a) * np.cos(yy / 300 + b),
            xx / WIDTH * 255,
            yy / HEIGHT * 128 + 60 * np.sin((xx + yy) / 150 + c),
        ]
        bases.append(np.clip(np.stack(channels, axis=-1), 20, 235).astype(np.int16))
    paths = []
    for number in range(count):
        amplitude = int(rng.integers(7, 15))
        base = np.roll(bases[number % len(bases)], int(rng.integers(0, WIDTH)), axis=1)
        noise = rng.integers(-amplitude, amplitude + 1, base.shape, dtype=np.int16)
        pixels = (base + noise).clip(0, 255).astype(np.uint8)
        path = directory / f"frame_{number:06d}.jpg"
        if not cv2.imwrite(str(path), pixels, [cv2.IMWRITE_JPEG_QUALITY, 90]):
            raise OSError(f"cannot write {path}")
        paths.append(path)
    return paths


def upload_batches(paths: list[Path]) -> Iterator[list[Path]]:
    """Consecutive files grouped into requests of at most ``MAX_REQUEST_SIZE`` bytes, as cvat-sdk does."""
    batch: list[Path] = []
    size = 0
    for path in paths:
        file_size = path.stat().st_size
        if batch and size + file_size > MAX_REQUEST_SIZE:
            yield batch
            batch, size = [], 0
        batch.append(path)
        size += file_size
    if batch:
        yield batch


# --- the server -------------------------------------------------------------------------------


@dataclass
class Server:
    client: httpx.Client
    storage: Path


def _create_user(database_url: str) -> None:
    async def go() -> None:
        from sqlalchemy.ext.asyncio import AsyncSession

        engine = create_engine(database_url)
        async with engine.begin() as connection:
            session = AsyncSession(bind=connection)
            await user_service.create_user(session, "bench", PASSWORD, privilege="admin")
            await session.commit()
        await engine.dispose()

    asyncio.run(go())


@contextmanager
def running_server(database: str, directory: Path) -> Iterator[Server]:
    """annota (uvicorn in a thread, background jobs in-process) on a fresh database, and a client."""
    if database == "sqlite":
        url = f"sqlite:///{migrated_sqlite_template(directory)}"
    else:
        url = create_postgres_database(POSTGRES_SERVER_URL)
    try:
        _create_user(url)
        data_dir = directory / "data"
        settings = finalize(Settings(data_dir=str(data_dir), database_url=url, secret_key="bench-secret"))
        with (
            serving(settings) as base_url,
            httpx.Client(base_url=base_url, auth=("bench", PASSWORD), timeout=600) as client,
        ):
            yield Server(client, data_dir / "storage")
    finally:
        if database != "sqlite":
            drop_postgres_database(POSTGRES_SERVER_URL, url)


def create_task(client: httpx.Client, name: str) -> int:
    response = client.post("/api/tasks", json={"name": name, "labels": [{"name": "car"}]})
    response.raise_for_status()
    task_id: int = response.json()["id"]
    return task_id


def upload_images(client: httpx.Client, task_id: int, paths: list[Path]) -> None:
    """The cvat-sdk sequence for local files, returning once the task's data is created."""
    url = f"/api/tasks/{task_id}/data/"
    client.post(url, headers={"Upload-Start": ""}).raise_for_status()
    for batch in upload_batches(paths):
        files: list[tuple[str, Any]] = []
        handles = [path.open("rb") for path in batch]
        try:
            for index, (path, handle) in enumerate(zip(batch, handles, strict=True)):
                files.append((f"client_files[{index}]", (str(path), handle, "image/jpeg")))
            response = client.post(
                url,
                headers={"Upload-Multiple": ""},
                data={"image_quality": str(IMAGE_QUALITY)},
                files=files,
            )
            response.raise_for_status()
        finally:
            for handle in handles:
                handle.close()
    finish = {
        "image_quality": IMAGE_QUALITY,
        "copy_data": False,
        "sorting_method": "lexicographical",
        "use_cache": False,
        "use_zip_chunks": False,
    }
    response = client.post(url, headers={"Upload-Finish": ""}, json=finish)
    response.raise_for_status()
    request_url = "/api/requests/" + urllib.parse.quote(response.json()["rq_id"], safe="")
    while True:
        state = client.get(request_url)
        state.raise_for_status()
        status = state.json()["status"]
        if status == "finished":
            return
        if status == "failed":
            raise RuntimeError(f"task {task_id} creation failed: {state.json()['message']}")
        time.sleep(0.02)


# --- the baseline -----------------------------------------------------------------------------


def _compress(data: bytes) -> bytes:
    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    ok, buffer = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, IMAGE_QUALITY])
    if not ok:
        raise ValueError("cannot encode")
    return buffer.tobytes()


def _write_zip(path: Path, members: list[tuple[str, bytes]]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members:
            archive.writestr(name, data)


def baseline(paths: list[Path], target: Path, chunk_size: int, threads: int) -> None:
    """Header sizes, copies, and original + compressed chunks, the compression on ``threads`` threads."""
    for path in paths:
        with Image.open(path) as image:
            if image.size != (WIDTH, HEIGHT):
                raise ValueError(f"{path}: unexpected size {image.size}")
    raw = target / "raw"
    chunks = target / "chunks"
    raw.mkdir(parents=True)
    chunks.mkdir()
    for path in paths:
        shutil.copyfile(path, raw / path.name)
    with ThreadPoolExecutor(threads) as pool:
        for number, start in enumerate(range(0, len(paths), chunk_size)):
            group = paths[start : start + chunk_size]
            originals = [path.read_bytes() for path in group]
            compressed = list(pool.map(_compress, originals)) if threads > 1 else map(_compress, originals)
            names = [f"{start + i:06d}.jpg" for i in range(len(group))]
            _write_zip(chunks / f"original_{number:06d}.zip", list(zip(names, originals, strict=True)))
            _write_zip(chunks / f"compressed_{number:06d}.zip", list(zip(names, compressed, strict=True)))


def best(repeat: int, run: Callable[[int], None]) -> float:
    times = []
    for attempt in range(repeat):
        start = time.perf_counter()
        run(attempt)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    threads = min(32, (os.cpu_count() or 1) + 4)  # as asyncio.to_thread's default pool
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        (directory / "images").mkdir()
        paths = generate_images(directory / "images", args.count)
        megabytes = sum(path.stat().st_size for path in paths) / 1e6
        chunk_size = 0
        with running_server(args.database, directory) as server:

            def http_run(attempt: int) -> None:
                nonlocal chunk_size
                task_id = create_task(server.client, f"bench {attempt}")
                upload_images(server.client, task_id, paths)
                task = server.client.get(f"/api/tasks/{task_id}").json()
                if task["size"] != len(paths):
                    raise RuntimeError(f"task {task_id} has {task['size']} frames, expected {len(paths)}")
                chunk_size = task["data_chunk_size"]

            annota = best(args.repeat, http_run)
        rows = [("annota", annota)]
        for count in (1, threads):
            target = directory / f"baseline_{count}"

            def raw_run(attempt: int, count: int = count, target: Path = target) -> None:
                shutil.rmtree(target, ignore_errors=True)
                baseline(paths, target, chunk_size, count)

            rows.append((f"raw, {count} thread{'s' if count > 1 else ''}", best(args.repeat, raw_run)))
    out = sys.stdout
    out.write(
        f"{args.count} JPEGs {WIDTH}x{HEIGHT} ({megabytes:.0f} MB), chunk size {chunk_size}, "
        f"{args.database}, best of {args.repeat}\n"
    )
    out.write(f"{'':<18}{'seconds':>9}{'frames/s':>10}{'annota / this':>15}\n")
    for label, seconds in rows:
        out.write(f"{label:<18}{seconds:>9.2f}{args.count / seconds:>10.1f}{annota / seconds:>14.2f}x\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
