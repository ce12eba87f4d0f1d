"""The connector's queues: names from the contract, bindings, order, CDR retries for days."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubject_connector.bus.base import QueueSpec, Retry, RetryLater, disposition
from hubject_connector.bus.contract import MESSAGE_SPECS, Direction
from hubject_connector.bus.topology import (
    MAX_RETRY_DELAYS,
    UnknownQueue,
    cdr_retry_delays,
    connector_queues,
    queue_spec,
)
from hubject_connector.config import FlowsConfig


def test_every_type_the_backend_sends_to_a_queue_is_bound_to_exactly_that_queue() -> None:
    queues = connector_queues()
    assert [spec.name for spec in queues] == [
        "evse", "evse-status", "authorization", "notifications", "cdr", "pricing"
    ]
    bound = {pattern: spec.name for spec in queues for pattern in spec.patterns}
    expected = {
        str(t): spec.queue
        for t, spec in MESSAGE_SPECS.items()
        if spec.direction is Direction.TO_CONNECTOR and spec.queue is not None
    }
    assert bound == expected


def test_evse_data_and_pricing_are_ordered_the_rest_compete() -> None:
    ordered = {spec.name for spec in connector_queues() if spec.ordered}
    assert ordered == {"evse", "pricing"}


def test_only_cdrs_have_their_own_retry_delays_by_default() -> None:
    delays = {spec.name: spec.retry_delays for spec in connector_queues()}
    assert {name for name, d in delays.items() if d is not None} == {"cdr"}
    assert all(spec.prefetch is None for spec in connector_queues())


def test_cdr_delays_double_to_the_maximum_then_repeat_for_a_week() -> None:
    delays = queue_spec("cdr").retry_delays
    assert delays is not None
    assert delays[:11] == (5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600)
    assert set(delays[11:]) == {3600}
    # Retried for a week (FlowsConfig's default), not three times.
    assert sum(delays[:-1]) < 7 * 86400 <= sum(delays)


@given(
    initial=st.floats(0.5, 100),
    most=st.floats(0.5, 5000),
    total=st.floats(1, 10_000),
)
def test_cdr_delays_cover_the_retry_time_within_bounds(
    initial: float, most: float, total: float
) -> None:
    flows = FlowsConfig(
        cdr_retry_for_seconds=total,
        cdr_retry_initial_delay_seconds=initial,
        cdr_retry_max_delay_seconds=most,
    )
    delays = cdr_retry_delays(flows)
    assert sum(delays[:-1]) < total <= sum(delays)
    assert all(0 < d <= max(initial, most) for d in delays)
    assert delays[0] == min(initial, most)


def test_cdr_delays_are_bounded_in_number_and_still_cover_the_time() -> None:
    flows = FlowsConfig(
        cdr_retry_for_seconds=7 * 86400.0,
        cdr_retry_initial_delay_seconds=0.5,
        cdr_retry_max_delay_seconds=1.0,
    )
    delays = cdr_retry_delays(flows)
    assert len(delays) == MAX_RETRY_DELAYS
    assert sum(delays) == pytest.approx(7 * 86400.0)
    assert delays[-1] > 1.0  # the rest of the week in one pause


def test_queue_spec_names_the_known_queues_when_asked_for_another() -> None:
    assert queue_spec("evse-status") == QueueSpec(
        "evse-status", bindings=("com.hubject-connector.evse.status.v1",)
    )
    with pytest.raises(UnknownQueue, match=r"'evse_status' \(known: evse, evse-status, "):
        queue_spec("evse_status")


def test_a_queue_s_delays_override_the_bus_s_in_the_disposition() -> None:
    bus_delays = (5.0, 30.0, 300.0)
    cdr = QueueSpec("cdr", retry_delays=(1.0, 2.0, 4.0, 8.0))
    assert cdr.delays(bus_delays) == (1.0, 2.0, 4.0, 8.0)
    assert QueueSpec("status").delays(bus_delays) == bus_delays
    assert disposition(RetryLater("320"), 3, cdr.delays(bus_delays)) == Retry(
        8.0, "RetryLater: 320"
    )
    no_retries = QueueSpec("evse", retry_delays=())
    assert not isinstance(disposition(RetryLater("320"), 0, no_retries.delays(bus_delays)), Retry)
