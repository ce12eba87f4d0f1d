"""Hubject's acceptable-use rules under concurrent callers, and the metrics they leave."""

from __future__ import annotations

import asyncio
import itertools

from prometheus_client import CollectorRegistry, generate_latest

from hubject_connector.certs import DevPki
from hubject_connector.hubject.client import HubjectClient
from hubject_connector.oicp import codec, messages
from hubject_connector.oicp.common import Acknowledgement
from hubject_connector.simulator import Simulator
from hubject_connector.simulator.recording import max_calls_in_window, overlapping_pairs
from tests.unit.simulator import payloads

from .conftest import client_config, status_push

#: A short window keeps the test quick; the limiter counts over any window it is given.
WINDOW_SECONDS = 1.0
LIMIT = 3
CALLERS = 8


async def test_concurrent_pushes_never_overlap_nor_exceed_the_limit(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    # Unlimited at the simulator, so only our limiter keeps the pace; each answer takes a
    # moment, so pushes that were not serialized would overlap.
    simulator.set_rate_limit("PushEvseStatus", None)
    simulator.faults.latency(0.05, operation="PushEvseStatus")
    config = client_config(dev_pki, simulator, rate_limits={"PushEvseStatus": LIMIT})
    async with HubjectClient(config, registry=registry,
                             rate_period_seconds=WINDOW_SECONDS) as client:
        answers = await asyncio.gather(*(
            client.call("PushEvseStatus", status_push(evse=f"DE*ABC*E1234*{n}"))
            for n in range(1, CALLERS + 1)
        ))
    assert all(isinstance(a, Acknowledgement) and a.result for a in answers)
    records = simulator.requests_of("PushEvseStatus")
    assert len(records) == CALLERS
    assert simulator.overlaps == []
    assert max_calls_in_window(records, WINDOW_SECONDS) <= LIMIT
    # Each push waited for the previous answer: every start follows the previous end.
    ordered = sorted(records, key=lambda r: r.started)
    for before, after in itertools.pairwise(ordered):
        assert before.ended is not None
        assert after.started >= before.ended
    waits = registry.get_sample_value("hubject_connector_hubject_rate_limit_waits_total",
                                      {"operation": "PushEvseStatus"})
    waited = registry.get_sample_value(
        "hubject_connector_hubject_rate_limit_wait_seconds_total",
        {"operation": "PushEvseStatus"})
    assert waits is not None
    assert waits >= 1
    assert waited is not None
    assert waited > 0



async def test_concurrent_calls_of_an_unserialized_operation_keep_the_limit(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    # CDRs may run in parallel (only pushes are serialized), so here the limiter alone
    # stands between many callers and Hubject's limit.
    window = WINDOW_SECONDS / 2
    simulator.set_rate_limit("ChargeDetailRecord", None)
    held = simulator.faults.hold(operation="ChargeDetailRecord")
    config = client_config(dev_pki, simulator, rate_limits={"ChargeDetailRecord": LIMIT})
    cdrs = [
        messages.decode_message("eRoamingChargeDetailRecord", payloads.encode(
            payloads.cdr(f"5e7c1a2b-0d3f-4a6e-9b8c-1f2e3d4c5b{n:02d}")))
        for n in range(CALLERS)
    ]
    async with HubjectClient(config, registry=registry, rate_period_seconds=window) as client:
        calls = [asyncio.create_task(client.call("ChargeDetailRecord", cdr)) for cdr in cdrs]
        try:
            await held.arrived.wait()
            # While one CDR is held unanswered, the others the limit allows are answered
            # (were CDRs serialized, this would time out).
            await simulator.wait_for_requests(LIMIT - 1, operation="ChargeDetailRecord")
            held.release()
            answers = await asyncio.gather(*calls)
        finally:
            # On failure, leave no call running into the closed session.
            held.release()
            for call in calls:
                call.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(a, Acknowledgement) and a.result for a in answers)
    records = simulator.requests_of("ChargeDetailRecord")
    assert len(records) == CALLERS
    assert len(simulator.state.cdrs) == CALLERS
    assert overlapping_pairs(records), "calls that may overlap were not serialized"
    assert max_calls_in_window(records, window) <= LIMIT
    # The first LIMIT callers found a free slot; every later one was held back (waiting
    # itself, or queued behind a caller that waits).
    assert registry.get_sample_value("hubject_connector_hubject_rate_limit_waits_total",
                                     {"operation": "ChargeDetailRecord"}) == CALLERS - LIMIT


async def test_a_push_waits_for_the_previous_push_including_its_retries(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    simulator.faults.http_503(2, operation="PushEvseStatus")
    async with HubjectClient(client_config(dev_pki, simulator), registry=registry) as client:
        first, second = await asyncio.gather(
            client.call("PushEvseStatus", status_push("Occupied")),
            client.call("PushEvseStatus", status_push("Available")),
        )
    assert first.result
    assert second.result
    records = simulator.requests_of("PushEvseStatus")
    # The first call's two failures and its success come before the second call.
    assert [r.http_status for r in records] == [503, 503, 200, 200]
    bodies = [codec.parse_json(r.raw_body) for r in records]
    statuses = [b["OperatorEvseStatus"]["EvseStatusRecord"][0]["EvseStatus"] for b in bodies]
    assert statuses == ["Occupied", "Occupied", "Occupied", "Available"]
    assert simulator.overlaps == []


async def test_metrics_carry_operation_and_statuses(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    simulator.faults.http_503(1, operation="PushEvseStatus")
    simulator.faults.result_false(1, operation="PushEvseStatus", code="021")
    async with HubjectClient(client_config(dev_pki, simulator), registry=registry) as client:
        await client.call("PushEvseStatus", status_push())

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    requests = "hubject_connector_hubject_requests_total"
    assert sample(requests, operation="PushEvseStatus", http_status="503",
                  oicp_status="none") == 1
    assert sample(requests, operation="PushEvseStatus", http_status="200",
                  oicp_status="021") == 1
    assert sample(requests, operation="PushEvseStatus", http_status="200",
                  oicp_status="000") == 1
    assert sample("hubject_connector_hubject_request_duration_seconds_count",
                  operation="PushEvseStatus") == 3
    retries = "hubject_connector_hubject_retries_total"
    assert sample(retries, operation="PushEvseStatus", reason="http_503") == 1
    # Three calls are far below the limit: none waited for it.
    assert sample("hubject_connector_hubject_rate_limit_waits_total",
                  operation="PushEvseStatus") is None
    assert sample(retries, operation="PushEvseStatus", reason="oicp_021") == 1
    not_after = sample("hubject_connector_client_certificate_not_after_timestamp_seconds")
    assert not_after is not None
    assert not_after > 0
    exposition = generate_latest(registry).decode()
    names = {line.split()[2] for line in exposition.splitlines() if line.startswith("# TYPE")}
    assert names
    assert all(name.startswith("hubject_connector_") for name in names)
