"""What a value must be for both databases to store it: integers in the columns' ranges, text
without the characters PostgreSQL cannot keep.

SQLite takes integers up to 2**63 - 1 and any text; PostgreSQL's ``integer`` columns stop at
2**31 - 1 and its ``text`` refuses NUL. Input outside these bounds is refused at the edge with a 400
naming the field, so that both databases store the same things and neither raises mid-request.
"""

from __future__ import annotations

import re
from typing import Any

from annota.core.errors import ValidationError

#: PostgreSQL ``integer`` (ids of most tables, frames, counters)
INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1
#: PostgreSQL ``bigint`` (annotation, event and delivery ids)
INT8_MIN, INT8_MAX = -(2**63), 2**63 - 1

#: NUL, which PostgreSQL text cannot hold, and lone surrogates, which are no UTF-8 at all
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def parse_int(raw: str, field: str, minimum: int = INT4_MIN, maximum: int = INT4_MAX) -> int:
    """``raw`` (a query value) as an integer in ``[minimum, maximum]``, else a 400 naming ``field``."""
    text = raw.strip()
    # int() also reads "1_000" and non-ASCII digits; a query value is plain decimal
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise ValidationError.for_field(field, f"A valid integer is required, got {raw!r}.")
    return check_int(int(text), field, minimum, maximum)


def check_int(value: int, field: str, minimum: int = INT4_MIN, maximum: int = INT4_MAX) -> int:
    if value < minimum:
        raise ValidationError.for_field(field, f"Ensure this value is greater than or equal to {minimum}.")
    if value > maximum:
        raise ValidationError.for_field(field, f"Ensure this value is less than or equal to {maximum}.")
    return value


def unstorable(text: str) -> str | None:
    """A description of the first character of ``text`` no database can store, if any."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    return "NUL (\\u0000)" if char == "\x00" else f"a lone surrogate (\\u{ord(char):04x})"


def check_text(text: str, field: str) -> str:
    """``text``, or a 400 naming ``field`` when it holds a character that cannot be stored."""
    problem = unstorable(text)
    if problem is not None:
        raise ValidationError.for_field(field, f"Text may not contain {problem}.")
    return text


def find_unstorable(value: Any, path: str = "") -> tuple[str, str] | None:
    """``(path, problem)`` of the first string in a decoded JSON value (keys included) that cannot
    be stored; the path is written as msgspec writes it (``labels[0].name``)."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            problem = unstorable(item)
            if problem is not None:
                return where or "non_field_errors", problem
        elif isinstance(item, dict):
            for key, sub in item.items():
                place = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and (problem := unstorable(key)) is not None:
                    return place, problem
                stack.append((place, sub))
        elif isinstance(item, list | tuple):
            stack.extend((f"{where}[{index}]", sub) for index, sub in enumerate(item))
    return None
