"""The plugin's settings (``[plugins.webhooks]`` in ``annota.toml`` or ``ANNOTA_WEBHOOKS_<KEY>``)."""

from __future__ import annotations

import msgspec

#: CVAT's ``CVAT_SEND_WEBHOOK_TASK_RETRIES``: seconds to wait before each retry (8 retries, ~4 days)
DEFAULT_RETRY_SCHEDULE = [5.0, 300.0, 1800.0, 10800.0, 86400.0, 86400.0, 86400.0, 86400.0]


class Config(msgspec.Struct, forbid_unknown_fields=True):
    #: deliver to private, loopback and link-local addresses (a local receiver, tests)
    allow_private_targets: bool = False
    #: seconds before the 2nd, 3rd... attempt; a delivery gives up after the last one
    retry_schedule: list[float] = msgspec.field(default_factory=lambda: list(DEFAULT_RETRY_SCHEDULE))
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    #: how long a worker holds a claimed delivery; a worker that dies frees it after this long
    lease: float = 60.0
    #: deliveries one run of the delivery job claims (and sends concurrently)
    batch_size: int = 20

    def __post_init__(self) -> None:
        if any(delay < 0 for delay in self.retry_schedule):
            raise ValueError("retry_schedule: delays must not be negative")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("timeouts must be positive")
        # a lease shorter than one attempt lets another worker send the delivery again meanwhile:
        # allowed (delivery is at least once anyway), but the default leaves room for the timeouts
        if self.lease <= 0:
            raise ValueError("lease must be positive")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")


__all__ = ["DEFAULT_RETRY_SCHEDULE", "Config"]
