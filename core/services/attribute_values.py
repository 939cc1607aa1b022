"""Removing a deleted attribute spec's values from the annotations that carry them.

Annotation rows keep their attribute values as JSON (``[{"spec_id": …, "value": …}]``), so a spec
deleted from its label has no cascade: its values are taken out of the rows of that label.
"""

from __future__ import annotations

from collections.abc import Collection

import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.db.tables import AttributeSpec, Shape, Tag, Track, TrackedShape


class _Value(msgspec.Struct):
    spec_id: int
    value: str


_decode = msgspec.json.Decoder(list[_Value])


def _without(raw: str, spec_ids: Collection[int]) -> str | None:
    """The attributes JSON without ``spec_ids``, or ``None`` when nothing changes."""
    values = _decode.decode(raw)
    kept = [value for value in values if value.spec_id not in spec_ids]
    return None if len(kept) == len(values) else msgspec.json.encode(kept).decode()


async def forget(session: AsyncSession, specs: Collection[AttributeSpec]) -> None:
    """Drop the values of ``specs`` from every tag, shape, track and keyframe of their labels."""
    if not specs:
        return
    label_ids = {spec.label_id for spec in specs}
    spec_ids = {spec.id for spec in specs}
    for table in (Tag, Shape, Track):
        rows = await session.execute(
            select(table.id, table.attributes).where(table.label_id.in_(label_ids), table.attributes != "[]")
        )
        for row_id, raw in rows:
            changed = _without(raw, spec_ids)
            if changed is not None:
                await session.execute(update(table).where(table.id == row_id).values(attributes=changed))
    keyframes = await session.execute(
        select(TrackedShape.id, TrackedShape.attributes)
        .join(Track, Track.id == TrackedShape.track_id)
        .where(Track.label_id.in_(label_ids), TrackedShape.attributes != "[]")
    )
    for row_id, raw in keyframes:
        changed = _without(raw, spec_ids)
        if changed is not None:
            await session.execute(
                update(TrackedShape).where(TrackedShape.id == row_id).values(attributes=changed)
            )


__all__ = ["forget"]
