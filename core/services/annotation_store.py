"""Moving annotation rows in and out of the database in bulk (DESIGN.md §4).

Rows are written with one ``executemany`` of plain tuples per table, ``points`` and
``attributes`` pre-encoded once with msgspec; they are read with one select per table and turned
into wire structs whose JSON columns are spliced into the answer as they are stored
(``msgspec.Raw``), so no value is decoded and re-encoded on the way out. Ids are allocated up
front, under the job's write lock, so skeleton elements and keyframes can point at their parents
within the same bulk statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.schemas.annotations import (
    AttributeVal,
    LabeledImage,
    LabeledShape,
    LabeledTrack,
    SubLabeledShape,
    SubLabeledTrack,
    TrackedShape,
)

_encode = msgspec.json.Encoder().encode

TAG_COLUMNS = ("id", "job_id", "label_id", "frame", "group", "source", "attributes")
SHAPE_COLUMNS = (
    "id", "job_id", "label_id", "parent_id", "frame", "type", "group", "source", "score", "occluded",
    "outside", "z_order", "rotation", "points", "attributes",
)  # fmt: skip
TRACK_COLUMNS = ("id", "job_id", "label_id", "parent_id", "frame", "group", "source", "attributes")
KEYFRAME_COLUMNS = (
    "id", "track_id", "frame", "type", "occluded", "outside", "z_order", "rotation", "points", "attributes",
)  # fmt: skip


# --- wire structs for reading: stored JSON columns are spliced in as they are ------------------


class KeyframeOut(msgspec.Struct):
    id: int
    type: str
    frame: int
    occluded: bool
    outside: bool
    z_order: int
    rotation: float
    points: msgspec.Raw
    attributes: msgspec.Raw


class SubTrackOut(msgspec.Struct):
    id: int
    label_id: int
    frame: int
    group: int
    source: str
    shapes: list[KeyframeOut]
    attributes: msgspec.Raw


class TrackOut(SubTrackOut):
    elements: list[SubTrackOut] = []


@dataclass
class Framed:
    """One tag or shape as wire JSON, with its frame (task reads keep the ones their job owns)."""

    frame: int
    json: msgspec.Raw


@dataclass
class JobRows:
    """The annotations of one job in id order: tags and shapes as wire JSON, tracks as structs."""

    tags: list[Framed] = field(default_factory=list)
    shapes: list[Framed] = field(default_factory=list)
    tracks: list[TrackOut] = field(default_factory=list)


# --- SQL helpers ------------------------------------------------------------------------------


def _marks(session: AsyncSession, count: int) -> str:
    mark = "?" if session.get_bind().dialect.name == "sqlite" else "%s"
    return ", ".join([mark] * count)


def _insert_sql(session: AsyncSession, table: str, columns: Sequence[str]) -> str:
    names = ", ".join(f'"{name}"' for name in columns)
    return f"INSERT INTO {table} ({names}) VALUES ({_marks(session, len(columns))})"


async def _executemany(session: AsyncSession, sql: str, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        connection = await session.connection()
        await connection.exec_driver_sql(sql, rows)


#: from this many rows on, PostgreSQL gets them through COPY, several times faster than INSERTs
COPY_THRESHOLD = 1000


async def _insert(
    session: AsyncSession, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert rows in bulk: one ``executemany``, or ``COPY`` for many rows on PostgreSQL."""
    if len(rows) < COPY_THRESHOLD or session.get_bind().dialect.name != "postgresql":
        await _executemany(session, _insert_sql(session, table, columns), rows)
        return
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    names = ", ".join(f'"{name}"' for name in columns)
    # the session's own connection, so the rows are part of its transaction
    async with driver.cursor() as cursor:
        async with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                await copy.write_row(row)


async def _select(session: AsyncSession, sql: str, job_id: int) -> Sequence[Any]:
    connection = await session.connection()
    result = await connection.exec_driver_sql(sql.replace(":job", _marks(session, 1)), (job_id,))
    return result.all()


