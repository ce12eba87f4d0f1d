"""translate/inbound.py: Hubject's remote requests as contract commands, replies as answers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hubject_connector.bus.contract import MessageType, make_envelope
from hubject_connector.oicp import codec
from hubject_connector.oicp.common import Acknowledgement
from hubject_connector.oicp.remote import (
    AuthorizeRemoteReservationStart,
    AuthorizeRemoteReservationStop,
    AuthorizeRemoteStart,
    AuthorizeRemoteStop,
)
from hubject_connector.translate import inbound
from hubject_connector.translate.errors import TranslationError

SESSION = "b2688855-7f00-0002-6d8e-48d883f6abb6"
EVSE = "DE*ABC*E123456*1"
EVCO = "DE-8PS-C12345678-9"


def remote_start(**changes: Any) -> AuthorizeRemoteStart:
    """An eRoamingAuthorizeRemoteStart, decoded by the OICP layer."""
    body: dict[str, Any] = {
        "SessionID": SESSION, "ProviderID": "DE-8PS", "EvseID": EVSE,
        "Identification": {"RemoteIdentification": {"EvcoID": EVCO}},
        "EMPPartnerSessionID": "emp-1", "PartnerProductID": "AC 22kW",
    }
    body.update(changes)
    return codec.load(AuthorizeRemoteStart, body)


def reservation(identification: dict[str, Any], **changes: Any) -> AuthorizeRemoteReservationStart:
    """An eRoamingAuthorizeRemoteReservationStart with ``identification``."""
    body: dict[str, Any] = {"ProviderID": "DE-8PS", "EvseID": EVSE,
                            "Identification": identification, "Duration": 30}
    body.update(changes)
    return codec.load(AuthorizeRemoteReservationStart, body)


def command(request: Any) -> dict[str, Any]:
    """The command envelope as the contract checks it (raises if it breaks the contract)."""
    envelope = make_envelope(
        inbound.command_type(request), inbound.command_data(request),
        subject=inbound.command_subject(request),
        deadline=datetime.now(UTC) + timedelta(seconds=8),
    )
    return envelope.data


def test_a_remote_start_becomes_the_contracts_remote_start_command() -> None:
    request = remote_start()
    assert inbound.command_type(request) is MessageType.REMOTE_START_COMMAND
    assert inbound.command_subject(request) == EVSE
    assert command(request) == {
        "session_id": SESSION, "emp_partner_session_id": "emp-1", "provider_id": "DE-8PS",
        "evse_id": EVSE, "identification": {"kind": "remote", "evco_id": EVCO},
        "partner_product_id": "AC 22kW",
    }


@pytest.mark.parametrize(
    ("model", "kind"),
    [(AuthorizeRemoteStop, MessageType.REMOTE_STOP_COMMAND),
     (AuthorizeRemoteReservationStop, MessageType.RESERVATION_STOP_COMMAND)],
)
def test_stops_become_stop_commands_about_the_session(model: type, kind: MessageType) -> None:
    request: Any = codec.load(model, {"SessionID": SESSION, "ProviderID": "DE-8PS",
                                      "EvseID": EVSE, "CPOPartnerSessionID": "cpo-9"})
    assert inbound.command_type(request) is kind
    assert inbound.command_subject(request) == SESSION
    assert command(request) == {"session_id": SESSION, "cpo_partner_session_id": "cpo-9",
                                "provider_id": "DE-8PS", "evse_id": EVSE}


@pytest.mark.parametrize(
    ("identification", "expected"),
    [
        ({"RemoteIdentification": {"EvcoID": EVCO}}, {"kind": "remote", "evco_id": EVCO}),
        ({"RFIDMifareFamilyIdentification": {"UID": "1234ABCD"}},
         {"kind": "rfid_mifare_family", "uid": "1234ABCD"}),
        ({"PlugAndChargeIdentification": {"EvcoID": EVCO}},
         {"kind": "plug_and_charge", "evco_id": EVCO}),
        ({"RFIDIdentification": {"UID": "1234ABCD", "RFID": "mifareCls", "EvcoID": EVCO,
                                 "PrintedNumber": "42", "ExpiryDate": "2030-01-01T00:00:00Z"}},
         {"kind": "rfid", "uid": "1234ABCD", "rfid_type": "mifareCls", "evco_id": EVCO,
          "printed_number": "42", "expiry_date": "2030-01-01T00:00:00+00:00"}),
        ({"QRCodeIdentification": {"EvcoID": EVCO, "HashedPIN": {
            "Value": "$2a$10$abcdefghijklmnopqrstuv", "Function": "Bcrypt",
            "LegacyHashData": {"Function": "MD5", "Salt": "s", "Value": "v"}}}},
         {"kind": "qr_code", "evco_id": EVCO, "hashed_pin": {
             "value": "$2a$10$abcdefghijklmnopqrstuv", "function": "Bcrypt",
             "legacy_hash_data": {"function": "MD5", "salt": "s", "value": "v"}}}),
        ({"QRCodeIdentification": {"EvcoID": EVCO, "PIN": "1234"}},
         {"kind": "qr_code", "evco_id": EVCO, "pin": "1234"}),
    ],
    ids=["remote", "mifare", "plug-and-charge", "rfid", "qr-hashed", "qr-pin"],
)
def test_a_reservation_carries_any_identification_as_the_contract_writes_it(
    identification: dict[str, Any], expected: dict[str, Any]
) -> None:
    data = command(reservation(identification))
    assert data["identification"] == expected
    assert data["duration_minutes"] == 30
    assert "session_id" not in data  # optional in a reservation start


def test_a_reservation_with_a_session_id_is_about_its_evse() -> None:
    request = reservation({"RemoteIdentification": {"EvcoID": EVCO}}, SessionID=SESSION)
    assert inbound.command_subject(request) == EVSE
    assert command(request)["session_id"] == SESSION


def test_the_backends_reply_becomes_the_acknowledgement() -> None:
    ack = inbound.acknowledgement(
        {"result": True, "status_code": "000", "cpo_partner_session_id": "cpo-1"},
        remote_start(),
    )
    assert isinstance(ack, Acknowledgement)
    assert (ack.result, ack.status_code.code) == (True, "000")
    assert ack.status_code.description == "Success."
    assert ack.session_id == SESSION  # from the request: the reply left it out
    assert ack.cpo_partner_session_id == "cpo-1"
    assert ack.emp_partner_session_id == "emp-1"


def test_a_refusal_keeps_the_backends_own_words() -> None:
    ack = inbound.acknowledgement(
        {"result": False, "status_code": "602", "status_description": "In use",
         "additional_info": "cable locked", "session_id": str(uuid.UUID(int=1))},
        remote_start(),
    )
    assert (ack.result, ack.status_code.code) == (False, "602")
    assert ack.status_code.description == "In use"
    assert ack.status_code.additional_info == "cable locked"
    assert ack.session_id == str(uuid.UUID(int=1))


def test_a_reply_without_result_or_code_is_refused_naming_both() -> None:
    with pytest.raises(TranslationError) as refused:
        inbound.acknowledgement({"status_code": "0"}, remote_start())
    assert [issue.pointer for issue in refused.value.issues] == [
        "/data/result", "/data/status_code"
    ]


def test_a_data_error_names_each_field_and_fits_the_acknowledgement() -> None:
    issues = [f"/EvseID: problem {i} " + "x" * 100 for i in range(20)]
    ack = inbound.data_error(issues, session_id="not a session id")
    assert (ack.result, ack.status_code.code) == (False, "022")
    assert ack.status_code.description == "Data error."
    info = ack.status_code.additional_info
    assert info is not None
    assert info.startswith("/EvseID: problem 0")
    assert len(info) == inbound.ADDITIONAL_INFO_MAX
    assert ack.session_id is None
    # What goes on the wire is a valid eRoamingAcknowledgement.
    assert codec.decode(Acknowledgement, codec.encode(ack)) == ack


def test_the_connectors_own_refusal_echoes_the_requests_session_ids() -> None:
    ack = inbound.refusal("501", "no answer", request=remote_start())
    assert (ack.result, ack.status_code.code) == (False, "501")
    assert ack.status_code.description == "Communication to EVSE failed."
    assert (ack.session_id, ack.emp_partner_session_id) == (SESSION, "emp-1")
