"""How annota scales out behind nginx, and the figures of docs/sizing.md.

The loopback cluster of the cluster test (``annota.testing.cluster``: nginx, ``annota serve``
processes, three ``annota worker`` processes split by queue, PostgreSQL, Redis, moto's S3 server)
is started with 1, 2 and 4 API processes in turn. For each, the same load runs through nginx from
``--concurrency`` clients for ``--seconds``: annotation saves (``PUT /api/jobs/{id}/annotations``
of ``--shapes`` rectangles, one job per client) and job reads (``GET /api/jobs/{id}``); the
scaling ratio is the throughput against the 1-process run of the same invocation. While the saves
run, an export is started every half second, and its queue latency (request created → started by
a worker, from the request rows) is reported as p50/p99.

Then, on the 2-process cluster of the last round, the sizing figures: annotations saved per
second per API core, and tasks created and exports made per hour per core by the one worker
process of their queue (``import``, ``export``) given all of them at once. Everything, load
generator included, shares this machine's cores with whatever else runs on it, so "per core" is
per second of CPU the processes used (user + system time from ``/proc``, all threads), which
depends far less on the neighbours; the wall-clock figures are printed beside them.

    python bench/cluster.py [--seconds 10] [--concurrency 16] [--shapes 20] [--processes 1 2 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cv2
import httpx2 as httpx
import numpy as np

from annota.testing.cluster import Cluster, start_cluster

ADMIN = ("admin", "bench-admin-password")
POSTGRES_SERVER_URL = os.environ.get(
    "ANNOTA_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("ANNOTA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
FORMAT = "CVAT for images 1.1"


def jpeg(width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    # smooth content compresses like a photo; noise would make every file the worst case
    small = rng.integers(0, 255, (height // 16, width // 16, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(".jpg", cv2.resize(small, (width, height)), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return bytes(encoded.tobytes())


class Api:
    def __init__(self, cluster: Cluster, concurrency: int) -> None:
        limits = httpx.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency + 8)
        # a token, as cvat-sdk uses after its login: HTTP Basic would check the password (and count
        # an attempt against the account's budget of failed logins) on every request
        login = httpx.post(f"{cluster.url}/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
        login.raise_for_status()
        headers = {"Authorization": f"Token {login.json()['key']}"}
        self.http = httpx.AsyncClient(base_url=cluster.url, headers=headers, timeout=300, limits=limits)

    async def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, path, **kwargs)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    async def finished(self, rq_id: str) -> None:
        while True:
            body = await self.ok("GET", f"/api/requests/{quote(rq_id, safe='')}")
            if body["status"] == "failed":
                raise RuntimeError(f"{rq_id} failed: {body['message']}")
            if body["status"] == "finished":
                return
            await asyncio.sleep(0.1)

    async def task(self, name: str, files: list[tuple[str, bytes]]) -> tuple[int, int, int]:
        """A task with ``files`` as its media, created: (task id, job id, label id)."""
        task_id = int(
            (await self.ok("POST", "/api/tasks", json={"name": name, "labels": [{"name": "car"}]}))["id"]
        )
        form: list[tuple[str, Any]] = [(f"client_files[{i}]", file) for i, file in enumerate(files)]
        form.append(("image_quality", (None, "70")))
        await self.finished((await self.ok("POST", f"/api/tasks/{task_id}/data", files=form))["rq_id"])
        job_id = (await self.ok("GET", "/api/jobs", params={"task_id": task_id}))["results"][0]["id"]
        label = (await self.ok("GET", "/api/labels", params={"task_id": task_id}))["results"][0]["id"]
        return task_id, int(job_id), int(label)

    async def save(self, job_id: int, label: int, shapes: int, frames: int = 1, salt: int = 0) -> None:
        body = {
            "version": 0, "tags": [], "tracks": [],
            "shapes": [
                {"type": "rectangle", "frame": i % frames, "label_id": label,
                 "points": [float(i % 500), float(salt % 300), float(i % 500 + 20), float(salt % 300 + 10)]}
                for i in range(shapes)
            ],
        }  # fmt: skip
        await self.ok("PUT", f"/api/jobs/{job_id}/annotations", json=body)

    async def export(self, task_id: int) -> str:
        params = {"format": FORMAT, "save_images": "false"}
        rq_id: str = (await self.ok("POST", f"/api/tasks/{task_id}/dataset/export", params=params))["rq_id"]
        return rq_id


async def for_seconds(seconds: float, concurrency: int, call: Any) -> tuple[int, float]:
    """Calls made by ``concurrency`` loops of ``call(loop_index, n)`` in ``seconds``, and the time."""
    deadline = time.perf_counter() + seconds
    counts = [0] * concurrency

    async def loop(index: int) -> None:
        while time.perf_counter() < deadline:
            await call(index, counts[index])
            counts[index] += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(index) for index in range(concurrency)))
    return sum(counts), time.perf_counter() - started


def queue_latencies(cluster: Cluster, rq_ids: list[str]) -> list[float]:
    ids = ",".join("'" + rq.replace("'", "''") + "'" for rq in rq_ids)
    rows = cluster.sql(
        f"SELECT EXTRACT(EPOCH FROM started_date - created_date) FROM requests WHERE id IN ({ids})"
    )
    return [float(row[0]) for row in rows]


def cpu_seconds(processes: list[subprocess.Popen[bytes]]) -> float:
    """User plus system CPU time the processes (all their threads) have used so far."""
    ticks = 0
    for process in processes:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def prepare(cluster: Cluster, args: argparse.Namespace) -> list[tuple[int, int, int]]:
    """One single-frame task per client, whose job the client saves and reads."""
    api = Api(cluster, args.concurrency)
    image = [("frame.jpg", jpeg(640, 480, 1))]
    made = await asyncio.gather(*(api.task(f"bench {i}", image) for i in range(args.concurrency)))
    await api.http.aclose()
    return list(made)


async def scaling_round(
    cluster: Cluster, made: list[tuple[int, int, int]], args: argparse.Namespace
) -> dict[str, Any]:
    api = Api(cluster, args.concurrency)
    # warm every server process (connections, caches) before anything is timed
    await for_seconds(1, args.concurrency, lambda i, n: api.save(made[i][1], made[i][2], args.shapes))
    exports: list[str] = []

    async def export_every_half_second(deadline: float) -> None:
        for task_id, _, _ in made:
            if time.perf_counter() >= deadline:
                break
            exports.append(await api.export(task_id))
            await asyncio.sleep(0.5)

    saving = for_seconds(
        args.seconds, args.concurrency, lambda i, n: api.save(made[i][1], made[i][2], args.shapes, salt=n)
    )
    deadline = time.perf_counter() + args.seconds
    cpu = cpu_seconds(cluster.api)
    (saves, save_time), _ = await asyncio.gather(saving, export_every_half_second(deadline))
    save_cpu = cpu_seconds(cluster.api) - cpu
    reads, read_time = await for_seconds(
        args.seconds, args.concurrency, lambda i, n: api.ok("GET", f"/api/jobs/{made[i][1]}")
    )
    read_cpu = cpu_seconds(cluster.api) - cpu - save_cpu
    await asyncio.gather(*(api.finished(rq) for rq in exports))
    latencies = queue_latencies(cluster, exports)
    await api.http.aclose()
    return {
        "saves/s": saves / save_time,
        "reads/s": reads / read_time,
        "saves/cpu-s": saves / save_cpu,
        "reads/cpu-s": reads / read_cpu,
        "latencies": latencies,
    }


async def worker_run(cluster: Cluster, args: argparse.Namespace) -> dict[str, float]:
    """Tasks created and exports made per hour by the one worker process of their queue."""
    api = Api(cluster, args.tasks)
    files = [(f"frame_{i:03d}.jpg", jpeg(1280, 720, i)) for i in range(args.frames)]
    form_files = [(name, content, "image/jpeg") for name, content in files]
    ids = [
        int(
            (await api.ok("POST", "/api/tasks", json={"name": f"sizing {i}", "labels": [{"name": "car"}]}))[
                "id"
            ]
        )
        for i in range(args.tasks)
    ]

    async def upload(task_id: int) -> str:
        form: list[tuple[str, Any]] = [(f"client_files[{i}]", f) for i, f in enumerate(form_files)]
        form.append(("image_quality", (None, "70")))
        rq_id: str = (await api.ok("POST", f"/api/tasks/{task_id}/data", files=form))["rq_id"]
        return rq_id

    importer, exporter = cluster.workers[0], cluster.workers[1]
    started, cpu = time.perf_counter(), cpu_seconds([importer])
    creations = await asyncio.gather(*(upload(task_id) for task_id in ids))
    await asyncio.gather(*(api.finished(rq) for rq in creations))
    creation_time, creation_cpu = time.perf_counter() - started, cpu_seconds([importer]) - cpu

    jobs = [(await api.ok("GET", "/api/jobs", params={"task_id": t}))["results"][0]["id"] for t in ids]
    labels = [(await api.ok("GET", "/api/labels", params={"task_id": t}))["results"][0]["id"] for t in ids]
    await asyncio.gather(
        *(api.save(j, lb, args.export_shapes, frames=args.frames) for j, lb in zip(jobs, labels, strict=True))
    )
    started, cpu = time.perf_counter(), cpu_seconds([exporter])
    exports = await asyncio.gather(*(api.export(task_id) for task_id in ids))
    await asyncio.gather(*(api.finished(rq) for rq in exports))
    export_time, export_cpu = time.perf_counter() - started, cpu_seconds([exporter]) - cpu
    await api.http.aclose()
    return {
        "tasks/h": args.tasks / creation_time * 3600,
        "exports/h": args.tasks / export_time * 3600,
        "tasks/cpu-h": args.tasks / creation_cpu * 3600,
        "exports/cpu-h": args.tasks / export_cpu * 3600,
    }


def started(processes: int, directory: Path) -> Cluster:
    return start_cluster(
        directory / str(processes), postgres_server_url=POSTGRES_SERVER_URL, redis_url=REDIS_URL,
        api_processes=processes, admin=ADMIN,
    )  # fmt: skip


def report(
    args: argparse.Namespace, rounds: dict[int, list[dict[str, Any]]], sizing: dict[str, float]
) -> None:
    keys = ("saves/s", "reads/s", "saves/cpu-s", "reads/cpu-s")
    best = {n: {key: max(r[key] for r in runs) for key in keys} for n, runs in rounds.items()}
    base = best[args.processes[0]]
    columns = [("API processes", 13), ("saves/s", 8), ("ratio", 6), ("reads/s", 8), ("ratio", 6)]
    columns += [("queue p50", 10), ("p99", 8), ("saves/API-cpu-s", 16), ("reads/API-cpu-s", 16)]
    print(" ".join(f"{name:>{width}}" for name, width in columns))
    for n, b in best.items():
        latencies = [value for r in rounds[n] for value in r["latencies"]]
        print(
            f"{n:>13} {b['saves/s']:>8.1f} {b['saves/s'] / base['saves/s']:>6.2f} {b['reads/s']:>8.1f} "
            f"{b['reads/s'] / base['reads/s']:>6.2f} {1000 * statistics.median(latencies):>8.0f}ms "
            f"{1000 * percentile(latencies, 0.99):>6.0f}ms "
            f"{b['saves/cpu-s']:>16.1f} {b['reads/cpu-s']:>16.1f}"
        )
    # per core: what a process gets done per second of CPU it used (the machine is shared, so
    # per second of wall time would measure the neighbours); wall-clock figures in brackets
    saves_cpu = statistics.median(r["saves/cpu-s"] for runs in rounds.values() for r in runs)
    one = best.get(1, base)
    print("\nsizing, per core = per CPU second a process used (wall clock on this machine in brackets):")
    print(
        f"  annotations saved per second per API core: {saves_cpu * args.shapes:.0f} "
        f"({saves_cpu:.1f} saves of {args.shapes}) [{one['saves/s'] * args.shapes:.0f} with 1 process]"
    )
    print(
        f"  tasks created per hour per worker core ({args.frames} frames 1280x720): "
        f"{sizing['tasks/cpu-h']:.0f} [{sizing['tasks/h']:.0f}]"
    )
    print(
        f"  exports per hour per worker core ({args.export_shapes} rectangles, {FORMAT}): "
        f"{sizing['exports/cpu-h']:.0f} [{sizing['exports/h']:.0f}]"
    )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="length of each timed load")
    parser.add_argument("--concurrency", type=int, default=16, help="clients at once")
    parser.add_argument("--shapes", type=int, default=20, help="rectangles per annotation save")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4], help="API processes")
    parser.add_argument("--rounds", type=int, default=2, help="turns each configuration takes")
    parser.add_argument("--tasks", type=int, default=6, help="tasks created and exported for the sizing")
    parser.add_argument("--frames", type=int, default=10, help="1280x720 JPEG frames per sizing task")
    parser.add_argument("--export-shapes", type=int, default=2000, help="rectangles per exported task")
    args = parser.parse_args()
    machine = f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores"
    print(f"machine: {machine}, Python {platform.python_version()}")
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print(
        f"load: {args.concurrency} clients, {args.seconds:g} s per phase, {args.shapes} rectangles per save\n"
    )

    # the configurations take turns, round after round, so that a neighbour's load on the shared
    # machine weighs on each about alike; each keeps its best round. One cluster at a time: three
    # would hold more PostgreSQL connections than a default server allows
    rounds: dict[int, list[dict[str, Any]]] = {n: [] for n in args.processes}
    sizing: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for n in args.processes:
                cluster = started(n, Path(tmp) / str(round_))
                try:
                    prepared = asyncio.run(prepare(cluster, args))
                    rounds[n].append(asyncio.run(scaling_round(cluster, prepared, args)))
                    if round_ == args.rounds - 1 and n == max(args.processes[:2]):
                        sizing = asyncio.run(worker_run(cluster, args))
                finally:
                    cluster.stop()
    report(args, rounds, sizing)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
