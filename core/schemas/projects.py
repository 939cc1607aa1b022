"""Projects."""

from __future__ import annotations

import datetime as dt

import msgspec

from annota.core.schemas.common import (
    BasicUser,
    BugTracker,
    Id,
    Name,
    StorageRead,
    StorageWrite,
    Url,
    UrlCount,
)
from annota.core.schemas.labels import LabelWrite


class ProjectRead(msgspec.Struct):
    url: str
    id: int
    name: str
    owner: BasicUser | None
    assignee: BasicUser | None
    guide_id: int | None
    bug_tracker: str
    task_subsets: list[str]
    created_date: dt.datetime
    updated_date: dt.datetime
    status: str
    dimension: str | None
    organization: int | None
    organization_id: int | None
    target_storage: StorageRead | None
    source_storage: StorageRead | None
    tasks: UrlCount
    labels: Url
    assignee_updated_date: dt.datetime | None


class ProjectWrite(msgspec.Struct):
    name: Name
    labels: list[LabelWrite] = []
    owner_id: Id | None = None
    assignee_id: Id | None = None
    bug_tracker: BugTracker = ""
    target_storage: StorageWrite | None = None
    source_storage: StorageWrite | None = None
    organization_id: Id | None = None


class ProjectUpdate(msgspec.Struct):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    labels: list[LabelWrite] = []
    owner_id: Id | None | msgspec.UnsetType = msgspec.UNSET
    assignee_id: Id | None | msgspec.UnsetType = msgspec.UNSET
    bug_tracker: BugTracker | msgspec.UnsetType = msgspec.UNSET
    target_storage: StorageWrite | None | msgspec.UnsetType = msgspec.UNSET
    source_storage: StorageWrite | None | msgspec.UnsetType = msgspec.UNSET
    organization_id: Id | None | msgspec.UnsetType = msgspec.UNSET
