"""Tasks and their jobs summary."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from annota.core.bounds import INT4_MAX
from annota.core.schemas.common import (
    BasicUser,
    BugTracker,
    Id,
    Name,
    StorageRead,
    StorageWrite,
    Url,
)
from annota.core.schemas.labels import LabelWrite

Subset = Annotated[str, msgspec.Meta(max_length=64)]
NonNegative = Annotated[int, msgspec.Meta(ge=0, le=INT4_MAX)]


class JobsSummary(msgspec.Struct):
    count: int
    completed: int | None
    validation: int | None
    url: str


class TaskRead(msgspec.Struct, omit_defaults=True):
    url: str
    id: int
    name: str
    project_id: int | None
    project_name: str | None
    owner: BasicUser | None
    assignee: BasicUser | None
    guide_id: int | None
    bug_tracker: str
    created_date: dt.datetime
    updated_date: dt.datetime
    overlap: int | None
    segment_size: int
    status: str
    data_cloud_storage_id: int | None
    size: int
    data: int | None
    dimension: str
    mode: str
    media_type: str
    subset: str
    organization: int | None
    organization_id: int | None
    target_storage: StorageRead | None
    source_storage: StorageRead | None
    jobs: JobsSummary
    labels: Url
    assignee_updated_date: dt.datetime | None
    validation_mode: str | None
    consensus_enabled: bool
    #: present only once media is attached (CVAT omits them before)
    image_quality: int | msgspec.UnsetType = msgspec.UNSET
    data_chunk_size: int | msgspec.UnsetType = msgspec.UNSET
    data_compressed_chunk_type: str | msgspec.UnsetType = msgspec.UNSET
    data_original_chunk_type: str | msgspec.UnsetType = msgspec.UNSET


class TaskWrite(msgspec.Struct):
    name: Name
    project_id: Id | None = None
    owner_id: Id | None = None
    assignee_id: Id | None = None
    bug_tracker: BugTracker = ""
    overlap: NonNegative | None = None
    segment_size: NonNegative = 0
    labels: list[LabelWrite] = []
    subset: Subset = ""
    target_storage: StorageWrite | None = None
    source_storage: StorageWrite | None = None
    consensus_replicas: NonNegative = 0


class TaskUpdate(msgspec.Struct):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    project_id: Id | None | msgspec.UnsetType = msgspec.UNSET
    owner_id: Id | None | msgspec.UnsetType = msgspec.UNSET
    assignee_id: Id | None | msgspec.UnsetType = msgspec.UNSET
    bug_tracker: BugTracker | msgspec.UnsetType = msgspec.UNSET
    labels: list[LabelWrite] = []
    subset: Subset | msgspec.UnsetType = msgspec.UNSET
    target_storage: StorageWrite | None | msgspec.UnsetType = msgspec.UNSET
    source_storage: StorageWrite | None | msgspec.UnsetType = msgspec.UNSET
    organization_id: Id | None | msgspec.UnsetType = msgspec.UNSET
