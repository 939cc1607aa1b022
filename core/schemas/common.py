"""Types shared by several resources."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Generic, Literal, TypeVar

import msgspec

from annota.core.bounds import INT4_MAX, INT4_MIN, INT8_MAX

T = TypeVar("T")

# integers are bounded by the columns that store them (PostgreSQL's integer or bigint), so that an
# out-of-range value is a 400 naming the field rather than an overflow in the database
PositiveInt = Annotated[int, msgspec.Meta(ge=0, le=INT4_MAX)]
#: any number an ``integer`` column holds (frames, groups, z order)
Int32 = Annotated[int, msgspec.Meta(ge=INT4_MIN, le=INT4_MAX)]
#: the id of a row whose key is an ``integer`` (users, projects, tasks, labels…)
Id = Annotated[int, msgspec.Meta(ge=0, le=INT4_MAX)]
#: the id of a row whose key is a ``bigint`` (shapes, tracks, tags)
BigId = Annotated[int, msgspec.Meta(ge=0, le=INT8_MAX)]
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
    cloud_storage_id: Id | None | msgspec.UnsetType = msgspec.UNSET


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
