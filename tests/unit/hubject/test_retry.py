"""Retry decisions, backoff bounds and Retry-After parsing (pure, no event loop)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubject_connector.config import RetryConfig
from hubject_connector.hubject import retry
from hubject_connector.hubject.errors import (
    ClientCertificateRejected,
    ConnectionFailed,
    ConnectionLost,
    ConnectTimeout,
    RequestTimeout,
    ServerCertificateUntrusted,
)
from hubject_connector.oicp.operations import OPERATIONS

PUSH = OPERATIONS["PushEvseStatus"]
CDR = OPERATIONS["ChargeDetailRecord"]
START = OPERATIONS["AuthorizeStart"]
CONFIG = RetryConfig(attempts=5, initial_delay_seconds=0.5, max_delay_seconds=30.0)


@pytest.mark.parametrize("code", ["001", "002", "009", "021", "310", "320"])
def test_transient_oicp_codes_are_retried(code: str) -> None:
    verdict = retry.decide_answer(PUSH, 200, code, CONFIG)
    assert verdict.retry
    assert verdict.reason == f"oicp_{code}"


@pytest.mark.parametrize("code", ["000", "017", "018", "019", "022", "400", "603", "999"])
def test_success_and_permanent_codes_are_not_retried(code: str) -> None:
    assert not retry.decide_answer(CDR, 200, code, CONFIG).retry


@pytest.mark.parametrize("http_status", [408, 429, 500, 502, 503, 504])
def test_transient_http_statuses_are_retried(http_status: int) -> None:
    verdict = retry.decide_answer(PUSH, http_status, None, CONFIG)
    assert verdict.retry
    assert verdict.reason == f"http_{http_status}"


@pytest.mark.parametrize("http_status", [200, 400, 401, 403, 404, 413])
def test_other_http_statuses_are_not_retried(http_status: int) -> None:
    assert not retry.decide_answer(PUSH, http_status, None, CONFIG).retry


def test_the_oicp_code_decides_before_the_http_status() -> None:
    # A 500 that carries a data error is the data's fault: repeating cannot help.
    assert not retry.decide_answer(PUSH, 500, "022", CONFIG).retry
    assert retry.decide_answer(PUSH, 400, "021", CONFIG).retry


@pytest.mark.parametrize(("http_status", "code"), [(200, "021"), (503, None), (429, None),
                                                   (200, "310")])
def test_authorize_start_is_never_repeated_after_an_answer(http_status: int,
                                                          code: str | None) -> None:
    verdict = retry.decide_answer(START, http_status, code, CONFIG)
    assert not verdict.retry
    assert verdict.reason.endswith("_once")


def test_a_retry_after_beyond_the_cap_ends_the_retries() -> None:
    verdict = retry.decide_answer(PUSH, 429, None, CONFIG, retry_after=3600)
    assert not verdict.retry
    assert verdict.retry_after == 3600
    assert retry.decide_answer(PUSH, 429, None, CONFIG, retry_after=5).retry


def test_transport_errors() -> None:
    refused = ConnectionFailed("refused")
    lost = ConnectionLost("lost")
    timeout = RequestTimeout("timeout")
    connect_timeout = ConnectTimeout("connect timeout")
    for op in (PUSH, CDR):
        assert retry.decide_error(op, refused).retry
        assert retry.decide_error(op, connect_timeout).retry
        assert retry.decide_error(op, lost).retry
        assert retry.decide_error(op, timeout).retry
    # AuthorizeStart: only what certainly never reached Hubject is repeated.
    assert retry.decide_error(START, refused).retry
    assert retry.decide_error(START, connect_timeout).retry
    assert not retry.decide_error(START, lost).retry
    assert not retry.decide_error(START, timeout).retry
    for op in (PUSH, START):
        assert not retry.decide_error(op, ClientCertificateRejected("no")).retry
        assert not retry.decide_error(op, ServerCertificateUntrusted("no")).retry
    assert retry.decide_error(PUSH, timeout).reason == "timeout"
    assert retry.decide_error(PUSH, connect_timeout).reason == "connect_timeout"


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    config = RetryConfig(attempts=10, initial_delay_seconds=0.5, max_delay_seconds=5.0)
    ceilings = [retry.backoff_ceiling(n, config) for n in range(1, 8)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert retry.backoff_delay(3, config, random=lambda: 0.0) == 0.0
    assert retry.backoff_delay(3, config, random=lambda: 0.5) == 1.0
    # Huge attempt numbers neither overflow nor pass the cap.
    assert retry.backoff_ceiling(10_000, config) == 5.0


@given(
    attempt=st.integers(min_value=1, max_value=200),
    initial=st.floats(min_value=0.001, max_value=10),
    cap=st.floats(min_value=0.001, max_value=600),
    jitter=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    retry_after=st.none() | st.floats(min_value=0, max_value=100),
)
def test_delay_bounds(attempt: int, initial: float, cap: float, jitter: float,
                      retry_after: float | None) -> None:
    config = RetryConfig(attempts=3, initial_delay_seconds=initial, max_delay_seconds=cap)
    backoff = retry.backoff_delay(attempt, config, random=lambda: jitter)
    assert 0 <= backoff <= min(cap, initial * 2 ** min(attempt - 1, 62))
    delay = retry.retry_delay(attempt, config, retry_after, random=lambda: jitter)
    assert delay >= backoff
    if retry_after is not None:
        assert delay >= retry_after
        assert delay == max(backoff, retry_after)


def test_jitter_spreads_the_delays() -> None:
    values = iter([0.1, 0.9])
    config = RetryConfig(attempts=3, initial_delay_seconds=1.0, max_delay_seconds=30.0)
    first = retry.backoff_delay(4, config, random=lambda: next(values))
    second = retry.backoff_delay(4, config, random=lambda: next(values))
    assert first == pytest.approx(0.8)
    assert second == pytest.approx(7.2)


NOW = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("Sat, 01 Mar 2025 12:00:30 GMT", 30.0),
        ("Sat, 01 Mar 2025 11:00:00 GMT", 0.0),  # in the past: go now
        ("Saturday, 01-Mar-25 12:01:00 GMT", 60.0),  # RFC 850, obsolete but allowed
        ("Sat Mar  1 12:00:10 2025", 10.0),  # asctime
    ],
)
def test_parse_retry_after(header: str, seconds: float) -> None:
    assert retry.parse_retry_after(header, now=NOW) == pytest.approx(seconds)


@pytest.mark.parametrize("header", [None, "", "soon", "-5", "nan", "inf", "12 seconds"])
def test_parse_retry_after_ignores_nonsense(header: str | None) -> None:
    assert retry.parse_retry_after(header, now=NOW) is None


def test_retry_options_follow_the_retry_class() -> None:
    def no_status(_: object) -> tuple[str | None, float | None]:
        return None, None

    push = retry.OicpRetryOptions(retry.CallState(PUSH), CONFIG, answer_status=no_status)
    start = retry.OicpRetryOptions(retry.CallState(START), CONFIG, answer_status=no_status)
    assert push.attempts == 5
    assert set(push.exceptions) == {ConnectionFailed, ConnectionLost, RequestTimeout}
    assert set(start.exceptions) == {ConnectionFailed}
    # Statuses are judged after the body was read, never by aiohttp-retry alone.
    assert not push.retry_all_server_errors
    assert not set(push.statuses)


def test_retry_options_wait_and_count_each_retry() -> None:
    seen: list[tuple[str, float]] = []
    state = retry.CallState(PUSH)
    options = retry.OicpRetryOptions(
        state, CONFIG, answer_status=lambda _: (None, None),
        on_retry=lambda reason, delay: seen.append((reason, delay)), random=lambda: 1.0,
    )
    state.error = ConnectionFailed("refused")
    assert options.get_timeout(attempt=3) == 2.0
    state.error = None
    state.verdict = retry.Verdict(True, "http_429", retry_after=7.0)
    assert options.get_timeout(attempt=1, response=object()) == 7.0
    assert seen == [("connection_failed", 2.0), ("http_429", 7.0)]
    assert state.retries == ["connection_failed", "http_429"]
