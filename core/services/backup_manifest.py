"""The documents inside a CVAT backup: ``task.json``, ``project.json`` and ``annotations.json``.

CVAT writes labels and attributes by *name* in a backup (ids mean nothing on another server), so
this module reads and writes those documents and converts annotations between the wire form
(``label_id``/``spec_id``) and the backup form (``label``/``name``). Nothing here touches the
database: the backup service hands in the labels it read or created.

Layout facts (CVAT's ``engine/backup.py``, version ``1.0``): ``task.json`` holds ``name``,
``bug_tracker``, ``status``, ``subset``, ``labels`` (``name, color, type, svg, attributes,
sublabels``; skeleton drawings name their elements with ``data-label-name``), ``data`` (chunking,
quality, frame range and filter, sorting, deleted frames, ``custom_segments``) and ``jobs``
(``start_frame, stop_frame, status, type`` and, for custom segments, ``files``).
``annotations.json`` is a list with one ``{version, tags, shapes, tracks}`` per job, frames
numbered in the task. annota adds ``segment_size`` and ``overlap`` to ``task.json`` so a restore
keeps them exactly, and ``data.selected_frames`` (see ``FrameRange``); CVAT ignores unknown keys,
and annota falls back to CVAT's fields when they are missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from annota.core.errors import ValidationError
from annota.core.schemas.annotations import (
    AttributeVal,
    LabeledData,
    LabeledImage,
    LabeledShape,
    LabeledTrack,
    SubLabeledShape,
    SubLabeledTrack,
    TrackedShape,
)
from annota.core.schemas.labels import LabelRead, LabelWrite

VERSION = "1.0"
TASK_MANIFEST = "task.json"
PROJECT_MANIFEST = "project.json"
ANNOTATIONS = "annotations.json"
DATA_DIR = "data"
TASK_DIR_PATTERN = re.compile(r"task_(\d+)\Z")

_LABEL_ID = re.compile(r'data-label-id="(\d+)"')


# --- the manifests --------------------------------------------------------------------------


class AttributeManifest(msgspec.Struct):
    name: str
    input_type: str
    mutable: bool = False
    default_value: str | None = None
    values: list[str] = []


class LabelManifest(msgspec.Struct):
    name: str
    color: str = ""
    type: str = "any"
    svg: str = ""
    attributes: list[AttributeManifest] = []
    sublabels: list[LabelManifest] = []


class FrameRange(msgspec.Struct):
    """annota's record of how an image task's frames were selected from its upload: the backup's
    ``data`` then describes the kept frames alone, which is what CVAT needs to restore them."""

    start_frame: int
    stop_frame: int
    frame_filter: str = ""


class DataManifest(msgspec.Struct):
    image_quality: int = 70
    chunk_size: int | None = None
    start_frame: int = 0
    stop_frame: int | None = None
    frame_filter: str = ""
    chunk_type: str = "imageset"
    storage_method: str = "file_system"
    storage: str = "local"
    sorting_method: str = "lexicographical"
    deleted_frames: list[int] = []
    custom_segments: bool = False
    selected_frames: FrameRange | None = None

    def frame_range(self) -> FrameRange:
        """How the task's frames were selected from the whole upload."""
        if self.selected_frames is not None:
            return self.selected_frames
        return FrameRange(self.start_frame, self.stop_frame or 0, self.frame_filter)


class JobManifest(msgspec.Struct):
    start_frame: int
    stop_frame: int
    status: str = "annotation"
    type: str = "annotation"
    frames: list[int] = []
    files: list[str] | None = None


class TaskManifest(msgspec.Struct):
    name: str
    version: str
    data: DataManifest
    jobs: list[JobManifest]
    labels: list[LabelManifest] = []
    bug_tracker: str = ""
    status: str = "annotation"
    subset: str = ""
    segment_size: int | None = None
    overlap: int | None = None

    def annotation_jobs(self) -> list[JobManifest]:
        return [job for job in self.jobs if job.type == "annotation"]

    def size(self) -> int:
        """The number of frames the task had: its jobs cover them all."""
        jobs = self.annotation_jobs()
        return max(job.stop_frame for job in jobs) + 1 if jobs else 0

    def segmenting(self) -> tuple[int, int | None]:
        """``(segment_size, overlap)``: the recorded ones, else derived from the first two jobs."""
        if self.segment_size is not None:
            return self.segment_size, self.overlap
        jobs = self.annotation_jobs()
        if not jobs:
            return 0, None
        size = jobs[0].stop_frame - jobs[0].start_frame + 1
        overlap = 0 if len(jobs) == 1 else jobs[0].stop_frame - jobs[1].start_frame + 1
        return size, overlap


class ProjectManifest(msgspec.Struct):
    name: str
    version: str
    labels: list[LabelManifest] = []
    bug_tracker: str = ""
    status: str = "annotation"


