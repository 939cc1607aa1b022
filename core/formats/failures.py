"""Failures a format plugin did not anticipate, told as its own errors are: naming the file.

A dataset that is not UTF-8 text, or an image whose header declares a decompression bomb, fails
deep inside a reader with an exception that names no file; a plugin's own ``FormatError`` may name
an item but not the upload it came in. Inside ``named_failures`` both become a ``FormatError``
that names the dataset file at fault, or else the uploaded file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from annota.core.errors import FormatError

#: files larger than this are not searched for the bytes that failed to decode
_SEARCHED_SIZE = 256 * 1024 * 1024


def _holding(root: Path, fragment: bytes) -> str | None:
    """The dataset file (relative to ``root``) whose content holds ``fragment``."""
    if not fragment or not root.is_dir():
        return None
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.stat().st_size <= _SEARCHED_SIZE:
            if fragment in path.read_bytes():
                return path.relative_to(root).as_posix()
    return None


@contextmanager
def named_failures(root: Path, upload: str) -> Iterator[None]:
    """Errors raised inside name the dataset file at fault (else ``upload``, the uploaded file)."""
    try:
        yield
    except FormatError as error:
        if error.file:
            raise
        raise FormatError(
            error.message, file=upload, pointer=error.pointer, item=error.item, annotation=error.annotation
        ) from None
    except UnicodeDecodeError as error:
        culprit = _holding(root, bytes(error.object)) or upload
        raise FormatError(f"not UTF-8 text ({error.reason} at byte {error.start})", file=culprit) from None
    except Image.DecompressionBombError as error:
        raise FormatError(f"an image is too large to read: {error}", file=upload) from None
