"""Authorization request/reply, charging notifications (progress throttled), pricing."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from hubject_connector.bus.base import RequestTimeout
from hubject_connector.bus.contract import MessageType
from tests.integration.flows import messages
from tests.integration.flows.conftest import FlowEnv

START = MessageType.NOTIFICATION_START
PROGRESS = MessageType.NOTIFICATION_PROGRESS
END = MessageType.NOTIFICATION_END
ERROR = MessageType.NOTIFICATION_ERROR


# --- authorization -----------------------------------------------------------------------


async def test_a_known_card_is_authorized_and_may_stop_its_session(env: FlowEnv) -> None:
    await env.connector()
    backend = env.backend
    request = messages.authorize_start()
    reply = await backend.ask(request)

    assert reply.type is MessageType.AUTHORIZATION_START_REPLY
    assert reply.correlation_id == request["id"]
    assert reply.data["authorization_status"] == "Authorized"
    assert reply.data["status_code"] == "000"
    session = reply.data["session_id"]
    assert reply.data["cpo_partner_session_id"] == "cpo-session-4711"
    assert reply.data["authorization_stop_identifications"] == [
        {"kind": "rfid_mifare_family", "uid": messages.CARD_UID}]

    stop = await backend.ask(messages.authorize_stop(session))
    assert stop.type is MessageType.AUTHORIZATION_STOP_REPLY
    assert stop.data["authorization_status"] == "Authorized"
    assert stop.data["session_id"] == session


async def test_an_unknown_card_is_not_authorized_with_hubjects_code(env: FlowEnv) -> None:
    await env.connector()
    reply = await env.backend.ask(messages.authorize_start(uid="DEADBEEF"))

    assert reply.data["authorization_status"] == "NotAuthorized"
    assert reply.data["status_code"] == "102"


async def test_no_answer_from_hubject_is_not_authorized_and_not_asked_twice(
    env: FlowEnv,
) -> None:
    await env.connector()
    env.simulator.faults.drop_connection(operation="AuthorizeStart", after_processing=True)
    reply = await env.backend.ask(messages.authorize_start())

    assert reply.data["authorization_status"] == "NotAuthorized"
    assert reply.data["status_code"] == "320"
    assert "no answer from Hubject" in reply.data["additional_info"]
    # A second AuthorizeStart would open a second session at Hubject.
    assert len(env.simulator.requests_of("AuthorizeStart")) == 1


async def test_hubjects_error_status_is_not_authorized_with_that_code(env: FlowEnv) -> None:
    await env.connector()
    env.simulator.faults.result_false(operation="AuthorizeStart", code="017")
    reply = await env.backend.ask(messages.authorize_start())

    assert reply.data["authorization_status"] == "NotAuthorized"
    assert reply.data["status_code"] == "017"


async def test_a_request_past_its_deadline_is_not_sent(env: FlowEnv) -> None:
    connector = await env.connector()
    late = messages.authorize_start(deadline_seconds=-1.0)
    with pytest.raises(RequestTimeout):
        await env.backend.ask(late, timeout=1.5)

    assert env.simulator.requests_of("AuthorizeStart") == []
    assert connector.metric("hubject_connector_flow_messages_dropped_total",
                            flow="authorization") == 1


async def test_a_request_the_connector_cannot_send_is_not_authorized_with_022(
    env: FlowEnv,
) -> None:
    await env.connector()
    reply = await env.backend.ask(messages.authorize_start(evse_id="DE*XYZ*E1*1"))

    assert reply.data["authorization_status"] == "NotAuthorized"
    assert reply.data["status_code"] == "022"
    assert "DE*XYZ*E1*1" in reply.data["additional_info"] or "XYZ" in reply.data[
        "additional_info"]
    assert env.simulator.requests_of("AuthorizeStart") == []


# --- notifications -----------------------------------------------------------------------


async def test_each_notification_reaches_hubject(env: FlowEnv) -> None:
    await env.connector()
    backend = env.backend
    session = messages.new_session_id()
    ids = [await backend.send(messages.notification(kind, session))
           for kind in (START, PROGRESS, END, ERROR)]
    results = [await backend.result(i) for i in ids]

    assert [r["outcome"] for r in results] == ["accepted"] * 4
    assert {r["session_id"] for r in results} == {session}
    received = [n.type for n in env.simulator.state.notifications_of(session)]
    assert sorted(received) == ["End", "Error", "Progress", "Start"]


async def test_progress_is_sent_at_most_once_per_interval_and_session(env: FlowEnv) -> None:
    connector = await env.connector()
    backend = env.backend
    session = messages.new_session_id()

    def progress(minutes: float) -> dict[str, object]:
        doc = messages.notification(PROGRESS, session)
        start = datetime.fromisoformat(doc["data"]["charging_start"])
        doc["data"]["event_occurred"] = (start + timedelta(minutes=minutes)).isoformat()
        doc["data"]["charging_duration_ms"] = int(minutes * 60_000)
        return doc

    first = await backend.result(await backend.send(progress(10)))
    extra = await backend.result(await backend.send(progress(12)))
    later = await backend.result(await backend.send(progress(15)))

    assert [first["outcome"], extra["outcome"], later["outcome"]] == [
        "accepted", "dropped", "accepted"]
    assert "less than 5 minutes" in extra["reason"]
    assert len(env.simulator.state.notifications_of(session)) == 2
    assert connector.metric("hubject_connector_flow_messages_dropped_total",
                            flow="notifications") == 1


async def test_a_progress_retried_after_a_failure_is_not_throttled_by_itself(
    env: FlowEnv,
) -> None:
    await env.connector()
    env.simulator.faults.http_503(3, operation="ChargingNotifications")
    session = messages.new_session_id()
    result = await env.backend.result(await env.backend.send(
        messages.notification(PROGRESS, session)))

    assert result["outcome"] == "accepted"
    assert result["attempts"] == 2
    assert len(env.simulator.state.notifications_of(session)) == 1


async def test_a_notification_hubject_refuses_is_rejected_with_its_code(env: FlowEnv) -> None:
    await env.connector()
    env.simulator.faults.result_false(operation="ChargingNotifications", code="400")
    result = await env.backend.result(await env.backend.send(
        messages.notification(START, messages.new_session_id())))

    assert result["outcome"] == "rejected"
    assert result["status_code"] == "400"
    assert await env.backend.bus.list_dead_letters() == []


# --- pricing -----------------------------------------------------------------------------


async def test_pricing_products_and_evse_pricing_reach_hubject_one_at_a_time(
    env: FlowEnv,
) -> None:
    await env.connector()
    backend = env.backend
    products = await backend.send(
        messages.document(MessageType.PRICING_PRODUCTS, action_type="fullLoad"))
    assignment = await backend.send(
        messages.document(MessageType.PRICING_EVSE, action_type="fullLoad"))

    assert (await backend.result(products))["outcome"] == "accepted"
    assert (await backend.result(assignment))["outcome"] == "accepted"
    state = env.simulator.state
    assert state.pricing_products_of("DE*ABC", "DE-8PS") or state.pricing_products_of("DE*ABC")
    assert set(state.evse_pricing_of("DE*ABC")) == {
        ("DE*ABC*E123456*1", "*"), ("DE*ABC*E123456*3", "DE-8PS")}
    assert env.simulator.overlaps == []


async def test_a_pricing_push_hubject_refuses_is_rejected_with_its_info(env: FlowEnv) -> None:
    await env.connector()
    # An update of assignments Hubject does not hold: refused, with the EvseIDs named.
    refused = await env.backend.send(
        messages.document(MessageType.PRICING_EVSE, action_type="update"))
    result = await env.backend.result(refused)

    assert result["outcome"] == "rejected"
    assert result["status_code"] == "022"
    assert "DE*ABC*E123456*1" in result["additional_info"]