async def allocate_ids(session: AsyncSession, table: str, count: int) -> Iterator[int]:
    """``count`` fresh ids for ``table``. On SQLite the caller holds the database's write lock
    (taken by locking the job), so the next ids after the table's high-water mark are free; on
    PostgreSQL they come from the table's sequence."""
    if count == 0:
        return iter(())
    if session.get_bind().dialect.name == "sqlite":
        seq = await session.scalar(
            text("SELECT seq FROM sqlite_sequence WHERE name = :name"), {"name": table}
        )
        highest = await session.scalar(text(f"SELECT max(id) FROM {table}"))
        first = max(seq or 0, highest or 0) + 1
        return iter(range(first, first + count))
    rows = await session.execute(
        text("SELECT nextval(pg_get_serial_sequence(:name, 'id')) FROM generate_series(1, :count)"),
        {"name": table, "count": count},
    )
    return iter(rows.scalars().all())


# --- writing --------------------------------------------------------------------------------


def _attributes(values: list[AttributeVal]) -> str:
    return _encode(values).decode() if values else "[]"


def _points(values: list[float]) -> str:
    return _encode(values).decode() if values else "[]"


class Writer:
    """Collects the rows of one job's new or changed objects, then inserts them table by table.

    Objects keep an id the caller set (updates by id); the others get fresh ids, written back
    into the structs so the answer carries them."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.tags: list[LabeledImage] = []
        self.shapes: list[LabeledShape] = []
        self.tracks: list[LabeledTrack] = []

    def _counts(self) -> tuple[int, int, int, int]:
        shapes = sum(1 + len(shape.elements) for shape in self.shapes)
        tracks = sum(1 + len(track.elements) for track in self.tracks)
        keyframes = sum(
            len(track.shapes) + sum(len(element.shapes) for element in track.elements)
            for track in self.tracks
        )
        return len(self.tags), shapes, tracks, keyframes

    async def write(self, session: AsyncSession) -> None:
        tag_count, shape_count, track_count, keyframe_count = self._counts()
        tag_ids = await allocate_ids(session, "tags", tag_count)
        shape_ids = await allocate_ids(session, "shapes", shape_count)
        track_ids = await allocate_ids(session, "tracks", track_count)
        keyframe_ids = await allocate_ids(session, "tracked_shapes", keyframe_count)
        job_id = self.job_id
        tag_rows = []
        for tag in self.tags:
            tag.id = tag.id or next(tag_ids)
            tag_rows.append(
                (
                    tag.id,
                    job_id,
                    tag.label_id,
                    tag.frame,
                    tag.group or 0,
                    tag.source,
                    _attributes(tag.attributes),
                )
            )
        shape_rows: list[tuple[Any, ...]] = []
        for shape in self.shapes:
            shape.id = shape.id or next(shape_ids)
            shape_rows.append(self._shape_row(shape, None))
            for element in shape.elements:
                element.id = next(shape_ids)
                shape_rows.append(self._shape_row(element, shape.id))
        track_rows: list[tuple[Any, ...]] = []
        keyframe_rows: list[tuple[Any, ...]] = []
        for track in self.tracks:
            track.id = track.id or next(track_ids)
            self._track_rows(track, None, track_rows, keyframe_rows, keyframe_ids)
            for sub_track in track.elements:
                sub_track.id = next(track_ids)
                self._track_rows(sub_track, track.id, track_rows, keyframe_rows, keyframe_ids)
        await _insert(session, "tags", TAG_COLUMNS, tag_rows)
        await _insert(session, "shapes", SHAPE_COLUMNS, shape_rows)
        await _insert(session, "tracks", TRACK_COLUMNS, track_rows)
        await _insert(session, "tracked_shapes", KEYFRAME_COLUMNS, keyframe_rows)

    def _shape_row(self, shape: SubLabeledShape, parent_id: int | None) -> tuple[Any, ...]:
        return (
            shape.id, self.job_id, shape.label_id, parent_id, shape.frame, shape.type, shape.group or 0,
            shape.source, shape.score, shape.occluded, shape.outside, shape.z_order, shape.rotation,
            _points(shape.points), _attributes(shape.attributes),
        )  # fmt: skip

    def _track_rows(
        self,
        track: SubLabeledTrack,
        parent_id: int | None,
        track_rows: list[tuple[Any, ...]],
        keyframe_rows: list[tuple[Any, ...]],
        keyframe_ids: Iterator[int],
    ) -> None:
        track_rows.append(
            (track.id, self.job_id, track.label_id, parent_id, track.frame, track.group or 0, track.source,
             _attributes(track.attributes))
        )  # fmt: skip
        for keyframe in track.shapes:
            keyframe.id = next(keyframe_ids)
            keyframe_rows.append(_keyframe_row(keyframe, track.id))


def _keyframe_row(keyframe: TrackedShape, track_id: int | None) -> tuple[Any, ...]:
    return (
        keyframe.id, track_id, keyframe.frame, keyframe.type, keyframe.occluded, keyframe.outside,
        keyframe.z_order, keyframe.rotation, _points(keyframe.points), _attributes(keyframe.attributes),
    )  # fmt: skip


# --- deleting -------------------------------------------------------------------------------


async def clear_job(session: AsyncSession, job_id: int) -> None:
    """Delete every annotation of a job."""
    connection = await session.connection()
    mark = _marks(session, 1)
    await connection.exec_driver_sql(
        f"DELETE FROM tracked_shapes WHERE track_id IN (SELECT id FROM tracks WHERE job_id = {mark})",
        (job_id,),
    )
    for table in ("tracks", "shapes", "tags"):
        await connection.exec_driver_sql(f"DELETE FROM {table} WHERE job_id = {mark}", (job_id,))


async def existing_ids(
    session: AsyncSession, table: str, job_ids: Sequence[int], ids: Iterable[int]
) -> dict[int, int]:
    """``{id: job_id}`` of the top-level objects of ``table`` among ``ids`` in these jobs."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    parent = "" if table == "tags" else " AND parent_id IS NULL"
    rows = await session.execute(
        text(f"SELECT id, job_id FROM {table} WHERE id IN :ids AND job_id IN :jobs{parent}").bindparams(
            _expanding("ids"), _expanding("jobs")
        ),
        {"ids": wanted, "jobs": list(job_ids)},
    )
    return {row[0]: row[1] for row in rows}


