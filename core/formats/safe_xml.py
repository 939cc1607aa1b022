"""XML dataset files parsed without entity expansion or external entities, at the C parser's speed.

``defusedxml`` guards expat by installing Python callbacks, which also replaces the C tree builder:
a PASCAL VOC dataset spends most of its import building elements in Python. Entities can only be
declared in a document type declaration, so a document without one, in an encoding whose bytes
show the declaration (UTF-8 or ASCII, with no NUL byte that would mean UTF-16 or UTF-32), is
parsed by the standard C parser; any other document goes through ``defusedxml`` as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import IO, Literal
from xml.etree import ElementTree as ET

import defusedxml.ElementTree as SafeET

_DECLARED_ENCODING = re.compile(rb"""\A(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*["']([^"']*)["']""")
_ASCII_COMPATIBLE = frozenset({b"utf-8", b"utf8", b"us-ascii", b"ascii"})
#: what sends a document to defusedxml (NUL: a UTF-16 or UTF-32 document)
_MARKERS = (b"<!DOCTYPE", b"<!ENTITY", b"\x00")
_CHUNK = 1 << 20


def _ascii_compatible(head: bytes) -> bool:
    declared = _DECLARED_ENCODING.match(head)
    return declared is None or declared.group(1).strip().lower() in _ASCII_COMPATIBLE


def _plain(data: bytes) -> bool:
    """True when ``data`` surely declares no document type (so no entity)."""
    return _ascii_compatible(data) and not any(marker in data for marker in _MARKERS)


def _plain_stream(stream: IO[bytes]) -> bool:
    """``_plain`` for a file read in chunks; the stream is rewound."""
    start = stream.tell()
    try:
        chunk = stream.read(_CHUNK)
        if not _ascii_compatible(chunk):
            return False
        tail = b""
        while chunk:
            window = tail + chunk
            if any(marker in window for marker in _MARKERS):
                return False
            # a marker may straddle two chunks
            tail = window[-8:]
            chunk = stream.read(_CHUNK)
        return True
    finally:
        stream.seek(start)


def fromstring(data: bytes) -> ET.Element:
    """The root element of ``data``; raises ``ET.ParseError`` for malformed XML and
    ``defusedxml.DefusedXmlException`` for a forbidden construct."""
    if _plain(data):
        return ET.fromstring(data)
    element: ET.Element = SafeET.fromstring(data)
    return element


def iterparse(
    stream: IO[bytes], events: Sequence[Literal["start", "end"]]
) -> Iterator[tuple[str, ET.Element]]:
    """``ElementTree.iterparse`` of a seekable binary stream, refusing DTDs like ``fromstring``."""
    if _plain_stream(stream):
        return ET.iterparse(stream, events=events)
    parsed: Iterator[tuple[str, ET.Element]] = SafeET.iterparse(stream, events=events, forbid_dtd=True)
    return parsed


__all__ = ["fromstring", "iterparse"]
