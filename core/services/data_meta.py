"""``data/meta`` of tasks and jobs: frame sizes and names, chunking, and the deleted frames.

A job sees the task's media through its segment: only its own frames, its own deleted frames, and
source frame bounds computed from the segment. Deleting frames through a job replaces only the job's
frames in the task's list, so frames of other jobs keep their state.
"""

from __future__ import annotations

import msgspec
from sqlalchemy import select
from sqlalchemy import update as update_rows
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.db.tables import Frame, Job, Segment, Task
from annota.core.media.sorting import parse_frame_step
from annota.core.schemas.data import DataMetaRead, DataMetaWrite, FrameMeta
from annota.core.services import tasks as task_service
from annota.core.services.frames import Media, check_frame

_ints = msgspec.json.Decoder(list[int])
_names = msgspec.json.Decoder(list[str])
_encoder = msgspec.json.Encoder()
#: the name CVAT gives a frame of a ground-truth job's span that the job does not include
PLACEHOLDER = "placeholder.jpg"


def deleted_frames(media: Media) -> list[int]:
    """The deleted frames visible through ``media``, sorted."""
    visible = set(media.frames)
    return sorted(f for f in _ints.decode(media.data.deleted_frames or "[]") if f in visible)


async def _frames(session: AsyncSession, media: Media, span: range | None = None) -> list[FrameMeta]:
    """The frames of ``media``; with ``span`` (a job of picked frames), every frame of the span, those
    not picked as CVAT's ``placeholder.jpg`` entries, since CVAT's UI finds a frame's entry by its
    offset from ``start_frame``."""
    query = select(Frame).where(Frame.data_id == media.data.id).order_by(Frame.frame)
    if not media.frames:
        return []
    if span is not None:
        query = query.where(Frame.frame >= span.start, Frame.frame < span.stop)
    elif isinstance(media.frames, range):
        query = query.where(Frame.frame >= media.frames[0], Frame.frame <= media.frames[-1])
    else:
        query = query.where(Frame.frame.in_(list(media.frames)))
    rows = (await session.execute(query)).scalars()
    picked = set(media.frames) if span is not None else None
    # CVAT lists one element for a video, whose chunks are videos; here every chunk is an image
    # set, and clients reading image sets (cvat-sdk's datasets, auto-annotation) need one element
    # per frame, so a video's frames are listed one by one, named after their source frame
    video = media.data.media_kind == "video"
    result = []
    for row in rows:
        if picked is not None and row.frame not in picked:
            result.append(FrameMeta(PLACEHOLDER, row.width, row.height, 0, False))
            continue
        related = len(_names.decode(row.related_files or "[]"))
        name = f"frame_{row.real_frame:06d}" if video else row.path
        result.append(FrameMeta(name, row.width, row.height, related, related > 0))
    return result


async def _picked_span(session: AsyncSession, media: Media) -> range | None:
    """The frames a job of picked frames spans (its segment's bounds, the whole task for a
    ground-truth job as in CVAT), which its ``start_frame`` and ``stop_frame`` report."""
    if not media.picked or media.segment_id is None or not media.frames:
        return None
    segment = await session.get(Segment, media.segment_id)
    assert segment is not None
    return range(min(segment.start_frame, media.frames[0]), max(segment.stop_frame, media.frames[-1]) + 1)


async def read(session: AsyncSession, media: Media) -> DataMetaRead:
    data = media.data
    step = parse_frame_step(data.frame_filter)
    span = await _picked_span(session, media)
    if span is not None:
        first, last = span[0], span[-1]
    else:
        first, last = (media.frames[0], media.frames[-1]) if media.frames else (0, 0)
    return DataMetaRead(
        chunks_updated_date=data.chunks_updated_date,
        chunk_size=data.chunk_size,
        size=len(media.frames),
        image_quality=data.image_quality,
        start_frame=data.start_frame + first * step,
        stop_frame=data.start_frame + last * step,
        frame_filter=data.frame_filter,
        frames=await _frames(session, media, span),
        deleted_frames=deleted_frames(media),
        # CVAT lists the frames of a job of picked frames by their source numbers
        included_frames=[data.start_frame + f * step for f in media.frames] if media.picked else None,
        chapters=None,
        storage=data.storage,
        cloud_storage_id=data.cloud_storage_id,
    )


async def update(session: AsyncSession, task: Task, media: Media, change: DataMetaWrite) -> DataMetaRead:
    """Apply a PATCH: ``deleted_frames`` replaces the deleted frames among ``media``'s frames."""
    if not isinstance(change.deleted_frames, msgspec.UnsetType):
        for number in change.deleted_frames:
            check_frame(media, number, field="deleted_frames")
        visible = set(media.frames)
        kept = {f for f in _ints.decode(media.data.deleted_frames or "[]") if f not in visible}
        media.data.deleted_frames = _encoder.encode(sorted(kept | set(change.deleted_frames))).decode()
        # clients drop their cached task and jobs when these dates move
        task.updated_date = task_service.touch(task.updated_date)
        await session.execute(
            update_rows(Job)
            .where(Job.task_id == task.id, Job.updated_date < task.updated_date)
            .values(updated_date=task.updated_date)
            .execution_options(synchronize_session=False)
        )
        await session.flush()
    return await read(session, media)


__all__ = ["deleted_frames", "read", "update"]
