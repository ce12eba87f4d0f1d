"""Hubject's rules in the simulator, without a network: status codes, pushes, sessions, CDRs."""

from __future__ import annotations

from typing import Any

import pytest

from hubject_connector.oicp.authorization import AuthorizationStart, AuthorizationStop
from hubject_connector.oicp.common import Acknowledgement
from hubject_connector.oicp.operations import OPERATIONS
from hubject_connector.simulator.hub import Hub, HubRules, Reply
from hubject_connector.simulator.recording import ClientCertificate
from hubject_connector.simulator.state import SimulatorState
from tests.unit.simulator import payloads
from tests.unit.simulator.conftest import Clock, client_certificate

PARAMS = {"operatorID": payloads.OPERATOR_ID}


def call(hub: Hub, operation: str, body: dict[str, Any] | bytes,
         client: ClientCertificate | None, params: dict[str, str] | None = None) -> Reply:
    raw = body if isinstance(body, bytes) else payloads.encode(body)
    op = OPERATIONS[operation]
    return hub.handle(op, PARAMS if params is None and "{operatorID}" in op.path else params or {},
                      raw, client)


def ack(reply: Reply) -> Acknowledgement:
    assert reply.http_status == 200
    assert isinstance(reply.answer, Acknowledgement)
    return reply.answer


def test_valid_status_push_is_stored(hub: Hub, state: SimulatorState,
                                     abc_client: ClientCertificate) -> None:
    reply = call(hub, "PushEvseStatus",
                 payloads.evse_status("fullLoad", {payloads.evse_id(1): "Available"}),
                 abc_client)
    answer = ack(reply)
    assert answer.result is True
    assert answer.status_code.code == "000"
    assert state.evse_status_of("DE*ABC") == {"DE*ABC*E1": "Available"}
    # The operator is the same however its ID is written.
    assert state.evse_status_of("DEABC") == {"DE*ABC*E1": "Available"}


def test_invalid_body_gets_022_naming_the_pointer(hub: Hub, state: SimulatorState,
                                                  abc_client: ClientCertificate) -> None:
    body = payloads.evse_status("update", {payloads.evse_id(1): "Sleeping"})
    answer = ack(call(hub, "PushEvseStatus", body, abc_client))
    assert answer.result is False
    assert answer.status_code.code == "022"
    assert "/OperatorEvseStatus/EvseStatusRecord/0/EvseStatus" in (
        answer.status_code.additional_info or "")
    assert state.evse_status_of("DE*ABC") == {}


def test_body_that_is_not_json_gets_022(hub: Hub, abc_client: ClientCertificate) -> None:
    answer = ack(call(hub, "PushEvseStatus", b"{not json", abc_client))
    assert (answer.result, answer.status_code.code) == (False, "022")
    assert "JSON" in (answer.status_code.additional_info or "")


def test_evse_of_another_operator_gets_018(hub: Hub, state: SimulatorState,
                                           abc_client: ClientCertificate) -> None:
    body = payloads.evse_data("insert", payloads.evse_id(1),
                              payloads.evse_id(2, payloads.OTHER_OPERATOR_ID))
    answer = ack(call(hub, "PushEvseData", body, abc_client))
    assert (answer.result, answer.status_code.code) == (False, "018")
    assert "DE*XYZ*E2" in (answer.status_code.additional_info or "")
    # The whole push is refused: the valid record is not stored either.
    assert state.evse_data_of("DE*ABC") == {}


def test_sub_operator_evse_ids_are_accepted_when_configured(
    state: SimulatorState, clock: Clock, abc_client: ClientCertificate
) -> None:
    hub = Hub(state, HubRules(sub_operators={"DE*ABC": ("DE*XYZ",)}), clock=clock)
    body = payloads.evse_data("insert", payloads.evse_id(2, payloads.OTHER_OPERATOR_ID))
    assert ack(call(hub, "PushEvseData", body, abc_client)).result is True


