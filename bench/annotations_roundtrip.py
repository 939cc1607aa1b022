"""Annotation round trip through the HTTP API against a raw baseline measured in the same run.

One job gets 100,000 rectangles with two attributes each: ``PUT`` then ``GET`` over loopback
(uvicorn in a thread, httpx client). The baseline does the least any server must do with the
same rows: msgspec decode + one ``executemany`` with the database driver (PUT), and one select +
msgspec encode (GET). The target is each direction within 2x of its baseline.

    python bench/annotations_roundtrip.py --database both [--count 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx
import msgspec
import psycopg
from serving import serving

from annota.core.db.engine import create_engine
from annota.core.db.tables import Data, Job, Segment, Task
from annota.core.schemas.annotations import LabeledData
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
SHAPE_COLUMNS = (
    "job_id", "label_id", "frame", "type", "group", "source", "score", "occluded", "outside", "z_order",
    "rotation", "points", "attributes",
)  # fmt: skip


def prepare(database_url: str) -> tuple[int, list[int]]:
    """A user, and a task whose two jobs the benchmark fills (one through HTTP, one raw)."""

    async def go() -> tuple[int, list[int]]:
        engine = create_engine(database_url)
        async with engine.begin() as connection:
            from sqlalchemy.ext.asyncio import AsyncSession

            session = AsyncSession(bind=connection)
            await user_service.create_user(session, "bench", PASSWORD, privilege="admin")
            data = Data(size=1000, stop_frame=999, chunk_size=36, media_kind="images")
            task = Task(name="bench", mode="annotation", media_type="image")
            session.add_all([data, task])
            await session.flush()
            task.data_id = data.id
            jobs = []
            for _ in range(2):
                segment = Segment(task_id=task.id, start_frame=0, stop_frame=999)
                session.add(segment)
                await session.flush()
                job = Job(segment_id=segment.id, task_id=task.id)
                session.add(job)
                jobs.append(job)
            await session.flush()
            result = task.id, [job.id for job in jobs]
            await session.commit()
        await engine.dispose()
        return result

    return asyncio.run(go())


def make_body(label_id: int, specs: list[int], count: int) -> bytes:
    shapes = [
        {
            "type": "rectangle",
            "label_id": label_id,
            "frame": index % 1000,
            "points": [index % 640 + 0.5, index % 480 + 0.25, index % 640 + 30.5, index % 480 + 40.75],
            "attributes": [{"spec_id": specs[0], "value": "blue"}, {"spec_id": specs[1], "value": "7"}],
        }
        for index in range(count)
    ]
    return msgspec.json.encode({"shapes": shapes})


def baseline_rows(body: bytes, job_id: int) -> list[tuple[Any, ...]]:
    data = msgspec.json.decode(body, type=LabeledData)
    encode = msgspec.json.encode
    return [
        (
            job_id,
            s.label_id,
            s.frame,
            s.type,
            s.group or 0,
            s.source,
            s.score,
            s.occluded,
            s.outside,
            s.z_order,
            s.rotation,
            encode(s.points).decode(),
            encode(s.attributes).decode(),
        )  # fmt: skip
        for s in data.shapes
    ]


class RawDatabase:
    """The same rows through the bare driver (sqlite3 / psycopg), no framework in between."""

    def __init__(self, database_url: str) -> None:
        self.sqlite = database_url.startswith("sqlite")
        if self.sqlite:
            self.connection: Any = sqlite3.connect(database_url.removeprefix("sqlite:///"))
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
            self.mark = "?"
        else:
            self.connection = psycopg.connect(database_url)
            self.mark = "%s"

    def clear(self, job_id: int) -> None:
        self.connection.execute(f"DELETE FROM shapes WHERE job_id = {self.mark}", (job_id,))
        self.connection.commit()

    def put(self, body: bytes, job_id: int) -> None:
        rows = baseline_rows(body, job_id)
        names = ", ".join(f'"{name}"' for name in SHAPE_COLUMNS)
        marks = ", ".join([self.mark] * len(SHAPE_COLUMNS))
        cursor = self.connection.cursor()
        cursor.executemany(f"INSERT INTO shapes ({names}) VALUES ({marks})", rows)
        self.connection.commit()

    def get(self, job_id: int) -> bytes:
        rows = self.connection.execute(
            'SELECT id, type, label_id, frame, "group", source, score, occluded, outside, z_order, rotation, '
            f"points, attributes FROM shapes WHERE job_id = {self.mark} ORDER BY id",
            (job_id,),
        ).fetchall()
        raw = msgspec.Raw
        shapes = [
            {
                "id": r[0],
                "type": r[1],
                "label_id": r[2],
                "frame": r[3],
                "group": r[4],
                "source": r[5],
                "score": r[6],
                "occluded": bool(r[7]),
                "outside": bool(r[8]),
                "z_order": r[9],
                "rotation": r[10],
                "points": raw(r[11]),
                "attributes": raw(r[12]),
                "elements": [],
            }  # fmt: skip
            for r in rows
        ]
        self.connection.commit()
        return msgspec.json.encode({"version": 0, "tags": [], "shapes": shapes, "tracks": []})


def best(repeat: int, prepare_run: Callable[[], None], run: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        prepare_run()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def bench(database: str, count: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        if database == "sqlite":
            template = migrated_sqlite_template(Path(directory))
            url = f"sqlite:///{template}"
        else:
            url = create_postgres_database(POSTGRES_SERVER_URL)
        try:
            return run_bench(url, Path(directory), count, repeat)
        finally:
            if database != "sqlite":
                drop_postgres_database(POSTGRES_SERVER_URL, url)


def run_bench(url: str, directory: Path, count: int, repeat: int) -> dict[str, float]:
    task_id, (http_job, raw_job) = prepare(url)
    settings = finalize(
        Settings(data_dir=str(directory / "data"), database_url=url, secret_key="bench-secret")
    )
    with serving(settings) as base_url:
        client = httpx.Client(base_url=base_url, auth=("bench", PASSWORD), timeout=600)
        labels = [
            {
                "name": "car",
                "attributes": [
                    {"name": "color", "input_type": "select", "mutable": False, "values": ["red", "blue"]},
                    {"name": "count", "input_type": "number", "mutable": False, "values": ["0", "100", "1"]},
                ],
            }
        ]
        response = client.patch(f"/api/tasks/{task_id}", json={"labels": labels})
        response.raise_for_status()
        label = client.get("/api/labels", params={"task_id": task_id}).json()["results"][0]
        body = make_body(label["id"], [spec["id"] for spec in label["attributes"]], count)
        job_url = f"/api/jobs/{http_job}/annotations"
        results: dict[str, Any] = {"body_mb": len(body) / 1e6}

        def http_put() -> None:
            client.put(job_url, content=body, headers={"content-type": "application/json"}).raise_for_status()

        def http_get() -> None:
            # the body is read whole; it is checked afterwards, outside the timing
            answers.append(client.get(job_url))

        answers: list[httpx.Response] = []

        raw = RawDatabase(url)
        results["put"] = best(repeat, lambda: client.delete(job_url).raise_for_status(), http_put)
        results["get"] = best(repeat, lambda: None, http_get)
        for answer in answers:
            answer.raise_for_status()
            assert len(msgspec.json.decode(answer.content, type=LabeledData).shapes) == count
        results["raw_put"] = best(repeat, lambda: raw.clear(raw_job), lambda: raw.put(body, raw_job))
        results["raw_get"] = best(repeat, lambda: None, lambda: raw.get(raw_job))
        raw.connection.close()
        client.close()
        return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    databases = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    rows = []
    for database in databases:
        result = bench(database, args.count, args.repeat)
        rows.append((database, result))
    out = sys.stdout
    out.write(f"{args.count} rectangles x 2 attributes, best of {args.repeat}\n")
    out.write(f"{'database':<10}{'body MB':>9}{'direction':>11}{'HTTP s':>9}{'raw s':>9}{'ratio':>8}\n")
    for database, result in rows:
        for direction in ("put", "get"):
            http, raw = result[direction], result[f"raw_{direction}"]
            out.write(
                f"{database:<10}{result['body_mb']:>9.1f}{direction.upper():>11}{http:>9.2f}{raw:>9.2f}"
                f"{http / raw:>7.2f}x\n"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