def _expanding(name: str) -> Any:
    from sqlalchemy import bindparam

    return bindparam(name, expanding=True)


async def delete_ids(session: AsyncSession, table: str, ids: Iterable[int]) -> None:
    """Delete top-level objects by id (elements and keyframes go with them)."""
    wanted = sorted(set(ids))
    if not wanted:
        return
    if table == "tracks":
        await session.execute(
            text(
                "DELETE FROM tracked_shapes WHERE track_id IN "
                "(SELECT id FROM tracks WHERE id IN :ids OR parent_id IN :ids)"
            ).bindparams(_expanding("ids")),
            {"ids": wanted},
        )
    if table != "tags":
        await session.execute(
            text(f"DELETE FROM {table} WHERE parent_id IN :ids").bindparams(_expanding("ids")),
            {"ids": wanted},
        )
    await session.execute(
        text(f"DELETE FROM {table} WHERE id IN :ids").bindparams(_expanding("ids")), {"ids": wanted}
    )


# --- reading --------------------------------------------------------------------------------


def _json_object(fields: Sequence[tuple[str, str]], tail: str) -> str:
    """SQL building a row's wire JSON object, so the database formats every value and Python
    only joins text. Names and enum values never need escaping (they are validated on write),
    ``points``/``attributes`` are stored as JSON already, and floats print as valid JSON on both
    databases (non-finite values are refused on write)."""
    parts = []
    for index, (name, kind) in enumerate(fields):
        key = ("'{" if index == 0 else "',") + f'"{name}":' + "'"
        column = f'"{name}"'
        if kind == "number":
            value = f"CAST({column} AS TEXT)"
        elif kind == "string":
            value = f"'\"' || {column} || '\"'"
        elif kind == "bool":
            value = f"CASE WHEN {column} THEN 'true' ELSE 'false' END"
        else:
            value = column
        parts.append(f"{key} || {value}")
    return " || ".join(parts) + f" || {tail}"


