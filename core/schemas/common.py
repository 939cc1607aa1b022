"""Types shared by several resources."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Generic, Literal, TypeVar

import msgspec

T = TypeVar("T")

PositiveInt = Annotated[int, msgspec.Meta(ge=0)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
ShortName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
BugTracker = Annotated[str, msgspec.Meta(max_length=2000)]

Location = Literal["local", "cloud_storage"]


class BasicUser(msgspec.Struct):
    url: str
    id: int
    username: str
    first_name: str
    last_name: str


class StorageRead(msgspec.Struct):
    id: int | None
    location: Location
    cloud_storage_id: int | None


class StorageWrite(msgspec.Struct):
    #: unset on create means "local"; on a PATCH it keeps the current location
    location: Location | msgspec.UnsetType = msgspec.UNSET
    cloud_storage_id: int | None | msgspec.UnsetType = msgspec.UNSET


class Paginated(msgspec.Struct, Generic[T]):
    count: int
    next: str | None
    previous: str | None
    results: list[T]


class RqId(msgspec.Struct):
    rq_id: str


class Detail(msgspec.Struct):
    detail: str


class UrlCount(msgspec.Struct):
    url: str
    count: int


class Url(msgspec.Struct):
    url: str


Timestamp = dt.datetime
