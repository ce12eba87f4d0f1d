"""Scripted faults: how the simulator misbehaves when a test asks it to.

A test scripts faults before (or while) its client talks to the simulator:

* ``http_503(n)``, ``http_429(n, retry_after=...)``: the next n calls get that HTTP status;
* ``result_false(n, code="001")``: HTTP 200 with Result false and the code (Hubject's
  own failure, e.g. 001 "Hubject system error");
* ``drop_connection(n)``: the connection is closed without an answer, before the request is
  processed, or after it (``after_processing=True``: Hubject stored it, the answer is lost);
* ``latency(seconds)``: answers come late (for the next n calls, or until cleared);
* ``fail_percentage(p, kinds=...)``: a share of calls fail with one of the kinds, drawn
  from a seeded random generator so a run can be repeated;
* ``hold()``: the next call waits until the test releases it (deterministic overlaps).

Each can be limited to one operation (by name, e.g. "PushEvseStatus"). Scripted counts
are used up first, in the order they were added; the percentage applies to the others.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from hubject_connector.oicp.operations import operation as find_operation


class FaultKind(StrEnum):
    """What a faulty answer looks like."""

    HTTP_503 = "http-503"
    HTTP_429 = "http-429"
    RESULT_FALSE = "result-false"
    DROP = "drop"
    DROP_AFTER_PROCESSING = "drop-after-processing"


class Hold:
    """A call held back until ``release()``; ``arrived`` is set once a call is held."""

    def __init__(self, operation: str | None) -> None:
        self.operation = operation
        self.arrived = asyncio.Event()
        self._released = asyncio.Event()

    def release(self) -> None:
        """Let the held call (or the next one to be held) be answered."""
        self._released.set()

    @property
    def released(self) -> bool:
        """Whether ``release()`` was called."""
        return self._released.is_set()

    async def wait_released(self) -> None:
        """Wait until released (the simulator does this for the held call)."""
        await self._released.wait()


@dataclass(slots=True)
class _Rule:
    kind: FaultKind
    remaining: int
    operation: str | None
    retry_after: int = 1
    code: str = "001"


@dataclass(slots=True)
class _Latency:
    seconds: float
    remaining: int | None
    operation: str | None


@dataclass(slots=True)
class _Percentage:
    percent: float
    kinds: tuple[FaultKind, ...]
    operation: str | None
    rng: random.Random
    retry_after: int = 1
    code: str = "001"


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do to one call."""

    delay: float = 0.0
    kind: FaultKind | None = None
    retry_after: int = 1
    code: str = "001"
    hold: Hold | None = field(default=None, compare=False)


def _operation_name(name: str | None) -> str | None:
    # Accept the operation's name or its request message name; refuse typos early.
    return None if name is None else find_operation(name).name


def _applies(rule_operation: str | None, operation: str) -> bool:
    return rule_operation is None or rule_operation == operation


class FaultScript:
    """The faults scripted for one simulator."""

    def __init__(self) -> None:
        self._rules: list[_Rule] = []
        self._latencies: list[_Latency] = []
        self._percentages: list[_Percentage] = []
        self._holds: list[Hold] = []
        self.active_holds: list[Hold] = []

    def _add(self, kind: FaultKind, times: int, operation: str | None, *,
             retry_after: int = 1, code: str = "001") -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        self._rules.append(_Rule(kind, times, _operation_name(operation), retry_after, code))

    def http_503(self, times: int = 1, *, operation: str | None = None) -> None:
        """Answer the next ``times`` calls with HTTP 503 (service unavailable)."""
        self._add(FaultKind.HTTP_503, times, operation)

    def http_429(self, times: int = 1, *, operation: str | None = None,
                 retry_after: int = 1) -> None:
        """Answer the next ``times`` calls with HTTP 429 and ``Retry-After: retry_after``."""
        self._add(FaultKind.HTTP_429, times, operation, retry_after=retry_after)

    def result_false(self, times: int = 1, *, operation: str | None = None,
                     code: str = "001") -> None:
        """Answer the next ``times`` calls with HTTP 200, Result false and ``code``."""
        self._add(FaultKind.RESULT_FALSE, times, operation, code=code)

    def drop_connection(self, times: int = 1, *, operation: str | None = None,
                        after_processing: bool = False) -> None:
        """Close the connection of the next ``times`` calls without an answer.

        With ``after_processing`` the request is processed (and stored) first, so only the
        answer is lost, as when a connection breaks on the way back.
        """
        kind = FaultKind.DROP_AFTER_PROCESSING if after_processing else FaultKind.DROP
        self._add(kind, times, operation)

    def latency(self, seconds: float, *, times: int | None = None,
                operation: str | None = None) -> None:
        """Delay answers by ``seconds``: the next ``times`` calls, or every call until cleared."""
        if seconds < 0:
            raise ValueError("latency cannot be negative")
        self._latencies.append(_Latency(seconds, times, _operation_name(operation)))

    def fail_percentage(
        self,
        percent: float,
        *,
        kinds: Sequence[FaultKind | str] = (FaultKind.HTTP_503,),
        operation: str | None = None,
        seed: int | None = None,
        retry_after: int = 1,
        code: str = "001",
    ) -> None:
        """Fail about ``percent`` % of calls, each with one of ``kinds`` drawn at random."""
        if not 0 <= percent <= 100:
            raise ValueError("percent must lie between 0 and 100")
        chosen = tuple(FaultKind(k) for k in kinds)
        if not chosen:
            raise ValueError("give at least one fault kind")
        self._percentages.append(
            _Percentage(percent, chosen, _operation_name(operation), random.Random(seed),
                        retry_after=retry_after, code=code)
        )

    def hold(self, *, operation: str | None = None) -> Hold:
        """Hold the next call (of ``operation``) until the returned ``Hold`` is released."""
        held = Hold(_operation_name(operation))
        self._holds.append(held)
        return held

    def clear(self) -> None:
        """Remove every scripted fault and release every held call."""
        self._rules.clear()
        self._latencies.clear()
        self._percentages.clear()
        self.release_all()
        self._holds.clear()

    def release_all(self) -> None:
        """Release every hold, waiting or not yet used (the simulator is stopping)."""
        for held in (*self._holds, *self.active_holds):
            held.release()

    @property
    def pending(self) -> int:
        """How many scripted one-off faults are still to be used (not percentages)."""
        return sum(r.remaining for r in self._rules) + len(self._holds)

    def decide(self, operation: str) -> FaultDecision:
        """Pick (and use up) the faults for one call of ``operation``."""
        delay = 0.0
        for latency in list(self._latencies):
            if _applies(latency.operation, operation):
                delay += latency.seconds
                if latency.remaining is not None:
                    latency.remaining -= 1
                    if latency.remaining <= 0:
                        self._latencies.remove(latency)
        held = next((h for h in self._holds if _applies(h.operation, operation)), None)
        if held is not None:
            self._holds.remove(held)
            self.active_holds.append(held)
        for rule in self._rules:
            if _applies(rule.operation, operation):
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._rules.remove(rule)
                return FaultDecision(delay, rule.kind, rule.retry_after, rule.code, held)
        for share in self._percentages:
            if _applies(share.operation, operation) and share.rng.random() * 100 < share.percent:
                kind = share.kinds[share.rng.randrange(len(share.kinds))]
                return FaultDecision(delay, kind, share.retry_after, share.code, held)
        return FaultDecision(delay, None, hold=held)