def test_path_operator_other_than_certificate_gets_017(hub: Hub, state: SimulatorState,
                                                        abc_client: ClientCertificate) -> None:
    body = payloads.evse_status("fullLoad", {payloads.evse_id(1, "DE*XYZ"): "Available"},
                                operator="DE*XYZ")
    answer = ack(call(hub, "PushEvseStatus", body, abc_client, {"operatorID": "DE*XYZ"}))
    assert (answer.result, answer.status_code.code) == (False, "017")
    assert state.evse_status_of("DE*XYZ") == {}


def test_body_operator_other_than_certificate_gets_017(hub: Hub,
                                                       abc_client: ClientCertificate) -> None:
    body = payloads.evse_data("fullLoad", payloads.evse_id(1), operator="DE*XYZ")
    answer = ack(call(hub, "PushEvseData", body, abc_client))
    assert answer.status_code.code == "017"


def test_017_comes_before_validation(hub: Hub) -> None:
    # Spec: the partner check runs at the beginning of every operation.
    other = client_certificate("DE*XYZ")
    answer = ack(call(hub, "PushEvseStatus", b"{}", other))
    assert answer.status_code.code == "017"


def test_evse_data_actions(hub: Hub, state: SimulatorState,
                          abc_client: ClientCertificate) -> None:
    e1, e2, e3 = (payloads.evse_id(n) for n in (1, 2, 3))

    def push(action: str, *evses: str) -> Acknowledgement:
        return ack(call(hub, "PushEvseData", payloads.evse_data(action, *evses), abc_client))

    assert push("fullLoad", e1, e2).result is True
    assert set(state.evse_data_of("DE*ABC")) == {e1, e2}

    refused = push("insert", e3, e2)
    assert (refused.result, refused.status_code.code) == (False, "022")
    assert e2 in (refused.status_code.additional_info or "")
    assert set(state.evse_data_of("DE*ABC")) == {e1, e2}, "a refused insert stores nothing"
    assert push("insert", e3).result is True

    refused = push("update", e1, payloads.evse_id(9))
    assert (refused.result, refused.status_code.code) == (False, "022")
    assert "DE*ABC*E9" in (refused.status_code.additional_info or "")
    assert push("update", e1).result is True

    assert push("delete", e2, payloads.evse_id(9)).result is True
    assert set(state.evse_data_of("DE*ABC")) == {e1, e3}

    assert push("fullLoad", e2).result is True
    assert set(state.evse_data_of("DE*ABC")) == {e2}, "fullLoad replaces the whole set"
    assert push("fullLoad").result is True
    assert state.evse_data_of("DE*ABC") == {}


def test_status_update_of_an_evse_without_status_is_refused(
    hub: Hub, state: SimulatorState, abc_client: ClientCertificate
) -> None:
    e1 = payloads.evse_id(1)
    answer = ack(call(hub, "PushEvseStatus", payloads.evse_status("update", {e1: "Occupied"}),
                      abc_client))
    assert (answer.result, answer.status_code.code) == (False, "022")
    # A status needs no data record: insert works for an EVSE never pushed as data.
    assert ack(call(hub, "PushEvseStatus", payloads.evse_status("insert", {e1: "Available"}),
                    abc_client)).result is True
    assert ack(call(hub, "PushEvseStatus", payloads.evse_status("update", {e1: "Occupied"}),
                    abc_client)).result is True
    assert state.evse_status_of("DE*ABC") == {e1: "Occupied"}


def test_status_updates_may_insert_when_configured(state: SimulatorState, clock: Clock,
                                                   abc_client: ClientCertificate) -> None:
    hub = Hub(state, HubRules(status_update_upserts=True), clock=clock)
    body = payloads.evse_status("update", {payloads.evse_id(1): "Occupied"})
    assert ack(call(hub, "PushEvseStatus", body, abc_client)).result is True
    assert state.evse_status_of("DE*ABC") == {"DE*ABC*E1": "Occupied"}


