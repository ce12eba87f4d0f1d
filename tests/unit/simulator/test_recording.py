"""Records, overlap flags and the rolling-minute rate limit."""

from __future__ import annotations

from datetime import UTC, datetime

from hubject_connector.simulator.limits import RateLimiter
from hubject_connector.simulator.recording import (
    ClientCertificate,
    RecordedRequest,
    Recorder,
    max_calls_in_window,
    overlapping_pairs,
)
from tests.unit.simulator.conftest import client_certificate

WHEN = datetime(2024, 3, 1, tzinfo=UTC)


def start(recorder: Recorder, operation: str, now: float, client: ClientCertificate | None,
          serialized: bool = True) -> RecordedRequest:
    return recorder.start(operation, path="/x", path_params={}, client=client, received_at=WHEN,
                          now=now, serialized=serialized)


def test_overlapping_pushes_of_one_operation_are_flagged(abc_client: ClientCertificate) -> None:
    recorder = Recorder()
    first = start(recorder, "PushEvseStatus", 0.0, abc_client)
    second = start(recorder, "PushEvseStatus", 0.1, abc_client)
    recorder.finish(first, now=0.2)
    recorder.finish(second, now=0.3)
    third = start(recorder, "PushEvseStatus", 0.4, abc_client)
    recorder.finish(third, now=0.5)
    assert [(o.first, o.second) for o in recorder.overlaps] == [(1, 2)]
    assert [r.overlapped for r in recorder.requests] == [True, True, False]
    assert overlapping_pairs(recorder.requests) == [(1, 2)]


def test_calls_that_may_run_in_parallel_are_not_flagged(abc_client: ClientCertificate) -> None:
    recorder = Recorder()
    other = client_certificate("DE*XYZ")
    start(recorder, "PushEvseStatus", 0.0, abc_client)
    start(recorder, "PushEvseData", 0.0, abc_client)  # another operation
    start(recorder, "PushEvseStatus", 0.0, other)  # another partner
    start(recorder, "AuthorizeStart", 0.0, abc_client, serialized=False)
    start(recorder, "AuthorizeStart", 0.0, abc_client, serialized=False)
    assert recorder.overlaps == []


def test_client_certificates_are_listed_once_in_order(abc_client: ClientCertificate) -> None:
    recorder = Recorder()
    rotated = client_certificate("DE*ABC")
    for client in (abc_client, abc_client, rotated, abc_client):
        recorder.finish(start(recorder, "PushEvseStatus", 0.0, client), now=0.0)
    seen = recorder.client_certificates()
    assert seen == [abc_client, rotated]
    assert seen[0].serial_number != seen[1].serial_number
    assert seen[0].common_name == "DE*ABC"


def test_max_calls_in_a_rolling_minute(abc_client: ClientCertificate) -> None:
    recorder = Recorder()
    for t in (0.0, 30.0, 59.0, 61.0, 62.0, 200.0):
        start(recorder, "AuthorizeStop", t, abc_client, serialized=False)
    # 30, 59, 61 and 62 lie within one minute; 0 and 62 do not.
    assert max_calls_in_window(recorder.requests) == 4


def test_rate_limiter_refuses_over_the_limit_and_tells_the_wait() -> None:
    limits = {"AuthorizeStop": 2, "PushEvseStatus": None}
    limiter = RateLimiter(limits.get)
    assert limiter.admit("AuthorizeStop", "a", 0.0) is None
    assert limiter.admit("AuthorizeStop", "a", 10.0) is None
    assert limiter.admit("AuthorizeStop", "a", 20.5) == 40
    assert limiter.admit("AuthorizeStop", "b", 20.5) is None, "each partner has its own limit"
    # The first call leaves the window at 60 s; the refused one did not count.
    assert limiter.admit("AuthorizeStop", "a", 60.0) is None
    assert limiter.admit("AuthorizeStop", "a", 60.0) == 10
    assert all(limiter.admit("PushEvseStatus", "a", 0.0) is None for _ in range(5000))