def _decode(raw: bytes, kind: type[Any], where: str) -> Any:
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as error:
        raise ValidationError(f"{where}: {error}") from None
    except msgspec.DecodeError as error:
        raise ValidationError(f"{where}: not valid JSON ({error})") from None


def _check_version(version: str, where: str) -> None:
    if version != VERSION:
        raise ValidationError(f"{where}: backup version {version!r} is not supported (only {VERSION!r}).")


def read_task_manifest(raw: bytes, where: str = TASK_MANIFEST) -> TaskManifest:
    manifest: TaskManifest = _decode(raw, TaskManifest, where)
    _check_version(manifest.version, where)
    if not manifest.annotation_jobs():
        raise ValidationError(f"{where}: the task has no jobs.")
    return manifest


def read_project_manifest(raw: bytes, where: str = PROJECT_MANIFEST) -> ProjectManifest:
    manifest: ProjectManifest = _decode(raw, ProjectManifest, where)
    _check_version(manifest.version, where)
    return manifest


# --- labels ---------------------------------------------------------------------------------


def _attribute_out(attribute: Any) -> dict[str, Any]:
    return {
        "name": attribute.name,
        "mutable": attribute.mutable,
        "input_type": attribute.input_type,
        "default_value": attribute.default_value,
        "values": list(attribute.values),
    }


def _svg_out(svg: str, names: dict[int, str]) -> str:
    """Skeleton drawings name their elements in a backup: ids mean nothing on another server."""
    return _LABEL_ID.sub(lambda m: f'data-label-name="{names.get(int(m.group(1)), m.group(1))}"', svg)


def labels_out(labels: Sequence[LabelRead]) -> list[dict[str, Any]]:
    """Labels as a backup manifest lists them, by name."""
    result = []
    for label in labels:
        result.append(
            {
                "name": label.name,
                "color": label.color,
                "type": label.type,
                "svg": _svg_out(label.svg, {sub.id: sub.name for sub in label.sublabels}),
                "attributes": [_attribute_out(a) for a in label.attributes],
                "sublabels": [
                    {
                        "name": sub.name,
                        "color": sub.color,
                        "type": sub.type,
                        "attributes": [_attribute_out(a) for a in sub.attributes],
                    }
                    for sub in label.sublabels
                ],  # fmt: skip
            }
        )
    return result


def _attribute_in(attribute: AttributeManifest) -> dict[str, Any]:
    value: dict[str, Any] = {
        "name": attribute.name,
        "input_type": attribute.input_type,
        "mutable": attribute.mutable,
        "values": attribute.values,
    }
    if attribute.default_value is not None:
        value["default_value"] = attribute.default_value
    return value


def labels_in(labels: Sequence[LabelManifest], where: str) -> list[LabelWrite]:
    """The manifest's labels as a create body; the label service checks them as for any create."""
    body = []
    for label in labels:
        entry: dict[str, Any] = {
            "name": label.name,
            "type": label.type,
            "attributes": [_attribute_in(a) for a in label.attributes],
        }
        if label.color:
            entry["color"] = label.color
        if label.type == "skeleton":
            entry["svg"] = label.svg
            entry["sublabels"] = [
                {"name": sub.name, "type": sub.type, "attributes": [_attribute_in(a) for a in sub.attributes],
                 **({"color": sub.color} if sub.color else {})}
                for sub in label.sublabels
            ]  # fmt: skip
        body.append(entry)
    try:
        return msgspec.convert(body, list[LabelWrite])
    except msgspec.ValidationError as error:
        raise ValidationError(f"{where}: labels: {error}") from None


# --- annotations ----------------------------------------------------------------------------


class NamedAttribute(msgspec.Struct):
    name: str
    value: str


class NamedTag(msgspec.Struct, kw_only=True):
    label: str
    frame: int
    group: int | None = 0
    source: str = "manual"
    attributes: list[NamedAttribute] = []


class NamedShape(msgspec.Struct, kw_only=True):
    type: str
    label: str
    frame: int
    group: int | None = 0
    source: str = "manual"
    score: float = 1.0
    occluded: bool = False
    outside: bool = False
    z_order: int = 0
    rotation: float = 0.0
    points: list[float] = []
    attributes: list[NamedAttribute] = []
    elements: list[NamedShape] = []


class NamedKeyframe(msgspec.Struct, kw_only=True):
    type: str
    frame: int
    occluded: bool = False
    outside: bool = False
    z_order: int = 0
    rotation: float = 0.0
    points: list[float] = []
    attributes: list[NamedAttribute] = []


class NamedTrack(msgspec.Struct, kw_only=True):
    label: str
    frame: int
    group: int | None = 0
    source: str = "manual"
    shapes: list[NamedKeyframe] = []
    attributes: list[NamedAttribute] = []
    elements: list[NamedTrack] = []


