"""The fault script: which call gets which fault, and how many."""

from __future__ import annotations

from collections import Counter

import pytest

from hubject_connector.simulator.faults import FaultKind, FaultScript


def kinds(script: FaultScript, operation: str, calls: int) -> list[FaultKind | None]:
    return [script.decide(operation).kind for _ in range(calls)]


def test_no_faults_by_default() -> None:
    decision = FaultScript().decide("PushEvseStatus")
    assert decision.kind is None
    assert decision.delay == 0
    assert decision.hold is None


def test_scripted_faults_are_used_up_in_order() -> None:
    script = FaultScript()
    script.http_503(2)
    script.result_false(1, code="009")
    script.drop_connection(1, after_processing=True)
    decisions = [script.decide("ChargeDetailRecord") for _ in range(5)]
    assert [d.kind for d in decisions] == [
        FaultKind.HTTP_503, FaultKind.HTTP_503, FaultKind.RESULT_FALSE,
        FaultKind.DROP_AFTER_PROCESSING, None,
    ]
    assert decisions[2].code == "009"
    assert script.pending == 0


def test_faults_limited_to_one_operation() -> None:
    script = FaultScript()
    script.http_429(1, operation="PushEvseStatus", retry_after=7)
    assert script.decide("PushEvseData").kind is None
    decision = script.decide("PushEvseStatus")
    assert (decision.kind, decision.retry_after) == (FaultKind.HTTP_429, 7)
    assert script.decide("PushEvseStatus").kind is None


def test_operation_may_be_named_by_its_request_message() -> None:
    script = FaultScript()
    script.drop_connection(operation="eRoamingChargeDetailRecord")
    assert script.decide("ChargeDetailRecord").kind is FaultKind.DROP


def test_unknown_operation_is_refused_when_scripting() -> None:
    with pytest.raises(KeyError, match="PushEvseStatuz"):
        FaultScript().http_503(operation="PushEvseStatuz")


def test_latency_for_some_calls_or_until_cleared() -> None:
    script = FaultScript()
    script.latency(0.5, times=2)
    script.latency(0.25, operation="AuthorizeStart")
    delays = [script.decide("AuthorizeStart").delay for _ in range(3)]
    assert delays == [0.75, 0.75, 0.25]
    assert script.decide("PushEvseData").delay == 0
    script.clear()
    assert script.decide("AuthorizeStart").delay == 0


def test_percentage_is_repeatable_with_a_seed() -> None:
    first, second = FaultScript(), FaultScript()
    for script in (first, second):
        script.fail_percentage(30, kinds=("http-503", FaultKind.DROP), seed=7)
    a, b = kinds(first, "ChargeDetailRecord", 400), kinds(second, "ChargeDetailRecord", 400)
    assert a == b
    counts = Counter(a)
    assert 80 < counts[FaultKind.HTTP_503] + counts[FaultKind.DROP] < 160
    assert counts[FaultKind.HTTP_503] > 0
    assert counts[FaultKind.DROP] > 0


@pytest.mark.parametrize(("percent", "failed"), [(0, 0), (100, 20)])
def test_percentage_bounds(percent: float, failed: int) -> None:
    script = FaultScript()
    script.fail_percentage(percent)
    assert sum(k is not None for k in kinds(script, "PushEvseStatus", 20)) == failed


def test_scripted_counts_come_before_the_percentage() -> None:
    script = FaultScript()
    script.fail_percentage(100, kinds=[FaultKind.HTTP_503])
    script.result_false(1)
    assert kinds(script, "PushEvseStatus", 2) == [FaultKind.RESULT_FALSE, FaultKind.HTTP_503]


def test_hold_is_taken_by_the_next_matching_call_and_released_by_clear() -> None:
    script = FaultScript()
    held = script.hold(operation="PushEvseStatus")
    assert script.decide("PushEvseData").hold is None
    assert script.decide("PushEvseStatus").hold is held
    assert script.decide("PushEvseStatus").hold is None
    assert not held.released
    script.clear()
    assert held.released


def test_invalid_scripts_are_refused() -> None:
    script = FaultScript()
    with pytest.raises(ValueError, match="times"):
        script.http_503(0)
    with pytest.raises(ValueError, match="percent"):
        script.fail_percentage(101)
    with pytest.raises(ValueError, match="negative"):
        script.latency(-1)
