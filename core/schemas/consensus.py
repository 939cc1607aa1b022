"""Consensus settings (CVAT 2.73's ``ConsensusSettings``): how the annotations of a task's
consensus replicas are matched when merged."""

from __future__ import annotations

from typing import Annotated

import msgspec


class ConsensusSettingsRead(msgspec.Struct, kw_only=True):
    id: int
    task_id: int
    iou_threshold: float


class ConsensusSettingsUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    iou_threshold: Annotated[float, msgspec.Meta(ge=0, le=1)] | msgspec.UnsetType = msgspec.UNSET


__all__ = ["ConsensusSettingsRead", "ConsensusSettingsUpdate"]
