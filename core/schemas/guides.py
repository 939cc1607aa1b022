"""Annotation guides (markdown per task or project) and the files they show (assets)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from annota.core.schemas.common import BasicUser, Id

#: a guide's markdown; CVAT sets no limit, annota one that no guide written by hand reaches
Markdown = Annotated[str, msgspec.Meta(max_length=1024 * 1024)]


class AnnotationGuideRead(msgspec.Struct, kw_only=True):
    id: int
    task_id: int | None
    project_id: int | None
    created_date: dt.datetime
    updated_date: dt.datetime
    markdown: str


class AnnotationGuideWrite(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST: one of ``task_id`` and ``project_id``."""

    task_id: Id | None = None
    project_id: Id | None = None
    markdown: Markdown = ""


class AnnotationGuideUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PATCH: the markdown changes; ``task_id`` and ``project_id`` are write-once."""

    task_id: Id | None | msgspec.UnsetType = msgspec.UNSET
    project_id: Id | None | msgspec.UnsetType = msgspec.UNSET
    markdown: Markdown | msgspec.UnsetType = msgspec.UNSET


class AssetRead(msgspec.Struct, kw_only=True):
    uuid: str
    filename: str
    created_date: dt.datetime
    owner: BasicUser | None
    guide_id: int


__all__ = ["AnnotationGuideRead", "AnnotationGuideUpdate", "AnnotationGuideWrite", "AssetRead"]
