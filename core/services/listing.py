"""List endpoints' query language: CVAT's ``sort``, ``search``, equality filters and JSON-logic
``filter``, plus DRF page-number pagination — all translated into one SQL query and one count.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, Select, and_, func, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement
from sqlalchemy.types import TypeDecorator

from annota.core.bounds import INT4_MAX, INT8_MAX, check_int, check_text, parse_int
from annota.core.errors import NotFound, ValidationError

DEFAULT_PAGE_SIZE = 10
#: how deep a ``filter`` rule may nest its operators
MAX_FILTER_DEPTH = 32


@dataclass(frozen=True)
class ListSpec:
    """What a list endpoint lets clients filter and sort on.

    ``fields`` maps public names (``owner``, ``project_id``…) to SQL expressions usable in
    ``WHERE`` and ``ORDER BY``; ``equality`` names the ones accepted as plain query parameters,
    ``search`` the ones ``?search=`` looks in, ``sortable`` the ones ``?sort=`` accepts.
    """

    fields: Mapping[str, Any]
    equality: Sequence[str] = ()
    search: Sequence[str] = ()
    sortable: Sequence[str] = ()
    default_sort: str = "-id"
    #: names whose values are integers (query strings are converted)
    integer_fields: frozenset[str] = field(default_factory=frozenset)
    #: names whose values are booleans (``true``/``false`` in query strings)
    boolean_fields: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Page:
    count: int
    rows: list[Any]
    page: int
    page_size: int | None

    @property
    def has_next(self) -> bool:
        return self.page_size is not None and self.page * self.page_size < self.count

    @property
    def has_previous(self) -> bool:
        return self.page > 1


_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def _coerce(spec: ListSpec, name: str, value: Any, param: str) -> Any:
    """``value`` as the type field ``name`` holds, so that the database can compare it: a 400
    naming ``param`` for a value of another type, out of the column's range or unstorable."""
    if value is None:
        return None
    kind = _kind(spec, name)
    if kind in ("int", "bigint"):
        maximum = INT8_MAX if kind == "bigint" else INT4_MAX
        if isinstance(value, str):
            return parse_int(value, param, -maximum - 1, maximum)
        if isinstance(value, int) and not isinstance(value, bool):
            return check_int(value, param, -maximum - 1, maximum)
    elif kind == "datetime" and isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError.for_field(param, f"{name!r} is a date, got {value!r}.") from None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
    elif kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _BOOLEANS:
            return _BOOLEANS[value.lower()]
    elif kind == "text" and isinstance(value, str):
        return check_text(value, param)
    expected = {"int": "an integer", "bigint": "an integer", "datetime": "a date", "bool": "true or false"}
    raise ValidationError.for_field(
        param, f"{name!r} is compared with {expected.get(kind, 'text')}, got {value!r}."
    )


def _kind(spec: ListSpec, name: str) -> str:
    """What field ``name`` holds: "int", "bigint", "datetime", "bool" or "text"."""
    column_type = getattr(spec.fields[name], "type", None)
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl
    if isinstance(column_type, BigInteger):
        return "bigint"
    if name in spec.integer_fields or isinstance(column_type, Integer):
        return "int"
    if isinstance(column_type, DateTime):
        return "datetime"
    if name in spec.boolean_fields or isinstance(column_type, Boolean):
        return "bool"
    return "text"


def _var(spec: ListSpec, operand: Any) -> tuple[str, Any] | None:
    if isinstance(operand, Mapping) and set(operand) == {"var"}:
        name = operand["var"]
        if not isinstance(name, str) or name not in spec.fields:
            known = ", ".join(sorted(spec.fields))
            raise ValidationError.for_field("filter", f"Unknown field {name!r}; known fields: {known}.")
        return name, spec.fields[name]
    return None


_COMPARISONS = {
    "==": lambda c, v: c.is_(None) if v is None else c == v,
    "!=": lambda c, v: c.is_not(None) if v is None else c != v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
}


def json_logic_to_sql(spec: ListSpec, rule: Any, depth: int = 0) -> ColumnElement[bool]:
    """Translate CVAT's JSON-logic ``filter`` (``and``, ``or``, ``!``, comparisons, ``in``)."""
    if depth >= MAX_FILTER_DEPTH:
        raise ValidationError.for_field(
            "filter", f"The rule is nested deeper than {MAX_FILTER_DEPTH} operators."
        )
    if not isinstance(rule, Mapping) or len(rule) != 1:
        raise ValidationError.for_field(
            "filter", f"Expected a single-operator JSON-logic object, got {rule!r}."
        )
    ((op, args),) = rule.items()
    if not isinstance(args, list):
        args = [args]
    if op in ("and", "or"):
        parts = [json_logic_to_sql(spec, arg, depth + 1) for arg in args]
        return and_(true(), *parts) if op == "and" else or_(*parts)
    if op == "!":
        if not args:
            raise ValidationError.for_field("filter", "'!' takes one argument.")
        return not_(json_logic_to_sql(spec, args[0], depth + 1))
    if op in _COMPARISONS:
        return _comparison(spec, op, args)
    if op == "in":
        return _membership(spec, args)
    raise ValidationError.for_field("filter", f"Unsupported JSON-logic operator {op!r}.")


