"""The ``azure`` storage backend: objects in an Azure Blob Storage container (or Azurite).

It talks to Azure through obstore, the client the ``s3`` backend uses: it worked against Azurite
for every call, streams multipart (block) uploads, and keeps one async code path for both
services (see ``_objectstore``). obstore is an optional dependency (``pip install
'annota[azure]'``), imported only when this backend is created.

Configuration (``[plugins.azure]`` or ``ANNOTA_AZURE_*``); secrets may be ``{env = "VAR"}`` or
``{file = "/path"}``:

* ``container`` (required), ``prefix`` (a key prefix inside the container);
* credentials, one of: ``account_name`` + ``account_key``; ``account_name`` + ``sas_token``;
  ``connection_string`` (as the Azure portal shows it); ``anonymous = true`` (a public
  container, read-only in practice); or only ``account_name``, to use the default chain
  (``AZURE_*`` environment variables, workload identity, managed identity);
* ``endpoint_url``: another blob endpoint (Azurite, a sovereign cloud, a private endpoint);
* ``timeout`` (seconds per request) and ``max_retries``.

Presigned URLs are service SAS URLs signed here with the account key (obstore's signer encodes
the blob name before signing, so names with spaces would not verify), the configured SAS token,
the plain URL of an anonymous container, or a user-delegation SAS through obstore otherwise.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import msgspec

from annota.core import hookimpl
from annota.core.cloud import CloudCredentials, private_endpoints_allowed, vet_endpoint
from annota.core.errors import ConfigError, ValidationError
from annota.core.storage import validate_key, validate_prefix
from annota.plugins.storage._objectstore import ObjectStoreStorage, describe, import_obstore

MISSING_EXTRA = (
    "storage = 'azure' needs the optional dependency obstore: install it with pip install 'annota[azure]'"
)

#: the service version SAS URLs are signed for
SAS_VERSION = "2023-11-03"


class Config(msgspec.Struct, forbid_unknown_fields=True):
    container: str = ""
    #: a key prefix inside the container, so that one container can hold several servers' objects
    prefix: str = ""
    account_name: str = ""
    account_key: str = ""
    sas_token: str = ""
    connection_string: str = ""
    anonymous: bool = False
    endpoint_url: str = ""
    timeout: float = 30.0
    max_retries: int = 3


class Credentials(msgspec.Struct, frozen=True):
    """What a configuration resolves to: where the account is and how to sign for it."""

    account_name: str
    endpoint: str
    account_key: str = ""
    sas_token: str = ""
    anonymous: bool = False


def parse_connection_string(text: str) -> dict[str, str]:
    """``Key=Value;…`` pairs of an Azure Storage connection string (values may contain '=')."""
    pairs: dict[str, str] = {}
    for part in text.strip().split(";"):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise ConfigError(f"plugins.azure.connection_string: {name.strip()!r} is not Key=Value")
        pairs[name.strip().lower()] = value.strip()
    return pairs


def resolve_credentials(config: Config) -> Credentials:
    """The account, endpoint and secret that ``config`` gives, checked for contradictions."""
    # secrets read from files keep their trailing newline
    account, key, sas = config.account_name.strip(), config.account_key.strip(), config.sas_token.strip()
    endpoint = ""
    if config.connection_string:
        if key or sas:
            raise ConfigError("plugins.azure: give connection_string, or account_key/sas_token, not both")
        pairs = parse_connection_string(config.connection_string)
        account = pairs.get("accountname", account)
        key = pairs.get("accountkey", "")
        sas = pairs.get("sharedaccesssignature", "")
        endpoint = pairs.get("blobendpoint", "")
        if not endpoint and account and pairs.get("endpointsuffix"):
            scheme = pairs.get("defaultendpointsprotocol", "https")
            endpoint = f"{scheme}://{account}.blob.{pairs['endpointsuffix']}"
    if key and sas:
        raise ConfigError("plugins.azure: give account_key or sas_token, not both")
    if config.anonymous and (key or sas):
        raise ConfigError("plugins.azure: anonymous = true cannot be combined with a key or SAS token")
    if not account:
        raise ConfigError(
            "plugins.azure.account_name: storage = 'azure' needs the storage account's name "
            "(or a connection_string naming it)"
        )
    if key:
        try:
            base64.b64decode(key, validate=True)
        except ValueError:
            raise ConfigError("plugins.azure.account_key: not a base64 account key") from None
    endpoint = (config.endpoint_url or endpoint or f"https://{account}.blob.core.windows.net").rstrip("/")
    return Credentials(account, endpoint, key, sas.lstrip("?"), config.anonymous)


class AzureStorage(ObjectStoreStorage):
    """Objects in ``container`` under ``prefix``: key ``a/b.jpg`` is the blob ``<prefix>a/b.jpg``."""

    provider = "azure"
    container_kind = "container"
    missing_extra = MISSING_EXTRA
    missing_container_codes = ("ContainerNotFound",)

    def __init__(self, store: Any, *, container: str, credentials: Credentials, prefix: str = "") -> None:
        super().__init__(store, container=container, prefix=prefix)
        self.credentials = credentials

    def blob_url(self, key: str) -> tuple[str, str]:
        """The blob's URL (without a signature) and its name in the container."""
        name = self.prefix.rstrip("/") + "/" + key if self.prefix.rstrip("/") else key
        return f"{self.credentials.endpoint}/{self.container}/{quote(name, safe='/~')}", name

    async def presigned_url(self, key: str, expires: dt.timedelta) -> str | None:
        validate_key(key)
        url, name = self.blob_url(key)
        credentials = self.credentials
        if credentials.account_key:
            return f"{url}?{self._service_sas(name, expires)}"
        if credentials.sas_token:
            return f"{url}?{credentials.sas_token}"
        if credentials.anonymous:
            return url
        return await super().presigned_url(key, expires)

    def _service_sas(self, name: str, expires: dt.timedelta) -> str:
        """A read-only service SAS for one blob (Azure's documented string-to-sign, version
        2023-11-03), starting a minute ago so that a client's clock a little behind still works."""
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        start = (now - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        expiry = (now + expires).strftime("%Y-%m-%dT%H:%M:%SZ")
        resource = f"/blob/{self.credentials.account_name}/{self.container}/{name}"
        # permissions, start, expiry, resource, identifier, IP, protocol, version, resource type,
        # snapshot time, encryption scope and the five response-header overrides
        fields = ["r", start, expiry, resource, "", "", "", SAS_VERSION, "b", "", "", "", "", "", "", ""]
        key = base64.b64decode(self.credentials.account_key)
        signature = hmac.new(key, "\n".join(fields).encode(), hashlib.sha256).digest()
        query = {"sv": SAS_VERSION, "st": start, "se": expiry, "sr": "b", "sp": "r"}
        query["sig"] = base64.b64encode(signature).decode()
        return urlencode(query)


def build_store(config: Config) -> tuple[Any, Credentials]:
    """The obstore ``AzureStore`` that ``config`` describes, and the credentials it uses."""
    obstore = import_obstore(MISSING_EXTRA)
    if not config.container:
        raise ConfigError("plugins.azure.container: storage = 'azure' needs a container name")
    if config.prefix:
        validate_prefix(config.prefix)
    credentials = resolve_credentials(config)
    options: dict[str, Any] = {"account_name": credentials.account_name, "endpoint": credentials.endpoint}
    if credentials.account_key:
        options["account_key"] = credentials.account_key
    elif credentials.sas_token:
        options["sas_key"] = credentials.sas_token
    elif credentials.anonymous:
        options["skip_signature"] = True
    client_options = {
        "allow_http": credentials.endpoint.startswith("http://"),
        "timeout": f"{config.timeout}s",
        "connect_timeout": f"{min(config.timeout, 10.0)}s",
    }
    retry = {"max_retries": config.max_retries, "retry_timeout": dt.timedelta(seconds=config.timeout)}
    try:
        store = obstore.store.AzureStore(
            config.container,
            prefix=config.prefix.rstrip("/") or None,
            client_options=client_options,
            retry_config=retry,
            **options,
        )
    except obstore.exceptions.BaseError as exc:
        raise ConfigError(f"plugins.azure: {describe(exc)}") from exc
    return store, credentials


def create(config: Config, settings: Any) -> AzureStorage:
    store, credentials = build_store(config)
    return AzureStorage(store, container=config.container, credentials=credentials, prefix=config.prefix)


async def open_container(
    resource: str, credentials: CloudCredentials, attributes: Mapping[str, str], settings: Any
) -> AzureStorage:
    """A CVAT ``AZURE_CONTAINER`` cloud storage as a backend: an account name with a SAS token, a
    connection string, or anonymous access to a public container; ``prefix`` and ``endpoint_url``
    from its attributes."""
    config = Config(
        container=resource,
        prefix=attributes.get("prefix", ""),
        endpoint_url=attributes.get("endpoint_url", ""),
        max_retries=1,
    )
    if credentials.type == "ACCOUNT_NAME_TOKEN_PAIR":
        config.account_name, config.sas_token = credentials.account_name, credentials.session_token
    elif credentials.type == "CONNECTION_STRING":
        config.connection_string = credentials.connection_string
    elif credentials.type == "ANONYMOUS_ACCESS":
        config.account_name, config.anonymous = credentials.account_name, True
    else:
        raise ValidationError.for_field(
            "credentials_type", f"AZURE_CONTAINER does not take {credentials.type}."
        )
    try:
        resolved = resolve_credentials(config)
        if resolved.endpoint != config.endpoint_url.rstrip("/") and config.connection_string:
            # a connection string may name its own endpoint: the same guard as endpoint_url
            await vet_endpoint(resolved.endpoint, private_endpoints_allowed(settings))
        return create(config, settings)
    except ConfigError as exc:
        raise ValidationError.for_field("credentials", str(exc).replace("plugins.azure", "azure")) from exc


@hookimpl
def register_cloud_providers(register: Any) -> None:
    register("AZURE_CONTAINER", open_container)


@hookimpl
def register_config(register: Any) -> None:
    register(Config)


@hookimpl
def register_storage_backends(register: Any) -> None:
    register("azure", create)
