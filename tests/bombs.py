"""Decompression bombs for tests, built in a fraction of the time compressing them would take.

A raw DEFLATE stream of zeros flushed with ``Z_FULL_FLUSH`` after every block repeats the same
bytes for every block, so a valid 1 GiB member is one compressed block written many times.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

MiB = 1024 * 1024
_BLOCK = bytes(MiB)


def _zero_blocks() -> tuple[bytes, bytes]:
    """(the compressed form of one block of zeros, the stream's closing bytes)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    compressor.compress(_BLOCK)
    compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(_BLOCK) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(_BLOCK) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert repeated == again
    return repeated, compressor.flush()


def zip_of_zeros(path: Path, member: str, mebibytes: int) -> Path:
    """A valid ZIP whose one DEFLATE member expands to ``mebibytes`` MiB of zeros (under 4 GiB)."""
    block, end = _zero_blocks()
    size = mebibytes * MiB
    crc = 0
    for _ in range(mebibytes):
        crc = zlib.crc32(_BLOCK, crc)
    compressed = len(block) * mebibytes + len(end)
    name = member.encode()
    fields = (20, 0, 8, 0, 0x21, crc, compressed, size, len(name))
    with path.open("wb") as out:
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields, 0) + name)
        for _ in range(mebibytes):
            out.write(block)
        out.write(end)
        directory_offset = out.tell()
        directory = struct.pack("<IH", 0x02014B50, 20) + struct.pack(
            "<HHHHHIIIHHHHHII", *fields, 0, 0, 0, 0, 0, 0
        )
        directory += name
        out.write(directory)
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(directory), directory_offset, 0))
    return path
