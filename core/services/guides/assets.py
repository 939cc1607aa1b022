"""Assets: the files (images, PDFs) an annotation guide shows, with CVAT's limits. Their bytes are
kept by the storage backend under ``guides/<guide id>/assets/<uuid>``; a guide's markdown names them
as ``(/api/assets/<uuid>)``, and saving the markdown keeps exactly the assets it names."""

from __future__ import annotations

import mimetypes
import re
import uuid
from collections.abc import Awaitable, Callable

import cv2
import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from annota.core.db.tables import AnnotationGuide, Asset
from annota.core.errors import ValidationError
from annota.core.storage import StorageBackend

MAX_SIZE = 10 * 1024 * 1024
SUPPORTED_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "application/pdf")
#: larger JPEG and PNG images are scaled down to this many pixels on their longer side
MAX_IMAGE_SIDE = 1920
MAX_PER_GUIDE = 150
MAX_FILENAME_LENGTH = 1024
_REFERENCE = re.compile(
    r"\(/api/assets/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\)"
)
_ENCODINGS = {"image/jpeg": ".jpg", "image/png": ".png"}


def guide_prefix(guide_id: int) -> str:
    return f"guides/{guide_id}/"


def key(asset: Asset) -> str:
    return f"{guide_prefix(asset.guide_id)}assets/{asset.uuid}"


def referenced(markdown: str) -> set[str]:
    """The asset uuids a guide's markdown shows."""
    return {found.lower() for found in _REFERENCE.findall(markdown)}


def _scaled(content: bytes, content_type: str) -> bytes:
    image = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValidationError.for_field("file", f"The file is not a readable {content_type} image.")
    height, width = image.shape[:2]
    if max(height, width) <= MAX_IMAGE_SIDE:
        return content
    scale = MAX_IMAGE_SIDE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    ok, encoded = cv2.imencode(
        _ENCODINGS[content_type], cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    )
    if not ok:
        raise ValidationError.for_field("file", "The image could not be scaled down.")
    return bytes(encoded)


def checked(filename: str, content_type: str, content: bytes) -> tuple[str, bytes]:
    """The file's name and bytes as stored, or a 400 naming what is wrong (CVAT's rules)."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name or len(name) > MAX_FILENAME_LENGTH:
        raise ValidationError.for_field(
            "file", f"A file name of 1 to {MAX_FILENAME_LENGTH} characters is required."
        )
    if not content:
        raise ValidationError.for_field("file", "The submitted file is empty.")
    if len(content) > MAX_SIZE:
        raise ValidationError.for_field("file", f"Maximum size of asset is {MAX_SIZE // (1024 * 1024)} MB.")
    if content_type not in SUPPORTED_TYPES:
        supported = ", ".join(SUPPORTED_TYPES)
        raise ValidationError.for_field(
            "file", f"{content_type or 'This type'} is not supported as an asset; supported: {supported}."
        )
    guessed, encoding = mimetypes.guess_type(name)
    if guessed != content_type or encoding is not None:
        raise ValidationError.for_field("file", "Provided Content-Type does not match the file extension.")
    if content_type in _ENCODINGS:
        content = _scaled(content, content_type)
    return name, content


async def count(session: AsyncSession, guide_id: int) -> int:
    return int(await session.scalar(select(func.count()).where(Asset.guide_id == guide_id)) or 0)


async def create(
    session: AsyncSession, storage: StorageBackend, guide_id: int, owner_id: int | None,
    filename: str, content_type: str, content: bytes,
) -> Asset:  # fmt: skip
    if await count(session, guide_id) >= MAX_PER_GUIDE:
        raise ValidationError.for_field(
            "guide_id", f"Maximum number of assets per guide ({MAX_PER_GUIDE}) reached."
        )
    asset = Asset(uuid=str(uuid.uuid4()), filename=filename, content_type=content_type, size=len(content),
                  owner_id=owner_id, guide_id=guide_id)  # fmt: skip
    await storage.put(key(asset), content, content_type=content_type)
    session.add(asset)
    await session.flush()
    return asset


async def get(session: AsyncSession, asset_uuid: str) -> Asset | None:
    try:
        normalized = str(uuid.UUID(asset_uuid))
    except ValueError:
        return None
    return await session.get(Asset, normalized)


async def sync_with_markdown(
    session: AsyncSession,
    storage: StorageBackend,
    guide: AnnotationGuide,
    owner_id: int | None,
    may_view: Callable[[int], Awaitable[bool]],
) -> list[str]:
    """Keep the guide's assets its markdown names, forget the others (their storage keys are
    returned, to delete once this commits), and copy in those of other guides the caller may view
    (``may_view(guide id)``), rewriting the markdown to name the copies."""
    names = referenced(guide.markdown)
    if len(names) > MAX_PER_GUIDE:
        raise ValidationError.for_field(
            "markdown", f"Maximum number of assets per guide ({MAX_PER_GUIDE}) reached."
        )
    rows = (
        list((await session.execute(select(Asset).where(Asset.uuid.in_(names)))).scalars()) if names else []
    )
    for source in rows:
        if source.guide_id == guide.id or not await may_view(source.guide_id):
            continue
        content = await storage.read(key(source))
        copy = await create(
            session, storage, guide.id, owner_id, source.filename, source.content_type, content
        )
        pattern = re.compile(re.escape(f"(/api/assets/{source.uuid})"), re.IGNORECASE)
        guide.markdown = pattern.sub(f"(/api/assets/{copy.uuid})", guide.markdown)
    kept = referenced(guide.markdown)
    stale = list(
        (
            await session.execute(select(Asset).where(Asset.guide_id == guide.id, Asset.uuid.not_in(kept)))
        ).scalars()
    )
    if stale:
        await session.execute(delete(Asset).where(Asset.uuid.in_([asset.uuid for asset in stale])))
    return [key(asset) for asset in stale]


__all__ = [
    "MAX_IMAGE_SIDE", "MAX_PER_GUIDE", "MAX_SIZE", "SUPPORTED_TYPES", "checked", "create", "get",
    "guide_prefix", "key", "referenced", "sync_with_markdown",
]  # fmt: skip
