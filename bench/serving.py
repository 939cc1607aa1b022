"""annota served on a free loopback port (the other benchmarks' helpers), and the request path benchmark.

Run as a script, it measures plain authorized reads against a floor measured in the same run: the
server runs in a process of its own (uvicorn), clients send keep-alive GETs with ``http.client``,
one alone (p50) and then 4 at once (requests per second). The floors are Starlette answering a
constant the same way, and a raw read of the served frame's bytes from its chunk file.

    python bench/serving.py [--database sqlite|postgres] [--requests 2000] [--frames 8]
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from annota.runtime.app import create_app
from annota.runtime.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The base URL of a running server until the block ends."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


POSTGRES_SERVER_URL = os.environ.get(
    "ANNOTA_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def bench_database(kind: str) -> Iterator[tuple[str, Path]]:
    """A migrated, empty database (``sqlite`` or ``postgres``) and a scratch directory, removed
    afterwards: ``(database_url, directory)``."""
    from annota.testing.databases import (
        create_postgres_database,
        drop_postgres_database,
        migrated_sqlite_template,
    )

    with tempfile.TemporaryDirectory() as tmp:
        if kind == "postgres":
            database_url = create_postgres_database(POSTGRES_SERVER_URL)
        else:
            database_url = f"sqlite:///{migrated_sqlite_template(Path(tmp))}"
        try:
            yield database_url, Path(tmp)
        finally:
            if kind == "postgres":
                drop_postgres_database(POSTGRES_SERVER_URL, database_url)


def add_admin(settings: Settings, username: str, password: str) -> None:
    """Create an administrator in the (migrated) database of ``settings``."""
    import asyncio

    from annota.core.services import users as user_service
    from annota.runtime.state import close_state, open_state

    async def create() -> None:
        state = await open_state(settings)
        try:
            async with state.sessionmaker.begin() as session:
                await user_service.create_user(session, username, password, privilege="admin")
        finally:
            await close_state(state)

    asyncio.run(create())


# --- the request path benchmark ---------------------------------------------------------------

CLIENTS = 4


def _serve(settings: Settings | None, port: int) -> None:
    """A server process: annota for ``settings``, else the floor (Starlette answering a constant)."""
    if settings is None:
        from starlette.applications import Starlette
        from starlette.responses import Response
        from starlette.routing import Route

        body = b'{"name":"floor"}'

        async def constant(request: object) -> Response:
            return Response(body, media_type="application/json")

        app = Starlette(routes=[Route("/constant", constant)])
    else:
        app = create_app(settings)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@contextmanager
def serving_process(settings: Settings | None) -> Iterator[tuple[str, int]]:
    """``(host, port)`` of ``_serve`` in a process of its own, so that clients do not share its GIL."""
    import multiprocessing

    port = free_port()
    process = multiprocessing.get_context("spawn").Process(target=_serve, args=(settings, port), daemon=True)
    process.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or not process.is_alive():
                    raise RuntimeError("the server process did not start") from None
                time.sleep(0.05)
        yield "127.0.0.1", port
    finally:
        process.terminate()
        process.join()


def _get_loop(host: str, port: int, path: str, headers: dict[str, str], count: int) -> list[float]:
    """``count`` keep-alive GETs of ``path`` on one connection; each one's duration."""
    import http.client

    connection = http.client.HTTPConnection(host, port, timeout=60)
    times = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            times.append(time.perf_counter() - started)
            if response.status != 200 or not body:
                raise RuntimeError(f"GET {path} answered {response.status}: {body[:200]!r}")
    finally:
        connection.close()
    return times


