"""A webhook receiver on loopback: a real HTTP server that checks signatures, records what it got
and answers what the test tells it to (a status code, or a response slower than the timeout)."""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

#: an answer that sleeps this long before responding (longer than the tests' read timeout)
SLOW = "slow"
SLOW_SECONDS = 1.5


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    #: the signature header matched HMAC-SHA256 of the exact body with the receiver's secret
    signed: bool | None
    answered: int | str

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Requests to ``/always/<status>`` get that status; others get the next answer of the
    ``scripts`` entry for their path, then ``default``."""

    secret: str = ""
    #: answers for the next requests to a path, in order
    scripts: dict[str, list[int | str]] = field(default_factory=dict)
    default: int = 200
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base: str = ""

    @property
    def url(self) -> str:
        return self.base + "/hook"

    def answer(self, path: str) -> int | str:
        if path.startswith("/always/"):
            return int(path.rsplit("/", 1)[1])
        with self.lock:
            script = self.scripts.get(path)
            return script.pop(0) if script else self.default

    def to(self, path: str) -> list[Received]:
        with self.lock:
            return [item for item in self.received if item.path == path]

    def record(self, item: Received) -> None:
        with self.lock:
            self.received.append(item)

    def wait_for(self, count: int, timeout: float = 8.0) -> list[Received]:
        """The first ``count`` requests, once they arrived (fails after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received[:count])
            time.sleep(0.02)
        raise AssertionError(f"expected {count} requests, got {len(self.received)}: {self.received}")

    def quiet_for(self, seconds: float) -> list[Received]:
        """Everything received, after ``seconds`` more (to check nothing else arrives)."""
        time.sleep(seconds)
        with self.lock:
            return list(self.received)

    def events(self) -> list[str]:
        with self.lock:
            return [item.payload.get("event") for item in self.received]


def _handler(receiver: Receiver) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            signature = self.headers.get("X-Signature-256")
            signed = None
            if receiver.secret:
                expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                signed = signature is not None and hmac.compare_digest(signature, expected)
            answer = receiver.answer(self.path)
            receiver.record(Received(self.path, dict(self.headers), body, time.monotonic(), signed, answer))
            if answer == SLOW:
                time.sleep(SLOW_SECONDS)
                answer = 200
            payload = json.dumps({"answer": answer}).encode()
            try:
                self.send_response(int(answer))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up waiting (timeout tests)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def serve(
    receiver: Receiver, tls: ssl.SSLContext | None = None
) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve ``receiver`` on a free loopback port, over TLS when ``tls`` is given."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    scheme = "http"
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    receiver.base = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    return server, thread


def self_signed(directory: Path) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1 (no CA vouches for it)."""
    key, certificate = directory / "key.pem", directory / "certificate.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    return context
