"""Frames per second of auto-annotation with the ``onnx-yolo`` runner on 2 ``annota worker``
processes against 1, measured in the same run. Target: 2 workers at 1.8x or better (on 2 cores).

One lambda request is one arq job, which one worker runs from start to end, and a worker process
runs one inference at a time per model: a single request cannot use a second worker at all. The
unit of parallelism is the request, so the measurement needs several requests in flight. They
cannot be several requests on one task split into jobs: a task has one auto-annotation request at
a time (its id names the task; a second one, even for another job, is a 409 while the first
runs). So the frames are split over J tasks of F / J frames each - a dataset uploaded as several
tasks - and one ``POST /api/lambda/requests`` per task (``{"function", "task", "cleanup": true}``)
is sent at once; what is timed is from the first request to the last one finished, as a user
waiting for the whole dataset sees it. Frames / seconds is the frames per second. Each worker
count gets one untimed round first (it loads the model in every worker and warms the caches);
``cleanup`` makes every round replace the previous round's shapes, so every round does the same
work.

Everything is real: annota's app (uvicorn, in this process) on PostgreSQL and Redis, ``annota
worker --queue annotation`` processes (``threads = 1`` each, so each is one core's worth of
inference), the YOLOv8n export nudenet ships (320×320), and 640×480 JPEG frames (crops of
scikit-image's astronaut photo) uploaded through the API. The ratio is only meaningful on an
otherwise idle machine with at least 2 cores.

    python bench/models_workers.py [--frames 96] [--tasks 8] [--repeat 2]
        [--redis-url redis://127.0.0.1:6379/15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import httpx2 as httpx
from models import frames, package_file
from serving import add_admin, bench_database, serving

from annota.runtime.settings import Settings, finalize

PASSWORD = "bench-password"
BIN = Path(sys.executable).parent
#: what the task annotates with: nudenet's labels, so that no mapping is needed
LABELS = ["FACE_FEMALE", "FACE_MALE", "FEMALE_BREAST_EXPOSED", "BELLY_EXPOSED", "ARMPITS_EXPOSED"]


def models_toml(model: Path) -> str:
    return f'[[models]]\nname = "yolo"\nkind = "onnx-yolo"\npath = "{model}"\nthreads = 1\n'


@contextmanager
def workers(count: int, settings: Settings, config: Path, logs: Path, *queues: str) -> Iterator[None]:
    """``count`` ``annota worker`` processes for ``queues`` (all when none), connected to Redis."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANNOTA_")}
    env.update(
        ANNOTA_CONFIG=str(config), ANNOTA_DATABASE_URL=settings.database_url,
        ANNOTA_REDIS_URL=settings.redis_url, ANNOTA_DATA_DIR=settings.data_dir,
        ANNOTA_QUEUE_PREFIX=settings.queue_prefix, ANNOTA_SECRET_KEY=settings.secret_key,
    )  # fmt: skip
    processes = []
    for number in range(count):
        log = logs / f"worker-{'-'.join(queues) or 'all'}-{count}-{number}.log"
        with open(log, "wb") as out:
            args = [str(BIN / "annota"), "worker", *(f"--queue={queue}" for queue in queues)]
            processes.append((subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT), log))
    try:
        deadline = time.monotonic() + 60
        for process, log in processes:
            while "Starting worker for" not in log.read_text():
                if process.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"a worker did not start:\n{log.read_text()}")
                time.sleep(0.1)
        yield
    finally:
        for process, _ in processes:
            process.terminate()
        for process, _ in processes:
            process.wait(timeout=30)


def annotate(client: httpx.Client, tasks: list[int]) -> float:
    """Seconds from sending one request per task to the last one finished."""
    started = time.perf_counter()
    ids = []
    for task in tasks:
        answer = client.post("/api/lambda/requests", json={"function": "yolo", "task": task, "cleanup": True})
        answer.raise_for_status()
        ids.append(answer.json()["id"])
    for rq_id in ids:
        wait(client, f"/api/lambda/requests/{rq_id}")
    return time.perf_counter() - started


def wait(client: httpx.Client, path: str) -> None:
    while (body := client.get(path).json())["status"] not in ("finished", "failed"):
        time.sleep(0.02)
    assert body["status"] == "finished", body


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--redis-url", default=os.environ.get("ANNOTA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
    )
    args = parser.parse_args()
    if args.frames % args.tasks:
        sys.exit("--frames must be a multiple of --tasks")
    model = package_file("nudenet", "320n.onnx")
    images = [
        cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
        for frame in frames(args.frames)
    ]
    with bench_database("postgres") as (database_url, directory):
        settings = finalize(
            Settings(
                data_dir=str(directory / "data"), database_url=database_url, redis_url=args.redis_url,
                queue_prefix=f"annota-bench-{uuid.uuid4().hex[:12]}", secret_key="bench-secret",
            )
        )  # fmt: skip
        config = directory / "annota.toml"
        config.write_text(models_toml(model))
        # the API validates the request against the model's labels: it needs the model declared too
        settings.models = [{"name": "yolo", "kind": "onnx-yolo", "path": str(model), "threads": 1}]
        add_admin(settings, "bench", PASSWORD)
        seconds: dict[int, float] = {}
        with (
            serving(settings) as base_url,
            httpx.Client(base_url=base_url, auth=("bench", PASSWORD), timeout=120) as client,
        ):
            each = args.frames // args.tasks
            tasks, uploads = [], []
            for number in range(args.tasks):
                task = client.post(
                    "/api/tasks",
                    json={"name": f"yolo {number}", "labels": [{"name": name} for name in LABELS]},
                ).json()["id"]
                files = [
                    (f"client_files[{i}]", (f"{i:04}.jpg", data, "image/jpeg"))
                    for i, data in enumerate(images[number * each : (number + 1) * each])
                ]
                response = client.post(f"/api/tasks/{task}/data", data={"image_quality": "90"}, files=files)
                response.raise_for_status()
                tasks.append(task)
                uploads.append(response.json()["rq_id"])
            # the tasks' media are written by a worker of every queue, before any timing
            with workers(1, settings, config, directory):
                for rq_id in uploads:
                    wait(client, f"/api/requests/{rq_id}")
            for count in (1, 2):
                with workers(count, settings, config, directory, "annotation"):
                    annotate(client, tasks)
                    seconds[count] = statistics.median(annotate(client, tasks) for _ in range(args.repeat))
            shapes = sum(len(client.get(f"/api/tasks/{task}/annotations").json()["shapes"]) for task in tasks)
    one, two = args.frames / seconds[1], args.frames / seconds[2]
    print(
        f"{args.frames} frames, {args.tasks} tasks (a request each), onnx-yolo 320n, threads = 1 per worker"
    )
    print(f"1 worker:  {one:.1f} frames/s ({seconds[1]:.2f} s)")
    print(f"2 workers: {two:.1f} frames/s ({seconds[2]:.2f} s)")
    print(f"ratio: {two / one:.2f}x (target 1.8x on 2 idle cores); {shapes} shapes on the tasks")


if __name__ == "__main__":
    main()
