"""Target URLs: what a webhook may point at, and the addresses a delivery may connect to.

Unless ``allow_private_targets`` is set, a target that is (or resolves to) a private, loopback,
link-local or otherwise non-public address is refused when the webhook is saved and again before
every delivery (``transport`` connects only to the addresses vetted here).
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

from annota.core.errors import MediaError, ValidationError
from annota.core.services.remote_files import IPAddress, check_address

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_LENGTH = 8192


class TargetRefused(OSError):
    """The target resolves to an address deliveries may not reach. An ``OSError``, as resolution
    failures are: the HTTP client hands it back as the reason a connection could not be made."""


def check_url(url: str) -> tuple[str, int]:
    """The host and port of a well-formed http(s) URL; ``ValidationError`` on ``target_url``."""
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError.for_field("target_url", f"Must be at most {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationError.for_field("target_url", f"Not a valid URL: {exc}.") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise ValidationError.for_field("target_url", "Only http and https URLs are allowed.")
    if not parts.hostname:
        raise ValidationError.for_field("target_url", "The URL has no host.")
    return parts.hostname, port or DEFAULT_PORTS[parts.scheme]


async def resolve(host: str, port: int, allow_private: bool) -> list[IPAddress]:
    """Every address ``host`` resolves to, each vetted; ``TargetRefused`` names a refused one.
    ``OSError`` when the name does not resolve at all."""
    answers = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for *_, sockaddr in answers:
        try:
            addresses.append(check_address(str(sockaddr[0]), allow_private))
        except MediaError:
            raise TargetRefused(
                f"{host} resolves to {sockaddr[0]}, which is not a public address; set the webhooks "
                "plugin's allow_private_targets to deliver to private networks."
            ) from None
    return list(dict.fromkeys(addresses))


async def vet_new_target(url: str, allow_private: bool) -> None:
    """Refuse, as a 400 on ``target_url``, a URL that is malformed or points at a non-public address.
    A name that does not resolve now is accepted: every delivery resolves it again."""
    host, port = check_url(url)
    if allow_private:
        return
    try:
        await resolve(host, port, allow_private)
    except TargetRefused as exc:
        raise ValidationError.for_field("target_url", str(exc)) from None
    except OSError:
        return


__all__ = ["TargetRefused", "check_url", "resolve", "vet_new_target"]
