"""CVAT's lambda API (``/api/lambda/*``): the models as functions, and auto-annotation calls."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from annota.core.models.mapping import LabelMappingEntry
from annota.core.schemas.common import Id, Int32

#: a confidence
Threshold = Annotated[float, msgspec.Meta(ge=0, le=1)]


class FunctionAttribute(msgspec.Struct):
    name: str
    input_type: str
    values: list[str]


class FunctionLabel(msgspec.Struct, omit_defaults=True):
    id: int
    name: str
    type: str
    attributes: list[FunctionAttribute]
    sublabels: list[FunctionLabel] = []
    svg: str = ""


class LambdaFunction(msgspec.Struct):
    """A model as CVAT's Models page and AI tools see it; ``id`` is the model's name."""

    id: str
    kind: Literal["detector"]
    labels_v2: list[FunctionLabel]
    name: str
    description: str
    version: int
    #: the runner kind (``opencv-haar``, ``onnx-yolo`` …)
    framework: str
    help_message: str = ""
    animated_gif: str = ""


class OnlineFunctionCall(msgspec.Struct, kw_only=True):
    """``POST /api/lambda/functions/{id}``: one frame of a task or job (other fields CVAT's UI
    sends for other kinds of functions are ignored)."""

    task: Id | None = None
    job: Id | None = None
    frame: Int32
    threshold: Threshold | None = None
    mapping: dict[str, LabelMappingEntry] | None = None
    conv_mask_to_poly: bool = False
    cleanup: bool = False
    #: CVAT's ``[xtl, ytl, xbr, ybr]``; read only to refuse it (models run on whole frames)
    roi: list[Int32] | None = None


class FunctionCallRequest(msgspec.Struct, kw_only=True):
    """``POST /api/lambda/requests``: every frame of a task or job."""

    function: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    task: Id
    job: Id | None = None
    threshold: Threshold | None = None
    cleanup: bool = False
    conv_mask_to_poly: bool = False
    mapping: dict[str, LabelMappingEntry] | None = None
    #: for re-identification functions in CVAT; detectors ignore it
    max_distance: Int32 | None = None
    roi: list[Int32] | None = None


class FunctionCallParams(msgspec.Struct):
    id: str | None
    task: int | None
    threshold: float | None
    #: left out for a task's request (CVAT's clients refuse a null)
    job: int | msgspec.UnsetType = msgspec.UNSET


class FunctionCall(msgspec.Struct):
    """A batch auto-annotation as ``/api/lambda/requests`` shows it (``progress`` in percent)."""

    id: str
    function: FunctionCallParams
    status: str | None
    progress: int | None
    enqueued: dt.datetime | None
    started: dt.datetime | None
    ended: dt.datetime | None
    exc_info: str | None
