"""Chunks: image-set ZIPs of consecutive frames, and the index that makes one frame one read.

CVAT's clients read chunk members by position (``infolist()[i]``), so members are written in
frame order. Members are *stored*, not deflated: JPEG and PNG do not shrink further, and a stored
member is a plain byte range of the ZIP, which the index records so that serving one frame is a
single ranged read of the chunk, on a local disk and on an object store alike.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

#: A fixed timestamp, so the same frames always make byte-identical chunks (stable checksums).
_MEMBER_DATE = (2020, 1, 1, 0, 0, 0)


class ChunkMember(msgspec.Struct, array_like=True, frozen=True):
    """One frame in a chunk: its task frame number, member name, and where its bytes lie."""

    frame: int
    name: str
    offset: int
    size: int


_index_encoder = msgspec.json.Encoder()
_index_decoder = msgspec.json.Decoder(list[ChunkMember])


def member_name(frame: int, extension: str) -> str:
    """CVAT's member names: the frame number in six digits plus the file's extension
    (``extension`` with or without its dot)."""
    extension = extension.lower()
    if extension and not extension.startswith("."):
        extension = "." + extension
    return f"{frame:06d}{extension}"


@dataclass(frozen=True)
class BuiltChunk:
    content: bytes
    members: list[ChunkMember]

    @property
    def index(self) -> bytes:
        return encode_index(self.members)


def build_chunk(frames: Iterable[tuple[int, str, bytes]]) -> BuiltChunk:
    """A stored ZIP of ``(frame, member name, bytes)`` in the given order, with each member's
    data offset and size."""
    buffer = io.BytesIO()
    members: list[ChunkMember] = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for frame, name, data in frames:
            info = zipfile.ZipInfo(name, date_time=_MEMBER_DATE)
            info.compress_type = zipfile.ZIP_STORED
            header_offset = buffer.tell()
            archive.writestr(info, data)
            # local file header: 30 fixed bytes, then the name and the extra field
            data_offset = header_offset + 30 + len(info.filename.encode()) + len(info.extra)
            members.append(ChunkMember(frame, name, data_offset, len(data)))
    return BuiltChunk(buffer.getvalue(), members)


def encode_index(members: list[ChunkMember]) -> bytes:
    return _index_encoder.encode(members)


def decode_index(data: bytes) -> list[ChunkMember]:
    return _index_decoder.decode(data)


def member_bytes(chunk: bytes, member: ChunkMember) -> bytes:
    """A member's content, cut out of a chunk already in memory."""
    return chunk[member.offset : member.offset + member.size]
