"""Cloud storage rows: validating what a user gives (provider, bucket name, credentials, CVAT's
``specific_attributes``), creating, changing and deleting them, serializing them without their
credentials, and opening a row as a ``StorageBackend`` through the provider's plugin.

A cloud storage belongs to its owner in the sandbox, or to an organization (CVAT's
cloudstorages.rego decides who sees and changes it).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.access import FilterFields, Identity, Resource
from annota.core.cloud import (
    BucketForbidden,
    BucketNotFound,
    CloudCredentials,
    CloudProviderRegistry,
    check_endpoint_url,
)
from annota.core.db.tables import CloudStorage, Data, User
from annota.core.db.types import utcnow
from annota.core.errors import NotFound, StorageError, ValidationError
from annota.core.schemas.cloudstorages import CloudStorageRead, CloudStorageUpdate, CloudStorageWrite
from annota.core.services import users as user_service
from annota.core.services.cloudstorages.credentials import seal, unseal
from annota.core.services.listing import ListSpec
from annota.core.storage import InvalidObjectKey, StorageBackend, validate_key, validate_prefix

_UNSET = msgspec.UNSET
_names = msgspec.json.Decoder(list[str])

#: CVAT's bucket name characters per provider
_RESOURCE_NAMES = {
    "AWS_S3_BUCKET": re.compile(r"[a-z0-9][a-z0-9.-]*\Z"),
    "AZURE_CONTAINER": re.compile(r"[a-z0-9][a-z0-9-]*\Z"),
    "GOOGLE_CLOUD_STORAGE": re.compile(r"[a-z0-9][a-z0-9._-]*\Z"),
}
#: the ``specific_attributes`` keys each provider understands. ``endpoint_url`` beyond S3 is
#: annota's own (Azure Stack, GCS-compatible services and emulators); CVAT knows it for S3 only
_ATTRIBUTES = {
    "AWS_S3_BUCKET": ("region", "endpoint_url", "prefix"),
    "AZURE_CONTAINER": ("prefix", "endpoint_url"),
    "GOOGLE_CLOUD_STORAGE": ("prefix", "location", "project", "endpoint_url"),
}
_REGION = re.compile(r"[a-z0-9-]{1,64}\Z")
#: which credential types each provider takes, and the fields each type needs
_CREDENTIALS = {
    "KEY_SECRET_KEY_PAIR": (("AWS_S3_BUCKET",), ("key", "secret_key")),
    "ACCOUNT_NAME_TOKEN_PAIR": (("AZURE_CONTAINER",), ("account_name", "session_token")),
    "CONNECTION_STRING": (("AZURE_CONTAINER",), ("connection_string",)),
    "KEY_FILE_PATH": (("GOOGLE_CLOUD_STORAGE",), ("key_file",)),
    "ANONYMOUS_ACCESS": (("AWS_S3_BUCKET", "AZURE_CONTAINER", "GOOGLE_CLOUD_STORAGE"), ()),
}
_CREDENTIAL_FIELDS = ("key", "secret_key", "session_token", "account_name", "connection_string", "key_file")


# --- validation -------------------------------------------------------------------------------


def parse_attributes(raw: str, provider_type: str) -> dict[str, str]:
    """CVAT's ``k=v&k=v`` attributes, each known to the provider and well formed."""
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=bool(raw))
    except ValueError:
        raise ValidationError.for_field("specific_attributes", f"{raw!r} is not k=v&k=v.") from None
    values: dict[str, str] = {}
    for key, value in pairs:
        if key not in _ATTRIBUTES[provider_type]:
            known = ", ".join(_ATTRIBUTES[provider_type])
            raise ValidationError.for_field(
                "specific_attributes", f"{key!r} is not an attribute of {provider_type} (known: {known})."
            )
        if key in values:
            raise ValidationError.for_field("specific_attributes", f"{key!r} is given twice.")
        values[key] = value
    prefix = values.get("prefix", "")
    if prefix:
        try:
            if prefix.startswith("/") or "//" in prefix:
                raise InvalidObjectKey("a prefix must not start with '/' or contain '//'")
            validate_prefix(prefix)
        except InvalidObjectKey as exc:
            raise ValidationError.for_field("specific_attributes", f"prefix: {exc}") from None
    if values.get("region") and not _REGION.match(values["region"]):
        raise ValidationError.for_field(
            "specific_attributes", f"region {values['region']!r} is not a region name."
        )
    if values.get("endpoint_url"):
        check_endpoint_url(values["endpoint_url"])
    return values


