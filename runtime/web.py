"""The small public web toolkit for route handlers, the core's and plugins' alike.

Plugins that serve HTTP import this module and nothing else from ``annota.runtime``: the caller's
identity, the app state, JSON in and out with msgspec, authorization, pagination and OpenAPI
metadata.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response

from annota.core.access import ANONYMOUS, Filter, FilterFields, Identity, Resource, filter_to_sql
from annota.core.bounds import INT4_MAX, INT4_MIN, INT8_MAX, check_text, find_unstorable, parse_int
from annota.core.errors import NotAuthenticated, PayloadTooLarge, PermissionDenied, ValidationError
from annota.core.services import listing
from annota.core.services.listing import ListSpec, Page

T = TypeVar("T")
logger = logging.getLogger(__name__)

JSON_MEDIA_TYPE = "application/json"
_encoder = msgspec.json.Encoder()


# --- state and identity ---------------------------------------------------------------------


def state(request: Request) -> Any:
    """The running ``AppState``."""
    return request.app.state.annota


def identity(request: Request) -> Identity:
    """Who sent the request (anonymous if nobody authenticated it)."""
    return getattr(request.state, "identity", ANONYMOUS)


def require_user(request: Request) -> Identity:
    who = identity(request)
    if not who.is_authenticated:
        raise NotAuthenticated()
    return who


@contextlib.asynccontextmanager
async def transaction(request: Request) -> AsyncIterator[AsyncSession]:
    """A database session committed when the block ends without an exception."""
    async with state(request).sessionmaker.begin() as session:
        yield session


def base_url(request: Request) -> str:
    """The absolute base URL clients reach the server at (``public_url`` if configured)."""
    configured: str = state(request).settings.public_url
    if configured:
        return configured
    return f"{request.url.scheme}://{request.url.netloc}"


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (an address or ``localhost``) can only be reached from this machine."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


#: headers a reverse proxy adds: a request carrying one came from elsewhere
_FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def from_this_machine(request: Request) -> bool:
    """Whether the request reached a loopback address from a loopback address, with no proxy
    forwarding it (a proxy on this machine may be relaying anyone)."""
    server = request.scope.get("server")
    client = request.client
    return (
        server is not None
        and is_loopback(server[0])
        and client is not None
        and is_loopback(client.host)
        and not any(name in request.headers for name in _FORWARDING_HEADERS)
    )


async def remove_objects(request: Request, prefixes: Sequence[str]) -> None:
    """Delete storage objects under ``prefixes`` after the rows owning them were deleted. A failure
    is logged, not raised: the deletion the client asked for has happened."""
    storage = state(request).storage
    for prefix in prefixes:
        try:
            await storage.delete_prefix(prefix)
        except Exception:
            logger.exception("could not delete the stored objects under %s", prefix)


# --- authorization --------------------------------------------------------------------------


async def authorize(request: Request, scope: str, resource: Resource, who: Identity | None = None) -> None:
    """Ask the ``authorize`` hook; raise 401 for anonymous callers and 403 when refused. ``who``
    judges the caller in another context than the request's (where a move goes)."""
    who = who or identity(request)
    answer = await state(request).plugins.first_result(
        "authorize", identity=who, scope=scope, resource=resource, app=state(request)
    )
    allowed = getattr(answer, "allow", answer)
    if allowed is True:
        return
    if not who.is_authenticated:
        raise NotAuthenticated()
    reasons = getattr(answer, "reasons", None)
    raise PermissionDenied("; ".join(reasons) if reasons else None)


async def list_filter(request: Request, resource_type: str, scope: str = "list") -> Filter | None:
    """The ``filter_query`` answer for a list endpoint (``None``: nothing is visible)."""
    who = identity(request)
    if not who.is_authenticated:
        raise NotAuthenticated()
    result: Filter | None = await state(request).plugins.first_result(
        "filter_query", identity=who, scope=scope, resource_type=resource_type, app=state(request)
    )
    return result


# --- JSON in and out ------------------------------------------------------------------------


def json_response(content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        _encoder.encode(content), status_code=status_code, headers=headers, media_type=JSON_MEDIA_TYPE
    )


_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`")


def validation_detail(error: str) -> dict[str, list[str]]:
    """msgspec's ``Expected `int`, got `str` - at `$.labels[0].name``` as ``{field: [message]}``."""
    message, sep, path = error.rpartition(" - at `")
    if not sep:
        message, path = error, "$`"
    path = path[:-1].removeprefix("$").removeprefix(".")
    missing = _MISSING.match(message)
    if missing:
        path = f"{path}.{missing['field']}" if path else missing["field"]
        message = "This field is required."
    return {path or "non_field_errors": [message]}


