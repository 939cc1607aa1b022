"""Jobs."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from annota.core.bounds import INT4_MAX
from annota.core.schemas.common import BasicUser, Id, StorageRead, Url, UrlCount

JobStage = Literal["annotation", "validation", "acceptance"]
JobState = Literal["new", "in progress", "completed", "rejected"]


class JobRead(msgspec.Struct, omit_defaults=True):
    url: str
    id: int
    task_id: int
    task_name: str
    project_id: int | None
    project_name: str | None
    assignee: BasicUser | None
    guide_id: int | None
    dimension: str
    mode: str
    media_type: str
    bug_tracker: str | None
    status: str
    stage: str
    state: str
    frame_count: int
    start_frame: int
    stop_frame: int
    data_chunk_size: int | None
    data_compressed_chunk_type: str | None
    data_original_chunk_type: str | None
    created_date: dt.datetime
    updated_date: dt.datetime
    issues: UrlCount
    labels: Url
    type: str
    organization: int | None
    organization_id: int | None
    target_storage: StorageRead | None
    source_storage: StorageRead | None
    assignee_updated_date: dt.datetime | None
    parent_job_id: int | None
    consensus_replicas: int


class JobUpdate(msgspec.Struct):
    stage: JobStage | msgspec.UnsetType = msgspec.UNSET
    state: JobState | msgspec.UnsetType = msgspec.UNSET
    assignee: Id | None | msgspec.UnsetType = msgspec.UNSET


JobType = Literal["annotation", "ground_truth", "consensus_replica", "replica"]
FrameSelectionMethod = Literal["random_uniform", "random_per_job", "manual"]
Share = Annotated[float, msgspec.Meta(ge=0, le=1)]
Count = Annotated[int, msgspec.Meta(ge=1, le=INT4_MAX)]
FrameNumber = Annotated[int, msgspec.Meta(ge=0, le=INT4_MAX)]


class JobWrite(msgspec.Struct):
    """``POST /api/jobs`` (CVAT's ``JobWriteRequest``): only ground-truth jobs are made this way."""

    type: JobType
    task_id: Id
    assignee: Id | None = None
    stage: JobStage | msgspec.UnsetType = msgspec.UNSET
    state: JobState | msgspec.UnsetType = msgspec.UNSET
    frame_selection_method: FrameSelectionMethod | msgspec.UnsetType = msgspec.UNSET
    frame_count: Count | msgspec.UnsetType = msgspec.UNSET
    frame_share: Share | msgspec.UnsetType = msgspec.UNSET
    frames_per_job_count: Count | msgspec.UnsetType = msgspec.UNSET
    frames_per_job_share: Share | msgspec.UnsetType = msgspec.UNSET
    random_seed: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] | msgspec.UnsetType = msgspec.UNSET
    frames: Annotated[list[FrameNumber], msgspec.Meta(min_length=1)] | msgspec.UnsetType = msgspec.UNSET
