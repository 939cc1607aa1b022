"""Cloud storage credentials at rest: sealed with Fernet (AES-128-CBC + HMAC-SHA256) under a key
derived from the server's ``secret_key``, so a copy of the database alone reveals no secret.

The key is derived with HKDF-SHA256 and a purpose label, so it differs from any other secret
derived from the same ``secret_key``. Changing ``secret_key`` makes the stored credentials
unreadable: the storages then report themselves ``FORBIDDEN`` until their credentials are given
again.
"""

from __future__ import annotations

import base64
import functools

import msgspec
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from annota.core.cloud import BucketForbidden, CloudCredentials
from annota.core.errors import ConfigError

_PURPOSE = b"annota cloud storage credentials v1"


@functools.lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    if not secret_key:
        raise ConfigError("secret_key: cloud storage credentials need the server's secret key")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(credentials: CloudCredentials, secret_key: str) -> str:
    """The credentials as stored: an encrypted, authenticated token."""
    return _fernet(secret_key).encrypt(msgspec.json.encode(credentials)).decode("ascii")


def unseal(token: str, secret_key: str) -> CloudCredentials:
    """The stored credentials; ``BucketForbidden`` when they cannot be read (the secret key changed)."""
    try:
        plain = _fernet(secret_key).decrypt(token.encode("ascii"))
    except (InvalidToken, ValueError):
        raise BucketForbidden(
            "The stored credentials cannot be decrypted (the server's secret key changed): give them again."
        ) from None
    return msgspec.json.decode(plain, type=CloudCredentials)


__all__ = ["seal", "unseal"]