_TAG_FIELDS = (
    ("id", "number"), ("label_id", "number"), ("frame", "number"), ("group", "number"),
    ("source", "string"), ("attributes", "json"),
)  # fmt: skip
_SHAPE_FIELDS = (
    ("id", "number"), ("type", "string"), ("label_id", "number"), ("frame", "number"), ("group", "number"),
    ("source", "string"), ("score", "number"), ("occluded", "bool"), ("outside", "bool"),
    ("z_order", "number"), ("rotation", "number"), ("points", "json"), ("attributes", "json"),
)  # fmt: skip
_TAGS_SQL = f"SELECT frame, {_json_object(_TAG_FIELDS, repr('}'))} FROM tags WHERE job_id = :job ORDER BY id"
#: top-level shapes end with an empty ``elements`` list their elements' JSON is spliced into
_SHAPE_TAIL = """CASE WHEN parent_id IS NULL THEN ',"elements":[]}' ELSE '}' END"""
_SHAPES_SQL = (
    f"SELECT id, parent_id, frame, {_json_object(_SHAPE_FIELDS, _SHAPE_TAIL)} "
    "FROM shapes WHERE job_id = :job ORDER BY id"
)
_TRACKS_SQL = (
    'SELECT id, label_id, frame, "group", source, attributes, parent_id FROM tracks '
    "WHERE job_id = :job ORDER BY id"
)
_KEYFRAMES_SQL = (
    "SELECT k.id, k.type, k.frame, k.occluded, k.outside, k.z_order, k.rotation, k.points, k.attributes, "
    "k.track_id FROM tracked_shapes k JOIN tracks t ON t.id = k.track_id WHERE t.job_id = :job "
    "ORDER BY k.track_id, k.frame"
)


async def read_job(session: AsyncSession, job_id: int) -> JobRows:
    """Every annotation of a job, nested (skeleton elements, keyframes) and in id order."""
    Raw = msgspec.Raw
    result = JobRows()
    result.tags = [Framed(frame, Raw(wire)) for frame, wire in await _select(session, _TAGS_SQL, job_id)]
    shapes: list[tuple[int, int, str]] = []
    elements: dict[int, list[str]] = {}
    for id_, parent, frame, wire in await _select(session, _SHAPES_SQL, job_id):
        if parent is None:
            shapes.append((id_, frame, wire))
        else:
            elements.setdefault(parent, []).append(wire)
    for id_, frame, wire in shapes:
        children = elements.get(id_)
        if children:
            # '...,"elements":[]}' becomes '...,"elements":[child,child]}'
            wire = f"{wire[:-2]}{','.join(children)}]}}"
        result.shapes.append(Framed(frame, Raw(wire)))
    result.tracks = await read_job_tracks(session, job_id)
    return result


async def read_job_tracks(session: AsyncSession, job_id: int) -> list[TrackOut]:
    """The tracks of a job with their elements and keyframes, in id order."""
    Raw = msgspec.Raw
    top_tracks: list[TrackOut] = []
    tracks: dict[int, SubTrackOut] = {}
    for id_, label, frame, group, source, attributes, parent in await _select(session, _TRACKS_SQL, job_id):
        if parent is None:
            top = TrackOut(id_, label, frame, group, source, [], Raw(attributes), [])
            top_tracks.append(top)
            tracks[id_] = top
        else:
            sub_track = SubTrackOut(id_, label, frame, group, source, [], Raw(attributes))
            parent_track = tracks[parent]
            assert isinstance(parent_track, TrackOut)
            parent_track.elements.append(sub_track)
            tracks[id_] = sub_track
    for row in await _select(session, _KEYFRAMES_SQL, job_id):
        tracks[row[9]].shapes.append(
            KeyframeOut(
                row[0], row[1], row[2], bool(row[3]), bool(row[4]), row[5], row[6], Raw(row[7]), Raw(row[8])
            )
        )
    return top_tracks