def test_pricing_pushes(hub: Hub, state: SimulatorState, abc_client: ClientCertificate) -> None:
    assert ack(call(hub, "PushPricingProductData",
                    payloads.pricing_products("fullLoad", "AC 1", "DC 1"), abc_client)).result
    assert set(state.pricing_products_of("DE*ABC")) == {"AC 1", "DC 1"}
    refused = ack(call(hub, "PushPricingProductData",
                       payloads.pricing_products("insert", "AC 1"), abc_client))
    assert (refused.result, refused.status_code.code) == (False, "022")

    e1 = payloads.evse_id(1)
    assert ack(call(hub, "PushEVSEPricing", payloads.evse_pricing("insert", e1, "AC 1"),
                    abc_client)).result
    assert state.evse_pricing_of("DE*ABC") == {(e1, "*"): ("AC 1",)}
    foreign = payloads.evse_pricing("insert", payloads.evse_id(1, "DE*XYZ"), "AC 1")
    assert ack(call(hub, "PushEVSEPricing", foreign, abc_client)).status_code.code == "018"


def authorization_start(reply: Reply) -> AuthorizationStart:
    assert reply.http_status == 200
    assert isinstance(reply.answer, AuthorizationStart)
    return reply.answer


def authorization_stop(reply: Reply) -> AuthorizationStop:
    assert reply.http_status == 200
    assert isinstance(reply.answer, AuthorizationStop)
    return reply.answer


def test_authorize_start_of_a_listed_card(hub: Hub, state: SimulatorState,
                                          abc_client: ClientCertificate) -> None:
    first = authorization_start(call(hub, "AuthorizeStart", payloads.authorize_start(),
                                     abc_client))
    second = authorization_start(call(hub, "AuthorizeStart", payloads.authorize_start(),
                                      abc_client))
    assert first.authorized
    assert second.authorized
    assert first.status_code.code == "000"
    assert first.provider_id == payloads.PROVIDER_ID
    assert first.cpo_partner_session_id == "cpo-17"
    assert first.session_id is not None
    assert second.session_id is not None
    assert first.session_id != second.session_id, "each authorization opens a new session"
    assert set(state.sessions) == {first.session_id, second.session_id}


def test_authorize_start_by_contract_id_takes_the_provider_from_it(
    hub: Hub, abc_client: ClientCertificate
) -> None:
    body = payloads.authorize_start(
        {"RemoteIdentification": {"EvcoID": "DE8EOCAB1234567"}}
    )
    answer = authorization_start(call(hub, "AuthorizeStart", body, abc_client))
    assert answer.authorized
    assert answer.provider_id == "DE-8EO"


@pytest.mark.parametrize(("uid", "code"), [("0000AAAA", "102"), ("0BADCAFE", "106")])
def test_authorize_start_refused(hub: Hub, state: SimulatorState, abc_client: ClientCertificate,
                                 uid: str, code: str) -> None:
    body = payloads.authorize_start(payloads.mifare(uid))
    answer = authorization_start(call(hub, "AuthorizeStart", body, abc_client))
    assert not answer.authorized
    assert answer.status_code.code == code
    assert answer.session_id is None
    assert state.sessions == {}


def test_card_list_changes_take_effect(hub: Hub, state: SimulatorState,
                                       abc_client: ClientCertificate) -> None:
    body = payloads.authorize_start(payloads.mifare("0000AAAA"))
    assert not authorization_start(call(hub, "AuthorizeStart", body, abc_client)).authorized
    state.cards.add(uid="0000AAAA")
    assert authorization_start(call(hub, "AuthorizeStart", body, abc_client)).authorized


def test_invalid_authorize_start_answers_in_its_own_message(
    hub: Hub, abc_client: ClientCertificate
) -> None:
    body = payloads.authorize_start(payloads.mifare("lowercase!"))
    answer = authorization_start(call(hub, "AuthorizeStart", body, abc_client))
    assert not answer.authorized
    assert answer.status_code.code == "022"
    assert "/Identification/RFIDMifareFamilyIdentification/UID" in (
        answer.status_code.additional_info or "")


