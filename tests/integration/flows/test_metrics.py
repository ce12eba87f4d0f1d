"""The flows' metrics, as Prometheus shows them after real traffic."""

from __future__ import annotations

from prometheus_client import generate_latest

from tests.integration.flows import messages
from tests.integration.flows.conftest import FlowEnv, eventually


async def test_each_flow_counts_what_became_of_its_messages(env: FlowEnv) -> None:
    connector = await env.connector()
    backend = env.backend
    env.simulator.faults.http_503(3, operation="ChargeDetailRecord")
    cdr = await backend.send(messages.cdr())
    await backend.result(cdr)
    newer = await backend.send(messages.status("DE*ABC*E1", "Occupied", at=2))
    await backend.result(newer)
    older = await backend.send(messages.status("DE*ABC*E1", "Available", at=1))
    await backend.result(older)

    def value(name: str, **labels: str) -> float:
        return connector.metric(f"hubject_connector_flow_{name}", **labels)

    # The CDR: taken twice (a retry after three 503s), delivered once.
    assert value("messages_consumed_total", flow="cdr") == 2
    assert value("messages_retried_total", flow="cdr") == 1
    assert value("messages_delivered_total", flow="cdr") == 1
    assert value("delivery_delay_seconds_count", flow="cdr") == 1
    assert value("messages_consumed_total", flow="evse-status") == 2
    assert value("messages_delivered_total", flow="evse-status") == 1
    assert value("messages_dropped_total", flow="evse-status") == 1
    assert value("status_batch_size_count") >= 1
    exposition = generate_latest(connector.registry).decode()
    assert 'hubject_connector_flow_messages_delivered_total{flow="cdr"} 1.0' in exposition


async def test_the_backlog_gauges_show_dead_letters_and_statuses_waiting(env: FlowEnv) -> None:
    connector = await env.connector()
    backend = env.backend
    assert connector.flows is not None
    assert connector.store is not None
    # A status of another operator is refused and dead-lettered; Hubject then fails
    # every push, so a status of ours stays pending.
    foreign = await backend.send(messages.status("DE*XYZ*E1", "Available"))
    await backend.result(foreign)
    await backend.dead_letters()
    env.simulator.faults.http_503(10_000, operation="PushEvseStatus")
    await backend.send(messages.status("DE*ABC*E1", "Occupied"))

    async def pending() -> bool | None:
        assert connector.store is not None
        return True if await connector.store.pending_statuses(10) else None

    await eventually(pending, "a pending status")
    await connector.flows.backlog.refresh()

    assert connector.metric("hubject_connector_bus_dead_letters") == 1
    assert connector.metric("hubject_connector_flow_status_pending") == 1
    # The status changed at T0, in the past: its age is counted from then.
    assert connector.metric("hubject_connector_flow_status_oldest_pending_seconds") > 0
    assert connector.metric("hubject_connector_flow_status_results_owed") >= 0
