"""Cloud storages: CVAT's ``CloudStorageRead``, ``CloudStorageWriteRequest`` and its PATCH form,
and the bucket listing of ``content-v2``. Credentials are write-only: no read type carries them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

from annota.core.cloud import CredentialsType, ProviderType
from annota.core.schemas.common import BasicUser

ResourceName = Annotated[str, msgspec.Meta(min_length=1, max_length=222)]
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=63)]
Attributes = Annotated[str, msgspec.Meta(max_length=1024)]
ManifestName = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
AccessKey = Annotated[str, msgspec.Meta(max_length=40)]
SecretKey = Annotated[str, msgspec.Meta(max_length=64)]
SessionToken = Annotated[str, msgspec.Meta(max_length=440)]
AccountName = Annotated[str, msgspec.Meta(max_length=24)]
ConnectionString = Annotated[str, msgspec.Meta(max_length=1024)]
#: a service-account key file is a few kilobytes of JSON
KeyFile = Annotated[str, msgspec.Meta(max_length=64 * 1024)]

_UNSET = msgspec.UNSET


class CloudStorageRead(msgspec.Struct):
    id: int
    owner: BasicUser | None
    manifests: list[str]
    provider_type: str
    resource: str
    display_name: str
    created_date: dt.datetime
    updated_date: dt.datetime
    credentials_type: str
    specific_attributes: str
    description: str
    organization: int | None


class CloudStorageWrite(msgspec.Struct, kw_only=True):
    """A new cloud storage: where it is, how to reach it, and the credentials for it."""

    provider_type: ProviderType
    resource: ResourceName
    display_name: DisplayName
    credentials_type: CredentialsType
    #: accepted as CVAT's clients send it; the owner is the caller
    owner: Any = None
    session_token: SessionToken = ""
    account_name: AccountName = ""
    key: AccessKey = ""
    secret_key: SecretKey = ""
    connection_string: ConnectionString = ""
    key_file: KeyFile = ""
    specific_attributes: Attributes = ""
    description: str = ""
    manifests: list[ManifestName] = []


class CloudStorageUpdate(msgspec.Struct, kw_only=True):
    """A PATCH: the fields given replace the stored ones; credentials given replace them all."""

    provider_type: ProviderType | msgspec.UnsetType = _UNSET
    resource: ResourceName | msgspec.UnsetType = _UNSET
    display_name: DisplayName | msgspec.UnsetType = _UNSET
    credentials_type: CredentialsType | msgspec.UnsetType = _UNSET
    owner: Any = _UNSET
    session_token: SessionToken | msgspec.UnsetType = _UNSET
    account_name: AccountName | msgspec.UnsetType = _UNSET
    key: AccessKey | msgspec.UnsetType = _UNSET
    secret_key: SecretKey | msgspec.UnsetType = _UNSET
    connection_string: ConnectionString | msgspec.UnsetType = _UNSET
    key_file: KeyFile | msgspec.UnsetType = _UNSET
    specific_attributes: Attributes | msgspec.UnsetType = _UNSET
    description: str | msgspec.UnsetType = _UNSET
    manifests: list[ManifestName] | msgspec.UnsetType = _UNSET


class FileInfo(msgspec.Struct):
    name: str
    type: Literal["REG", "DIR"]
    mime_type: str


class CloudStorageContent(msgspec.Struct):
    content: list[FileInfo]
    next: str | None


#: ``GET …/status``: whether the bucket can be read with the stored credentials
Status = Literal["AVAILABLE", "NOT_FOUND", "FORBIDDEN"]
