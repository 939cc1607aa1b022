"""A sliding-window rate limit per key (a user), kept in the server process."""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable, Hashable


class RateLimiter:
    """At most ``limit`` hits per key within any ``period`` seconds."""

    def __init__(self, limit: int, period: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.period = period
        self.clock = clock
        self._hits: dict[Hashable, collections.deque[float]] = {}

    def hit(self, key: Hashable) -> int:
        """Count a hit; 0 when it is allowed, else the seconds to wait (the hit is not counted)."""
        if self.limit <= 0:
            return 0
        now = self.clock()
        hits = self._hits.setdefault(key, collections.deque())
        while hits and hits[0] <= now - self.period:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(1, math.ceil(hits[0] + self.period - now))
        hits.append(now)
        self._forget_idle(now)
        return 0

    def _forget_idle(self, now: float) -> None:
        # keys nobody used for a period weigh nothing; looked at only when the table has grown
        if len(self._hits) > 1024:
            idle = [key for key, hits in self._hits.items() if not hits or hits[-1] <= now - self.period]
            for key in idle:
                del self._hits[key]
