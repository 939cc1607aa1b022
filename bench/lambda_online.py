"""One online ``POST /api/lambda/functions/{id}`` (CVAT's AI tools running a detector on the frame in
view) against calling the same model directly on the same decoded frame, in the same run.

The model is the built-in ``opencv-haar`` face detector; the frame is scikit-image's astronaut.png
(512 × 512) in a task created through the API. The HTTP side adds reading the frame from storage,
decoding it, the worker thread hop, the label mapping and the JSON answer; the baseline is
``cv2.imdecode`` + the runner's ``detect`` on the file's bytes. Both are timed over K calls
(default 50) after a warm-up call, median of R runs (default 3).

    python bench/lambda_online.py [--calls 50] [--repeat 3] [--database sqlite|postgres]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import httpx2 as httpx
import numpy as np
from serving import add_admin, bench_database, serving

from annota.core.models.runner import DetectOptions, ModelDeclaration
from annota.plugins.models.opencv import HaarModel
from annota.runtime.settings import Settings, finalize

PASSWORD = "bench-password"
MODEL = {"name": "faces", "kind": "opencv-haar"}


def astronaut() -> bytes:
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("scikit-image (a test dependency) provides the photo: pip install 'annota[test]'")
    return (Path(next(iter(spec.submodule_search_locations))) / "data" / "astronaut.png").read_bytes()


def wait(client: httpx.Client, rq_id: str) -> None:
    while True:
        body = client.get(f"/api/requests/{rq_id}").json()
        if body["status"] in ("finished", "failed"):
            assert body["status"] == "finished", body["message"]
            return
        time.sleep(0.05)


def timed(call: object, count: int) -> float:
    """Seconds per call of ``call()`` (callable), over ``count`` calls."""
    assert callable(call)
    started = time.perf_counter()
    for _ in range(count):
        call()
    return (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    photo = astronaut()
    with bench_database(args.database) as (database_url, directory):
        settings = finalize(
            Settings(
                data_dir=str(directory / "data"),
                database_url=database_url,
                secret_key="bench-secret",
                models=[dict(MODEL)],
            )  # fmt: skip
        )
        add_admin(settings, "bench", PASSWORD)
        with (
            serving(settings) as base_url,
            httpx.Client(base_url=base_url, auth=("bench", PASSWORD), timeout=120) as client,
        ):
            task = client.post("/api/tasks", json={"name": "faces", "labels": [{"name": "face"}]}).json()[
                "id"
            ]
            response = client.post(
                f"/api/tasks/{task}/data", data={"image_quality": "70"},
                files=[("client_files[0]", ("astronaut.png", photo, "image/png"))],
            )  # fmt: skip
            response.raise_for_status()
            wait(client, response.json()["rq_id"])
            body = {"task": task, "frame": 0}

            def online() -> None:
                answer = client.post("/api/lambda/functions/faces", json=body)
                answer.raise_for_status()
                assert len(answer.json()["shapes"]) == 1

            model = HaarModel(ModelDeclaration(**MODEL))  # type: ignore[arg-type]

            def raw() -> None:
                image = cv2.imdecode(np.frombuffer(photo, dtype=np.uint8), cv2.IMREAD_COLOR)
                assert len(model.detect([image], DetectOptions())[0]) == 1

            online()
            raw()
            http_runs, raw_runs = [], []
            for _ in range(args.repeat):
                http_runs.append(timed(online, args.calls))
                raw_runs.append(timed(raw, args.calls))
    http_s, raw_s = statistics.median(http_runs), statistics.median(raw_runs)
    print(f"online POST /api/lambda/functions/faces: {http_s * 1000:.1f} ms per call ({args.database})")
    print(f"raw decode + detect:                     {raw_s * 1000:.1f} ms per call")
    print(f"ratio: {http_s / raw_s:.2f}x (overhead {1000 * (http_s - raw_s):.1f} ms)")


if __name__ == "__main__":
    main()