def test_authorize_stop(hub: Hub, abc_client: ClientCertificate) -> None:
    start = authorization_start(call(hub, "AuthorizeStart", payloads.authorize_start(),
                                     abc_client))
    assert start.session_id is not None
    stop = authorization_stop(call(hub, "AuthorizeStop",
                                   payloads.authorize_stop(start.session_id), abc_client))
    assert stop.authorized
    assert (stop.session_id, stop.provider_id) == (start.session_id, payloads.PROVIDER_ID)


def test_authorize_stop_with_another_card_is_refused(hub: Hub,
                                                     abc_client: ClientCertificate) -> None:
    start = authorization_start(call(hub, "AuthorizeStart", payloads.authorize_start(),
                                     abc_client))
    assert start.session_id is not None
    body = payloads.authorize_stop(start.session_id, payloads.mifare("0000AAAA"))
    stop = authorization_stop(call(hub, "AuthorizeStop", body, abc_client))
    assert not stop.authorized


def test_authorize_stop_of_an_unknown_session_gets_400(hub: Hub,
                                                       abc_client: ClientCertificate) -> None:
    stop = authorization_stop(call(hub, "AuthorizeStop",
                                   payloads.authorize_stop(payloads.SESSION_ID), abc_client))
    assert not stop.authorized
    assert stop.status_code.code == "400"
    assert stop.session_id == payloads.SESSION_ID


def test_only_one_cdr_per_session(hub: Hub, state: SimulatorState,
                                  abc_client: ClientCertificate) -> None:
    first = ack(call(hub, "ChargeDetailRecord", payloads.cdr(), abc_client))
    assert (first.result, first.status_code.code) == (True, "000")
    assert first.session_id == payloads.SESSION_ID
    second = ack(call(hub, "ChargeDetailRecord", payloads.cdr(), abc_client))
    assert (second.result, second.status_code.code) == (False, "022")
    assert "CDR already exists" in (second.status_code.additional_info or "")
    assert list(state.cdrs) == [payloads.SESSION_ID]


def test_cdr_for_unknown_session_when_sessions_are_required(
    state: SimulatorState, clock: Clock, abc_client: ClientCertificate
) -> None:
    hub = Hub(state, HubRules(cdr_requires_known_session=True), clock=clock)
    answer = ack(call(hub, "ChargeDetailRecord", payloads.cdr(), abc_client))
    assert (answer.result, answer.status_code.code) == (False, "400")
    start = authorization_start(call(hub, "AuthorizeStart", payloads.authorize_start(),
                                     abc_client))
    assert start.session_id is not None
    assert ack(call(hub, "ChargeDetailRecord", payloads.cdr(start.session_id),
                    abc_client)).result is True


def test_cdr_of_another_operators_evse_gets_018(hub: Hub, abc_client: ClientCertificate) -> None:
    body = payloads.cdr(evse=payloads.evse_id(1, "DE*XYZ"))
    assert ack(call(hub, "ChargeDetailRecord", body, abc_client)).status_code.code == "018"


def test_progress_notifications_closer_than_5_minutes_are_noted(
    hub: Hub, state: SimulatorState, clock: Clock, abc_client: ClientCertificate
) -> None:
    for minutes in (0, 6, 2):
        clock.advance(minutes=minutes)
        answer = ack(call(hub, "ChargingNotifications", payloads.notification_progress(),
                          abc_client))
        assert answer.result is True
    assert len(state.notifications_of(payloads.SESSION_ID)) == 3
    assert [n.session_id for n in hub.progress_too_soon] == [payloads.SESSION_ID]


def test_notification_of_another_operator_gets_017(hub: Hub) -> None:
    answer = ack(call(hub, "ChargingNotifications", payloads.notification_progress(),
                      client_certificate("DE*XYZ")))
    assert answer.status_code.code == "017"


def test_answers_encode_as_oicp_json(hub: Hub, abc_client: ClientCertificate) -> None:
    reply = call(hub, "ChargeDetailRecord", payloads.cdr(), abc_client)
    assert reply.body() == (
        b'{"Result":true,"StatusCode":{"Code":"000","Description":"Success."},'
        b'"SessionID":"5e7c1a2b-0d3f-4a6e-9b8c-1f2e3d4c5b6a"}'
    )