class NamedJobAnnotations(msgspec.Struct):
    version: int = 0
    tags: list[NamedTag] = []
    shapes: list[NamedShape] = []
    tracks: list[NamedTrack] = []


def read_annotations(raw: bytes, where: str = ANNOTATIONS) -> list[NamedJobAnnotations]:
    result: list[NamedJobAnnotations] = _decode(raw, list[NamedJobAnnotations], where)
    return result


@dataclass
class LabelIds:
    """One label's id and its attributes' ids by name, and its sublabels (skeleton elements)."""

    id: int
    attributes: dict[str, int] = field(default_factory=dict)
    sublabels: dict[str, LabelIds] = field(default_factory=dict)


def index_labels(labels: Sequence[LabelRead]) -> dict[str, LabelIds]:
    """Created labels by name, to turn backup names into ids."""
    return {
        label.name: LabelIds(
            label.id,
            {a.name: a.id for a in label.attributes},
            {sub.name: LabelIds(sub.id, {a.name: a.id for a in sub.attributes}) for sub in label.sublabels},
        )
        for label in labels
    }


def index_manifest_labels(labels: Sequence[LabelManifest]) -> dict[str, LabelIds]:
    """Stand-in ids for the labels a manifest declares, to check annotations before creating anything."""
    counter = iter(range(1, 1 << 62))

    def ids(label: LabelManifest) -> LabelIds:
        return LabelIds(
            next(counter),
            {a.name: next(counter) for a in label.attributes},
            {sub.name: ids(sub) for sub in label.sublabels},
        )

    return {label.name: ids(label) for label in labels}


class _ToIds:
    """Converts one job's named annotations, naming the object that refers to an unknown label."""

    def __init__(self, labels: dict[str, LabelIds], where: str) -> None:
        self.labels = labels
        self.where = where

    def label(self, scope: dict[str, LabelIds], name: str, path: str) -> LabelIds:
        found = scope.get(name)
        if found is None:
            raise ValidationError(f"{self.where}: {path}: label {name!r} is not declared in the manifest.")
        return found

    def attributes(self, label: LabelIds, values: Iterable[NamedAttribute], path: str) -> list[AttributeVal]:
        result = []
        for index, value in enumerate(values):
            spec = label.attributes.get(value.name)
            if spec is None:
                raise ValidationError(
                    f"{self.where}: {path}.attributes[{index}]: attribute {value.name!r} is not declared "
                    "for its label in the manifest."
                )
            result.append(AttributeVal(spec_id=spec, value=value.value))
        return result

    def shape(self, shape: NamedShape, scope: dict[str, LabelIds], path: str) -> LabeledShape:
        label = self.label(scope, shape.label, path)
        return LabeledShape(
            type=shape.type,  # type: ignore[arg-type]
            label_id=label.id,
            frame=shape.frame,
            group=shape.group,
            source=shape.source,  # type: ignore[arg-type]
            score=shape.score,
            occluded=shape.occluded,
            outside=shape.outside,
            z_order=shape.z_order,
            rotation=shape.rotation,
            points=shape.points,
            attributes=self.attributes(label, shape.attributes, path),
            elements=[
                self.shape(element, label.sublabels, f"{path}.elements[{i}]")
                for i, element in enumerate(shape.elements)
            ],
        )

    def track(self, track: NamedTrack, scope: dict[str, LabelIds], path: str) -> LabeledTrack:
        label = self.label(scope, track.label, path)
        keyframes = [
            TrackedShape(
                type=k.type,  # type: ignore[arg-type]
                frame=k.frame,
                occluded=k.occluded,
                outside=k.outside,
                z_order=k.z_order,
                rotation=k.rotation,
                points=k.points,
                attributes=self.attributes(label, k.attributes, f"{path}.shapes[{i}]"),
            )
            for i, k in enumerate(track.shapes)
        ]
        return LabeledTrack(
            label_id=label.id,
            frame=track.frame,
            group=track.group,
            source=track.source,  # type: ignore[arg-type]
            shapes=keyframes,
            attributes=self.attributes(label, track.attributes, path),
            elements=[
                self.track(element, label.sublabels, f"{path}.elements[{i}]")
                for i, element in enumerate(track.elements)
            ],
        )


