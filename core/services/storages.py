"""The source and target storages of projects and tasks: rows of their own, as in CVAT, so that
clients get the ``id`` their models require."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.db.tables import CloudStorage, Storage
from annota.core.errors import ValidationError
from annota.core.schemas.common import StorageRead, StorageWrite


async def _check_exists(session: AsyncSession, field: str, cloud_storage_id: int) -> None:
    if await session.get(CloudStorage, cloud_storage_id) is None:
        raise ValidationError.for_field(
            field, f"The specified cloud storage {cloud_storage_id} does not exist."
        )


async def _check_new(session: AsyncSession, field: str, conf: StorageWrite) -> int | None:
    """The cloud storage id of a new setting, once it names one that exists."""
    cloud_storage_id = conf.cloud_storage_id if isinstance(conf.cloud_storage_id, int) else None
    if cloud_storage_id is not None:
        # CVAT looks the cloud storage up first
        await _check_exists(session, field, cloud_storage_id)
        if conf.location is not msgspec.UNSET and conf.location != "cloud_storage":
            raise ValidationError.for_field(
                field,
                f"It is not allowed to specify '{conf.location}' location together with cloud storage id",
            )
        return cloud_storage_id
    if conf.location == "cloud_storage":
        raise ValidationError.for_field(
            field, "Cloud storage was selected as location but its id was not specified"
        )
    return None


def cloud_storage_ids(*confs: object) -> list[int]:
    """The cloud storages a request's storage settings name (their access is checked by the caller)."""
    return [
        c.cloud_storage_id
        for c in confs
        if isinstance(c, StorageWrite) and isinstance(c.cloud_storage_id, int)
    ]


async def create(session: AsyncSession, field: str, conf: StorageWrite | None) -> int | None:
    """The id of a new storage row for ``conf`` (``None`` stays without storage)."""
    if conf is None:
        return None
    cloud_storage_id = await _check_new(session, field, conf)
    location = "cloud_storage" if cloud_storage_id is not None else conf.location
    storage = Storage(
        location="local" if location is msgspec.UNSET else location, cloud_storage_id=cloud_storage_id
    )
    session.add(storage)
    await session.flush()
    return storage.id


async def update(
    session: AsyncSession, field: str, current_id: int | None, conf: StorageWrite | None
) -> int | None:
    """Apply a PATCH's storage setting; like CVAT, ``null`` or ``{}`` leaves the storage as it is."""
    if conf is None or (conf.location is msgspec.UNSET and conf.cloud_storage_id is msgspec.UNSET):
        return current_id
    current = await session.get(Storage, current_id) if current_id is not None else None
    cloud_storage_id = conf.cloud_storage_id if isinstance(conf.cloud_storage_id, int) else None
    if cloud_storage_id is not None:
        if conf.location is not msgspec.UNSET and conf.location != "cloud_storage":
            raise ValidationError.for_field(
                field,
                f"It is not allowed to specify '{conf.location}' location together with cloud storage id",
            )
        if conf.location is msgspec.UNSET and (current is None or current.location != "cloud_storage"):
            raise ValidationError.for_field(field, f"The configuration of {field} is not full")
        await _check_exists(session, field, cloud_storage_id)
        if current is None:
            return await create(session, field, conf)
        current.location, current.cloud_storage_id = "cloud_storage", cloud_storage_id
        return current.id
    if conf.location == "cloud_storage":
        raise ValidationError.for_field(
            field, "Cloud storage was selected as location but its id was not specified"
        )
    if current is None:
        return await create(session, field, conf)
    if conf.location is not msgspec.UNSET:
        current.location = conf.location
    current.cloud_storage_id = None
    return current.id


async def read_many(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, StorageRead]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.scalars(select(Storage).where(Storage.id.in_(wanted)))
    return {
        row.id: StorageRead(id=row.id, location=row.location, cloud_storage_id=row.cloud_storage_id)  # type: ignore[arg-type]
        for row in rows
    }


async def remove(session: AsyncSession, ids: Iterable[int | None]) -> None:
    """Delete the storage rows of deleted projects or tasks (they are owned, never shared)."""
    doomed = {i for i in ids if i is not None}
    if doomed:
        await session.execute(delete(Storage).where(Storage.id.in_(doomed)))


__all__ = ["cloud_storage_ids", "create", "read_many", "remove", "update"]
