"""annota as it runs on several machines, on loopback: nginx balancing ``annota serve``
processes, ``annota worker`` processes split by queue, PostgreSQL, Redis and moto's S3 server as
storage. The cluster test and ``bench/cluster.py`` start it the same way, so the sizing figures
come from the topology the test checks.

nginx comes from the distribution's packages (``nginx-light`` on Debian); it runs as the current
user with its configuration, pid file, logs and temporary files in the cluster's directory, so
it needs no root and leaves nothing behind.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx

from annota.testing.databases import create_postgres_database, drop_postgres_database

BIN = Path(sys.executable).parent
#: moto accepts any signature; an Authorization header names the (fake) account's key
S3_AUTH = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request"
#: the compose file's split: imports and task creation, exports, and everything short
WORKER_QUEUES = (("import",), ("export",), ("annotation", "chunks", "utils", "webhooks"))

NGINX_CONF = """\
{user}
worker_processes {nginx_workers};
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream annota {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_read_timeout 300s;
        location /api/ {{
            proxy_pass http://annota;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            # a refused connection goes to the next server; a request already sent that is not
            # idempotent (POST, PATCH) is not sent twice: its client sees the failure
            proxy_next_upstream error timeout;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(path, os.X_OK)), None
    )


def wait_for(check: Callable[[], bool], what: str, timeout: float, logs: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.TransportError, OSError):
            pass
        time.sleep(0.05)
    text = "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(logs.glob("*.log"))
    )
    raise RuntimeError(f"{what} did not come up within {timeout} s\n{text}")


@dataclass
class Cluster:
    """A running cluster; ``url`` is nginx's. Start it with :func:`start_cluster`."""

    directory: Path
    env: dict[str, str]
    postgres_server_url: str
    database_url: str
    bucket: str
    s3_endpoint: str
    url: str = ""
    api_ports: list[int] = field(default_factory=list)
    api: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    others: list[subprocess.Popen[bytes]] = field(default_factory=list)
    starts: int = 0

    def annota(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "annota"), *args], env=self.env, capture_output=True, text=True, check=True, timeout=60
        )

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        self.starts += 1
        with open(self.directory / f"{name}-{self.starts}.log", "wb") as log:
            return subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def start_api(self, index: int) -> subprocess.Popen[bytes]:
        """(Re)start API process ``index`` on its port, and wait until it answers."""
        port = self.api_ports[index]
        process = self._spawn(f"serve{index}", [str(BIN / "annota"), "serve", "--port", str(port)])
        if index < len(self.api):
            self.api[index] = process
        else:
            self.api.append(process)
        url = f"http://127.0.0.1:{port}/api/server/health"
        wait_for(
            lambda: httpx.get(url, timeout=1).status_code == 200,
            f"annota serve on {port}",
            60,
            self.directory,
        )
        return process

    def start_worker(self, index: int) -> subprocess.Popen[bytes]:
        """(Re)start worker ``index`` on its queues (:data:`WORKER_QUEUES`)."""
        queues = [arg for queue in WORKER_QUEUES[index] for arg in ("--queue", queue)]
        process = self._spawn(f"worker{index}", [str(BIN / "annota"), "worker", *queues])
        if index < len(self.workers):
            self.workers[index] = process
        else:
            self.workers.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.directory.glob("*.log"))
        )

    def sql(self, query: str) -> list[list[str]]:
        result = subprocess.run(
            ["psql", self.database_url, "-At", "-F", "\t", "-c", query],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        return [line.split("\t") for line in result.stdout.splitlines() if line]

    def stop(self) -> None:
        for process in [*self.others, *self.api, *self.workers]:
            if process.poll() is None:
                process.terminate()
        for process in [*self.others, *self.api, *self.workers]:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        drop_postgres_database(self.postgres_server_url, self.database_url)


def start_cluster(
    directory: Path,
    *,
    postgres_server_url: str,
    redis_url: str,
    api_processes: int = 2,
    worker_processes: int = len(WORKER_QUEUES),
    nginx_workers: int = 1,
    admin: tuple[str, str] = ("admin", "cluster-admin-password"),
    extra_env: dict[str, str] | None = None,
) -> Cluster:
    """Start every part on free loopback ports, with a new database and a new bucket; the caller
    stops it with :meth:`Cluster.stop`. Raises ``FileNotFoundError`` without nginx."""
    nginx = nginx_binary()
    if nginx is None:
        raise FileNotFoundError("nginx is not installed (apt-get install nginx-light)")
    directory.mkdir(parents=True, exist_ok=True)
    s3_port = free_port()
    s3_endpoint = f"http://127.0.0.1:{s3_port}"
    bucket = f"annota-{uuid.uuid4().hex[:12]}"
    database_url = create_postgres_database(postgres_server_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANNOTA_", "PROMETHEUS_"))}
    env.update(
        HOME=str(directory),
        ANNOTA_DATA_DIR=str(directory / "data"),
        ANNOTA_DATABASE_URL=database_url.replace("postgresql://", "postgresql+psycopg://", 1),
        ANNOTA_REDIS_URL=redis_url,
        # several clusters (and test runs) may share one Redis database
        ANNOTA_QUEUE_PREFIX=f"cluster-{uuid.uuid4().hex[:8]}",
        ANNOTA_STORAGE="s3",
        ANNOTA_S3_BUCKET=bucket,
        ANNOTA_S3_ENDPOINT_URL=s3_endpoint,
        ANNOTA_S3_REGION="us-east-1",
        ANNOTA_S3_ACCESS_KEY_ID="testing",
        ANNOTA_S3_SECRET_ACCESS_KEY="testing",
        ANNOTA_LOG_LEVEL="warning",
    )
    env.update(extra_env or {})
    cluster = Cluster(directory, env, postgres_server_url, database_url, bucket, s3_endpoint)
    try:
        with open(directory / "moto.log", "wb") as log:
            moto = subprocess.Popen(
                [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        cluster.others.append(moto)
        bucket_url = f"{s3_endpoint}/{bucket}"
        wait_for(
            lambda: httpx.put(bucket_url, headers={"Authorization": S3_AUTH}).status_code == 200,
            "moto_server", 30, directory,
        )  # fmt: skip
        cluster.annota("users", "create", "--username", admin[0], "--password", admin[1], "--superuser")
        cluster.api_ports = [free_port() for _ in range(api_processes)]
        for index in range(api_processes):
            cluster.start_api(index)
        for index in range(worker_processes):
            cluster.start_worker(index)
        port = free_port()
        tmp = directory / "nginx"
        tmp.mkdir(exist_ok=True)
        servers = "\n".join(
            f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=1s;" for p in cluster.api_ports
        )
        # a master started by root hands its workers to ``user``: keep them the current user's
        user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
        conf = NGINX_CONF.format(user=user, nginx_workers=nginx_workers, tmp=tmp, servers=servers, port=port)
        (tmp / "nginx.conf").write_text(conf)
        with open(directory / "nginx.log", "wb") as log:
            nginx_process = subprocess.Popen(
                [nginx, "-p", str(tmp), "-e", str(tmp / "nginx-error.log"), "-c", str(tmp / "nginx.conf"),
                 "-g", "daemon off;"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        cluster.others.append(nginx_process)
        cluster.url = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: httpx.get(f"{cluster.url}/api/server/ready", timeout=2).status_code == 200,
            "nginx in front of annota", 30, directory,
        )  # fmt: skip
    except BaseException:
        cluster.stop()
        raise
    return cluster
