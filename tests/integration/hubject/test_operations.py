"""Every CPO→Hubject operation of the table, sent by the client and answered by the simulator."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from hubject_connector.certs import DevPki
from hubject_connector.hubject.client import HubjectClient
from hubject_connector.oicp import messages
from hubject_connector.oicp.operations import OPERATIONS, Direction
from hubject_connector.simulator import BASE_PATH, Simulator
from tests.unit.simulator import payloads

from .conftest import OPERATOR_ID, client_config

EVSE_ID = payloads.evse_id(1)


def model(operation: str, body: dict[str, Any]) -> Any:
    """The request model of ``operation`` decoded from a JSON-ready body."""
    return messages.decode_message(OPERATIONS[operation].request, payloads.encode(body))


def positive(answer: Any) -> bool:
    """Result true (acknowledgements) or Authorized (authorizations), with code 000."""
    verdict = answer.result if hasattr(answer, "result") else answer.authorized
    return bool(verdict) and answer.status_code.code == "000"


async def test_every_operation_is_sent_to_its_path_and_answered(
    dev_pki: DevPki, simulator: Simulator, registry: CollectorRegistry
) -> None:
    sent: list[tuple[str, Any]] = []
    async with HubjectClient(client_config(dev_pki, simulator), registry=registry) as client:

        async def call(operation: str, body: dict[str, Any]) -> Any:
            request = model(operation, body)
            sent.append((operation, request))
            answer = await client.call(operation, request)
            assert positive(answer), (operation, answer)
            return answer

        await call("PushEvseData", payloads.evse_data("fullLoad", EVSE_ID))
        await call("PushEvseStatus", payloads.evse_status("fullLoad", {EVSE_ID: "Available"}))
        await call("PushPricingProductData", payloads.pricing_products("fullLoad", "AC 1"))
        await call("PushEVSEPricing", payloads.evse_pricing("fullLoad", EVSE_ID, "AC 1"))
        start = await call("AuthorizeStart", payloads.authorize_start())
        # The SessionID Hubject handed out carries the rest of the session.
        session_id = start.session_id
        assert session_id
        stop = await call("AuthorizeStop", payloads.authorize_stop(session_id))
        assert stop.session_id == session_id
        await call("ChargingNotifications", payloads.notification_progress(session_id))
        cdr = await call("ChargeDetailRecord", payloads.cdr(session_id))
        assert cdr.session_id == session_id

    outbound = {n for n, op in OPERATIONS.items() if op.direction is Direction.CPO_TO_HUBJECT}
    # A new operation in the table fails here until it is sent above.
    assert {name for name, _ in sent} == outbound
    records = simulator.requests
    assert [r.operation for r in records] == [name for name, _ in sent]
    for record, (name, request) in zip(records, sent, strict=True):
        op = OPERATIONS[name]
        params = {"operatorID": OPERATOR_ID} if "{operatorID}" in op.path else {}
        assert record.path == BASE_PATH + op.url_path(**params)
        # What the simulator decoded is what the caller handed to the client.
        assert record.message == request
        assert record.status_code == "000"
    state = simulator.state
    assert set(state.evse_data_of(OPERATOR_ID)) == {EVSE_ID}
    assert state.evse_status_of(OPERATOR_ID) == {EVSE_ID: "Available"}
    assert list(state.cdrs) == [session_id]
    assert state.sessions[session_id].stopped
    for name in outbound:
        assert registry.get_sample_value(
            "hubject_connector_hubject_requests_total",
            {"operation": name, "http_status": "200", "oicp_status": "000"}) == 1
