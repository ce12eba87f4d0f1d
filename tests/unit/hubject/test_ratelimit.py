"""The acceptable-use limiter: sliding-window math with an injected clock, no sleeping."""

from __future__ import annotations

import math
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubject_connector.hubject.ratelimit import (
    RateLimiter,
    SlidingWindow,
    build_gates,
    effective_limit,
)
from hubject_connector.oicp.operations import OPERATIONS

T = TypeVar("T")


class FakeClock:
    """A clock that moves only when told; its ``sleep`` advances it instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never really suspends (the fake sleep returns at once)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise AssertionError("the coroutine suspended: it waited for something real")


def test_calls_within_the_limit_do_not_wait() -> None:
    window = SlidingWindow(3, 60.0)
    for now in (0.0, 1.0, 2.0):
        assert window.delay(now) == 0.0
        window.finish(window.start(now), now + 0.1)
    # The fourth waits until the first answer is a full period old.
    assert window.delay(3.0) == pytest.approx(57.1)
    assert window.delay(60.1) == 0.0
    assert window.used(60.1) == 2


def test_calls_in_flight_hold_their_slot_until_answered() -> None:
    window = SlidingWindow(2, 60.0)
    first = window.start(0.0)
    window.start(0.0)
    # Both still in flight: no time will free a slot, only an answer will.
    assert window.delay(500.0) == math.inf
    window.finish(first, 10.0)
    assert window.delay(10.0) == pytest.approx(60.0)
    assert window.delay(70.0) == 0.0


def test_a_margin_lengthens_the_hold() -> None:
    window = SlidingWindow(1, 10.0, margin=0.5)
    window.finish(window.start(0.0), 0.0)
    assert window.delay(0.0) == pytest.approx(10.5)


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        SlidingWindow(0)
    with pytest.raises(ValueError, match="period"):
        SlidingWindow(1, 0)


@given(
    limit=st.integers(min_value=1, max_value=5),
    period=st.floats(min_value=1, max_value=120),
    gaps=st.lists(st.floats(min_value=0, max_value=30), min_size=1, max_size=40),
    latencies=st.lists(st.floats(min_value=0, max_value=10), min_size=40, max_size=40),
)
def test_no_window_ever_sees_more_than_the_limit(
    limit: int, period: float, gaps: list[float], latencies: list[float]
) -> None:
    """Whatever the network delay, arrivals at the server stay within the limit."""
    window = SlidingWindow(limit, period)
    now = 0.0
    arrivals: list[float] = []
    in_flight: list[tuple[float, int]] = []  # (answer time, token)
    for gap, latency in zip(gaps, latencies, strict=False):
        now += gap
        while True:
            # Deliver answers due by now, then see whether the call fits.
            for end, token in sorted(in_flight):
                if end <= now:
                    window.finish(token, end)
                    in_flight.remove((end, token))
            delay = window.delay(now)
            if delay == 0:
                break
            now = min(end for end, _ in in_flight) if math.isinf(delay) else now + delay
        token = window.start(now)
        # The request reaches the server somewhere between start and answer.
        arrivals.append(now + latency / 2)
        in_flight.append((now + latency, token))
    arrivals.sort()
    for i, first in enumerate(arrivals):
        inside = [a for a in arrivals[i:] if a < first + period]
        assert len(inside) <= limit


def test_the_limiter_waits_instead_of_failing() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, 60.0, clock=clock, sleep=clock.sleep)
    waits = []
    for _ in range(5):
        token, waited = run(limiter.acquire())
        waits.append(waited)
        limiter.release(token)  # answered at once
    assert waits == [0.0, 0.0, pytest.approx(60.0), 0.0, pytest.approx(60.0)]
    assert clock.slept == [pytest.approx(60.0), pytest.approx(60.0)]


def test_a_call_within_the_limit_reports_no_wait_on_a_real_clock() -> None:
    # A real clock moves between two readings; that is no wait, and the metrics count
    # only calls the limit held back.
    clock = FakeClock()

    def ticking() -> float:
        clock.now += 1e-7
        return clock.now

    limiter = RateLimiter(2, 60.0, clock=ticking, sleep=clock.sleep)
    waits = []
    for _ in range(3):
        token, waited = run(limiter.acquire())
        waits.append(waited)
        limiter.release(token)
    assert waits[:2] == [0.0, 0.0]
    assert waits[2] == pytest.approx(60.0)


def test_the_slot_context_releases_on_errors() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, 60.0, clock=clock, sleep=clock.sleep)

    async def failing_call() -> None:
        async with limiter.slot():
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        run(failing_call())
    assert limiter.window.delay(clock.now) == pytest.approx(60.0)


def test_gates_follow_the_operation_table_and_overrides() -> None:
    gates = build_gates({"PushEvseStatus": 10, "authorizestop": 7})
    status = gates["PushEvseStatus"]
    assert status.limiter is not None
    assert status.limiter.limit == 10
    assert status.lock is not None  # pushes are serialized
    stop = gates["AuthorizeStop"]
    assert stop.limiter is not None
    assert stop.limiter.limit == 7
    assert stop.lock is None
    start = gates["AuthorizeStart"]
    assert start.limiter is not None
    assert start.limiter.limit == 200
    assert start.lock is None
    for name in ("PushEvseData", "PushPricingProductData", "PushEVSEPricing"):
        assert gates[name].lock is not None
    assert gates["ChargeDetailRecord"].lock is None
    # Hubject→CPO operations have no limit of Hubject's.
    assert gates["AuthorizeRemoteStart"].limiter is None


def test_default_limits_are_hubjects_acceptable_use_numbers() -> None:
    # Calls per minute from Hubject's acceptable-use rules (design.md).
    expected = {
        "PushEvseStatus": 2000, "PushEvseData": 375, "AuthorizeStart": 200,
        "AuthorizeStop": 50, "ChargeDetailRecord": 350, "ChargingNotifications": 100,
        "PushPricingProductData": 6, "PushEVSEPricing": 6,
    }
    gates = build_gates({})
    limits = {name: g.limiter.limit for name, g in gates.items() if g.limiter is not None}
    assert limits == expected


def test_effective_limit() -> None:
    op = OPERATIONS["PushPricingProductData"]
    assert effective_limit(op, {}) == 6
    assert effective_limit(op, {"pushpricingproductdata": 2}) == 2
