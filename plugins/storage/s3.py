"""The ``s3`` storage backend: objects in an S3 bucket, or any S3-compatible service.

It talks to S3 through obstore (Rust ``object_store`` with an async Python API), which moved
objects about three times faster than boto3 against an S3 emulator here. obstore is an optional
dependency (``pip install 'annota[s3]'``); this module imports it only when the backend is
created, so the server starts without it as long as ``storage`` is not ``s3``.

Configuration (``[plugins.s3]`` or ``ANNOTA_S3_*``):

* ``bucket`` (required), ``region``, ``prefix`` (a key prefix inside the bucket);
* ``endpoint_url``: any S3-compatible endpoint (MinIO, Ceph, R2 …); ``addressing_style``:
  ``virtual`` or ``path`` (default ``virtual`` on AWS, ``path`` with an ``endpoint_url``);
* ``access_key_id``, ``secret_access_key``, ``session_token``: secrets (``{env = "VAR"}`` or
  ``{file = "/path"}`` work); without them the provider's default chain is used (environment,
  web identity, instance profile);
* ``timeout`` (seconds per request) and ``max_retries``.

The plugin also serves CVAT's ``AWS_S3_BUCKET`` cloud storages (``register_cloud_providers``):
a bucket with a key pair or anonymous (unsigned) access, ``region``, ``endpoint_url`` and
``prefix`` from the storage's attributes.

Writes are atomic because S3 makes an object visible only once its upload (single or multipart)
completes; an upload that fails is aborted and leaves the previous object as it was.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import msgspec

from annota.core import hookimpl
from annota.core.cloud import CloudCredentials
from annota.core.errors import ConfigError, ValidationError
from annota.core.storage import validate_prefix
from annota.plugins.storage._objectstore import ObjectStoreStorage, describe, import_obstore

MISSING_EXTRA = (
    "storage = 's3' needs the optional dependency obstore: install it with pip install 'annota[s3]'"
)


class Config(msgspec.Struct, forbid_unknown_fields=True):
    bucket: str = ""
    region: str = ""
    #: a key prefix inside the bucket, so that one bucket can hold several servers' objects
    prefix: str = ""
    endpoint_url: str = ""
    #: ``virtual`` (bucket.host) or ``path`` (host/bucket); empty: path with an endpoint_url
    addressing_style: Literal["", "virtual", "path"] = ""
    access_key_id: str = ""
    secret_access_key: str = ""
    session_token: str = ""
    timeout: float = 30.0
    max_retries: int = 3


class S3Storage(ObjectStoreStorage):
    """Objects in ``bucket`` under ``prefix``: key ``a/b.jpg`` is the S3 key ``<prefix>a/b.jpg``."""

    provider = "s3"
    missing_extra = MISSING_EXTRA
    missing_container_codes = ("NoSuchBucket",)

    def __init__(self, store: Any, *, bucket: str, prefix: str = "") -> None:
        super().__init__(store, container=bucket, prefix=prefix)
        self.bucket = bucket


def build_store(config: Config, *, anonymous: bool = False) -> Any:
    """The obstore ``S3Store`` that ``config`` describes; ``anonymous`` sends unsigned requests
    (a public bucket) instead of looking for credentials."""
    obstore = import_obstore(MISSING_EXTRA)
    if not config.bucket:
        raise ConfigError("plugins.s3.bucket: storage = 's3' needs a bucket name")
    if config.prefix:
        validate_prefix(config.prefix)
    options: dict[str, Any] = {}
    if config.region:
        options["region"] = config.region
    if config.endpoint_url:
        options["endpoint"] = config.endpoint_url
    style = config.addressing_style or ("path" if config.endpoint_url else "virtual")
    options["virtual_hosted_style_request"] = style == "virtual"
    if config.access_key_id or config.secret_access_key:
        if not (config.access_key_id and config.secret_access_key):
            raise ConfigError(
                "plugins.s3: give both access_key_id and secret_access_key, or neither "
                "(to use the provider's default credential chain)"
            )
        options["access_key_id"] = config.access_key_id
        options["secret_access_key"] = config.secret_access_key
        if config.session_token:
            options["token"] = config.session_token
    elif anonymous:
        options["skip_signature"] = True
    client_options = {
        "allow_http": config.endpoint_url.startswith("http://"),
        "timeout": f"{config.timeout}s",
        "connect_timeout": f"{min(config.timeout, 10.0)}s",
    }
    retry = {"max_retries": config.max_retries, "retry_timeout": dt.timedelta(seconds=config.timeout)}
    try:
        return obstore.store.S3Store(
            config.bucket,
            prefix=config.prefix.rstrip("/") or None,
            client_options=client_options,
            retry_config=retry,
            **options,
        )
    except obstore.exceptions.BaseError as exc:
        raise ConfigError(f"plugins.s3: {describe(exc)}") from exc


def create(config: Config, settings: Any) -> S3Storage:
    return S3Storage(build_store(config), bucket=config.bucket, prefix=config.prefix)


def open_bucket(resource: str, credentials: CloudCredentials, attributes: Any, settings: Any) -> S3Storage:
    """A CVAT ``AWS_S3_BUCKET`` cloud storage as a backend: ``region``, ``endpoint_url`` and
    ``prefix`` from its attributes, a key pair or anonymous (unsigned) access."""
    config = Config(
        bucket=resource,
        region=attributes.get("region", "") or ("us-east-1" if attributes.get("endpoint_url") else ""),
        prefix=attributes.get("prefix", ""),
        endpoint_url=attributes.get("endpoint_url", ""),
        max_retries=1,
        timeout=30.0,
    )
    if credentials.type == "KEY_SECRET_KEY_PAIR":
        config.access_key_id = credentials.key
        config.secret_access_key = credentials.secret_key
        config.session_token = credentials.session_token
    elif credentials.type != "ANONYMOUS_ACCESS":
        raise ValidationError.for_field(
            "credentials_type", f"AWS_S3_BUCKET does not take {credentials.type}."
        )
    store = build_store(config, anonymous=credentials.type == "ANONYMOUS_ACCESS")
    return S3Storage(store, bucket=resource, prefix=config.prefix)


@hookimpl
def register_cloud_providers(register: Any) -> None:
    register("AWS_S3_BUCKET", open_bucket)


@hookimpl
def register_config(register: Any) -> None:
    register(Config)


@hookimpl
def register_storage_backends(register: Any) -> None:
    register("s3", create)
