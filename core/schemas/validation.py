"""How a task's frames are set aside for validation (CVAT's ground truth and honeypots)."""

from __future__ import annotations

import msgspec


class TaskValidationLayoutRead(msgspec.Struct, omit_defaults=True):
    """``mode`` is null for a task without validation frames; the rest is omitted then."""

    mode: str | None
    frames_per_job_count: int | msgspec.UnsetType = msgspec.UNSET
    validation_frames: list[int] | msgspec.UnsetType = msgspec.UNSET
    disabled_frames: list[int] | msgspec.UnsetType = msgspec.UNSET
    honeypot_count: int | msgspec.UnsetType = msgspec.UNSET
    honeypot_frames: list[int] | msgspec.UnsetType = msgspec.UNSET
    honeypot_real_frames: list[int] | msgspec.UnsetType = msgspec.UNSET


class JobValidationLayoutRead(msgspec.Struct, omit_defaults=True):
    """Empty for a job of a task without honeypots."""

    honeypot_count: int | msgspec.UnsetType = msgspec.UNSET
    honeypot_frames: list[int] | msgspec.UnsetType = msgspec.UNSET
    honeypot_real_frames: list[int] | msgspec.UnsetType = msgspec.UNSET


__all__ = ["JobValidationLayoutRead", "TaskValidationLayoutRead"]
