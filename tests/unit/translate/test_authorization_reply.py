"""Hubject's answer to an authorization, as the reply data the backend receives."""

from __future__ import annotations

import dataclasses
from datetime import UTC
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hubject_connector.bus.contract import MessageType, make_envelope
from hubject_connector.oicp import codec
from hubject_connector.oicp.authorization import AuthorizationStart, AuthorizationStop
from hubject_connector.oicp.common import Identification, StatusCode
from hubject_connector.translate.outbound import authorization_reply, authorize_start
from hubject_connector.translate.payload import Payload
from tests.strategies import from_model
from tests.unit.translate.conftest import CTX, documented_data

SESSION = "b2688855-7f00-0002-6d8e-48d883f6abb6"
REQUEST_ID = "c0a80101-0000-4000-8000-000000000205"


def reply(message_type: MessageType, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` after the contract checked it as the reply to a request."""
    return make_envelope(message_type, data, correlation_id=REQUEST_ID).data


def test_an_authorized_start_with_every_kind_of_stop_identification() -> None:
    answer = codec.load(AuthorizationStart, {
        "AuthorizationStatus": "Authorized",
        "SessionID": SESSION,
        "CPOPartnerSessionID": "cpo-session-4711",
        "EMPPartnerSessionID": "emp-0815",
        "ProviderID": "DE-8PS",
        "StatusCode": {"Code": "000", "Description": "Success", "AdditionalInfo": "ok"},
        "AuthorizationStopIdentifications": [
            {"RFIDMifareFamilyIdentification": {"UID": "04A2B3C4D5E6F7"}},
            {"RFIDIdentification": {"UID": "1234ABCD", "RFID": "mifareCls",
                                    "EvcoID": "DE-8PS-C12345678-9", "PrintedNumber": "4711",
                                    "ExpiryDate": "2027-12-31T23:59:59+01:00"}},
            {"QRCodeIdentification": {"EvcoID": "DE-8PS-C12345678-9", "PIN": "1234"}},
            {"QRCodeIdentification": {"EvcoID": "DE-8PS-C12345678-9",
                                      "HashedPIN": {"Value": "$2a$10$Z3J0ZXN0c2FsdA.h3sP1n",
                                                    "Function": "Bcrypt"}}},
            {"PlugAndChargeIdentification": {"EvcoID": "DE-8PS-C12345678-9"}},
            {"RemoteIdentification": {"EvcoID": "DE-8PS-C12345678-9"}},
        ],
    })
    assert reply(MessageType.AUTHORIZATION_START_REPLY, authorization_reply(answer)) == {
        "authorization_status": "Authorized",
        "session_id": SESSION,
        "cpo_partner_session_id": "cpo-session-4711",
        "emp_partner_session_id": "emp-0815",
        "provider_id": "DE-8PS",
        "status_code": "000",
        "status_description": "Success",
        "additional_info": "ok",
        "authorization_stop_identifications": [
            {"kind": "rfid_mifare_family", "uid": "04A2B3C4D5E6F7"},
            {"kind": "rfid", "uid": "1234ABCD", "rfid_type": "mifareCls",
             "evco_id": "DE-8PS-C12345678-9", "printed_number": "4711",
             "expiry_date": "2027-12-31T23:59:59+01:00"},
            {"kind": "qr_code", "evco_id": "DE-8PS-C12345678-9", "pin": "1234"},
            {"kind": "qr_code", "evco_id": "DE-8PS-C12345678-9",
             "hashed_pin": {"value": "$2a$10$Z3J0ZXN0c2FsdA.h3sP1n", "function": "Bcrypt"}},
            {"kind": "plug_and_charge", "evco_id": "DE-8PS-C12345678-9"},
            {"kind": "remote", "evco_id": "DE-8PS-C12345678-9"},
        ],
    }


def test_a_refused_stop_as_documented() -> None:
    answer = codec.load(AuthorizationStop, {
        "AuthorizationStatus": "NotAuthorized",
        "SessionID": SESSION,
        "ProviderID": "DE-8PS",
        "StatusCode": {"Code": "102", "Description": "RFID Authentication failed - invalid UID"},
    })
    expected = documented_data(MessageType.AUTHORIZATION_STOP_REPLY)
    assert reply(MessageType.AUTHORIZATION_STOP_REPLY, authorization_reply(answer)) == expected


def test_the_documented_start_reply() -> None:
    answer = codec.load(AuthorizationStart, {
        "AuthorizationStatus": "Authorized",
        "SessionID": SESSION,
        "CPOPartnerSessionID": "cpo-session-4711",
        "ProviderID": "DE-8PS",
        "StatusCode": {"Code": "000", "Description": "Success"},
        "AuthorizationStopIdentifications": [
            {"RFIDMifareFamilyIdentification": {"UID": "04A2B3C4D5E6F7"}}
        ],
    })
    expected = documented_data(MessageType.AUTHORIZATION_START_REPLY)
    assert reply(MessageType.AUTHORIZATION_START_REPLY, authorization_reply(answer)) == expected


def test_empty_texts_of_hubject_are_left_out() -> None:
    # Hubject's examples send "" for absent descriptions; the contract's texts are never empty.
    answer = codec.load(AuthorizationStart, {
        "AuthorizationStatus": "NotAuthorized",
        "StatusCode": {"Code": "320", "Description": "", "AdditionalInfo": ""},
        "CPOPartnerSessionID": "",
        "AuthorizationStopIdentifications": [],
    })
    assert reply(MessageType.AUTHORIZATION_START_REPLY, authorization_reply(answer)) == {
        "authorization_status": "NotAuthorized", "status_code": "320"
    }


def _without_empty_texts(value: Any) -> Any:
    """``value`` with empty optional texts as None: the contract cannot carry an empty one."""
    if isinstance(value, list):
        return [_without_empty_texts(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: None if getattr(value, f.name) == "" else _without_empty_texts(
                getattr(value, f.name))
            for f in dataclasses.fields(value)
        }
        return dataclasses.replace(value, **changes)
    return value


def _back(data: dict[str, Any]) -> Identification:
    """A contract identification read back the way a request's is."""
    payload = Payload(UTC)
    return payload.load(Identification, payload.value(Identification, data, "/data/x", ""))


# Hubject's codes are three digits; the generic generator writes any three characters.
ANSWERS = from_model(
    AuthorizationStart,
    status_code=from_model(StatusCode, code=st.from_regex(r"[0-9]{3}", fullmatch=True)),
)


@given(answer=ANSWERS)
def test_any_answer_makes_a_valid_reply_whose_identifications_map_back(
    answer: AuthorizationStart,
) -> None:
    data = reply(MessageType.AUTHORIZATION_START_REPLY, authorization_reply(answer))
    assert data["authorization_status"] == answer.authorization_status.value
    assert data["status_code"] == answer.status_code.code
    assert data.get("session_id") == (answer.session_id or None)
    sent_back = data.get("authorization_stop_identifications", [])
    assert [_back(item) for item in sent_back] == _without_empty_texts(
        answer.authorization_stop_identifications or []
    )


@given(answer=from_model(AuthorizationStop, status_code=ANSWERS.map(lambda a: a.status_code)))
def test_any_stop_answer_makes_a_valid_reply(answer: AuthorizationStop) -> None:
    data = reply(MessageType.AUTHORIZATION_STOP_REPLY, authorization_reply(answer))
    assert data["authorization_status"] == answer.authorization_status.value
    assert "authorization_stop_identifications" not in data


def test_a_reply_identification_is_what_a_request_would_send() -> None:
    answer = codec.load(AuthorizationStart, {
        "AuthorizationStatus": "Authorized", "SessionID": SESSION,
        "StatusCode": {"Code": "000"},
        "AuthorizationStopIdentifications": [
            {"QRCodeIdentification": {"EvcoID": "DE-8PS-C12345678-9", "PIN": "1234"}}
        ],
    })
    (stop,) = authorization_reply(answer)["authorization_stop_identifications"]
    data = documented_data(MessageType.AUTHORIZATION_START_REQUEST)
    data["identification"] = stop
    assert authorize_start(data, CTX).identification == (
        answer.authorization_stop_identifications or []
    )[0]
