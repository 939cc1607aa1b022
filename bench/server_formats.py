"""The server path of dataset import and export, against Label Studio's numbers on this machine.

A task of 2,000 small images is created through the API, then, over loopback against a real
uvicorn server:

- import 2,000 x 50 boxes as COCO (one multipart POST, until the request is finished);
- export them as COCO and as YOLO (export request, polling, download of the file);
- the same export again (an identical export reuses the cached file).

Label Studio 1.23.2 on a 2-core machine like this one (reference/peers §D: 2,000 tasks x 50
rectangles) took 10.1 s to import, 14.3 s to export COCO and 15.2 s to export YOLO; the target is
ten times less.

    python bench/server_formats.py [--images 2000] [--boxes 50] [--database sqlite|postgres]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2 as httpx
from serving import add_admin, bench_database, serving

from annota.runtime.settings import Settings, finalize

LABEL_STUDIO = {"import": 10.1, "COCO 1.0": 14.3, "YOLO 1.1": 15.2}
LABELS = [f"class{i}" for i in range(10)]
PASSWORD = "bench-password"


def images_zip(count: int) -> bytes:
    import cv2
    import numpy as np

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for index in range(count):
            pixels = np.full((48, 64, 3), index % 255, dtype=np.uint8)
            ok, encoded = cv2.imencode(".jpg", pixels)
            assert ok
            archive.writestr(f"img_{index:05d}.jpg", encoded.tobytes())
    return buffer.getvalue()


def coco(count: int, boxes: int) -> bytes:
    images = [{"id": i + 1, "file_name": f"img_{i:05d}.jpg", "width": 64, "height": 48} for i in range(count)]
    annotations = []
    for image in range(count):
        for box in range(boxes):
            x, y = (box * 7) % 50, (box * 3) % 30
            annotations.append({
                "id": len(annotations) + 1, "image_id": image + 1, "category_id": box % len(LABELS) + 1,
                "bbox": [x + 0.5, y + 0.25, 10.0, 12.0], "area": 120.0, "iscrowd": 0, "segmentation": [],
            })  # fmt: skip
    categories = [{"id": i + 1, "name": name, "supercategory": ""} for i, name in enumerate(LABELS)]
    return json.dumps({"images": images, "annotations": annotations, "categories": categories}).encode()


def wait(client: httpx.Client, rq_id: str) -> dict[str, Any]:
    while True:
        body: dict[str, Any] = client.get(f"/api/requests/{quote(rq_id, safe='')}").json()
        if body["status"] in ("finished", "failed"):
            if body["status"] == "failed":
                sys.exit(f"request failed: {body['message']}")
            return body
        time.sleep(0.02)


def create_task(client: httpx.Client, count: int) -> int:
    response = client.post("/api/tasks", json={"name": "bench", "labels": [{"name": n} for n in LABELS]})
    task_id: int = response.json()["id"]
    response = client.post(
        f"/api/tasks/{task_id}/data",
        data={"image_quality": "70"},
        files={"client_files[0]": ("images.zip", images_zip(count))},
    )
    wait(client, response.json()["rq_id"])
    return task_id


def timed_import(client: httpx.Client, task_id: int, body: bytes) -> float:
    started = time.perf_counter()
    response = client.post(
        f"/api/tasks/{task_id}/annotations",
        params={"format": "COCO 1.0"},
        files={"annotation_file": ("instances_default.json", body)},
    )
    assert response.status_code == 202, response.text
    wait(client, response.json()["rq_id"])
    return time.perf_counter() - started


def timed_export(client: httpx.Client, task_id: int, format_name: str) -> tuple[float, int]:
    started = time.perf_counter()
    response = client.post(
        f"/api/tasks/{task_id}/dataset/export", params={"format": format_name, "save_images": "False"}
    )
    assert response.status_code == 202, response.text
    request = wait(client, response.json()["rq_id"])
    download = client.get(request["result_url"])
    assert download.status_code == 200
    return time.perf_counter() - started, len(download.content)


def run(args: argparse.Namespace, database_url: str, data_dir: Path) -> list[tuple[str, float, float | None]]:
    settings = finalize(Settings(data_dir=str(data_dir), database_url=database_url, secret_key="bench"))

    add_admin(settings, "bench", PASSWORD)
    rows: list[tuple[str, float, float | None]] = []
    with (
        serving(settings) as url,
        httpx.Client(base_url=url, auth=("bench", PASSWORD), timeout=600) as client,
    ):
        started = time.perf_counter()
        task_id = create_task(client, args.images)
        print(
            f"task of {args.images} images created in {time.perf_counter() - started:.1f} s", file=sys.stderr
        )
        body = coco(args.images, args.boxes)
        rows.append(("import COCO", timed_import(client, task_id, body), LABEL_STUDIO["import"]))
        for format_name in ("COCO 1.0", "YOLO 1.1"):
            seconds, _ = timed_export(client, task_id, format_name)
            rows.append((f"export {format_name}", seconds, LABEL_STUDIO[format_name]))
            again, _ = timed_export(client, task_id, format_name)
            rows.append((f"export {format_name} again (cached)", again, None))
        count = len(client.get(f"/api/tasks/{task_id}/annotations").json()["shapes"])
        assert count == args.images * args.boxes, count
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--boxes", type=int, default=50)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    with bench_database(args.database) as (database_url, directory):
        rows = run(args, database_url, directory / "data")
    print(f"{args.images:,} images x {args.boxes} boxes, {args.database}\n")
    print("| what | annota | Label Studio 1.23.2 | ratio |")
    print("|---|---|---|---|")
    for name, seconds, peer in rows:
        ratio = f"{peer / seconds:.1f}x faster" if peer else ""
        print(f"| {name} | {seconds:.2f} s | {f'{peer} s' if peer else ''} | {ratio} |")


if __name__ == "__main__":
    main()
