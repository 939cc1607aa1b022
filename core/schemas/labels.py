"""Labels, skeleton sublabels and attribute specs."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from annota.core.schemas.common import Id, ShortName

InputType = Literal["checkbox", "radio", "number", "text", "select"]
LabelType = Literal[
    "any", "cuboid", "ellipse", "mask", "points", "polygon", "polyline", "rectangle", "skeleton", "tag"
]
Color = Annotated[str, msgspec.Meta(pattern=r"^(#[0-9a-fA-F]{6})?$")]
AttrValue = Annotated[str, msgspec.Meta(max_length=4096)]


class AttributeRead(msgspec.Struct):
    id: int
    name: str
    mutable: bool
    input_type: InputType
    default_value: str
    values: list[str]


class AttributeWrite(msgspec.Struct):
    """An attribute spec in a label body. Without ``id`` an attribute of the same name is updated
    (or a new one created); omitted fields keep their stored values on update."""

    name: ShortName
    input_type: InputType
    mutable: bool | msgspec.UnsetType = msgspec.UNSET
    values: list[AttrValue] | msgspec.UnsetType = msgspec.UNSET
    default_value: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    id: Id | None = None
    #: delete the attribute (given by ``id``) and its values in annotations
    deleted: bool = False


class SublabelRead(msgspec.Struct):
    id: int
    name: str
    color: str
    attributes: list[AttributeRead]
    type: str
    has_parent: bool


class SublabelWrite(msgspec.Struct):
    """A skeleton element in a label body; new ones need a name and are ``points``."""

    name: ShortName | msgspec.UnsetType = msgspec.UNSET
    color: Color | msgspec.UnsetType = msgspec.UNSET
    attributes: list[AttributeWrite] = []
    type: LabelType | msgspec.UnsetType = msgspec.UNSET
    id: Id | None = None
    deleted: bool = False


class LabelRead(msgspec.Struct, omit_defaults=True):
    id: int
    name: str
    color: str
    attributes: list[AttributeRead]
    type: str
    svg: str
    sublabels: list[SublabelRead]
    has_parent: bool
    parent_id: int | None
    #: exactly one of these is present
    project_id: int | None = None
    task_id: int | None = None


class LabelWrite(msgspec.Struct):
    """A label in a project/task create or update body; ``id`` selects an existing label and
    ``deleted`` removes it."""

    name: ShortName | msgspec.UnsetType = msgspec.UNSET
    color: Color | msgspec.UnsetType = msgspec.UNSET
    attributes: list[AttributeWrite] = []
    type: LabelType | msgspec.UnsetType = msgspec.UNSET
    svg: str | msgspec.UnsetType = msgspec.UNSET
    sublabels: list[SublabelWrite] = []
    id: Id | None = None
    deleted: bool = False


class LabelUpdate(msgspec.Struct):
    """``PATCH /api/labels/{id}``."""

    name: ShortName | msgspec.UnsetType = msgspec.UNSET
    color: Color | msgspec.UnsetType = msgspec.UNSET
    attributes: list[AttributeWrite] = []
    type: LabelType | msgspec.UnsetType = msgspec.UNSET
    svg: str | msgspec.UnsetType = msgspec.UNSET
    sublabels: list[SublabelWrite] = []
    deleted: bool = False