def _comparison(spec: ListSpec, op: str, args: list[Any]) -> ColumnElement[bool]:
    # "<" and "<=" also take three arguments: a < x < b
    if op in ("<", "<=") and len(args) == 3:
        return and_(json_logic_to_sql(spec, {op: args[:2]}), json_logic_to_sql(spec, {op: args[1:]}))
    if len(args) != 2:
        raise ValidationError.for_field("filter", f"{op!r} takes two arguments.")
    left, right = _var(spec, args[0]), _var(spec, args[1])
    clause: ColumnElement[bool]
    if left and right:
        clause = _COMPARISONS[op](left[1], right[1])
    elif left:
        clause = _COMPARISONS[op](left[1], _coerce(spec, left[0], args[1], "filter"))
    elif right:
        flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op) or op
        clause = _COMPARISONS[flipped](right[1], _coerce(spec, right[0], args[0], "filter"))
    else:
        raise ValidationError.for_field("filter", f'{op!r} needs a {{"var": field}} operand.')
    return clause


def _membership(spec: ListSpec, args: list[Any]) -> ColumnElement[bool]:
    if len(args) != 2:
        raise ValidationError.for_field("filter", "'in' takes two arguments.")
    needle, haystack = args
    clause: ColumnElement[bool]
    left = _var(spec, needle)
    right = _var(spec, haystack)
    if left and isinstance(haystack, list):
        clause = left[1].in_([_coerce(spec, left[0], v, "filter") for v in haystack])
    elif right and isinstance(needle, str):
        clause = func.lower(right[1]).contains(check_text(needle, "filter").lower(), autoescape=True)
    else:
        raise ValidationError.for_field(
            "filter", '\'in\' expects [{"var": f}, [values]] or ["text", {"var": f}].'
        )
    return clause


def apply_query_params(spec: ListSpec, query: Select[Any], params: Mapping[str, str]) -> Select[Any]:
    """Add the client's equality filters, ``search``, ``filter`` and ``sort`` to ``query``."""
    for name in spec.equality:
        if name in params:
            query = query.where(spec.fields[name] == _coerce(spec, name, params[name], name))
    search = params.get("search")
    if search:
        needle = search.lower()
        query = query.where(
            or_(*(func.lower(spec.fields[name]).contains(needle, autoescape=True) for name in spec.search))
        )
    raw_filter = params.get("filter")
    if raw_filter:
        try:
            rule = json.loads(raw_filter)
        except json.JSONDecodeError as exc:
            raise ValidationError.for_field(
                "filter", f"Invalid JSON: {exc.msg} at column {exc.colno}."
            ) from exc
        except RecursionError:
            raise ValidationError.for_field(
                "filter", f"The rule is nested deeper than {MAX_FILTER_DEPTH} operators."
            ) from None
        query = query.where(json_logic_to_sql(spec, rule))
    return query.order_by(*sort_clauses(spec, params.get("sort") or spec.default_sort))


def sort_clauses(spec: ListSpec, sort: str) -> list[Any]:
    clauses: list[Any] = []
    sorted_by: set[str] = set()
    for item in (part.strip() for part in sort.split(",")):
        if not item:
            continue
        name = item.lstrip("-")
        if name not in spec.sortable:
            allowed = ", ".join(spec.sortable)
            raise ValidationError.for_field("sort", f"Cannot sort by {name!r}; allowed: {allowed}.")
        if name in sorted_by:
            continue
        sorted_by.add(name)
        column = spec.fields[name]
        clauses.append(column.desc() if item.startswith("-") else column.asc())
    # the id settles ties, so pages never overlap
    if "id" in spec.fields and "id" not in sorted_by:
        clauses.append(spec.fields["id"].desc())
    return clauses


def parse_page(params: Mapping[str, str]) -> tuple[int, int | None]:
    """``page`` (from 1) and ``page_size`` (``None`` for ``all``)."""
    raw_page = params.get("page", "1").strip() or "1"
    if not raw_page.isascii() or not raw_page.isdigit():
        raise NotFound("Invalid page.")
    page = parse_int(raw_page, "page", 0)
    if page < 1:
        raise NotFound("Invalid page.")
    raw_size = params.get("page_size")
    if raw_size is None or raw_size == "":
        return page, DEFAULT_PAGE_SIZE
    if raw_size == "all":
        return page, None
    try:
        size = parse_int(raw_size, "page_size")
    except ValidationError:
        raise ValidationError.for_field(
            "page_size", f"Expected a positive integer (at most {INT4_MAX}) or 'all', got {raw_size!r}."
        ) from None
    if size < 1:
        raise ValidationError.for_field("page_size", "Expected a positive integer or 'all'.")
    return page, size


async def fetch_page(session: AsyncSession, query: Select[Any], page: int, page_size: int | None) -> Page:
    """Run ``query`` for one page and count all matches (404 past the last page, as DRF does)."""
    count_query = select(func.count()).select_from(query.order_by(None).subquery())
    count = (await session.execute(count_query)).scalar_one()
    if page_size is not None:
        if page > 1 and (page - 1) * page_size >= count:
            raise NotFound("Invalid page.")
        query = query.limit(page_size).offset((page - 1) * page_size)
    elif page > 1:
        raise NotFound("Invalid page.")
    rows = list((await session.execute(query)).scalars().all())
    return Page(count=count, rows=rows, page=page, page_size=page_size)
