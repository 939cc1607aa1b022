"""Task media: the body of ``POST /api/tasks/{id}/data/`` and the ``data/meta`` documents."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

from annota.core.bounds import INT4_MAX
from annota.core.schemas.common import Id

SortingMethod = Literal["lexicographical", "natural", "predefined", "random"]
StorageMethod = Literal["cache", "file_system"]
StorageKind = Literal["local", "share", "cloud_storage"]

Quality = Annotated[int, msgspec.Meta(ge=1, le=100)]
ChunkSize = Annotated[int, msgspec.Meta(ge=1, le=10_000)]
FrameNumber = Annotated[int, msgspec.Meta(ge=0, le=INT4_MAX)]


class DataRequest(msgspec.Struct, kw_only=True):
    """CVAT's ``DataRequest``: which files make the task's media and how they are processed."""

    image_quality: Quality
    chunk_size: ChunkSize | None = None
    start_frame: FrameNumber = 0
    stop_frame: FrameNumber | None = None
    #: only ``step=N`` is understood
    frame_filter: str = ""
    client_files: list[str] = []
    server_files: list[str] = []
    server_files_exclude: list[str] = []
    remote_files: list[str] = []
    use_zip_chunks: bool = False
    use_cache: bool = False
    copy_data: bool = False
    storage_method: StorageMethod = "file_system"
    storage: StorageKind = "local"
    sorting_method: SortingMethod = "lexicographical"
    filename_pattern: str | None = None
    #: one list of file names per job, in order; the files of all lists are the task's frames
    job_file_mapping: list[list[str]] | None = None
    #: with ``sorting_method="predefined"``: the order of the uploaded files, by name
    upload_file_order: list[str] = []
    cloud_storage_id: Id | None = None
    validation_params: dict[str, Any] | None = None


class FrameMeta(msgspec.Struct):
    name: str
    width: int
    height: int
    related_files: int
    has_related_context: bool


class DataMetaRead(msgspec.Struct):
    chunks_updated_date: dt.datetime
    chunk_size: int | None
    size: int
    image_quality: int
    start_frame: int
    stop_frame: int
    frame_filter: str
    frames: list[FrameMeta]
    deleted_frames: list[int]
    included_frames: list[int] | None
    chapters: list[Any] | None
    storage: str
    cloud_storage_id: int | None


class DataMetaWrite(msgspec.Struct):
    deleted_frames: list[FrameNumber] | msgspec.UnsetType = msgspec.UNSET
