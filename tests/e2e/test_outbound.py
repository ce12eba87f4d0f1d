"""Every backend message, as docs/contract.md says to send it, to Hubject and back.

For each message type: the backend publishes the documented example (fresh ids); the
request the simulator recorded validates against Hubject's official OpenAPI; the backend
receives the delivery result (or the reply) the contract promises.
"""

from __future__ import annotations

from typing import Any

import pytest

from hubject_connector.bus.contract import MessageType
from tests.e2e.conftest import EndToEnd, conforms
from tests.integration.flows import messages
from tests.unit.oicp_conformance.conftest import Spec

T = MessageType
#: Each event type and the OICP operation it becomes.
EVENTS: dict[MessageType, str] = {
    T.EVSE_UPSERT: "PushEvseData",
    T.EVSE_FULL_LOAD: "PushEvseData",
    T.EVSE_STATUS: "PushEvseStatus",
    T.NOTIFICATION_START: "ChargingNotifications",
    T.NOTIFICATION_PROGRESS: "ChargingNotifications",
    T.NOTIFICATION_END: "ChargingNotifications",
    T.NOTIFICATION_ERROR: "ChargingNotifications",
    T.CDR: "ChargeDetailRecord",
    T.PRICING_PRODUCTS: "PushPricingProductData",
    T.PRICING_EVSE: "PushEVSEPricing",
}


def example(message_type: MessageType) -> dict[str, Any]:
    """The documented example, with what a first message of its kind needs."""
    if message_type in (T.PRICING_PRODUCTS, T.PRICING_EVSE):
        # The examples update what Hubject holds; a first push loads it.
        return messages.document(message_type, action_type="fullLoad")
    return messages.document(message_type)


def check_result(result: dict[str, Any], doc: dict[str, Any]) -> None:
    """The delivery result envelope answers ``doc`` as the contract says."""
    assert result["type"] == "com.hubject-connector.delivery.result.v1"
    assert result["source"] == "urn:hubject-connector"
    assert result["correlationid"] == doc["id"]
    assert result["data"]["message_id"] == doc["id"]
    assert result["data"]["message_type"] == doc["type"]
    assert result.get("subject") == doc.get("subject")


@pytest.mark.spec
@pytest.mark.parametrize("message_type", list(EVENTS), ids=lambda t: t.removeprefix(
    "com.hubject-connector."))
async def test_an_event_reaches_hubject_as_valid_oicp_and_its_result_comes_back(
    e2e: EndToEnd, spec: Spec, message_type: MessageType,
) -> None:
    doc = example(message_type)
    await e2e.backend.send(doc)
    data = await e2e.backend.result(doc["id"])

    assert data["outcome"] == "accepted", data
    assert data["status_code"] == "000"
    (result,) = e2e.backend.results_of(doc["id"])
    check_result(result, doc)
    calls = e2e.requests(EVENTS[message_type])
    assert calls, "nothing reached Hubject"
    for call in calls:
        assert conforms(spec, call) == [], call.raw_body
    assert calls[-1].result is True


@pytest.mark.spec
async def test_a_delete_carries_the_record_last_pushed(e2e: EndToEnd, spec: Spec) -> None:
    evse_id = "DE*ABC*E123456*1"
    upsert = messages.upsert(evse_id)
    await e2e.backend.send(upsert)
    assert (await e2e.backend.result(upsert["id"]))["outcome"] == "accepted"
    delete = messages.delete(evse_id)
    await e2e.backend.send(delete)
    data = await e2e.backend.result(delete["id"])

    assert data["outcome"] == "accepted"
    check_result(e2e.backend.results_of(delete["id"])[0], delete)
    insert, removal = e2e.requests("PushEvseData")
    assert [insert.json["ActionType"], removal.json["ActionType"]] == ["insert", "delete"]
    assert conforms(spec, insert) == []
    assert conforms(spec, removal) == []
    assert e2e.simulator.state.evse_data_of("DE*ABC") == {}


@pytest.mark.spec
async def test_authorize_start_and_stop_are_answered_with_hubjects_decision(
    e2e: EndToEnd, spec: Spec,
) -> None:
    start = messages.authorize_start()
    reply = await e2e.backend.ask(start)

    assert reply["type"] == "com.hubject-connector.authorization.start.reply.v1"
    assert reply["correlationid"] == start["id"]
    assert reply["data"]["authorization_status"] == "Authorized"
    assert reply["data"]["status_code"] == "000"
    session = reply["data"]["session_id"]

    stop = messages.authorize_stop(session)
    answer = await e2e.backend.ask(stop)
    assert answer["type"] == "com.hubject-connector.authorization.stop.reply.v1"
    assert answer["correlationid"] == stop["id"]
    assert answer["data"]["authorization_status"] == "Authorized"
    assert answer["data"]["session_id"] == session

    for operation in ("AuthorizeStart", "AuthorizeStop"):
        (call,) = e2e.requests(operation)
        assert conforms(spec, call) == [], call.raw_body


async def test_an_unknown_card_is_not_authorized(e2e: EndToEnd) -> None:
    reply = await e2e.backend.ask(messages.authorize_start(uid="DEADBEEF"))

    assert reply["data"]["authorization_status"] == "NotAuthorized"
    assert reply["data"]["status_code"] == "102"
