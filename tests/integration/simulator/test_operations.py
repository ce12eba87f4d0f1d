"""The simulator's answers over HTTPS, as a connector would see them."""

from __future__ import annotations

from typing import Any

import pytest

from hubject_connector.oicp.operations import OPERATIONS, Direction
from tests.integration.simulator.conftest import Answer, CpoClient
from tests.unit.simulator import payloads


def status_of(answer: Answer) -> tuple[bool, str, str | None]:
    assert answer.status == 200
    body: dict[str, Any] = answer.json
    result = body["Result"] if "Result" in body else body["AuthorizationStatus"] == "Authorized"
    return result, body["StatusCode"]["Code"], body["StatusCode"].get("AdditionalInfo")


@pytest.mark.parametrize(
    "operation",
    [name for name, op in OPERATIONS.items() if op.direction is Direction.CPO_TO_HUBJECT],
)
async def test_every_operation_is_served_and_validated(cpo: CpoClient, operation: str) -> None:
    # An empty object is invalid for every operation: each path exists and validates.
    result, code, info = status_of(await cpo.post(operation, {}))
    assert (result, code) == (False, "022")
    assert info is not None
    assert "is mandatory and missing" in info


async def test_invalid_body_gets_022_with_the_pointer(cpo: CpoClient) -> None:
    body = payloads.evse_data("insert", payloads.evse_id(1))
    body["OperatorEvseData"]["EvseDataRecord"][0]["Address"]["Country"] = "Germany"
    result, code, info = status_of(await cpo.post("PushEvseData", body))
    assert (result, code) == (False, "022")
    assert info is not None
    assert info.startswith("/OperatorEvseData/EvseDataRecord/0/Address/Country: ")
    assert cpo.simulator.state.evse_data_of("DE*ABC") == {}


async def test_evse_of_another_operator_gets_018(cpo: CpoClient) -> None:
    body = payloads.evse_status("fullLoad", {payloads.evse_id(1, "DE*XYZ"): "Available"})
    assert status_of(await cpo.post("PushEvseStatus", body))[:2] == (False, "018")


async def test_operator_other_than_the_certificate_gets_017(cpo: CpoClient) -> None:
    body = payloads.evse_status("fullLoad", {payloads.evse_id(1, "DE*XYZ"): "Available"},
                                operator="DE*XYZ")
    answer = await cpo.post("PushEvseStatus", body, operator="DE*XYZ")
    assert status_of(answer)[:2] == (False, "017")
    assert cpo.simulator.state.evse_status_of("DE*XYZ") == {}


async def test_evse_data_actions(cpo: CpoClient) -> None:
    e1, e2, e3 = (payloads.evse_id(n) for n in (1, 2, 3))

    async def push(action: str, *evses: str) -> tuple[bool, str, str | None]:
        return status_of(await cpo.post("PushEvseData", payloads.evse_data(action, *evses)))

    def stored() -> set[str]:
        return set(cpo.simulator.state.evse_data_of("DE*ABC"))

    assert (await push("fullLoad", e1, e2))[:2] == (True, "000")
    assert stored() == {e1, e2}
    result, code, info = await push("insert", e2, e3)
    assert (result, code) == (False, "022")
    assert info is not None
    assert e2 in info
    assert stored() == {e1, e2}
    result, code, info = await push("update", e3)
    assert (result, code) == (False, "022")
    assert (await push("update", e1))[0] is True
    assert (await push("delete", e1))[0] is True
    assert stored() == {e2}
    assert (await push("fullLoad", e3))[0] is True
    assert stored() == {e3}


async def test_authorize_start_from_the_card_list_then_stop(cpo: CpoClient) -> None:
    cpo.simulator.cards.add(uid=payloads.UID, provider_id=payloads.PROVIDER_ID)
    start = await cpo.post("AuthorizeStart", payloads.authorize_start())
    assert start.json["AuthorizationStatus"] == "Authorized"
    assert start.json["ProviderID"] == payloads.PROVIDER_ID
    assert start.json["StatusCode"]["Code"] == "000"
    session_id = start.json["SessionID"]
    assert session_id in cpo.simulator.state.sessions

    unknown = payloads.authorize_start(payloads.mifare("0000AAAA"))
    refused = await cpo.post("AuthorizeStart", unknown)
    assert refused.json["AuthorizationStatus"] == "NotAuthorized"
    assert "SessionID" not in refused.json

    stop = await cpo.post("AuthorizeStop", payloads.authorize_stop(session_id))
    assert stop.json["AuthorizationStatus"] == "Authorized"
    assert stop.json["SessionID"] == session_id


async def test_authorize_stop_of_an_unknown_session_gets_400(cpo: CpoClient) -> None:
    answer = await cpo.post("AuthorizeStop", payloads.authorize_stop(payloads.SESSION_ID))
    assert answer.status == 200
    assert answer.json["AuthorizationStatus"] == "NotAuthorized"
    assert answer.json["StatusCode"]["Code"] == "400"


async def test_a_second_cdr_for_a_session_is_refused(cpo: CpoClient) -> None:
    assert status_of(await cpo.post("ChargeDetailRecord", payloads.cdr()))[:2] == (True, "000")
    result, code, info = status_of(await cpo.post("ChargeDetailRecord", payloads.cdr()))
    assert (result, code) == (False, "022")
    assert info == f"CDR already exists for SessionID {payloads.SESSION_ID}"
    assert list(cpo.simulator.state.cdrs) == [payloads.SESSION_ID]


async def test_notifications_and_pricing_are_accepted(cpo: CpoClient) -> None:
    sim = cpo.simulator
    assert status_of(await cpo.post("ChargingNotifications",
                                    payloads.notification_progress()))[0] is True
    assert [n.type for n in sim.state.notifications] == ["Progress"]
    assert status_of(await cpo.post("PushPricingProductData",
                                    payloads.pricing_products("fullLoad", "AC 1")))[0] is True
    assert status_of(await cpo.post("PushEVSEPricing",
                                    payloads.evse_pricing("fullLoad", payloads.evse_id(1),
                                                          "AC 1")))[0] is True
    assert sim.state.evse_pricing_of("DE*ABC") == {(payloads.evse_id(1), "*"): ("AC 1",)}


async def test_unknown_path_gets_404_with_an_oicp_body(cpo: CpoClient) -> None:
    async with cpo.session.post(cpo.simulator.url + "/evsepush/v99/nothing", data=b"{}") as r:
        assert r.status == 404
        body = await r.json()
    assert body["Result"] is False
    assert "/api/oicp/evsepush/v99/nothing" in body["StatusCode"]["AdditionalInfo"]
