"""Webhook delivery under a stream of changes, and what a subscribed webhook costs the write path.

A real server (uvicorn in a thread) and a real receiver on loopback. The one worker is the embedded
in-process runner sharing the server's loop (``--runner inprocess``), or an ``annota worker`` process
on arq and Redis (``--runner worker``), as in production. After 100 updates to warm up: 500 task
updates with no webhook; a project webhook subscribed to ``update:task`` and 1,000 updates, every
one of them delivered before going on; the webhook deactivated and 500 more updates. The updates
without a webhook come from before and after, so a server slowing down as its tables grow does not
count as webhook overhead. Reported: the updates' API latency without and with the webhook
(target: under 5% more, since delivery is asynchronous), deliveries per second, and the latency
from each update's response to its delivery's receipt (p50/p99).

    python bench/webhooks.py [--updates 1000] [--database sqlite|postgres] [--runner inprocess|worker]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2 as httpx
from serving import add_admin, bench_database, serving

from annota.runtime.settings import Settings, finalize

PASSWORD = "bench-password"


class Receiver:
    """Records when each delivery arrived, by the task name the update set. It runs in a process of
    its own, as a real receiver would: in the server's process its threads would compete with the
    server for the interpreter. Arrival times are ``time.monotonic()``, one clock for all processes."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self.count = context.Value("i", 0)
        self.connection = parent
        self.process = context.Process(target=_receive, args=(child, self.count), daemon=True)
        self.process.start()
        self.url: str = parent.recv()

    def received(self) -> dict[str, float]:
        self.connection.send("report")
        arrivals: dict[str, float] = self.connection.recv()
        return arrivals

    def close(self) -> None:
        self.process.terminate()
        self.process.join(10)


def _receive(connection: Any, count: Any) -> None:
    received: dict[str, float] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        # keeps connections open between deliveries, as receivers behind any common web server do
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            arrived = time.monotonic()
            name = json.loads(body).get("changes", {}).get("name", {}).get("to")
            with lock:
                if name is not None and name not in received:
                    received[name] = arrived
                    count.value = len(received)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        # the default listen backlog (5) drops concurrent deliveries' connections
        request_queue_size = 1024
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    connection.send(f"http://127.0.0.1:{server.server_address[1]}/hook")
    while connection.recv() == "report":
        with lock:
            connection.send(dict(received))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def updates(
    client: httpx.Client, task_id: int, prefix: str, count: int
) -> tuple[list[float], dict[str, float]]:
    latencies, done = [], {}
    for number in range(count):
        name = f"{prefix}{number}"
        started = time.monotonic()
        response = client.patch(f"/api/tasks/{task_id}", json={"name": name})
        finished = time.monotonic()
        assert response.status_code == 200, response.text
        latencies.append(finished - started)
        done[name] = finished
    return latencies, done


@contextlib.contextmanager
def worker_process(settings: Settings) -> Iterator[None]:
    """An ``annota worker`` on the server's database and Redis, stopped when the block ends."""
    environ = dict(
        os.environ,
        ANNOTA_DATA_DIR=settings.data_dir,
        ANNOTA_DATABASE_URL=settings.database_url,
        ANNOTA_REDIS_URL=settings.redis_url,
        ANNOTA_SECRET_KEY=settings.secret_key,
        ANNOTA_WEBHOOKS_ALLOW_PRIVATE_TARGETS="true",
    )
    process = subprocess.Popen([sys.executable, "-m", "annota.runtime.cli", "worker"], env=environ)
    try:
        yield
    finally:
        process.terminate()
        process.wait(30)


def run(args: argparse.Namespace, database_url: str, data_dir: Path) -> None:
    settings = finalize(Settings(data_dir=str(data_dir), database_url=database_url, secret_key="bench"))
    settings.plugin_settings = {"webhooks": {"allow_private_targets": True}}
    if args.runner == "worker":
        settings.redis_url = args.redis_url

    add_admin(settings, "bench", PASSWORD)
    receiver = Receiver()
    worker = worker_process(settings) if args.runner == "worker" else contextlib.nullcontext()
    with (
        serving(settings) as url,
        worker,
        httpx.Client(base_url=url, auth=("bench", PASSWORD), timeout=60) as client,
    ):
        project = client.post("/api/projects", json={"name": "bench", "labels": [{"name": "car"}]}).json()
        task = client.post("/api/tasks", json={"name": "t", "project_id": project["id"]}).json()
        updates(client, task["id"], "warm-", 100)
        before, _ = updates(client, task["id"], "before-", args.updates // 2)
        hook = {
            "target_url": receiver.url, "type": "project", "project_id": project["id"],
            "events": ["update:task"], "content_type": "application/json", "secret": "bench-secret",
        }  # fmt: skip
        response = client.post("/api/webhooks", json=hook)
        assert response.status_code == 201, response.text
        first = time.monotonic()
        hooked, done = updates(client, task["id"], "hooked-", args.updates)
        deadline = time.monotonic() + 300
        while receiver.count.value < args.updates and time.monotonic() < deadline:
            time.sleep(0.05)
        received = receiver.received()
        quiet = client.patch(f"/api/webhooks/{response.json()['id']}", json={"is_active": False})
        assert quiet.status_code == 200, quiet.text
        after, _ = updates(client, task["id"], "after-", args.updates - args.updates // 2)
    receiver.close()
    plain = before + after
    missing = args.updates - len(received)
    delays = [received[name] - done[name] for name in done if name in received]
    span = max(received.values()) - first if received else float("nan")
    ms = 1000
    runner = "the in-process runner" if args.runner == "inprocess" else "one annota worker process (arq)"
    print(f"{args.updates} task updates, {args.database}, one webhook, {runner}\n")
    print("| what | p50 | p99 | mean |")
    print("|---|---|---|---|")
    rows = (("PATCH without webhook", plain), ("PATCH with webhook", hooked))
    for label, values in rows:
        print(f"| {label} | {percentile(values, 0.5) * ms:.1f} ms | {percentile(values, 0.99) * ms:.1f} ms | "
              f"{statistics.fmean(values) * ms:.1f} ms |")  # fmt: skip
    print(f"| response to receipt | {percentile(delays, 0.5) * ms:.0f} ms | "
          f"{percentile(delays, 0.99) * ms:.0f} ms | {statistics.fmean(delays) * ms:.0f} ms |")  # fmt: skip
    overhead = statistics.fmean(hooked) / statistics.fmean(plain) - 1
    median = percentile(hooked, 0.5) / percentile(plain, 0.5) - 1
    print(f"\nwrite-path overhead of the webhook: {overhead * 100:+.1f}% mean, {median * 100:+.1f}% p50")
    print(f"deliveries: {len(received)} in {span:.1f} s from the first update, {len(received) / span:.0f}/s")
    if missing:
        sys.exit(f"{missing} deliveries did not arrive")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--runner", choices=["inprocess", "worker"], default="inprocess")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="for --runner worker")
    args = parser.parse_args()
    with bench_database(args.database) as (database_url, directory):
        run(args, database_url, directory / "data")


if __name__ == "__main__":
    main()
