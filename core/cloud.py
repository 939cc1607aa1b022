"""Cloud storages as plugins see them: the credentials a row carries, the provider registry that
turns a row into a ``StorageBackend``, and the guard on the endpoints users may point it at.

A cloud storage (CVAT's ``CloudStorage``) names a provider type (``AWS_S3_BUCKET``,
``AZURE_CONTAINER``, ``GOOGLE_CLOUD_STORAGE``); the plugin that talks to that provider registers a
factory for it through ``register_cloud_providers``. Core never names a provider's client.

Any user may create a cloud storage, so its endpoint is a server-side request forgery risk: an
``endpoint_url`` that resolves to a private, loopback or link-local address (the cloud metadata
address 169.254.169.254 included) is refused unless ``cloud_storage_allow_private_endpoints`` is
set. The host checks it when the row is saved and again every time it opens the storage, so a
name that later resolves elsewhere is caught at the next use.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from annota.core.errors import ConfigError, MediaError, StorageError, ValidationError
from annota.core.services.remote_files import check_address
from annota.core.storage import StorageBackend

ProviderType = Literal["AWS_S3_BUCKET", "AZURE_CONTAINER", "GOOGLE_CLOUD_STORAGE"]
PROVIDER_TYPES: tuple[str, ...] = ("AWS_S3_BUCKET", "AZURE_CONTAINER", "GOOGLE_CLOUD_STORAGE")

CredentialsType = Literal[
    "KEY_SECRET_KEY_PAIR",
    "ACCOUNT_NAME_TOKEN_PAIR",
    "CONNECTION_STRING",
    "KEY_FILE_PATH",
    "ANONYMOUS_ACCESS",
]


class CloudCredentials(msgspec.Struct, frozen=True, kw_only=True):
    """What a cloud storage authenticates with (CVAT's credential fields). Only the fields of
    ``type`` are set; the rest are empty strings."""

    type: CredentialsType
    #: ``KEY_SECRET_KEY_PAIR``: access key id and secret (S3), optional session token
    key: str = ""
    secret_key: str = ""
    #: S3's session token, or Azure's SAS token with ``ACCOUNT_NAME_TOKEN_PAIR``
    session_token: str = ""
    #: Azure's storage account (``ACCOUNT_NAME_TOKEN_PAIR``, or ``ANONYMOUS_ACCESS`` to a public one)
    account_name: str = ""
    #: Azure's connection string (``CONNECTION_STRING``)
    connection_string: str = ""
    #: the service-account key file's JSON content (``KEY_FILE_PATH``, GCS)
    key_file: str = ""


class BucketNotFound(StorageError):
    """Raised by ``check()`` of a cloud provider's backend: the bucket or container does not exist."""

    status_code = 404


class BucketForbidden(StorageError):
    """Raised by ``check()`` of a cloud provider's backend: the credentials are refused, or do not
    allow listing the bucket."""

    status_code = 403


#: ``factory(resource, credentials, specific_attributes, settings)``: ``resource`` is the bucket or
#: container, ``specific_attributes`` CVAT's ``k=v&k=v`` attributes parsed (``region``,
#: ``endpoint_url``, ``prefix``, ``project``, ``location``…), ``settings`` the core settings.
#: Returns a ``StorageBackend`` on the bucket (or an awaitable of one).
CloudFactory = Callable[
    [str, CloudCredentials, Mapping[str, str], Any], "StorageBackend | Awaitable[StorageBackend]"
]


@dataclass(frozen=True)
class CloudProviderDefinition:
    provider_type: str
    factory: CloudFactory
    plugin: str


class CloudProviderRegistry:
    """Provider factories by CVAT provider type, filled through ``register_cloud_providers``."""

    def __init__(self) -> None:
        self.providers: dict[str, CloudProviderDefinition] = {}

    def register(self, plugin: str, provider_type: str, factory: CloudFactory) -> None:
        if provider_type not in PROVIDER_TYPES:
            raise ConfigError(
                f"plugin {plugin}: unknown cloud provider type {provider_type!r} "
                f"(known: {', '.join(PROVIDER_TYPES)})"
            )
        if not callable(factory):
            raise ConfigError(f"plugin {plugin}: cloud provider {provider_type} needs a callable factory")
        if provider_type in self.providers:
            raise ConfigError(
                f"plugin {plugin}: cloud provider {provider_type} is already registered "
                f"by plugin {self.providers[provider_type].plugin}"
            )
        self.providers[provider_type] = CloudProviderDefinition(provider_type, factory, plugin)

    def supports(self, provider_type: str) -> bool:
        return provider_type in self.providers

    async def open(
        self,
        provider_type: str,
        resource: str,
        credentials: CloudCredentials,
        attributes: Mapping[str, str],
        settings: Any,
    ) -> StorageBackend:
        """A backend on the bucket, after vetting its endpoint. The caller closes it."""
        definition = self.providers.get(provider_type)
        if definition is None:
            raise ValidationError.for_field(
                "provider_type", f"No plugin on this server serves {provider_type} cloud storages."
            )
        endpoint = attributes.get("endpoint_url", "")
        if endpoint:
            await vet_endpoint(endpoint, private_endpoints_allowed(settings))
        backend = definition.factory(resource, credentials, attributes, settings)
        if inspect.isawaitable(backend):
            backend = await backend
        if not isinstance(backend, StorageBackend):
            raise ConfigError(
                f"plugin {definition.plugin}: cloud provider {provider_type} factory returned "
                f"{type(backend).__name__}, not a StorageBackend"
            )
        return backend


# --- the endpoint guard -------------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"[A-Za-z0-9.:\[\]_-]+\Z")


def private_endpoints_allowed(settings: Any) -> bool:
    return bool(getattr(settings, "cloud_storage_allow_private_endpoints", False))


def check_endpoint_url(url: str) -> tuple[str, int]:
    """The host and port of a well-formed http(s) endpoint, or a 400 on ``specific_attributes``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationError.for_field("specific_attributes", f"endpoint_url: {exc}.") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or not _HOST.match(parts.hostname):
        raise ValidationError.for_field(
            "specific_attributes", f"endpoint_url {url!r} must be an http or https URL with a host."
        )
    return parts.hostname, port or _DEFAULT_PORTS[parts.scheme]


async def vet_endpoint(url: str, allow_private: bool) -> None:
    """Refuse (400 on ``specific_attributes``) an endpoint that is malformed or resolves to an
    address that is not public, unless ``allow_private``; one that does not resolve is refused too,
    as the storage could not be reached anyway."""
    host, port = check_endpoint_url(url)
    if allow_private:
        return
    try:
        answers = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ValidationError.for_field(
            "specific_attributes", f"endpoint_url host {host!r} does not resolve: {exc.strerror or exc}."
        ) from None
    for *_, sockaddr in answers:
        try:
            check_address(str(sockaddr[0]), allow_private=False)
        except MediaError:
            raise ValidationError.for_field(
                "specific_attributes",
                f"endpoint_url host {host!r} resolves to {sockaddr[0]}, which is not a public address; "
                "the server's cloud_storage_allow_private_endpoints setting allows private endpoints.",
            ) from None


__all__ = [
    "PROVIDER_TYPES",
    "BucketForbidden",
    "BucketNotFound",
    "CloudCredentials",
    "CloudFactory",
    "CloudProviderRegistry",
    "CredentialsType",
    "ProviderType",
    "check_endpoint_url",
    "private_endpoints_allowed",
    "vet_endpoint",
]
