"""Log output of ``annota serve`` and ``annota worker``: lines for people (``log_format = "text"``)
or one JSON object per line for log stores (``"json"``: CloudWatch Logs, Loki, Elasticsearch).

Either way a line carries the id of the HTTP request it belongs to (``request_id``), in the server
and in the jobs that request started (``annota.core.request_ids``). Extra fields given to a log
call (``logger.info(..., extra={"status": 200})``) become JSON fields. uvicorn's own access log is
replaced by ``annota.access``, one line per request with its id, status and duration.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.config
import sys
from typing import Any, TextIO

from annota.runtime.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: attributes every record has: the rest came from ``extra`` and become JSON fields
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "color_message",  # uvicorn's coloured copy of the message
}


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "request_id", ...extra, "exception"}`` per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The classic line, with ``[request id]`` before the logger name when there is one (so that
    ``<logger>: <message>`` stays as it was for whoever searches the lines)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        request_id = getattr(record, "request_id", None)
        if request_id:
            head = f"{record.levelname} {record.name}: "
            line = line.replace(head, f"{record.levelname} [{request_id}] {record.name}: ", 1)
        return line


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes (not the stream of the moment the
    logging was configured, which an embedding program or a test runner may have closed since)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        # StreamHandler.__init__ sets it; the current sys.stderr is always used
        pass


def logging_config(settings: Settings) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dictionary; uvicorn applies it in each of its processes."""
    level = settings.log_level.upper()
    formatter = JsonFormatter if settings.log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "annota.core.request_ids.RequestIdFilter"}},
        "formatters": {"annota": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {
            "stderr": {
                "class": f"{StderrHandler.__module__}.{StderrHandler.__qualname__}",
                "formatter": "annota",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # through the root handler, in the same format
            "uvicorn": {"handlers": [], "propagate": True, "level": level},
            "uvicorn.error": {"handlers": [], "propagate": True, "level": level},
            # annota.access says the same with the request id
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }


def configure(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings))
