"""The id of the HTTP request being served, carried into the background jobs it starts.

Every log line of one user action - the HTTP request's, and its jobs' on whatever worker runs them
- carries the same id, so that a log store finds them all with one query. The HTTP middleware binds
the id; the request row keeps it (``origin_request_id``), and ``run_request`` binds it again where
the job runs. The ``RequestIdFilter`` puts it on every log record as ``request_id``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar

_current: ContextVar[str | None] = ContextVar("annota_request_id", default=None)


def current() -> str | None:
    """The id bound to this task, or ``None`` outside any request or job started by one."""
    return _current.get()


@contextlib.contextmanager
def bound(request_id: str | None) -> Iterator[None]:
    """Bind ``request_id`` for the duration of the block (and the tasks it starts)."""
    token = _current.set(request_id)
    try:
        yield
    finally:
        _current.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (the bound id, or ``None``) to records that do not carry one yet."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _current.get()
        return True