def _measure(
    host: str, port: int, path: str, headers: dict[str, str], count: int, clients: int
) -> tuple[float, float]:
    """``(p50 seconds of one client alone, requests per second with ``clients`` clients)``."""
    from concurrent.futures import ThreadPoolExecutor

    _get_loop(host, port, path, headers, 50)  # warm
    alone = sorted(_get_loop(host, port, path, headers, count))
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: _get_loop(host, port, path, headers, count // clients), range(clients)))
    rate = (count // clients) * clients / (time.perf_counter() - started)
    return alone[len(alone) // 2], rate


def _raw_frame_reader(storage: Path, data_id: int, number: int) -> Callable[[], int]:
    """Reading the frame's bytes straight from its chunk file, its offset already known."""
    from annota.core.media import layout
    from annota.core.media.chunks import decode_index

    # the chunk size is unknown here: find the chunk whose index names the frame
    for chunk_number in range(number + 1):
        index_path = storage / layout.chunk_index(data_id, "compressed", chunk_number)
        members = {m.frame: m for m in decode_index(index_path.read_bytes())}
        if number in members:
            member, chunk = members[number], storage / layout.chunk(data_id, "compressed", chunk_number)
            break
    else:
        raise RuntimeError(f"frame {number} is in no chunk")

    def read() -> int:
        with chunk.open("rb") as file:
            file.seek(member.offset)
            return len(file.read(member.size))

    return read


def main() -> int:
    import argparse
    import base64
    import sys

    import httpx2 as httpx
    from task_creation import PASSWORD, create_task, generate_images, upload_images

    from annota.runtime.settings import finalize

    parser = argparse.ArgumentParser(description="The request path against a floor measured in the same run.")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--requests", type=int, default=2000, help="requests per measurement")
    parser.add_argument("--frames", type=int, default=8, help="frames in the served task")
    args = parser.parse_args()
    rows: list[tuple[str, float, float]] = []
    with bench_database(args.database) as (database_url, directory):
        settings = finalize(
            Settings(data_dir=str(directory / "data"), database_url=database_url, secret_key="bench-secret")
        )
        add_admin(settings, "bench", PASSWORD)
        (directory / "images").mkdir()
        images = generate_images(directory / "images", args.frames)
        with serving_process(None) as (host, port):
            rows.append(
                (
                    "floor: Starlette answering a constant",
                    *_measure(host, port, "/constant", {}, args.requests, CLIENTS),
                )
            )
        with serving_process(settings) as (host, port):
            base_url = f"http://{host}:{port}"
            with httpx.Client(base_url=base_url, auth=("bench", PASSWORD), timeout=600) as client:
                task_id = create_task(client, "served")
                upload_images(client, task_id, images)
                data_id = client.get(f"/api/tasks/{task_id}").json()["data"]
                login = httpx.post(
                    f"{base_url}/api/auth/login", json={"username": "bench", "password": PASSWORD}
                )
                login.raise_for_status()
            token = {"Authorization": f"Token {login.json()['key']}"}
            basic = {"Authorization": "Basic " + base64.b64encode(f"bench:{PASSWORD}".encode()).decode()}
            cookie = {"Cookie": f"sessionid={login.cookies['sessionid']}"}
            frame = f"/api/tasks/{task_id}/data?type=frame&quality=compressed&number=1"
            cases = [
                ("GET /api/server/about, anonymous", "/api/server/about", {}),
                ("GET /api/server/about, token", "/api/server/about", token),
                ("GET /api/server/about, Basic", "/api/server/about", basic),
                ("GET /api/server/about, session cookie", "/api/server/about", cookie),
                ("GET /api/tasks/{id}, token", f"/api/tasks/{task_id}", token),
                ("GET /api/tasks (one task), token", "/api/tasks", token),
                ("GET a compressed frame, token", frame, token),
            ]
            for label, path, headers in cases:
                rows.append((label, *_measure(host, port, path, headers, args.requests, CLIENTS)))
        read = _raw_frame_reader(directory / "data" / "storage", data_id, 1)
        from concurrent.futures import ThreadPoolExecutor

        times = []
        for _ in range(args.requests):
            started = time.perf_counter()
            read()
            times.append(time.perf_counter() - started)
        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(lambda _: read(), range(args.requests)))
        rows.append(
            (
                "floor: raw read of the same frame",
                sorted(times)[len(times) // 2],
                args.requests / (time.perf_counter() - started),
            )
        )
    floor_p50, floor_rate = rows[0][1], rows[0][2]
    out = sys.stdout
    out.write(
        f"{args.database}, {args.requests} requests per row; server in its own process, "
        f"{CLIENTS} clients on keep-alive connections for the last columns\n\n"
    )
    out.write(
        "| request | p50 ms | / floor | req/s, 1 client | req/s, 4 clients | / floor |\n"
        "|---|---|---|---|---|---|\n"
    )
    for label, p50, rate in rows[:-1]:
        out.write(
            f"| {label} | {p50 * 1000:.2f} | {p50 / floor_p50:.1f}x | {1 / p50:.0f} | {rate:.0f} "
            f"| {floor_rate / rate:.1f}x |\n"
        )
    (_, served_p50, served_rate), (_, read_p50, read_rate) = rows[-2], rows[-1]
    out.write(
        f"\nthe frame: {1 / served_p50:.0f} frames/s served to one client, {served_rate:.0f} to {CLIENTS}; "
        f"a raw read of its bytes {1 / read_p50:.0f}/s, {read_rate:.0f}/s on {CLIENTS} threads "
        f"({read_p50 * 1e6:.0f} us each)\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
