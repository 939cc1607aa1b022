"""Review issues and their comments: CVAT's ``IssueRead``/``IssueWriteRequest`` and
``CommentRead``/``CommentWriteRequest``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from annota.core.schemas.common import BasicUser, Id, UrlCount

#: a frame number as CVAT's serializer bounds it
FrameNumber = Annotated[int, msgspec.Meta(ge=0, le=2147483647)]
Message = Annotated[str, msgspec.Meta(min_length=1)]


class IssueRead(msgspec.Struct):
    id: int
    frame: int
    #: the flat polygon ``[x1, y1, x2, y2, ...]`` the issue marks on the frame
    position: list[float]
    job: int
    owner: BasicUser | None
    assignee: BasicUser | None
    created_date: dt.datetime
    updated_date: dt.datetime
    resolved: bool
    comments: UrlCount


class IssueWrite(msgspec.Struct):
    """A new issue; ``message`` becomes its first comment."""

    frame: FrameNumber
    position: list[float]
    job: Id
    message: Message
    assignee: Id | None = None
    resolved: bool = False


class IssueUpdate(msgspec.Struct):
    """A PATCH: the frame, the job and the first message are written once."""

    position: list[float] | msgspec.UnsetType = msgspec.UNSET
    assignee: Id | None | msgspec.UnsetType = msgspec.UNSET
    resolved: bool | msgspec.UnsetType = msgspec.UNSET


class CommentRead(msgspec.Struct):
    id: int
    issue: int
    owner: BasicUser | None
    message: str
    created_date: dt.datetime
    updated_date: dt.datetime


class CommentWrite(msgspec.Struct):
    issue: Id
    message: Message


class CommentUpdate(msgspec.Struct):
    """A PATCH: the issue is written once."""

    message: Message | msgspec.UnsetType = msgspec.UNSET