def attributes_of(row: CloudStorage) -> dict[str, str]:
    return dict(parse_qsl(row.specific_attributes, keep_blank_values=True))


def _check_resource(provider_type: str, resource: str) -> None:
    if not _RESOURCE_NAMES[provider_type].match(resource):
        raise ValidationError.for_field(
            "resource", f"{resource!r} is not a valid {provider_type} name (lower-case letters, digits, '-')."
        )


def _check_manifests(names: Sequence[str]) -> list[str]:
    for name in names:
        try:
            validate_key(name)
        except InvalidObjectKey as exc:
            raise ValidationError.for_field("manifests", str(exc)) from None
        if not name.endswith(".jsonl"):
            raise ValidationError.for_field("manifests", f"{name!r}: a manifest is a .jsonl file.")
    if len(set(names)) != len(names):
        raise ValidationError.for_field("manifests", "A manifest is listed twice.")
    return list(names)


def credentials_from(
    data: CloudStorageWrite | CloudStorageUpdate, provider_type: str, kind: str
) -> CloudCredentials:
    """The credentials of ``kind`` given in ``data``; every field the kind needs must be there."""
    providers, needed = _CREDENTIALS[kind]
    if provider_type not in providers:
        raise ValidationError.for_field("credentials_type", f"{provider_type} does not take {kind}.")
    given = {name: getattr(data, name) for name in _CREDENTIAL_FIELDS}
    given = {name: value for name, value in given.items() if isinstance(value, str) and value}
    missing = [name for name in needed if name not in given]
    if missing:
        raise ValidationError({name: [f"This field is required for {kind}."] for name in missing})
    kept = {
        name: value for name, value in given.items() if name in (*needed, "session_token", "account_name")
    }
    if kind == "ANONYMOUS_ACCESS":
        kept = {name: value for name, value in given.items() if name == "account_name"}
    return CloudCredentials(type=kind, **kept)  # type: ignore[arg-type]


# --- rows ---------------------------------------------------------------------------------------


async def get(session: AsyncSession, cloud_storage_id: int) -> CloudStorage:
    row = await session.get(CloudStorage, cloud_storage_id)
    if row is None:
        raise NotFound(f"Cloud storage {cloud_storage_id} not found.")
    return row


def document(row: CloudStorage | None, who: Identity | None = None) -> dict[str, Any]:
    """CVAT's ``input.resource`` for a cloud storage (``None``: one about to be created by ``who``)."""
    if row is None:
        assert who is not None
        organization_id = who.organization.id if who.organization else None
        return {"id": None, "owner": {"id": who.user_id}, "organization": {"id": organization_id}}
    return {"id": row.id, "owner": {"id": row.owner_id}, "organization": {"id": row.organization_id}}


def resource(row: CloudStorage | None, who: Identity | None = None) -> Resource:
    return Resource("cloudstorages", document(row, who), row.id if row is not None else None)


def credentials(row: CloudStorage, secret_key: str) -> CloudCredentials:
    return unseal(row.credentials, secret_key)


@contextlib.asynccontextmanager
async def opened(
    registry: CloudProviderRegistry, row: CloudStorage, settings: Any
) -> AsyncIterator[StorageBackend]:
    """The bucket of ``row`` as a storage backend for the duration of the block. Every opening
    vets the endpoint again. A bucket operation failing in the block for want of the bucket or of
    accepted credentials raises ``BucketNotFound`` (404) or ``BucketForbidden`` (403) instead of a
    server error."""
    backend = await registry.open(
        row.provider_type, row.resource, credentials(row, settings.secret_key), attributes_of(row), settings
    )
    try:
        yield backend
    except StorageError as exc:
        if exc.status_code < 500 or isinstance(exc, BucketForbidden | BucketNotFound):
            raise
        raise await _explained(backend, exc) from exc
    finally:
        await backend.close()


async def _explained(backend: StorageBackend, failure: StorageError) -> StorageError:
    """What the bucket's health says about a failed operation, if it says anything."""
    try:
        await backend.check()
    except (BucketForbidden, BucketNotFound) as state:
        return state
    except StorageError:
        pass
    return failure