def annotations_to_ids(
    jobs: Sequence[NamedJobAnnotations], labels: dict[str, LabelIds], where: str = ANNOTATIONS
) -> LabeledData:
    """All jobs' annotations as one task-level ``LabeledData`` with the labels' ids."""
    result = LabeledData()
    for number, job in enumerate(jobs):
        convert = _ToIds(labels, where)
        for index, tag in enumerate(job.tags):
            path = f"[{number}].tags[{index}]"
            label = convert.label(labels, tag.label, path)
            result.tags.append(
                LabeledImage(label_id=label.id, frame=tag.frame, group=tag.group,
                             source=tag.source,  # type: ignore[arg-type]
                             attributes=convert.attributes(label, tag.attributes, path))
            )  # fmt: skip
        result.shapes.extend(
            convert.shape(shape, labels, f"[{number}].shapes[{index}]")
            for index, shape in enumerate(job.shapes)
        )
        result.tracks.extend(
            convert.track(track, labels, f"[{number}].tracks[{index}]")
            for index, track in enumerate(job.tracks)
        )
    try:
        # the same constraints as an annotation upload (shape types, sources)
        return msgspec.convert(msgspec.to_builtins(result), LabeledData)
    except msgspec.ValidationError as error:
        raise ValidationError(f"{where}: {error}") from None


@dataclass
class _Names:
    name: str
    attributes: dict[int, str]
    sublabels: dict[int, _Names] = field(default_factory=dict)


def _names(labels: Sequence[LabelRead]) -> dict[int, _Names]:
    result = {}
    for label in labels:
        sublabels = {
            sub.id: _Names(sub.name, {a.id: a.name for a in sub.attributes}) for sub in label.sublabels
        }
        result[label.id] = _Names(label.name, {a.id: a.name for a in label.attributes}, sublabels)
    return result


def _attributes_out(label: _Names, values: Iterable[AttributeVal]) -> list[dict[str, str]]:
    return [
        {"name": label.attributes[v.spec_id], "value": v.value}
        for v in values
        if v.spec_id in label.attributes
    ]


def _shape_out(shape: SubLabeledShape, scope: dict[int, _Names]) -> dict[str, Any]:
    label = scope[shape.label_id]
    result: dict[str, Any] = {
        "type": shape.type, "label": label.name, "frame": shape.frame, "group": shape.group or 0,
        "source": shape.source, "score": shape.score, "occluded": shape.occluded, "outside": shape.outside,
        "z_order": shape.z_order, "rotation": shape.rotation, "points": shape.points,
        "attributes": _attributes_out(label, shape.attributes),
    }  # fmt: skip
    if isinstance(shape, LabeledShape):
        result["elements"] = [_shape_out(element, label.sublabels) for element in shape.elements]
    return result


def _track_out(track: SubLabeledTrack, scope: dict[int, _Names]) -> dict[str, Any]:
    label = scope[track.label_id]
    result: dict[str, Any] = {
        "label": label.name, "frame": track.frame, "group": track.group or 0, "source": track.source,
        "shapes": [
            {"type": k.type, "frame": k.frame, "occluded": k.occluded, "outside": k.outside,
             "z_order": k.z_order, "rotation": k.rotation, "points": k.points,
             "attributes": _attributes_out(label, k.attributes)}
            for k in track.shapes
        ],
        "attributes": _attributes_out(label, track.attributes),
    }  # fmt: skip
    if isinstance(track, LabeledTrack):
        result["elements"] = [_track_out(element, label.sublabels) for element in track.elements]
    return result


def annotations_out(
    data: LabeledData, labels: Sequence[LabelRead], jobs: Sequence[tuple[int, int]]
) -> list[dict[str, Any]]:
    """A task's annotations as ``annotations.json``: one entry per job (``(start, stop)`` frames),
    each object in the first job holding its (first) frame, labels and attributes by name."""
    scope = _names(labels)
    entries: list[dict[str, Any]] = [{"version": 0, "tags": [], "shapes": [], "tracks": []} for _ in jobs]

    def entry(frame: int) -> dict[str, Any]:
        for number, (start, stop) in enumerate(jobs):
            if start <= frame <= stop:
                return entries[number]
        return entries[-1]

    for tag in data.tags:
        label = scope[tag.label_id]
        entry(tag.frame)["tags"].append(
            {"label": label.name, "frame": tag.frame, "group": tag.group or 0, "source": tag.source,
             "attributes": _attributes_out(label, tag.attributes)}
        )  # fmt: skip
    for shape in data.shapes:
        entry(shape.frame)["shapes"].append(_shape_out(shape, scope))
    for track in data.tracks:
        entry(track.frame)["tracks"].append(_track_out(track, scope))
    return entries


__all__ = [
    "ANNOTATIONS",
    "DATA_DIR",
    "PROJECT_MANIFEST",
    "TASK_DIR_PATTERN",
    "TASK_MANIFEST",
    "VERSION",
    "DataManifest",
    "FrameRange",
    "JobManifest",
    "LabelIds",
    "LabelManifest",
    "NamedJobAnnotations",
    "ProjectManifest",
    "TaskManifest",
    "annotations_out",
    "annotations_to_ids",
    "index_labels",
    "index_manifest_labels",
    "labels_in",
    "labels_out",
    "read_annotations",
    "read_project_manifest",
    "read_task_manifest",
]
