"""Peak memory of exporting a task with 1,000,000 shapes: the export must stream.

A task of 10,000 frames gets 1,000,000 rectangles (written straight into the database, which is not
what is measured). Then a fresh process (what an ``annota worker`` is) runs the export job exactly as
a worker would, and reports its wall time and peak RSS; a second process that only opens the same
state gives the baseline RSS of the process itself. The target: the exporting process stays under
1 GiB.

    python bench/export_memory.py [--shapes 1000000] [--format "COCO 1.0"] [--database sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from serving import bench_database

FRAMES = 10_000


def fill(database_url: str, shapes: int) -> int:
    """A task, its frames, one job, a label with an attribute, and ``shapes`` rectangles."""
    import psycopg

    sqlite = database_url.startswith("sqlite")
    connection = (
        sqlite3.connect(database_url.removeprefix("sqlite:///")) if sqlite else psycopg.connect(database_url)
    )
    mark = "?" if sqlite else "%s"

    def one(sql: str, params: tuple[object, ...]) -> int:
        cursor = connection.cursor()
        cursor.execute(sql + " RETURNING id", params)
        return int(cursor.fetchone()[0])

    data_id = one(
        "INSERT INTO data (size, image_quality, start_frame, stop_frame, frame_filter, chunk_size, "
        "compressed_chunk_type, original_chunk_type, storage_method, storage, sorting_method, "
        "deleted_frames, media_kind, chunks_updated_date, created_date) "
        f"VALUES ({mark}, 70, 0, {mark}, '', 72, 'imageset', 'imageset', 'file_system', 'local', "
        "'lexicographical', '[]', 'images', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        (FRAMES, FRAMES - 1),
    )
    task_id = one(
        "INSERT INTO tasks (name, bug_tracker, status, segment_size, data_id, dimension, mode, media_type, "
        "subset, consensus_replicas, created_date, updated_date) "
        f"VALUES ('big', '', 'annotation', {mark}, {mark}, '2d', 'annotation', 'image', '', 0, "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        (FRAMES, data_id),
    )
    segment_id = one(
        f"INSERT INTO segments (task_id, start_frame, stop_frame, type, frames, chunks_updated_date) "
        f"VALUES ({mark}, 0, {mark}, 'range', '[]', CURRENT_TIMESTAMP)",
        (task_id, FRAMES - 1),
    )
    job_id = one(
        "INSERT INTO jobs (segment_id, task_id, status, stage, state, type, annotations_version, "
        f"created_date, updated_date) VALUES ({mark}, {mark}, 'annotation', 'annotation', 'new', "
        "'annotation', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        (segment_id, task_id),
    )
    label_id = one(
        f"INSERT INTO labels (task_id, name, color, type, svg) VALUES ({mark}, 'car', '#ff0000', 'any', '')",
        (task_id,),
    )
    spec_id = one(
        f'INSERT INTO attribute_specs (label_id, name, mutable, input_type, default_value, "values") '
        f"VALUES ({mark}, 'color', false, 'text', '', '[]')",
        (label_id,),
    )
    cursor = connection.cursor()
    cursor.executemany(
        "INSERT INTO frames (data_id, frame, path, width, height, is_placeholder, real_frame, "
        f"related_files) VALUES ({mark}, {mark}, {mark}, 640, 480, false, {mark}, '[]')",
        [(data_id, i, f"images/img_{i:06d}.jpg", i) for i in range(FRAMES)],
    )
    attributes = json.dumps([{"spec_id": spec_id, "value": "blue"}])
    columns = (
        '(job_id, label_id, frame, type, "group", source, score, occluded, outside, z_order, rotation, '
        "points, attributes)"
    )
    marks = ", ".join([mark] * 13)
    batch = 100_000
    for start in range(0, shapes, batch):
        rows = [
            (job_id, label_id, i % FRAMES, "rectangle", 0, "manual", 1.0, False, False, 0, 0.0,
             f"[{i % 600}.5,{i % 400}.25,{i % 600 + 30}.5,{i % 400 + 40}.75]", attributes)
            for i in range(start, min(start + batch, shapes))
        ]  # fmt: skip
        cursor.executemany(f"INSERT INTO shapes {columns} VALUES ({marks})", rows)
    connection.commit()
    connection.close()
    return task_id


def child(database_url: str, data_dir: str, task_id: int, format_name: str, export: bool) -> None:
    """Runs in a fresh process: open the server state and (maybe) export, then print numbers."""
    from annota.core.services import dataset_jobs
    from annota.runtime.settings import Settings, finalize
    from annota.runtime.state import close_state, open_state

    async def go() -> float:
        settings = finalize(Settings(data_dir=data_dir, database_url=database_url, secret_key="bench"))
        state = await open_state(settings, auto_migrate=False)
        started = time.perf_counter()
        try:
            if export:
                context = state.job_context("bench-export", 1)
                await dataset_jobs.export_dataset(
                    context, target="task", target_id=task_id, format=format_name, save_images=False,
                    base_url="http://bench",
                )  # fmt: skip
        finally:
            await close_state(state)
        return time.perf_counter() - started

    seconds = asyncio.run(go())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_rss": peak}))


def measure(
    args: argparse.Namespace, database_url: str, data_dir: str, task_id: int, export: bool
) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", database_url, data_dir, str(task_id), args.format,
               "1" if export else "0"]  # fmt: skip
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, database_url, data_dir, task_id, format_name, export = sys.argv
        child(database_url, data_dir, int(task_id), format_name, export == "1")
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shapes", type=int, default=1_000_000)
    parser.add_argument("--format", default="COCO 1.0")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()

    with bench_database(args.database) as (database_url, directory):
        started = time.perf_counter()
        task_id = fill(database_url, args.shapes)
        print(f"filled {args.shapes:,} shapes in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        data_dir = str(directory / "data")
        base = measure(args, database_url, data_dir, task_id, export=False)
        run = measure(args, database_url, data_dir, task_id, export=True)
        size = sum(p.stat().st_size for p in Path(data_dir, "storage", "exports").rglob("*.zip"))
    mib = 1024 * 1024
    print("| shapes | format | database | export time | peak RSS (export) | peak RSS (process only) | file |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {args.shapes:,} | {args.format} | {args.database} | {run['seconds']:.1f} s | "
        f"{run['peak_rss'] / mib:.0f} MiB | {base['peak_rss'] / mib:.0f} MiB | {size / mib:.0f} MiB |"
    )
    if run["peak_rss"] >= 1024 * mib:
        sys.exit("peak RSS is over 1 GiB")


if __name__ == "__main__":
    main()
