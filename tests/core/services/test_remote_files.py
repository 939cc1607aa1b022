"""Downloading ``remote_files`` from a real HTTP server on loopback, and the address vetting."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from annota.core.errors import MediaError
from annota.core.services import remote_files

CONTENT = bytes(range(256)) * 64


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}) and status != 200 or body:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        if self.path.startswith("/media/"):
            self._send(200, CONTENT)
        elif self.path == "/host":
            self._send(200, self.headers["Host"].encode())
        elif self.path == "/redirect":
            self._send(302, headers={"Location": "/media/moved%20name.jpg"})
        elif self.path == "/loop":
            self._send(302, headers={"Location": f"http://127.0.0.1:{port}/loop"})
        elif self.path == "/unsized":
            # no Content-Length: the size is only known while reading
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(CONTENT)
            self.close_connection = True
        else:
            self._send(404, b"missing")


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def download(url: str, dest: Path, *, max_size: int = 1 << 20, allow_private: bool = True) -> Path:
    return asyncio.run(remote_files.download(url, dest, max_size=max_size, allow_private=allow_private))


def test_download_streams_the_file_named_after_the_url(server: str, tmp_path: Path) -> None:
    path = download(f"{server}/media/frame%201.jpg?x=1", tmp_path)
    assert path == tmp_path / "frame 1.jpg"
    assert path.read_bytes() == CONTENT


def test_the_original_host_is_sent_although_the_vetted_address_is_used(server: str, tmp_path: Path) -> None:
    port = server.rsplit(":", 1)[1]
    path = download(f"http://localhost:{port}/host", tmp_path)
    assert path.read_bytes() == f"localhost:{port}".encode()


def test_urls_without_a_file_name_give_file(server: str, tmp_path: Path) -> None:
    assert download(f"{server}/media/", tmp_path).name == "file"


def test_redirects_are_followed(server: str, tmp_path: Path) -> None:
    path = download(f"{server}/redirect", tmp_path)
    assert path.name == "redirect" and path.read_bytes() == CONTENT


def test_too_many_redirects_are_refused(server: str, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=f"Cannot download {server}/loop: more than 5 redirects"):
        download(f"{server}/loop", tmp_path)


def test_error_statuses_name_the_url_and_status(server: str, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=f"{server}/nothing: the server answered 404"):
        download(f"{server}/nothing", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_files_past_the_limit_are_refused_and_removed(server: str, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="larger than the limit of 1000 bytes"):
        download(f"{server}/media/a.jpg", tmp_path, max_size=1000)
    with pytest.raises(MediaError, match=f"{server}/unsized: it is larger than the limit"):
        download(f"{server}/unsized", tmp_path, max_size=1000)
    assert list(tmp_path.iterdir()) == []


def test_only_http_and_https_are_allowed(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="only http and https"):
        download("ftp://example.com/a.jpg", tmp_path)
    with pytest.raises(MediaError, match="only http and https"):
        download("file:///etc/passwd", tmp_path)


def test_unresolvable_hosts_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="cannot be resolved"):
        download("http://no-such-host.invalid/a.jpg", tmp_path)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "[::1]", "localhost", "10.1.2.3", "169.254.169.254", "[::ffff:127.0.0.1]"]
)
def test_private_hosts_are_refused_unless_allowed(host: str, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="is not a public address"):
        download(f"http://{host}:9/a.jpg", tmp_path, allow_private=False)


def test_a_redirect_to_a_private_address_is_refused(server: str, tmp_path: Path) -> None:
    # every hop is vetted; here the first hop is the loopback server itself
    with pytest.raises(MediaError, match="127.0.0.1 is not a public address"):
        download(f"{server}/redirect", tmp_path, allow_private=False)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
        "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "fe80::1%eth0",
    ],
)  # fmt: skip
def test_check_address_refuses_non_public_addresses(address: str) -> None:
    with pytest.raises(MediaError, match="is not a public address"):
        remote_files.check_address(address, allow_private=False)
    assert remote_files.check_address(address, allow_private=True) == ipaddress.ip_address(
        address.split("%")[0]
    )


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_check_address_accepts_public_addresses(address: str) -> None:
    assert remote_files.check_address(address, allow_private=False) == ipaddress.ip_address(address)


def test_check_address_refuses_non_addresses() -> None:
    with pytest.raises(MediaError, match="'example.com' is not an IP address"):
        remote_files.check_address("example.com", allow_private=True)
