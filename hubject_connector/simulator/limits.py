"""Hubject's acceptable-use rate limits, as a rolling one-minute window per operation.

Hubject limits each partner to so many calls per minute and operation (design.md; the
numbers are the operation table's ``rate_per_minute``) and answers HTTP 429 beyond. Calls
refused here do not count toward the window: a client that waits for Retry-After and tries
again gets through.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Hashable

#: Length of the window, in seconds.
WINDOW_SECONDS = 60.0


class RateLimiter:
    """Counts calls per key in a rolling window. Times are passed in (monotonic seconds)."""

    def __init__(self, limit_of: Callable[[str], int | None],
                 window_seconds: float = WINDOW_SECONDS) -> None:
        self._limit_of = limit_of
        self._window = window_seconds
        self._calls: dict[Hashable, deque[float]] = {}

    def admit(self, operation: str, partner: Hashable, now: float) -> int | None:
        """Count a call and return None, or refuse it: the seconds to wait (Retry-After).

        ``partner`` tells callers apart (Hubject limits each partner on its own).
        """
        limit = self._limit_of(operation)
        if limit is None:
            return None
        calls = self._calls.setdefault((operation, partner), deque())
        while calls and calls[0] <= now - self._window:
            calls.popleft()
        if len(calls) >= limit:
            # The oldest call in the window leaves it at calls[0] + window.
            return max(1, math.ceil(calls[0] + self._window - now))
        calls.append(now)
        return None

    def clear(self) -> None:
        """Forget every counted call."""
        self._calls.clear()