#: a NUL escape not itself escaped (``"\\u0000"`` is a backslash and "u0000")
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def decode(body: bytes, type_: type[T]) -> T:
    """Decode and validate JSON into ``type_``; errors are DRF-style ``{field: [message]}``.

    Text no database can store (NUL) and nesting too deep to decode are refused with a 400 too.
    """
    if not body.strip():
        body = b"{}"
    try:
        value = msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        raise ValidationError(validation_detail(str(exc))) from exc
    except msgspec.DecodeError as exc:
        raise ValidationError({"non_field_errors": [f"JSON parse error: {exc}"]}) from exc
    except RecursionError:
        raise ValidationError(
            {"non_field_errors": ["JSON parse error: the document is nested too deeply."]}
        ) from None
    if _NUL_ESCAPE.search(body):
        found = find_unstorable(msgspec.to_builtins(value))
        if found is not None:
            raise ValidationError.for_field(found[0], f"Text may not contain {found[1]}.")
    return value


async def read_body(request: Request, limit: int | None = None) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (default: ``max_body_size``)."""
    limit = limit or state(request).settings.max_body_size
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, type_: type[T], limit: int | None = None) -> T:
    return decode(await read_body(request, limit), type_)


def query_int(
    request: Request,
    name: str,
    default: int | None = None,
    *,
    minimum: int = INT4_MIN,
    maximum: int = INT4_MAX,
) -> int | None:
    """An integer query parameter in ``[minimum, maximum]`` (by default PostgreSQL's ``integer``)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    return parse_int(raw, name, minimum, maximum)


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValidationError.for_field(name, f"Must be a boolean (true/false), got {raw!r}.")


def path_int(request: Request, name: str = "id") -> int:
    value: int = request.path_params[name]
    return value


class DatabaseInteger(Convertor[int]):
    """A path integer no larger than its column holds (PostgreSQL's ``integer``): larger ones match
    no route (404) rather than reaching the database, where they overflow."""

    maximum = INT4_MAX

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        value = int(value)
        assert 0 <= value <= self.maximum, f"{value} is outside 0..{self.maximum}"
        return str(value)


class DatabaseBigInteger(DatabaseInteger):
    """A path integer of a ``bigint`` column."""

    maximum = INT8_MAX


def _up_to(maximum: int) -> str:
    """A regular expression of the decimal numbers 0..``maximum`` (leading zeros allowed)."""
    digits = str(maximum)
    options = [f"[0-9]{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    for index, digit in enumerate(digits):
        if digit != "0":
            rest = len(digits) - index - 1
            options.append(f"{digits[:index]}[0-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    options.append(digits)
    return "0*(?:" + "|".join(options) + ")"


# the regular expressions come after ``_up_to``
DatabaseInteger.regex = _up_to(DatabaseInteger.maximum)
DatabaseBigInteger.regex = _up_to(DatabaseBigInteger.maximum)
#: ``{id:int}`` in a route is an id of an ``integer`` column; ``{id:int64}`` one of a ``bigint``
register_url_convertor("int", DatabaseInteger())
register_url_convertor("int64", DatabaseBigInteger())


# --- pagination -----------------------------------------------------------------------------

Serializer = Callable[[AsyncSession, list[Any]], Awaitable[Sequence[Any]]]


async def visible(request: Request, resource_type: str, fields: FilterFields) -> ColumnElement[bool]:
    """The SQL condition selecting what the caller may list of ``resource_type``."""
    return filter_to_sql(await list_filter(request, resource_type), fields)


async def list_response(
    request: Request,
    query: Select[Any],
    spec: ListSpec,
    serialize: Serializer,
    session: AsyncSession | None = None,
) -> Response:
    """One page of ``query`` (already scoped to what the caller may see) after the client's filters,
    search and sort, serialized and wrapped in DRF's envelope."""
    page_number, page_size = listing.parse_page(request.query_params)
    query = listing.apply_query_params(spec, query, request.query_params)
    if session is None:
        async with transaction(request) as own_session:
            page = await listing.fetch_page(own_session, query, page_number, page_size)
            results = await serialize(own_session, page.rows)
    else:
        page = await listing.fetch_page(session, query, page_number, page_size)
        results = await serialize(session, page.rows)
    return page_response(request, page, results)


def page_response(request: Request, page: Page, results: Sequence[Any]) -> Response:
    """DRF's page-number envelope; ``next`` and ``previous`` are always present."""

    def link(number: int) -> str:
        url = request.url.replace_query_params(**{**request.query_params, "page": str(number)})
        public: str = state(request).settings.public_url
        if public:
            return public + url.path + ("?" + url.query if url.query else "")
        return str(url)

    return json_response(
        {
            "count": page.count,
            "next": link(page.page + 1) if page.has_next else None,
            "previous": link(page.page - 1) if page.has_previous else None,
            "results": results,
        }
    )


# --- OpenAPI metadata -----------------------------------------------------------------------


@dataclass
class Operation:
    """What ``/api/schema`` says about an endpoint."""

    summary: str = ""
    tags: list[str] = field(default_factory=list)
    request: Any = None
    responses: dict[int, Any] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    paginated: bool = False
    anonymous: bool = False


def operation(
    summary: str,
    *,
    tags: Sequence[str] = (),
    request: Any = None,
    response: Any = None,
    status: int = 200,
    responses: Mapping[int, Any] | None = None,
    query: Mapping[str, str] | None = None,
    paginated: bool = False,
    anonymous: bool = False,
) -> Callable[[T], T]:
    """Attach OpenAPI metadata to an endpoint function."""

    def decorate(endpoint: T) -> T:
        all_responses = dict(responses or {})
        if response is not None or not all_responses:
            all_responses.setdefault(status, response)
        endpoint.__annota_operation__ = Operation(  # type: ignore[attr-defined]
            summary=summary,
            tags=list(tags),
            request=request,
            responses=all_responses,
            query=dict(query or {}),
            paginated=paginated,
            anonymous=anonymous,
        )
        return endpoint

    return decorate


# --- events -----------------------------------------------------------------------------------


async def record_event(
    request: Request,
    session: AsyncSession,
    type: str,
    resource: str,
    data: Any,
    *,
    resource_id: int | None = None,
    org_id: int | None = None,
    project_id: int | None = None,
    task_id: int | None = None,
    job_id: int | None = None,
    before: Any = None,
) -> None:
    """Record an event in the request's transaction (dispatched to ``on_event`` once it commits).

    ``data`` is the resource as its read serializer shows it (the API's answer); for updates,
    ``before`` is the same serialization taken before the change, only changed fields count, and
    an update that changed nothing (but ``updated_date``) records no event.
    """
    from annota.core.services import events as event_service

    change = event_service.changes(before, data) if before is not None else None
    if before is not None and not change:
        return  # an update that changed nothing worth telling
    await event_service.record(
        session, type, resource, data, resource_id=resource_id, user_id=identity(request).user_id,
        base_url=base_url(request), org_id=org_id, project_id=project_id, task_id=task_id, job_id=job_id,
        change=change,
    )  # fmt: skip


# --- background requests --------------------------------------------------------------------


async def start_request(
    request: Request,
    *,
    action: str,
    target: str,
    target_id: int | str,
    job_name: str,
    queue: str | None = None,
    kwargs: Mapping[str, Any],
    subresource: str | None = None,
    project_id: int | None = None,
    task_id: int | None = None,
    job_id: int | None = None,
    format: str | None = None,
    function_id: str | None = None,
) -> str:
    """Start a background request for the caller and return its ``rq_id`` (answer 202 ``{"rq_id"}``).

    ``job_name`` is a job registered through ``register_jobs``; ``kwargs`` (JSON values) are passed
    to it. ``queue`` defaults to the one the job was registered on. The request row is committed
    before the job is queued, so a worker always finds it. 409 while the same request (same action,
    target and format) is still queued or running; 503 when the queue cannot take it.
    """
    import datetime as dt

    from annota.core import request_ids
    from annota.core.errors import ConfigError, ServiceUnavailable
    from annota.core.queue import QUEUES
    from annota.core.services import requests as request_service

    who = require_user(request)
    app = state(request)
    queue = queue or app.jobs.get(job_name).queue
    if queue not in QUEUES:
        raise ConfigError(f"unknown queue {queue!r}; the queues are {', '.join(QUEUES)}")
    # CVAT keeps one export per user, so export ids name the user; other operations are per object
    rq_id = request_service.make_request_id(
        action, target, target_id, subresource, format, who.user_id if action == "export" else None
    )
    async with transaction(request) as session:
        await request_service.create(
            session,
            request_id=rq_id,
            action=action,
            target=target,
            queue=queue,
            job_name=job_name,
            job_kwargs=dict(kwargs),
            owner_id=who.user_id,
            subresource=subresource,
            project_id=project_id,
            task_id=task_id,
            job_id=job_id,
            org_id=who.organization.id if who.organization else None,
            format=format,
            origin_request_id=request_ids.current(),
            function_id=function_id,
        )
    try:
        await app.queue.enqueue(rq_id, queue)
    except Exception as exc:
        # never leave a request "queued" that no worker will ever see
        async with transaction(request) as session:
            await request_service.finish(
                session,
                rq_id,
                failed=True,
                message="The request could not be queued; please try again.",
                ttl=dt.timedelta(seconds=app.settings.request_ttl),
            )
        raise ServiceUnavailable(f"The request could not be queued ({type(exc).__name__}).") from exc
    return rq_id


__all__ = [
    "Operation",
    "authorize",
    "base_url",
    "check_text",
    "decode",
    "identity",
    "json_response",
    "list_filter",
    "operation",
    "page_response",
    "path_int",
    "query_bool",
    "query_int",
    "read_body",
    "record_event",
    "read_json",
    "remove_objects",
    "require_user",
    "start_request",
    "state",
    "transaction",
]
