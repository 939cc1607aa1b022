"""Frame serving over keep-alive HTTP against reading the same bytes straight from disk, in the same run.

A task with M Full HD JPEG frames (default 200) is created through the API; then
``GET /api/tasks/{id}/data?type=frame&quality=compressed&number=i`` cycles over all frames for K
requests (default 2000), on one keep-alive client and on 4 clients in threads. The baseline reads
the same compressed frames from the local storage directory: each member's offset and size from the
chunk index next to the chunk (parsed once), then open/seek/read of the chunk file, sequentially and
on 4 threads.

    python bench/frame_serving.py [--count 200] [--requests 2000] [--repeat 3] [--database sqlite|postgres]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
from task_creation import create_task, generate_images, running_server, upload_images

from annota.core.media import layout
from annota.core.media.chunks import ChunkMember, decode_index

CLIENTS = 4


def http_reader(base_url: str, auth: tuple[str, str], task_id: int) -> Callable[[list[int]], int]:
    """Fetches frames on one keep-alive connection of its own; returns the bytes received."""

    def run(numbers: list[int]) -> int:
        received = 0
        with httpx.Client(base_url=base_url, auth=auth, timeout=60) as client:
            for number in numbers:
                response = client.get(
                    f"/api/tasks/{task_id}/data",
                    params={"type": "frame", "quality": "compressed", "number": number},
                )
                response.raise_for_status()
                received += len(response.content)
        return received

    return run


def disk_reader(storage: Path, data_id: int, chunk_size: int, count: int) -> Callable[[list[int]], int]:
    """Reads frames from the chunk files with the member index already in memory."""
    members: dict[int, tuple[Path, ChunkMember]] = {}
    for number in range(-(-count // chunk_size)):
        chunk = storage / layout.chunk(data_id, "compressed", number)
        index = decode_index((storage / layout.chunk_index(data_id, "compressed", number)).read_bytes())
        for member in index:
            members[member.frame] = (chunk, member)

    def run(numbers: list[int]) -> int:
        received = 0
        for number in numbers:
            path, member = members[number]
            with path.open("rb") as file:
                file.seek(member.offset)
                received += len(file.read(member.size))
        return received

    return run


def frames_per_second(
    read: Callable[[list[int]], int], numbers: list[int], workers: int, repeat: int
) -> float:
    """The best of ``repeat`` runs reading ``numbers``, split evenly over ``workers`` threads."""
    shares = [numbers[worker::workers] for worker in range(workers)]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            received = sum(pool.map(read, shares))
        times.append(time.perf_counter() - start)
        if received <= 0:
            raise RuntimeError("nothing was read")
    return len(numbers) / min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--count", type=int, default=200, help="frames in the task")
    parser.add_argument("--requests", type=int, default=2000, help="frames read per measurement")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    numbers = [i % args.count for i in range(args.requests)]
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        (directory / "images").mkdir()
        paths = generate_images(directory / "images", args.count)
        with running_server(args.database, directory) as server:
            task_id = create_task(server.client, "frames")
            upload_images(server.client, task_id, paths)
            task = server.client.get(f"/api/tasks/{task_id}").json()
            http = http_reader(str(server.client.base_url), ("bench", "bench-password"), task_id)
            disk = disk_reader(server.storage, task["data"], task["data_chunk_size"], args.count)
            served = server.client.get(
                f"/api/tasks/{task_id}/data", params={"type": "frame", "quality": "compressed", "number": 1}
            )
            served.raise_for_status()
            if len(served.content) != disk([1]):
                raise RuntimeError("the served frame and the frame on disk differ in size")
            rows = [
                (workers, frames_per_second(http, numbers, workers, args.repeat),
                 frames_per_second(disk, numbers, workers, args.repeat))
                for workers in (1, CLIENTS)
            ]  # fmt: skip
    out = sys.stdout
    out.write(
        f"{args.requests} compressed Full HD frames from a {args.count}-frame task, {args.database}, "
        f"best of {args.repeat}\n"
    )
    out.write(f"{'clients':<9}{'HTTP frames/s':>15}{'disk frames/s':>15}{'disk / HTTP':>13}\n")
    for workers, http_rate, disk_rate in rows:
        out.write(f"{workers:<9}{http_rate:>15.0f}{disk_rate:>15.0f}{disk_rate / http_rate:>12.1f}x\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
