"""Hubject's acceptable-use rules: calls per minute, and one push at a time.

Hubject limits each operation to a number of calls per minute (operation table) and asks
that pushes of one operation run strictly one after another, each waiting for its answer
(design.md, "Acceptable use"). Exceeding the limit earns HTTP 429. The limiter here
*waits* instead of failing: a caller is delayed until its call fits.

Every HTTP attempt counts, retries included, since Hubject counts what reaches it.

The limit is a sliding window over *slots*: a call holds a slot from the moment it may
start until ``period`` seconds after its answer (or failure). A request reaches Hubject
somewhere between those two moments, so however long the network takes, Hubject can
never see more than ``limit`` calls within any ``period``, nor in any calendar minute.
(Counting from the start only, a slow first connection could put ``limit + 1`` arrivals
into one of Hubject's windows.) The price, a call's latency per window, is small.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

from hubject_connector.oicp.operations import OPERATIONS, Operation

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

#: Hubject's limits are per minute.
MINUTE: Final = 60.0


class SlidingWindow:
    """Pure bookkeeping of the slots of one limit; time is passed in, nothing sleeps."""

    def __init__(self, limit: int, period: float = MINUTE, *, margin: float = 0.0):
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        if period <= 0:
            raise ValueError(f"period must be positive, not {period}")
        self.limit = limit
        #: How long a finished call keeps its slot, an optional margin included.
        self.hold = period + margin
        self.period = period
        self._in_flight: set[int] = set()
        # End times of finished calls still holding their slot, oldest first.
        self._finished: list[float] = []
        self._tokens = itertools.count()

    def _expire(self, now: float) -> None:
        self._finished = [end for end in self._finished if end + self.hold > now]

    def used(self, now: float) -> int:
        """Slots held at ``now``: calls in flight plus calls finished within ``period``."""
        self._expire(now)
        return len(self._in_flight) + len(self._finished)

    def delay(self, now: float) -> float:
        """Seconds until one more call fits: 0.0 now, ``math.inf`` when every slot is
        held by a call in flight (wait for one to finish)."""
        if self.used(now) < self.limit:
            return 0.0
        if not self._finished:
            return math.inf
        return max(0.0, min(self._finished) + self.hold - now)

    def start(self, now: float) -> int:
        """Take a slot at ``now`` (call ``delay`` first); returns its token."""
        self._expire(now)
        token = next(self._tokens)
        self._in_flight.add(token)
        return token

    def finish(self, token: int, now: float) -> None:
        """The call of ``token`` got its answer (or failed) at ``now``."""
        if token in self._in_flight:
            self._in_flight.remove(token)
            self._finished.append(now)


class RateLimiter:
    """Waits until a call fits the limit. Callers are served in their order of arrival."""

    def __init__(
        self,
        limit: int,
        period: float = MINUTE,
        *,
        margin: float = 0.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.window = SlidingWindow(limit, period, margin=margin)
        self._clock = clock
        self._sleep = sleep
        # One waiter at a time keeps the order of arrival (asyncio.Lock is FIFO).
        self._lock = asyncio.Lock()
        self._finished = asyncio.Event()

    @property
    def limit(self) -> int:
        """Calls allowed per window."""
        return self.window.limit

    async def acquire(self) -> tuple[int, float]:
        """Wait until a call fits and take its slot: ``(token, seconds waited)``.

        Give the token back with ``release`` once the call is answered or failed. The
        seconds waited are 0.0 unless the call was held back by the limit, queueing
        behind an earlier caller that waits for a slot included.
        """
        start = self._clock()
        # The lock is held across an await only by a caller waiting for a slot, so
        # finding it taken is waiting for the limit too.
        held_back = self._lock.locked()
        async with self._lock:
            while True:
                now = self._clock()
                delay = self.window.delay(now)
                if delay <= 0:
                    # Two readings of a real clock always differ a little: without this,
                    # every call would count as a wait in the metrics.
                    return self.window.start(now), (now - start) if held_back else 0.0
                held_back = True
                if math.isinf(delay):
                    self._finished.clear()
                    await self._finished.wait()
                else:
                    await self._sleep(delay)

    def release(self, token: int) -> None:
        """The call holding ``token`` is over: its slot expires ``period`` from now."""
        self.window.finish(token, self._clock())
        self._finished.set()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Hold a slot for the body of the ``async with``; yields the seconds waited."""
        token, waited = await self.acquire()
        try:
            yield waited
        finally:
            self.release(token)


@dataclass(frozen=True, slots=True)
class OperationGate:
    """What a call of one operation must pass: its rate limiter and, for pushes, its lock."""

    operation: Operation
    limiter: RateLimiter | None
    #: Held for a whole call, retries included, when the operation is serialized.
    lock: asyncio.Lock | None


def effective_limit(operation: Operation, overrides: Mapping[str, int]) -> int | None:
    """The calls per minute in force: the configured override, else Hubject's limit."""
    for name, limit in overrides.items():
        if name.lower() == operation.name.lower():
            return limit
    return operation.rate_per_minute


def build_gates(
    overrides: Mapping[str, int],
    *,
    period: float = MINUTE,
    margin: float = 0.0,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> dict[str, OperationGate]:
    """One gate per operation, from the operation table and the overrides.

    ``period`` is the window the limits count over: a minute, as Hubject counts; tests
    may shorten it to stay quick.
    """
    gates: dict[str, OperationGate] = {}
    for op in OPERATIONS.values():
        limit = effective_limit(op, overrides)
        limiter = (
            RateLimiter(limit, period, margin=margin, clock=clock, sleep=sleep)
            if limit is not None else None
        )
        lock = asyncio.Lock() if op.serialized else None
        gates[op.name] = OperationGate(op, limiter, lock)
    return gates
