"""CVAT's own XML formats: "CVAT for images 1.1" and "CVAT for video 1.1" (export), "CVAT 1.1" (import).

Both layouts share ``<annotations><version>1.1</version><meta>…</meta>`` with the task and its labels.
The images layout then has one ``<image>`` per frame holding its tags and shapes; shapes of tracks
appear on every frame where the track exists (interpolated ones with ``keyframe="0"``, the ending
one with ``outside="1"``) and carry ``track_id``. The video layout has one ``<track>`` per object
with its shape on every frame from its first keyframe on; plain shapes become one-frame tracks (the
shape, then an ``outside`` copy on the next frame of the task when there is one) and tags are lost.

The XML is written element by element to a temporary file (images may go to the same archive in
between) and read with ``defusedxml``'s ``iterparse``, one ``<image>`` or ``<track>`` at a time;
documents with a DTD or entities are refused. Coordinates are written with two decimals and
``rotation`` only when it is not 0, as CVAT does; they are kept as they are on import (no clipping
to the image). An import reads ``annotations.xml``, or else every ``*.xml`` found (one per subset).

What the exporter takes from ``Dataset.meta`` (all optional): ``id``, ``size``, ``mode``,
``overlap``, ``bugtracker``, ``created``, ``updated``, ``subset``, ``start_frame``, ``stop_frame``,
``frame_filter``, ``segments`` (``[{"id", "start", "stop", "url"}]``), ``owner`` and ``assignee``
(``{"username", "email"}``) and ``original_size`` (``{"width", "height"}``).

On import, ``<image id>`` gives the item's frame; tracks of the video layout keep their keyframes
and ``outside`` shapes (interpolated shapes are dropped: they are recomputed); mutable attributes
(and undeclared ones that change) stay on the keyframes, the others become the track's. The video
layout names no frames: there are ``<size>`` of them (or as many as the tracks reach), named
``frame_NNNNNN`` after the matching file under ``images/``, or, when ``images/`` holds one file per
frame under other names (an image task), bound to the files in natural name order. Masks of the
images layout become polygons with ``conv_mask_to_poly``.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape, quoteattr

import defusedxml
import msgspec

from annota.core import hookimpl
from annota.core.errors import FormatError
from annota.core.formats import safe_xml
from annota.core.formats.datasets import StreamedDataset
from annota.core.formats.masks import bitmap_to_polygons, cvat_bbox, cvat_crop
from annota.core.formats.model import (
    DEFAULT_SUBSET,
    AttributeSpec,
    Dataset,
    Item,
    LabelSpec,
    Shape,
    Tag,
    Track,
    TrackShape,
)
from annota.core.formats.output import Output
from annota.core.formats.registry import ExportOptions, Format, ImportOptions
from annota.core.formats.source import first_file
from annota.core.formats.tracks import keyframes
from annota.core.interpolation import interpolate_track

ANNOTATIONS_FILE = "annotations.xml"
IMAGES_DIR = "images"

#: XML element of each shape type, and back
_ELEMENT = {
    "rectangle": "box",
    "polygon": "polygon",
    "polyline": "polyline",
    "points": "points",
    "ellipse": "ellipse",
    "cuboid": "cuboid",
    "mask": "mask",
    "skeleton": "skeleton",
}
_SHAPE_TYPE = {element: shape_type for shape_type, element in _ELEMENT.items()}
_CUBOID_NAMES = (
    "xtl1", "ytl1", "xbl1", "ybl1", "xtr1", "ytr1", "xbr1", "ybr1",
    "xtl2", "ytl2", "xbl2", "ybl2", "xtr2", "ytr2", "xbr2", "ybr2",
)  # fmt: skip
#: the least number of points of outline shapes
_MIN_POINTS = {"polygon": 3, "polyline": 2, "points": 1}
_META_FIELDS = ("overlap", "bugtracker", "created", "updated", "subset")


def _num(value: float) -> str:
    return f"{value:.2f}"


def _flag(value: bool) -> str:
    return "1" if value else "0"


# --- writing ----------------------------------------------------------------------------------


class _XmlWriter:
    """Writes indented CVAT XML to a text stream, one element at a time."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def open(
        self, depth: int, tag: str, attrs: Iterable[tuple[str, str]] = (), *, empty: bool = False
    ) -> None:
        text = "".join(f" {name}={quoteattr(value)}" for name, value in attrs)
        self.stream.write(f"{'  ' * depth}<{tag}{text}{' /' if empty else ''}>\n")

    def close(self, depth: int, tag: str) -> None:
        self.stream.write(f"{'  ' * depth}</{tag}>\n")

    def text(self, depth: int, tag: str, value: object) -> None:
        self.stream.write(f"{'  ' * depth}<{tag}>{escape(str(value))}</{tag}>\n")

    def attribute(self, depth: int, name: str, value: str) -> None:
        self.stream.write(f"{'  ' * depth}<attribute name={quoteattr(name)}>{escape(value)}</attribute>\n")

    def header(self, dataset: Dataset, mode: str) -> None:
        meta = dataset.meta
        # unknown when the source cannot count its items up front; importers then count the frames
        size = meta.get("size", dataset.size)
        self.stream.write('<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n')
        self.text(1, "version", "1.1")
        self.open(1, "meta")
        self.open(2, "task")
        self.text(3, "id", meta.get("id", ""))
        self.text(3, "name", dataset.name)
        if size is not None:
            self.text(3, "size", size)
        self.text(3, "mode", meta.get("mode", mode))
        for key in _META_FIELDS:
            if key in meta:
                self.text(3, key, meta[key])
        self.text(3, "start_frame", meta.get("start_frame", 0))
        if "stop_frame" in meta or size is not None:
            self.text(3, "stop_frame", meta.get("stop_frame", max(int(size or 0) - 1, 0)))
        self.text(3, "frame_filter", meta.get("frame_filter", ""))
        if meta.get("segments"):
            self.open(3, "segments")
            for segment in meta["segments"]:
                self.open(4, "segment")
                for key in ("id", "start", "stop", "url"):
                    self.text(5, key, segment.get(key, ""))
                self.close(4, "segment")
            self.close(3, "segments")
        for role in ("owner", "assignee"):
            person = meta.get(role)
            if isinstance(person, Mapping):
                self.open(3, role)
                self.text(4, "username", person.get("username", ""))
                self.text(4, "email", person.get("email", ""))
                self.close(3, role)
        self.open(3, "labels")
        for label in dataset.labels:
            self.label(label, None)
            for sublabel in label.sublabels:
                self.label(sublabel, label.name)
        self.close(3, "labels")
        original = meta.get("original_size")
        if isinstance(original, Mapping):
            self.open(3, "original_size")
            self.text(4, "width", original.get("width", ""))
            self.text(4, "height", original.get("height", ""))
            self.close(3, "original_size")
        self.close(2, "task")
        self.text(2, "dumped", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00"))
        self.close(1, "meta")

    def label(self, label: LabelSpec, parent: str | None) -> None:
        self.open(4, "label")
        self.text(5, "name", label.name)
        self.text(5, "color", label.color)
        self.text(5, "type", label.type)
        self.open(5, "attributes")
        for spec in label.attributes:
            self.open(6, "attribute")
            self.text(7, "name", spec.name)
            self.text(7, "mutable", "True" if spec.mutable else "False")
            self.text(7, "input_type", spec.input_type)
            self.text(7, "default_value", spec.default_value)
            self.text(7, "values", "\n".join(spec.values))
            self.close(6, "attribute")
        self.close(5, "attributes")
        if label.svg:
            self.text(5, "svg", label.svg)
        if parent is not None:
            self.text(5, "parent", parent)
        self.close(4, "label")

    def footer(self) -> None:
        self.stream.write("</annotations>\n")


def _geometry(shape_type: str, points: Sequence[float], rotation: float) -> list[tuple[str, str]]:
    if shape_type == "rectangle":
        attrs = [(name, _num(v)) for name, v in zip(("xtl", "ytl", "xbr", "ybr"), points, strict=True)]
    elif shape_type in _MIN_POINTS:
        pairs = zip(points[0::2], points[1::2], strict=True)
        attrs = [("points", ";".join(f"{_num(x)},{_num(y)}" for x, y in pairs))]
    elif shape_type == "ellipse":
        cx, cy, right, top = points
        attrs = [("cx", _num(cx)), ("cy", _num(cy)), ("rx", _num(right - cx)), ("ry", _num(cy - top))]
    elif shape_type == "cuboid":
        attrs = [(name, _num(v)) for name, v in zip(_CUBOID_NAMES, points, strict=True)]
    elif shape_type == "mask":
        left, top, right, bottom = cvat_bbox(points)
        attrs = [
            ("rle", ", ".join(str(int(v)) for v in points[:-4])),
            ("left", str(left)),
            ("top", str(top)),
            ("width", str(right - left + 1)),
            ("height", str(bottom - top + 1)),
        ]
    elif shape_type == "skeleton":
        attrs = []
    else:
        raise ValueError(f"CVAT XML cannot hold a shape of type {shape_type!r}")
    if rotation and shape_type in ("rectangle", "ellipse"):
        attrs.append(("rotation", _num(rotation)))
    return attrs


def _write_shape(writer: _XmlWriter, depth: int, shape: Shape) -> None:
    """A shape of the images layout (a plain one or a track's on this frame)."""
    attrs = [("label", shape.label), ("source", shape.source), ("occluded", _flag(shape.occluded))]
    if shape.track_id is not None:
        attrs += [
            ("track_id", str(shape.track_id)),
            ("keyframe", _flag(shape.keyframe)),
            ("outside", _flag(shape.outside)),
        ]
    attrs += _geometry(shape.type, shape.points, shape.rotation)
    attrs.append(("z_order", str(shape.z_order)))
    if shape.group:
        attrs.append(("group_id", str(shape.group)))
    tag = _ELEMENT[shape.type]
    writer.open(depth, tag, attrs)
    for name, value in shape.attributes.items():
        writer.attribute(depth + 1, name, value)
    for element in shape.elements:
        element_attrs = [
            ("label", element.label),
            ("source", element.source),
            ("outside", _flag(element.outside)),
            ("occluded", _flag(element.occluded)),
            *_geometry("points", element.points, 0.0),
        ]
        writer.open(depth + 1, "points", element_attrs)
        for name, value in element.attributes.items():
            writer.attribute(depth + 2, name, value)
        writer.close(depth + 1, "points")
    writer.close(depth, tag)


def _write_image(writer: _XmlWriter, item: Item, frame: int) -> None:
    attrs = [("id", str(frame)), ("name", item.name)]
    if item.subset and item.subset != DEFAULT_SUBSET:
        attrs.append(("subset", item.subset))
    if item.width is not None and item.height is not None:
        attrs += [("width", str(item.width)), ("height", str(item.height))]
    writer.open(1, "image", attrs)
    for tag in item.tags:
        tag_attrs = [("label", tag.label), ("source", tag.source)]
        if tag.group:
            tag_attrs.append(("group_id", str(tag.group)))
        writer.open(2, "tag", tag_attrs)
        for name, value in tag.attributes.items():
            writer.attribute(3, name, value)
        writer.close(2, "tag")
    for shape in item.shapes:
        _write_shape(writer, 2, shape)
    writer.close(1, "image")


@dataclass
class _FrameShape:
    """One frame of a track in the video layout."""

    frame: int
    type: str
    points: Sequence[float]
    keyframe: bool
    outside: bool
    occluded: bool = False
    z_order: int = 0
    rotation: float = 0.0
    attributes: Mapping[str, str] = field(default_factory=dict)
    #: skeleton elements on this frame: (sublabel, shape)
    elements: list[tuple[str, _FrameShape]] = field(default_factory=list)


def _write_track(
    writer: _XmlWriter, track_id: int, label: str, source: str, group: int, shapes: Iterable[_FrameShape]
) -> None:
    attrs = [("id", str(track_id)), ("label", label), ("source", source)]
    if group:
        attrs.append(("group_id", str(group)))
    writer.open(1, "track", attrs)
    for shape in shapes:
        tag = _ELEMENT[shape.type]
        shape_attrs = [
            ("frame", str(shape.frame)),
            ("keyframe", _flag(shape.keyframe)),
            ("outside", _flag(shape.outside)),
            ("occluded", _flag(shape.occluded)),
            *_geometry(shape.type, shape.points, shape.rotation),
            ("z_order", str(shape.z_order)),
        ]
        writer.open(2, tag, shape_attrs)
        for name, value in shape.attributes.items():
            writer.attribute(3, name, value)
        for sublabel, element in shape.elements:
            element_attrs = [
                ("label", sublabel),
                ("keyframe", _flag(element.keyframe)),
                ("outside", _flag(element.outside)),
                ("occluded", _flag(element.occluded)),
                *_geometry("points", element.points, 0.0),
            ]
            writer.open(3, "points", element_attrs)
            for name, value in element.attributes.items():
                writer.attribute(4, name, value)
            writer.close(3, "points")
        writer.close(2, tag)
    writer.close(1, "track")


def _plain_track(shape: Shape, frame: int, next_frame: int | None) -> list[_FrameShape]:
    """A plain shape as a one-frame track: the shape, then an ``outside`` copy on the next frame."""

    def on(at: int, outside: bool) -> _FrameShape:
        elements = [
            (
                element.label,
                _FrameShape(
                    frame=at,
                    type="points",
                    points=element.points,
                    keyframe=True,
                    outside=outside or element.outside,
                    occluded=element.occluded,
                    attributes=element.attributes,
                ),
            )
            for element in shape.elements
        ]
        return _FrameShape(
            frame=at,
            type=shape.type,
            points=shape.points,
            keyframe=True,
            outside=outside,
            occluded=shape.occluded,
            z_order=shape.z_order,
            rotation=shape.rotation,
            attributes=shape.attributes,
            elements=elements,
        )

    frames = [on(frame, False)]
    if next_frame is not None:
        frames.append(on(next_frame, True))
    return frames


def _track_frames(track: Track, frames: Sequence[int]) -> Iterator[_FrameShape]:
    """Every frame of a track on the task's frames (interpolated ones with ``keyframe=False``)."""
    if not track.shapes or not frames:
        return
    start, stop = frames[0], frames[-1]
    included = set(frames)

    elements = [
        (
            element.label,
            {s.frame: s for s in interpolate_track(keyframes(element), start, stop, included=included)},
        )
        for element in track.elements
    ]
    for shape in interpolate_track(keyframes(track), start, stop, included=included):
        frame_elements = []
        for sublabel, by_frame in elements:
            at = by_frame.get(shape.frame)
            if at is None:
                continue
            frame_elements.append(
                (
                    sublabel,
                    _FrameShape(
                        frame=at.frame,
                        type="points",
                        points=at.points,
                        keyframe=at.keyframe,
                        outside=at.outside or shape.outside,
                        occluded=at.occluded,
                        attributes=dict(cast(Any, at.attributes)),
                    ),
                )
            )
        yield _FrameShape(
            frame=shape.frame,
            type=shape.type,
            points=shape.points,
            keyframe=shape.keyframe,
            outside=shape.outside,
            occluded=shape.occluded,
            z_order=shape.z_order,
            rotation=shape.rotation,
            attributes={**track.attributes, **dict(cast(Any, shape.attributes))},
            elements=frame_elements,
        )


def _save_image(dataset: Dataset, item: Item, output: Output) -> None:
    data = dataset.image(item)
    if data is None:
        return
    name = item.name
    extension = dataset.image_extension(item)
    if not Path(name).suffix:
        name += extension
    output.write(f"{IMAGES_DIR}/{name}", data)


def _export(output: Output, write: Callable[[_XmlWriter], None]) -> None:
    # The XML goes to a temporary file first: a ZIP archive takes one member at a time, and images
    # are written while the items are read.
    with tempfile.TemporaryFile() as spool:
        stream = io.TextIOWrapper(spool, encoding="utf-8", newline="\n")
        write(_XmlWriter(stream))
        stream.flush()
        spool.seek(0)
        with output.open(ANNOTATIONS_FILE) as target:
            shutil.copyfileobj(spool, target, 1 << 20)
        stream.detach()


def export_images(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    def write(writer: _XmlWriter) -> None:
        writer.header(dataset, "annotation")
        for index, item in enumerate(dataset.items()):
            if options.save_images:
                _save_image(dataset, item, output)
            _write_image(writer, item, item.frame if item.frame is not None else index)
        writer.footer()

    _export(output, write)


def export_video(dataset: Dataset, output: Output, options: ExportOptions) -> None:
    def write(writer: _XmlWriter) -> None:
        writer.header(dataset, "interpolation")
        frames: list[int] = []
        next_id = 0
        # a frame's plain shapes wait for the next frame, where their tracks end
        pending: tuple[int, list[Shape]] | None = None

        def flush(next_frame: int | None) -> None:
            nonlocal next_id
            if pending is None:
                return
            frame, shapes = pending
            for shape in shapes:
                _write_track(
                    writer,
                    next_id,
                    shape.label,
                    shape.source,
                    shape.group,
                    _plain_track(shape, frame, next_frame),
                )
                next_id += 1

        for index, item in enumerate(dataset.items(tracks=True)):
            if options.save_images:
                _save_image(dataset, item, output)
            frame = item.frame if item.frame is not None else index
            frames.append(frame)
            flush(frame)
            pending = (frame, [shape for shape in item.shapes if not shape.outside])
        flush(None)
        frames.sort()
        for track in dataset.tracks():
            _write_track(
                writer, next_id, track.label, track.source, track.group, _track_frames(track, frames)
            )
            next_id += 1
        writer.footer()

    _export(output, write)


# --- reading ----------------------------------------------------------------------------------


def _xml_files(root: Path) -> list[Path]:
    if (root / ANNOTATIONS_FILE).is_file():
        return [root / ANNOTATIONS_FILE]
    found = sorted(path for path in root.glob("*.xml") if path.is_file())
    if not found:
        found = sorted(path for path in root.rglob("*.xml") if path.is_file())
    return found


def _iterparse(path: Path, display: str) -> Iterator[tuple[str, Element]]:
    """``(event, element)`` pairs of ``start`` and ``end`` events; XML errors become ``FormatError``."""
    try:
        with open(path, "rb") as stream:
            yield from safe_xml.iterparse(stream, ("start", "end"))
    except ParseError as exc:
        line, column = getattr(exc, "position", (None, None))
        message = re.sub(r": line \d+, column \d+$", "", str(exc))
        raise FormatError(
            f"malformed XML: {message}",
            file=display,
            line=line,
            column=None if column is None else column + 1,
        ) from None
    except defusedxml.DefusedXmlException as exc:
        raise FormatError(
            f"the XML declares a DTD or entities, which are refused ({type(exc).__name__})", file=display
        ) from None
    except OSError as exc:
        raise FormatError(f"cannot read the file: {exc.strerror or exc}", file=display) from None


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() in ("1", "true")


def _child_text(element: Element, tag: str, default: str = "") -> str:
    child = element.find(tag)
    return default if child is None or child.text is None else child.text


@dataclass
class _Meta:
    name: str = ""
    size: int | None = None
    labels: list[LabelSpec] | None = None
    #: the frame size of a video task (``<original_size>``)
    width: int | None = None
    height: int | None = None
    rooted: bool = False


def _parse_labels(container: Element, display: str) -> list[LabelSpec]:
    labels: list[LabelSpec] = []
    by_name: dict[str, LabelSpec] = {}
    for element in container.findall("label"):
        attributes = [
            AttributeSpec(
                name=_child_text(attribute, "name"),
                input_type=_child_text(attribute, "input_type", "text") or "text",
                mutable=_bool(_child_text(attribute, "mutable")),
                default_value=_child_text(attribute, "default_value"),
                values=[v for v in _child_text(attribute, "values").split("\n") if v],
            )
            for attribute in element.iterfind("attributes/attribute")
        ]
        label = LabelSpec(
            name=_child_text(element, "name"),
            type=_child_text(element, "type", "any") or "any",
            color=_child_text(element, "color"),
            attributes=attributes,
            svg=_child_text(element, "svg"),
        )
        if not label.name:
            raise FormatError("a label in <meta> has no name", file=display)
        parent = _child_text(element, "parent")
        if parent:
            owner = by_name.get(parent)
            if owner is None:
                raise FormatError(f"label {label.name!r} names an unknown parent {parent!r}", file=display)
            owner.sublabels.append(label)
        else:
            label.sublabels = []
            labels.append(label)
            by_name[label.name] = label
    return labels


def _read_meta(path: Path, display: str) -> _Meta:
    meta = _Meta()
    for event, element in _iterparse(path, display):
        if event == "start" and element.tag != "annotations" and not meta.rooted:
            raise FormatError(f"not a CVAT XML file: the root element is <{element.tag}>, not <annotations>",
                              file=display)  # fmt: skip
        meta.rooted = True
        if event == "start" and element.tag in ("image", "track"):
            # annotations begin: the document has no <meta>
            break
        if event == "end" and element.tag == "meta":
            source = next((child for child in element if child.tag in ("task", "job", "project")), None)
            if source is not None:
                meta.name = _child_text(source, "name")
                size = _child_text(source, "size").strip()
                meta.size = int(size) if size.isdigit() else None
                labels = source.find("labels")
                if labels is not None:
                    meta.labels = _parse_labels(labels, display)
                width = _child_text(source, "original_size/width").strip()
                height = _child_text(source, "original_size/height").strip()
                if width.isdigit() and height.isdigit():
                    meta.width, meta.height = int(width), int(height)
            break
    return meta


class _Labels:
    """Label names of a document, checked as annotations are read."""

    def __init__(self, labels: Sequence[LabelSpec]) -> None:
        self.by_name = {label.name: label for label in labels}

    def check(self, name: str | None, where: dict[str, Any], parent: str | None = None) -> str:
        if not name:
            raise FormatError("the annotation has no label", **where)
        if parent is None:
            if name not in self.by_name:
                raise FormatError(f"unknown label {name!r}", **where)
        else:
            owner = self.by_name.get(parent)
            if owner is not None and not any(sub.name == name for sub in owner.sublabels):
                raise FormatError(f"unknown label {name!r} in skeleton {parent!r}", **where)
        return name


def _float(element: Element, name: str, where: dict[str, Any]) -> float:
    value = element.get(name)
    if value is None:
        raise FormatError(f"<{element.tag}> has no {name!r} attribute", **where)
    try:
        return float(value)
    except ValueError:
        raise FormatError(f"<{element.tag}> has a bad {name!r}: {value!r}", **where) from None


def _int(element: Element, name: str, where: dict[str, Any], default: int | None = None) -> int:
    value = element.get(name)
    if value is None:
        if default is not None:
            return default
        raise FormatError(f"<{element.tag}> has no {name!r} attribute", **where)
    try:
        return int(value)
    except ValueError:
        raise FormatError(f"<{element.tag}> has a bad {name!r}: {value!r}", **where) from None


def _parse_points(element: Element, shape_type: str, where: dict[str, Any]) -> list[float]:
    points = _read_points(element, where)
    least = _MIN_POINTS[shape_type]
    if len(points) < 2 * least:
        raise FormatError(f"a {shape_type} needs at least {least} points, it has {len(points) // 2}", **where)
    return points


def _read_points(element: Element, where: dict[str, Any]) -> list[float]:
    text = element.get("points")
    if text is None:
        raise FormatError(f"<{element.tag}> has no 'points' attribute", **where)
    points: list[float] = []
    try:
        for pair in text.split(";"):
            if not pair.strip():
                continue
            x, y = pair.split(",")
            points += [float(x), float(y)]
    except ValueError:
        raise FormatError(f"<{element.tag}> has bad points {text[:80]!r}", **where) from None
    return points


def _degenerate_outline(element: Element, where: dict[str, Any]) -> bool:
    """Whether ``element`` is a polygon or polyline outside tracks with some points, but fewer than
    it needs: CVAT's importer takes such a shape without a word, it draws nothing and no annotation
    can hold it, so it is left out. One without any points is refused, as CVAT refuses it."""
    shape_type = _SHAPE_TYPE[element.tag]
    if shape_type not in ("polygon", "polyline") or element.get("track_id") is not None:
        return False
    points = _read_points(element, where)
    return 0 < len(points) < 2 * _MIN_POINTS[shape_type]


def _parse_geometry(element: Element, shape_type: str, where: dict[str, Any]) -> tuple[list[float], float]:
    rotation = _float(element, "rotation", where) if element.get("rotation") else 0.0
    if shape_type == "rectangle":
        xtl, ytl, xbr, ybr = (_float(element, name, where) for name in ("xtl", "ytl", "xbr", "ybr"))
        if xbr < xtl or ybr < ytl:
            raise FormatError(f"the box has a negative size ({xbr - xtl:g} x {ybr - ytl:g})", **where)
        return [xtl, ytl, xbr, ybr], rotation % 360
    if shape_type in _MIN_POINTS:
        return _parse_points(element, shape_type, where), 0.0
    if shape_type == "ellipse":
        cx, cy, rx, ry = (_float(element, name, where) for name in ("cx", "cy", "rx", "ry"))
        if rx < 0 or ry < 0:
            raise FormatError("the ellipse has a negative radius", **where)
        return [cx, cy, cx + rx, cy - ry], rotation % 360
    if shape_type == "cuboid":
        return [_float(element, name, where) for name in _CUBOID_NAMES], 0.0
    if shape_type == "mask":
        left, top = _int(element, "left", where), _int(element, "top", where)
        width, height = _int(element, "width", where), _int(element, "height", where)
        text = element.get("rle")
        if text is None:
            raise FormatError("<mask> has no 'rle' attribute", **where)
        try:
            runs = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise FormatError(f"<mask> has a bad rle {text[:80]!r}", **where) from None
        if width < 1 or height < 1:
            raise FormatError(f"the mask has an empty size {width} x {height}", **where)
        if any(run < 0 for run in runs) or sum(runs) != width * height:
            raise FormatError(f"the mask's runs cover {sum(runs)} pixels, its {width} x {height} crop has "
                              f"{width * height}", **where)  # fmt: skip
        return [
            *map(float, runs),
            float(left),
            float(top),
            float(left + width - 1),
            float(top + height - 1),
        ], 0.0
    return [], 0.0


def _attributes(element: Element) -> dict[str, str]:
    return {child.get("name", ""): child.text or "" for child in element.findall("attribute")}


def _parse_shape(element: Element, labels: _Labels, where: dict[str, Any]) -> Shape:
    """A shape of the images layout (with its track fields when it has ``track_id``)."""
    shape_type = _SHAPE_TYPE[element.tag]
    label = labels.check(element.get("label"), where)
    points, rotation = _parse_geometry(element, shape_type, where)
    track_id = element.get("track_id")
    elements = []
    if shape_type == "skeleton":
        for child in element.findall("points"):
            elements.append(
                Shape(
                    type="points",
                    label=labels.check(child.get("label"), where, parent=label),
                    points=_parse_points(child, "points", where),
                    occluded=_bool(child.get("occluded")),
                    outside=_bool(child.get("outside")),
                    source=child.get("source") or element.get("source") or "manual",
                    attributes=_attributes(child),
                )
            )
        if not elements:
            raise FormatError("the skeleton has no points", **where)
    return Shape(
        type=shape_type,
        label=label,
        points=points,
        occluded=_bool(element.get("occluded")),
        outside=_bool(element.get("outside")),
        z_order=_int(element, "z_order", where, 0),
        rotation=rotation,
        group=_int(element, "group_id", where, 0),
        source=element.get("source") or "manual",
        attributes=_attributes(element),
        elements=elements,
        track_id=None if track_id is None else _int(element, "track_id", where),
        keyframe=_bool(element.get("keyframe"), True) if track_id is not None else True,
    )


def _parse_image(
    element: Element, index: int, labels: _Labels, display: str, base: Path, mask_to_polygons: bool
) -> Item:
    frame = _int(element, "id", {"file": display, "item": element.get("name")}, index)
    name = element.get("name") or f"frame_{frame:06d}"
    item = Item(name=name, frame=frame, subset=element.get("subset") or DEFAULT_SUBSET)
    if element.get("width") is not None and element.get("height") is not None:
        where: dict[str, Any] = {"file": display, "item": name}
        item.width, item.height = _int(element, "width", where), _int(element, "height", where)
    tags: list[Tag] = []
    shapes: list[Shape] = []
    for number, child in enumerate(element):
        where = {"file": display, "item": name, "annotation": number}
        if child.tag == "tag":
            tags.append(
                Tag(
                    label=labels.check(child.get("label"), where),
                    group=_int(child, "group_id", where, 0),
                    source=child.get("source") or "manual",
                    attributes=_attributes(child),
                )
            )
        elif child.tag in _SHAPE_TYPE:
            if not _degenerate_outline(child, where):
                shapes.append(_parse_shape(child, labels, where))
        else:
            raise FormatError(f"unknown element <{child.tag}> in <image>", **where)
    if mask_to_polygons:
        shapes = [polygon for shape in shapes for polygon in _as_polygons(shape)]
    item.tags, item.shapes = tags, shapes
    item.image = _find_image(base, name, item.subset)
    return item


def _as_polygons(shape: Shape) -> list[Shape]:
    """A mask as the polygons of its outlines (``conv_mask_to_poly``); other shapes as they are."""
    if shape.type != "mask":
        return [shape]
    crop, left, top = cvat_crop(shape.points)
    polygons = []
    for outline in bitmap_to_polygons(crop):
        points = [value + (left if index % 2 == 0 else top) for index, value in enumerate(outline)]
        polygons.append(msgspec.structs.replace(shape, type="polygon", points=points))
    return polygons


def _find_image(base: Path, name: str, subset: str) -> str | None:
    images = base / IMAGES_DIR
    found = first_file(images, (images / name, images / subset / name))
    return str(found) if found else None


def _track_attributes(shapes: Sequence[TrackShape], spec: LabelSpec | None) -> dict[str, str]:
    """Moves the track's immutable attributes from its shapes to the track: those the label
    declares immutable, and undeclared ones that never change."""
    declared = {a.name: a.mutable for a in spec.attributes} if spec else {}
    names = {name for shape in shapes for name in shape.attributes}
    track: dict[str, str] = {}
    for name in names:
        values = [shape.attributes[name] for shape in shapes if name in shape.attributes]
        mutable = declared.get(name)
        if mutable is False or (mutable is None and len(set(values)) == 1):
            track[name] = values[0]
            for shape in shapes:
                shape.attributes.pop(name, None)
    return track


def _parse_track(element: Element, labels: _Labels, specs: Mapping[str, LabelSpec], display: str) -> Track:
    track_where: dict[str, Any] = {"file": display, "item": f"track {element.get('id')}"}
    track_id = _int(element, "id", track_where)
    label = labels.check(element.get("label"), track_where)
    shapes: list[TrackShape] = []
    element_shapes: dict[str, list[TrackShape]] = {}
    for number, child in enumerate(element):
        where: dict[str, Any] = {**track_where, "annotation": number}
        if child.tag not in _SHAPE_TYPE:
            raise FormatError(f"unknown element <{child.tag}> in <track>", **where)
        frame = _int(child, "frame", where)
        keyframe, outside = _bool(child.get("keyframe"), True), _bool(child.get("outside"))
        shape_type = _SHAPE_TYPE[child.tag]
        if shape_type == "skeleton":
            for part in child.findall("points"):
                sublabel = labels.check(part.get("label"), where, parent=label)
                part_outside = _bool(part.get("outside"))
                kept = element_shapes.setdefault(sublabel, [])
                # an element's keyframes, and the first frame of each stretch where it is outside
                if not _bool(part.get("keyframe"), keyframe) and not (
                    part_outside and (not kept or not kept[-1].outside)
                ):
                    continue
                kept.append(
                    TrackShape(
                        frame=frame,
                        type="points",
                        points=_parse_points(part, "points", where),
                        occluded=_bool(part.get("occluded")),
                        outside=part_outside,
                        attributes=_attributes(part),
                    )
                )
        # interpolated frames are recomputed from the keyframes
        if not keyframe and not outside:
            continue
        points, rotation = _parse_geometry(child, shape_type, where)
        shapes.append(
            TrackShape(
                frame=frame,
                type=shape_type,
                points=points,
                occluded=_bool(child.get("occluded")),
                outside=outside,
                z_order=_int(child, "z_order", where, 0),
                rotation=rotation,
                attributes=_attributes(child),
            )
        )
    source = element.get("source") or "manual"
    elements = [
        Track(id=index, label=sublabel, shapes=parts, source=source)
        for index, (sublabel, parts) in enumerate(element_shapes.items())
        if parts
    ]
    return Track(
        id=track_id,
        label=label,
        shapes=shapes,
        group=_int(element, "group_id", track_where, 0),
        source=source,
        attributes=_track_attributes(shapes, specs.get(label)),
        elements=elements,
    )


class _Document:
    """One CVAT XML file, read again each time items or tracks are asked for."""

    def __init__(self, path: Path, root: Path, options: ImportOptions) -> None:
        self.options = options
        self.path = path
        self.display = str(path.relative_to(root)) if path.is_relative_to(root) else path.name
        self.meta = _read_meta(path, self.display)
        self.labels: list[LabelSpec] = (
            self.meta.labels if self.meta.labels is not None else self._used_labels()
        )
        self.checker = _Labels(self.labels)
        self.specs = {label.name: label for label in self.labels}

    def _used_labels(self) -> list[LabelSpec]:
        """The labels annotations use, for documents whose meta lists none."""
        found: dict[str, LabelSpec] = {}
        stack: list[Element] = []
        for event, element in _iterparse(self.path, self.display):
            if event == "start":
                stack.append(element)
                continue
            stack.pop()
            name = element.get("label")
            if name is None or len(stack) < 2 or element.tag == "attribute":
                continue
            parent = stack[-1]
            if parent.tag == "skeleton":
                # in the video layout the skeleton's label is on its <track>
                skeleton = parent.get("label") or stack[-2].get("label") or ""
                owner = found.setdefault(skeleton, LabelSpec(name=skeleton, type="skeleton"))
                if not any(sub.name == name for sub in owner.sublabels):
                    owner.sublabels.append(LabelSpec(name=name, type="points"))
            elif parent.tag in ("image", "annotations"):
                found.setdefault(name, LabelSpec(name=name))
            if parent.tag == "annotations" and element.tag in ("image", "track"):
                parent.clear()
        return list(found.values())

    def _top_level(self) -> Iterator[Element]:
        """The complete children of ``<annotations>`` after ``<meta>``, cleared once used."""
        depth = 0
        root: Element | None = None
        for event, element in _iterparse(self.path, self.display):
            if event == "start":
                depth += 1
                if depth == 1:
                    root = element
                continue
            depth -= 1
            if depth == 1:
                yield element
                if root is not None:
                    root.clear()

    def items(self) -> Iterator[Item]:
        index = 0
        has_images = False
        last_frame = -1
        for element in self._top_level():
            if element.tag == "image":
                has_images = True
                item = _parse_image(
                    element,
                    index,
                    self.checker,
                    self.display,
                    self.path.parent,
                    self.options.conv_mask_to_poly,
                )
                index += 1
                yield item
            elif element.tag == "track":
                frames = [int(f) for f in (child.get("frame") for child in element) if f and f.isdigit()]
                last_frame = max([last_frame, *frames])
        if not has_images:
            yield from self._video_frames(max(self.meta.size or 0, last_frame + 1))

    def _video_frames(self, size: int) -> Iterator[Item]:
        directory = self.path.parent / IMAGES_DIR
        files = sorted(
            (path for path in directory.rglob("*") if path.is_file()) if directory.is_dir() else (),
            key=lambda path: _natural_key(str(path.relative_to(directory))),
        )
        by_stem: dict[str, Path] = {}
        for path in files:
            by_stem.setdefault(path.stem, path)
        # video frames are saved as frame_NNNNNN; the frames of an image task keep their names, and
        # are bound in name order when there is one file per frame
        by_order = len(files) == size and not any(f"frame_{frame:06d}" in by_stem for frame in range(size))
        for frame in range(size):
            stem = f"frame_{frame:06d}"
            image = files[frame] if by_order else by_stem.get(stem)
            if image is None:
                name = stem
            elif by_order:
                name = image.relative_to(directory).as_posix()
            else:
                name = stem + image.suffix
            yield Item(
                name=name,
                frame=frame,
                width=self.meta.width,
                height=self.meta.height,
                image=str(image.resolve()) if image else None,
            )

    def tracks(self) -> Iterator[Track]:
        for element in self._top_level():
            if element.tag == "track":
                yield _parse_track(element, self.checker, self.specs, self.display)


def _natural_key(name: str) -> list[Any]:
    """Sorts ``frame_2`` before ``frame_10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _merge_labels(documents: Sequence[_Document]) -> list[LabelSpec]:
    merged: dict[str, LabelSpec] = {}
    for document in documents:
        for label in document.labels:
            merged.setdefault(label.name, label)
    return list(merged.values())


def load(root: Path, options: ImportOptions) -> Dataset:
    files = _xml_files(root)
    if not files:
        raise FormatError("no CVAT XML annotation file (annotations.xml) in the dataset")
    documents = [_Document(path, root, options) for path in files]

    def items() -> Iterator[Item]:
        for document in documents:
            yield from document.items()

    def tracks() -> Iterator[Track]:
        for document in documents:
            yield from document.tracks()

    name = next((d.meta.name for d in documents if d.meta.name), root.name)
    size = sum(d.meta.size for d in documents if d.meta.size is not None) or None
    return StreamedDataset(name, _merge_labels(documents), items, tracks, size=size)


def detect(root: Path) -> float:
    files = sorted([*root.glob("*.xml"), *root.glob("*/*.xml")])
    best = 0.0
    for path in files[:4]:
        with open(path, "rb") as stream:
            head = stream.read(4096)
        if re.search(rb"<annotations[\s>]", head):
            best = max(best, 1.0 if b"<version>1.1</version>" in head or b"<meta" in head else 0.6)
    return best


_CARRIES = frozenset(
    {
        "tag", "rectangle", "polygon", "polyline", "points", "ellipse", "cuboid", "mask", "skeleton",
        "attributes", "images", "rotation", "occluded", "z_order", "group", "source", "track_id",
    }
)  # fmt: skip


@hookimpl
def register_formats(register: Callable[[Format], None]) -> None:
    register(
        Format(
            name="CVAT for images",
            version="1.1",
            exporter=export_images,
            export_ext="ZIP",
            carries=_CARRIES,
            aliases=("cvat_images", "cvat-images", "cvat_for_images"),
            description="CVAT XML, one <image> per frame; tracks as shapes with track_id",
        )
    )
    register(
        Format(
            name="CVAT for video",
            version="1.1",
            exporter=export_video,
            export_ext="ZIP",
            carries=(_CARRIES - {"tag", "track_id"}) | {"track"},
            aliases=("cvat_video", "cvat-video", "cvat_for_video"),
            description="CVAT XML, one <track> per object with its shape on every frame",
        )
    )
    register(
        Format(
            name="CVAT",
            version="1.1",
            importer=load,
            import_ext="XML, ZIP",
            carries=_CARRIES | {"track"},
            detect=detect,
            aliases=("cvat", "cvat_xml"),
            description="CVAT XML of either layout (images or video)",
        )
    )


__all__ = ["detect", "export_images", "export_video", "load", "register_formats"]