def create(who: Identity, data: CloudStorageWrite, secret_key: str) -> CloudStorage:
    """A new row (not yet added to a session), after validating every field."""
    _check_resource(data.provider_type, data.resource)
    attributes = parse_attributes(data.specific_attributes, data.provider_type)
    sealed = seal(credentials_from(data, data.provider_type, data.credentials_type), secret_key)
    now = utcnow()
    return CloudStorage(
        provider_type=data.provider_type,
        resource=data.resource,
        display_name=data.display_name,
        description=data.description,
        credentials_type=data.credentials_type,
        credentials=sealed,
        specific_attributes=urlencode(attributes),
        manifests=msgspec.json.encode(_check_manifests(data.manifests)).decode(),
        owner_id=who.user_id,
        organization_id=who.organization.id if who.organization else None,
        created_date=now,
        updated_date=now,
    )


def update_row(row: CloudStorage, data: CloudStorageUpdate, secret_key: str) -> None:
    """Apply a PATCH. New credentials (a ``credentials_type`` or any credential field) replace the
    stored ones whole; without them the stored ones stay."""
    provider_type = row.provider_type if data.provider_type is _UNSET else data.provider_type
    resource_name = row.resource if data.resource is _UNSET else data.resource
    _check_resource(provider_type, resource_name)
    raw_attributes = (
        row.specific_attributes if data.specific_attributes is _UNSET else data.specific_attributes
    )
    attributes = parse_attributes(raw_attributes, provider_type)
    new_credentials = data.credentials_type is not _UNSET or any(
        getattr(data, name) is not _UNSET for name in _CREDENTIAL_FIELDS
    )
    if new_credentials:
        kind = row.credentials_type if data.credentials_type is _UNSET else data.credentials_type
        row.credentials = seal(credentials_from(data, provider_type, kind), secret_key)
        row.credentials_type = kind
    elif provider_type != row.provider_type and row.credentials_type != "ANONYMOUS_ACCESS":
        raise ValidationError.for_field("credentials_type", "A new provider needs its credentials.")
    row.provider_type = provider_type
    row.resource = resource_name
    row.specific_attributes = urlencode(attributes)
    if data.display_name is not _UNSET:
        row.display_name = data.display_name
    if data.description is not _UNSET:
        row.description = data.description
    if data.manifests is not _UNSET:
        row.manifests = msgspec.json.encode(_check_manifests(data.manifests)).decode()
    row.updated_date = utcnow()


async def remove(session: AsyncSession, row: CloudStorage) -> None:
    """Delete the row; tasks whose media are in it keep their frames but can no longer build chunks."""
    await session.execute(update(Data).where(Data.cloud_storage_id == row.id).values(cloud_storage_id=None))
    await session.delete(row)
    await session.flush()


def manifests_of(row: CloudStorage) -> list[str]:
    return _names.decode(row.manifests)


async def read_many(
    session: AsyncSession, rows: Sequence[CloudStorage], base_url: str
) -> list[CloudStorageRead]:
    users = await user_service.users_by_id(session, {row.owner_id for row in rows})
    return [
        CloudStorageRead(
            id=row.id,
            owner=user_service.basic(users.get(row.owner_id) if row.owner_id else None, base_url),
            manifests=manifests_of(row),
            provider_type=row.provider_type,
            resource=row.resource,
            display_name=row.display_name,
            created_date=row.created_date,
            updated_date=row.updated_date,
            credentials_type=row.credentials_type,
            specific_attributes=row.specific_attributes,
            description=row.description,
            organization=row.organization_id,
        )
        for row in rows
    ]


# --- listing ------------------------------------------------------------------------------------

#: Fields a policy filter may name for cloud storages.
POLICY_FIELDS: FilterFields = {
    "id": lambda v: CloudStorage.id == v,
    "owner_id": lambda v: CloudStorage.owner_id == v,
    "organization_id": lambda v: CloudStorage.organization_id == v,
}

_FILTERS = ("provider_type", "name", "resource", "credentials_type", "owner", "id")

LIST_SPEC = ListSpec(
    fields={
        "id": CloudStorage.id,
        "provider_type": CloudStorage.provider_type,
        "name": CloudStorage.display_name,
        "display_name": CloudStorage.display_name,
        "resource": CloudStorage.resource,
        "credentials_type": CloudStorage.credentials_type,
        "description": CloudStorage.description,
        "owner": select(User.username).where(User.id == CloudStorage.owner_id).scalar_subquery(),
    },
    equality=_FILTERS,
    search=("name", "resource", "description", "owner"),
    sortable=_FILTERS,
    integer_fields=frozenset({"id"}),
)

__all__ = [
    "LIST_SPEC",
    "POLICY_FIELDS",
    "attributes_of",
    "create",
    "credentials",
    "credentials_from",
    "document",
    "get",
    "manifests_of",
    "opened",
    "parse_attributes",
    "read_many",
    "remove",
    "resource",
    "update_row",
]
