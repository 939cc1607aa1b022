"""``remote_files``: downloading media from URLs without letting clients reach the server's network.

A URL's host is resolved once, every address it resolves to is vetted, and the connection goes to
the vetted address itself, so a second DNS answer cannot swap in an internal one. Redirects are
followed by hand and vetted hop by hop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import httpx

from annota.core.errors import MediaError

MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}
_DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def check_address(address: str, allow_private: bool) -> IPAddress:
    """The parsed address, or ``MediaError`` if it is not a public unicast address (unless
    ``allow_private``). IPv4-mapped IPv6 addresses are judged by their IPv4 address."""
    try:
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        raise MediaError(f"{address!r} is not an IP address.") from None
    if allow_private:
        return ip
    judged: IPAddress = ip
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        judged = ip.ipv4_mapped
    refused = (
        judged.is_private
        or judged.is_loopback
        or judged.is_link_local
        or judged.is_multicast
        or judged.is_reserved
        or judged.is_unspecified
        or not judged.is_global
    )
    if refused:
        raise MediaError(f"{address} is not a public address.")
    return ip


def _file_name(url: str) -> str:
    """The last path segment of the URL, decoded, as a plain file name."""
    segment = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    name = segment.replace("\\", "/").rsplit("/", 1)[-1]
    if name in ("", ".", "..") or "\x00" in name:
        return "file"
    return name


async def _vetted_addresses(url: str, host: str, port: int, allow_private: bool) -> list[IPAddress]:
    try:
        answers = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise MediaError(f"Cannot download {url}: the host {host!r} cannot be resolved ({exc}).") from None
    if not answers:
        raise MediaError(f"Cannot download {url}: the host {host!r} cannot be resolved.")
    addresses = []
    for _family, _type, _proto, _name, sockaddr in answers:
        try:
            # every answer is vetted: the client may connect to any of them
            addresses.append(check_address(str(sockaddr[0]), allow_private))
        except MediaError as exc:
            raise MediaError(f"Cannot download {url}: {host} resolves to {exc.detail}") from None
    return list(dict.fromkeys(addresses))


async def _send(client: httpx.AsyncClient, url: str, addresses: list[IPAddress]) -> httpx.Response:
    """The response of the first vetted address that accepts a connection."""
    for ip in addresses[:-1]:
        try:
            return await client.send(_direct_request(client, url, ip), stream=True)
        except httpx.ConnectError:
            continue
    return await client.send(_direct_request(client, url, addresses[-1]), stream=True)


def _direct_request(client: httpx.AsyncClient, url: str, ip: IPAddress) -> httpx.Request:
    """A GET for ``url`` sent to ``ip``; the host name travels in ``Host`` and the TLS SNI."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{ip}]" if isinstance(ip, ipaddress.IPv6Address) else str(ip)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    host_header = parts.netloc.rpartition("@")[2]
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return client.build_request(
        "GET",
        urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")),
        headers={"Host": host_header},
        extensions=extensions,
    )


def _check_url(url: str, original: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise MediaError(f"Cannot download {original}: only http and https URLs are allowed, got {url!r}.")
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise MediaError(f"Cannot download {original}: {url!r} has an invalid port.") from None
    return parts.hostname, port


async def _save(response: httpx.Response, url: str, path: Path, max_size: int) -> None:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_size:
        raise MediaError(f"Cannot download {url}: it is larger than the limit of {max_size} bytes.")
    size = 0
    handle = await asyncio.to_thread(open, path, "xb")
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_size:
                raise MediaError(f"Cannot download {url}: it is larger than the limit of {max_size} bytes.")
            await asyncio.to_thread(handle.write, chunk)
    except BaseException:
        handle.close()
        path.unlink(missing_ok=True)
        raise
    handle.close()


async def download(
    url: str, dest_dir: Path, *, max_size: int, allow_private: bool, timeout: float = 60.0
) -> Path:
    """Download ``url`` into ``dest_dir``, named after the URL's last path segment; returns the file."""
    path = dest_dir / _file_name(url)
    if path.exists():
        raise MediaError(f"Cannot download {url}: a file named {path.name} was already downloaded.")
    current = url
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            for _hop in range(MAX_REDIRECTS + 1):
                host, port = _check_url(current, url)
                addresses = await _vetted_addresses(url, host, port, allow_private)
                response = await _send(client, current, addresses)
                try:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECTS and location:
                        current = urljoin(current, location)
                        continue
                    if not 200 <= response.status_code < 300:
                        raise MediaError(
                            f"Cannot download {url}: the server answered {response.status_code}."
                        )
                    await _save(response, url, path, max_size)
                    return path
                finally:
                    await response.aclose()
    except httpx.HTTPError as exc:
        raise MediaError(f"Cannot download {url}: {type(exc).__name__}: {exc}") from None
    raise MediaError(f"Cannot download {url}: more than {MAX_REDIRECTS} redirects.")


__all__ = ["MAX_REDIRECTS", "check_address", "download"]
