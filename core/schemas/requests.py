"""Background requests (``/api/requests``)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec

RequestStatus = Literal["queued", "started", "failed", "finished"]


class RequestOperation(msgspec.Struct):
    type: str
    target: str
    project_id: int | None
    task_id: int | None
    job_id: int | None
    org_id: int | None
    format: str | None
    function_id: str | None
    lightweight: bool | None


class RequestOwner(msgspec.Struct):
    id: int
    username: str


class RequestRead(msgspec.Struct):
    id: str
    status: RequestStatus
    message: str
    operation: RequestOperation
    progress: float | None
    created_date: dt.datetime
    started_date: dt.datetime | None
    finished_date: dt.datetime | None
    expiry_date: dt.datetime | None
    #: never null: CVAT's clients refuse a request without an owner
    owner: RequestOwner
    result_url: str | None
    result_id: int | None
