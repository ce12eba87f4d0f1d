"""When to repeat a call to Hubject, and how long to wait first.

The decisions are pure functions (``decide_answer``, ``decide_error``, ``backoff_delay``,
``parse_retry_after``); ``OicpRetryOptions`` plugs them into aiohttp-retry, which runs
the loop. aiohttp-retry alone decides on HTTP statuses and exception types, but OICP
status codes are in the body: the transport reads the body of each attempt before
aiohttp-retry's response callback asks ``decide_answer``.

Repeated: connection failures, timeouts, HTTP 408/429/5xx and the transient OICP codes
(001, 002, 009, 021, 310, 320, from the status table). Never repeated: permanent codes
(017, 018, 022, 400, ...), TLS failures, other HTTP statuses.

An answer's OICP code decides before its HTTP status: a 500 carrying 022 is a data error,
not worth repeating; a 200 carrying 021 is.

Operations of ``RetryClass.ONCE`` (AuthorizeStart: a repeat would open a second session
at Hubject) are repeated only when the request certainly did not reach Hubject: the
connection could not be made or the request headers were never written. Anything after
that is ambiguous (a timeout, a dropped connection, any answer, even 429 or 5xx) and is
raised to the caller, who knows whether asking again is right.

Waits use exponential backoff with full jitter, ``uniform(0, min(cap, initial * 2**(n-1)))``
after the n-th attempt, and never less than a ``Retry-After`` Hubject sent. A
``Retry-After`` longer than the cap ends the retries: the error carries it, so that a
queue can schedule the message later instead of holding a connection slot.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import ClientResponse
from aiohttp_retry import RetryOptionsBase

from hubject_connector.config import RetryConfig
from hubject_connector.hubject.errors import (
    ConnectionFailed,
    ConnectionLost,
    ConnectTimeout,
    HubjectTransportError,
    RequestTimeout,
)
from hubject_connector.oicp import status
from hubject_connector.oicp.operations import Operation, RetryClass

#: HTTP statuses worth repeating besides 5xx: request timeout, too many requests.
RETRIED_HTTP_STATUSES: Final = frozenset({408, 429})
# 2**62 times any delay is beyond every cap; bounding the exponent avoids overflow.
_MAX_EXPONENT: Final = 62


def http_status_transient(http_status: int) -> bool:
    """Whether an HTTP status suggests the same request may succeed later."""
    return http_status in RETRIED_HTTP_STATUSES or 500 <= http_status <= 599


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 §10.2.3), or ``None``.

    Accepts delay-seconds ("120") and an HTTP date ("Wed, 21 Oct 2015 07:28:00 GMT"); a
    date in the past means 0. Anything unparsable is ignored (``None``).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        # Not RFC syntax, but unambiguous: some servers send "1.5".
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_ceiling(attempt: int, config: RetryConfig) -> float:
    """The largest backoff after attempt number ``attempt`` (1 = the first attempt)."""
    exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
    return min(config.max_delay_seconds, config.initial_delay_seconds * 2.0**exponent)


def backoff_delay(
    attempt: int, config: RetryConfig, random: Callable[[], float] = _random.random
) -> float:
    """Full-jitter backoff after attempt ``attempt``: uniform in [0, ``backoff_ceiling``)."""
    return backoff_ceiling(attempt, config) * random()


def retry_delay(
    attempt: int,
    config: RetryConfig,
    retry_after: float | None = None,
    random: Callable[[], float] = _random.random,
) -> float:
    """The wait before the next attempt: the backoff, but at least ``retry_after``."""
    delay = backoff_delay(attempt, config, random)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether to repeat, and why (the reason is a metric label)."""

    retry: bool
    reason: str
    retry_after: float | None = None


