"""Which source frames a task keeps and in which order: CVAT's sorting methods, ``step=N``
frame filters and start/stop frames."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from posixpath import basename
from typing import Literal

from annota.core.errors import ValidationError

SortingMethod = Literal["lexicographical", "natural", "predefined", "random"]

_FRAME_STEP = re.compile(r"\s*step\s*=\s*([1-9]\d*)\s*")
_DIGITS = re.compile(r"(\d+)")
_SHOWN_NAMES = 5


def sort_names(
    names: Sequence[str], method: SortingMethod, upload_file_order: Sequence[str] = ()
) -> list[str]:
    """``names`` (relative paths) in the order of ``method``."""
    if method == "lexicographical":
        return sorted(names)
    if method == "natural":
        return sorted(names, key=_natural_key)
    if method == "predefined":
        return _predefined_order(names, upload_file_order) if upload_file_order else list(names)
    if method == "random":
        shuffled = list(names)
        random.shuffle(shuffled)
        return shuffled
    raise ValidationError.for_field("sorting_method", f"Unknown sorting method '{method}'")


def _natural_key(name: str) -> tuple[tuple[str | int, ...], str]:
    # re.split with a group alternates text (even positions) and digits (odd positions), so
    # two keys always compare text with text and numbers with numbers.
    parts = _DIGITS.split(name)
    key = tuple(int(part) if index % 2 else part for index, part in enumerate(parts))
    return key, name


def _predefined_order(names: Sequence[str], order: Sequence[str]) -> list[str]:
    """``names`` in the order of ``order``, whose entries are the names themselves or their
    file names alone (clients send the order of the files they picked)."""
    by_basename: dict[str, list[str]] = {}
    for name in names:
        by_basename.setdefault(basename(name), []).append(name)
    exact = set(names)
    used: set[str] = set()
    result: list[str] = []
    for entry in order:
        if entry in exact and entry not in used:
            match = entry
        else:
            candidates = [n for n in by_basename.get(basename(entry), ()) if n not in used]
            if not candidates:
                if entry in used:
                    raise ValidationError.for_field(
                        "upload_file_order", f"The file '{entry}' is listed twice"
                    )
                raise ValidationError.for_field(
                    "upload_file_order", f"The file '{entry}' listed in upload_file_order was not uploaded"
                )
            if len(candidates) > 1:
                raise ValidationError.for_field(
                    "upload_file_order",
                    f"The file '{entry}' matches several uploaded files: {_shown(candidates)}",
                )
            match = candidates[0]
        used.add(match)
        result.append(match)
    missing = [name for name in names if name not in used]
    if missing:
        raise ValidationError.for_field(
            "upload_file_order",
            f"These uploaded files are not listed in upload_file_order: {_shown(missing)}",
        )
    return result


def _shown(names: Sequence[str]) -> str:
    shown = ", ".join(f"'{name}'" for name in names[:_SHOWN_NAMES])
    if len(names) > _SHOWN_NAMES:
        shown += f" (and {len(names) - _SHOWN_NAMES} more)"
    return shown


def parse_frame_step(frame_filter: str) -> int:
    """The N of a ``step=N`` frame filter; an empty filter keeps every frame."""
    if not frame_filter.strip():
        return 1
    match = _FRAME_STEP.fullmatch(frame_filter)
    if match is None:
        raise ValidationError.for_field(
            "frame_filter", f"Only 'step=N' (N >= 1) is supported, got '{frame_filter}'"
        )
    return int(match.group(1))


def select_frames(total: int, start_frame: int, stop_frame: int | None, step: int) -> range:
    """The absolute source frames a task keeps out of ``total``: from ``start_frame`` to
    ``stop_frame`` inclusive (clamped to the last frame), every ``step``-th."""
    if total < 1:
        raise ValueError(f"a task needs at least one source frame, got {total}")
    last = total - 1
    if start_frame < 0:
        raise ValidationError.for_field("start_frame", f"start_frame must not be negative, got {start_frame}")
    if start_frame > last:
        raise ValidationError.for_field(
            "start_frame", f"start_frame {start_frame} is past the last frame ({last}) of the media"
        )
    stop = last if stop_frame is None else min(stop_frame, last)
    if stop < start_frame:
        raise ValidationError.for_field(
            "stop_frame", f"stop_frame {stop_frame} must not be less than start_frame {start_frame}"
        )
    if step < 1:
        raise ValidationError.for_field("frame_filter", f"The frame step must be at least 1, got {step}")
    return range(start_frame, stop + 1, step)
