"""Quality settings (CVAT 2.73's ``QualitySettings``): how a task's or project's annotations are
compared with its ground truth."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from annota.core.bounds import INT4_MAX
from annota.core.schemas.common import Id

Share = Annotated[float, msgspec.Meta(ge=0, le=1)]
TargetMetric = Literal["accuracy", "precision", "recall"]
PointSizeBase = Literal["image_size", "group_bbox_size"]
JobFilter = Annotated[str, msgspec.Meta(max_length=1024)]


class QualitySettingsRead(msgspec.Struct, kw_only=True):
    id: int
    task_id: int | None
    project_id: int | None
    job_filter: str
    inherit: bool
    target_metric: str
    target_metric_threshold: float
    max_validations_per_job: int
    iou_threshold: float
    oks_sigma: float
    point_size_base: str
    line_thickness: float
    low_overlap_threshold: float
    compare_line_orientation: bool
    line_orientation_threshold: float
    compare_groups: bool
    group_match_threshold: float
    check_covered_annotations: bool
    object_visibility_threshold: float
    panoptic_comparison: bool
    compare_attributes: bool
    empty_is_annotated: bool
    created_date: dt.datetime
    updated_date: dt.datetime


class QualitySettingsUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A PATCH: the fields given change. ``task_id`` and ``project_id`` are write-once."""

    task_id: Id | None | msgspec.UnsetType = msgspec.UNSET
    project_id: Id | None | msgspec.UnsetType = msgspec.UNSET
    job_filter: JobFilter | msgspec.UnsetType = msgspec.UNSET
    inherit: bool | msgspec.UnsetType = msgspec.UNSET
    target_metric: TargetMetric | msgspec.UnsetType = msgspec.UNSET
    target_metric_threshold: Share | msgspec.UnsetType = msgspec.UNSET
    max_validations_per_job: Annotated[int, msgspec.Meta(ge=0, le=INT4_MAX)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    iou_threshold: Share | msgspec.UnsetType = msgspec.UNSET
    oks_sigma: Share | msgspec.UnsetType = msgspec.UNSET
    point_size_base: PointSizeBase | msgspec.UnsetType = msgspec.UNSET
    line_thickness: Share | msgspec.UnsetType = msgspec.UNSET
    low_overlap_threshold: Share | msgspec.UnsetType = msgspec.UNSET
    compare_line_orientation: bool | msgspec.UnsetType = msgspec.UNSET
    line_orientation_threshold: Share | msgspec.UnsetType = msgspec.UNSET
    compare_groups: bool | msgspec.UnsetType = msgspec.UNSET
    group_match_threshold: Share | msgspec.UnsetType = msgspec.UNSET
    check_covered_annotations: bool | msgspec.UnsetType = msgspec.UNSET
    object_visibility_threshold: Share | msgspec.UnsetType = msgspec.UNSET
    panoptic_comparison: bool | msgspec.UnsetType = msgspec.UNSET
    compare_attributes: bool | msgspec.UnsetType = msgspec.UNSET
    empty_is_annotated: bool | msgspec.UnsetType = msgspec.UNSET


__all__ = ["QualitySettingsRead", "QualitySettingsUpdate"]