def decide_answer(
    operation: Operation,
    http_status: int,
    oicp_code: str | None,
    config: RetryConfig,
    retry_after: float | None = None,
) -> Verdict:
    """Repeat after an answer? ``oicp_code`` is the body's status code, if it had one."""
    if oicp_code is not None:
        reason = f"oicp_{oicp_code}"
        transient = oicp_code != status.SUCCESS and status.is_transient(oicp_code)
    else:
        reason = f"http_{http_status}"
        transient = http_status_transient(http_status)
    if not transient:
        return Verdict(False, reason, retry_after)
    if operation.retry is RetryClass.ONCE:
        # Hubject answered, so the request reached it: never repeat (module docstring).
        return Verdict(False, f"{reason}_once", retry_after)
    if retry_after is not None and retry_after > config.max_delay_seconds:
        return Verdict(False, f"{reason}_retry_after_too_long", retry_after)
    return Verdict(True, reason, retry_after)


def error_reason(error: HubjectTransportError) -> str:
    """A metric label for a transport failure."""
    if isinstance(error, ConnectTimeout):
        return "connect_timeout"
    if isinstance(error, ConnectionFailed):
        return "connection_failed"
    if isinstance(error, RequestTimeout):
        return "timeout"
    if isinstance(error, ConnectionLost):
        return "connection_lost"
    return "transport_error"


def retried_errors(operation: Operation) -> tuple[type[HubjectTransportError], ...]:
    """The transport errors after which ``operation`` is repeated."""
    if operation.retry is RetryClass.ONCE:
        return (ConnectionFailed,)
    return (ConnectionFailed, ConnectionLost, RequestTimeout)


def decide_error(operation: Operation, error: HubjectTransportError) -> Verdict:
    """Repeat after a transport failure? TLS and unknown failures are never repeated."""
    retry = isinstance(error, retried_errors(operation))
    return Verdict(retry, error_reason(error))


@dataclass(slots=True)
class CallState:
    """What the transport learned about the attempts of one call so far."""

    operation: Operation
    attempt: int = 0
    #: The verdict on the last attempt, once decided.
    verdict: Verdict | None = None
    #: The last attempt's transport failure, if it failed.
    error: HubjectTransportError | None = None
    #: Reasons of the repeats made, in order.
    retries: list[str] = field(default_factory=list)


class OicpRetryOptions(RetryOptionsBase):
    """aiohttp-retry options for one call: our verdicts, our backoff.

    The transport sets ``state.error`` before raising a transport error and reads each
    answer's body before aiohttp-retry calls ``evaluate_response_callback``.
    ``on_retry(reason, delay)`` is told of every repeat (metrics, logs).
    """

    def __init__(
        self,
        state: CallState,
        config: RetryConfig,
        *,
        answer_status: Callable[[ClientResponse], tuple[str | None, float | None]],
        on_retry: Callable[[str, float], None] | None = None,
        random: Callable[[], float] = _random.random,
    ) -> None:
        super().__init__(
            attempts=max(1, config.attempts),
            statuses=set(),
            exceptions=set(retried_errors(state.operation)),
            methods={"POST"},
            # Every status is judged by our callback, after the body was read.
            retry_all_server_errors=False,
            evaluate_response_callback=self._accept,
        )
        self.state = state
        self.config = config
        self._answer_status = answer_status
        self._on_retry = on_retry
        self._random = random

    async def _accept(self, response: ClientResponse) -> bool:
        # aiohttp-retry: True means "keep this response", False "try again".
        oicp_code, retry_after = self._answer_status(response)
        verdict = decide_answer(
            self.state.operation, response.status, oicp_code, self.config, retry_after
        )
        self.state.verdict = verdict
        return not verdict.retry

    def get_timeout(self, attempt: int, response: Any = None) -> float:
        """The wait before attempt ``attempt + 1``; aiohttp-retry calls it only to repeat."""
        if response is None and self.state.error is not None:
            verdict = decide_error(self.state.operation, self.state.error)
            self.state.verdict = verdict
        verdict = self.state.verdict or Verdict(True, "unknown")
        delay = retry_delay(attempt, self.config, verdict.retry_after, self._random)
        self.state.retries.append(verdict.reason)
        if self._on_retry is not None:
            self._on_retry(verdict.reason, delay)
        return delay
