"""Prometheus metrics that the core, the runtime and plugins share.

Plugins count what they do through ``counter``/``histogram``/``gauge`` here rather than through the
runtime, so they need nothing from it. Metrics are created once per process by name (a plugin module
imported twice, or a test re-creating an app, gets the same object back). With
``PROMETHEUS_MULTIPROC_DIR`` set, prometheus-client keeps the values in files there and ``/metrics``
adds up every process's.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from annota.core.errors import ConfigError

#: seconds; from a quick JSON answer to a long upload
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: seconds; background jobs run from milliseconds to hours
JOB_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200)

M = TypeVar("M", bound=MetricWrapperBase)

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # prometheus-client writes a file there for each metric as it is created, from this import on
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

_created: dict[str, MetricWrapperBase] = {}
_lock = threading.Lock()


def _get_or_create(kind: type[M], name: str, documentation: str, labels: Sequence[str], **options: Any) -> M:
    with _lock:
        existing = _created.get(name)
        if existing is None:
            metric = kind(name, documentation, list(labels), **options)
            _created[name] = metric
            return metric
    if not isinstance(existing, kind) or tuple(existing._labelnames) != tuple(labels):
        raise ConfigError(f"metric {name!r} already exists as a different {type(existing).__name__}")
    return existing


def counter(name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
    """A counter (``name`` ends in ``_total`` when exposed)."""
    return _get_or_create(Counter, name, documentation, labels)


def histogram(
    name: str, documentation: str, labels: Sequence[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS
) -> Histogram:
    return _get_or_create(Histogram, name, documentation, labels, buckets=tuple(buckets))


def gauge(
    name: str, documentation: str, labels: Sequence[str] = (), multiprocess_mode: str = "livesum"
) -> Gauge:
    """A gauge; with several processes their values are added up (``livesum``) unless told otherwise."""
    return _get_or_create(Gauge, name, documentation, labels, multiprocess_mode=multiprocess_mode)


#: background requests that ran to an end, by queue, job (``action``) and final status
BACKGROUND_REQUESTS = counter(
    "annota_background_requests",
    "Background requests that ran to an end, by queue, job and status (finished, failed)",
    ("queue", "action", "status"),
)
#: how long background jobs ran
JOB_DURATION = histogram(
    "annota_job_duration_seconds",
    "Run time of background jobs, by queue and status",
    ("queue", "status"),
    buckets=JOB_BUCKETS,
)
#: storage failures (not a missing object or a bad key) that ended an HTTP request or a job
STORAGE_ERRORS = counter(
    "annota_storage_errors",
    "Storage backend failures that ended an HTTP request (where=http) or a job (where=job), by backend",
    ("backend", "where"),
)


def count_storage_error(exc: BaseException, backend: str, where: str) -> None:
    """Count ``exc`` in ``annota_storage_errors_total`` if it is a storage failure on the server's
    side (a 5xx ``StorageError``); a missing object or a malformed key is the caller's."""
    from annota.core.errors import StorageError

    if isinstance(exc, StorageError) and exc.status_code >= 500:
        STORAGE_ERRORS.labels(backend=backend, where=where).inc()
