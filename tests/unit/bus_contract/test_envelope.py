"""Reading and writing envelopes: what a backend sees when it gets the contract right or wrong."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from hubject_connector.bus.contract import (
    DEFAULT_SOURCE,
    ContractError,
    Envelope,
    MessageType,
    Outcome,
    make_delivery_result,
    make_envelope,
    make_reply,
    parse_envelope,
    validate_envelope,
)
from hubject_connector.errors import BusError
from hubject_connector.oicp.evse import EvseStatus

Example = Callable[[MessageType], dict[str, Any]]
EVSE_ID = "DE*ABC*E123456*1"
SESSION_ID = "b2688855-7f00-0002-6d8e-48d883f6abb6"


def issues_of(document: Any) -> list[str]:
    """The issues parse_envelope reports for ``document`` (bytes are sent as they are)."""
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    with pytest.raises(ContractError) as caught:
        parse_envelope(raw)
    return [str(issue) for issue in caught.value.issues]


# --- reading -----------------------------------------------------------------------------


def test_a_valid_message_is_read_with_its_attributes(example: Example) -> None:
    document = example(MessageType.AUTHORIZATION_START_REQUEST)
    document["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    document["tenant"] = "eu1"
    envelope = parse_envelope(json.dumps(document).encode())
    assert envelope.type is MessageType.AUTHORIZATION_START_REQUEST
    assert envelope.id == document["id"]
    assert envelope.source == "urn:cpo-backend:eu-1"
    assert envelope.subject == EVSE_ID
    assert envelope.time == datetime(2024, 5, 1, 12, 29, 58, tzinfo=UTC)
    assert envelope.deadline == datetime(2024, 5, 1, 12, 30, 8, tzinfo=UTC)
    assert envelope.data["identification"] == {"kind": "rfid_mifare_family", "uid": "1234ABCD"}
    assert envelope.extensions == {"traceparent": document["traceparent"], "tenant": "eu1"}
    assert envelope.spec.reply_type is MessageType.AUTHORIZATION_START_REPLY


def test_text_and_memoryview_are_read_like_bytes(example: Example) -> None:
    raw = json.dumps(example(MessageType.EVSE_STATUS))
    assert parse_envelope(raw) == parse_envelope(memoryview(raw.encode())) == parse_envelope(
        raw.encode()
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", "is not valid JSON: Expecting property name enclosed in double quotes "
                       "at line 1 column 2"),
        (b"", "is not valid JSON: Expecting value at line 1 column 1"),
        (b'{"id": NaN}', "is not valid JSON: NaN is not a JSON number"),
        (b"\xff\xfe{}", "is not UTF-8 text (byte 0: invalid start byte)"),
        (b"[]", "must be a JSON object (a CloudEvents envelope), not list"),
        (b'"hello"', "must be a JSON object (a CloudEvents envelope), not str"),
    ],
)
def test_what_is_not_a_json_object_is_refused(raw: bytes, expected: str) -> None:
    assert issues_of(raw) == [expected]


def test_a_contract_error_is_a_permanent_bus_error(example: Example) -> None:
    document = example(MessageType.EVSE_STATUS)
    document["data"]["status"] = "Busy"
    with pytest.raises(ContractError) as caught:
        parse_envelope(json.dumps(document))
    error = caught.value
    assert isinstance(error, BusError)
    assert error.transient is False
    # The id and type are kept so that a delivery result can refer to the message.
    assert (error.message_id, error.message_type) == (document["id"], document["type"])
    assert str(error) == ('/data/status: must be one of: "Available", "Reserved", '
                          '"Occupied", "OutOfService", "EvseNotFound", "Unknown"')


@pytest.mark.parametrize(
    "attribute", ["specversion", "id", "source", "type", "time", "datacontenttype", "data"]
)
def test_a_missing_envelope_attribute_is_named(example: Example, attribute: str) -> None:
    document = example(MessageType.EVSE_STATUS)
    del document[attribute]
    assert issues_of(document) == [f"/{attribute}: is required"]


@pytest.mark.parametrize(
    ("attribute", "value", "expected"),
    [
        ("specversion", "0.3", '/specversion: must be "1.0"'),
        ("datacontenttype", "text/plain", '/datacontenttype: must be "application/json"'),
        ("id", "", "/id: must not be empty"),
        ("id", "has space", "/id: does not match the message id pattern"),
        ("type", "evse.status", "/type: does not match the message type pattern"),
        ("data", [1, 2], "/data: must be a JSON object"),
        ("time", 1714566600, "/time: must be a string (date-time with offset, "
                             'e.g. "2024-05-01T14:30:00+02:00")'),
        ("time", "2024-05-01T14:30:00", "/time: does not match the date-time with offset "
                                        'pattern, e.g. "2024-05-01T14:30:00+02:00"'),
        ("time", "2024-02-30T14:30:00+02:00", "/time: is not a valid date-time with offset"),
        ("time", "2024-05-01T14:30:00Z\n", "/time: does not match the date-time with offset "
                                           'pattern, e.g. "2024-05-01T14:30:00+02:00"'),
        ("correlation_id", "x", "/correlation_id: is not allowed here: not a valid "
                                "CloudEvents attribute name (lower-case letters and digits, "
                                "at most 20)"),
        ("tenant", {"a": 1}, "/tenant: must be a string or an integer or a boolean"),
        ("tenant\n", "eu1", '"/tenant\\n": is not allowed here: not a valid CloudEvents '
                           "attribute name (lower-case letters and digits, at most 20)"),
    ],
)
def test_a_broken_envelope_attribute_is_named_with_its_rule(
    example: Example, attribute: str, value: Any, expected: str
) -> None:
    document = example(MessageType.EVSE_STATUS)
    document[attribute] = value
    assert issues_of(document) == [expected]


def test_an_unknown_type_is_refused_with_its_name(example: Example) -> None:
    document = example(MessageType.EVSE_STATUS)
    document["type"] = "com.hubject-connector.evse.status.v2"
    assert issues_of(document) == [
        "/type: is not a known message type: 'com.hubject-connector.evse.status.v2' "
        "(see docs/contract.md for the list)"
    ]


def test_a_missing_data_field_is_named(example: Example) -> None:
    document = example(MessageType.CDR)
    del document["data"]["session_id"]
    assert issues_of(document) == ["/data/session_id: is required"]


def test_a_bad_id_is_named_with_its_pattern(example: Example) -> None:
    document = example(MessageType.EVSE_STATUS)
    document["data"]["evse_id"] = "DE*ABC*1"
    assert issues_of(document) == [
        '/data/evse_id: does not match the EvseID pattern, e.g. "DE*ABC*E123456*1"'
    ]


def test_an_id_with_a_trailing_newline_is_refused(example: Example) -> None:
    # Python's "$" matches before a final newline; JSON Schema's (ECMA-262) does not.
    document = example(MessageType.EVSE_STATUS)
    document["data"]["evse_id"] = EVSE_ID + "\n"
    assert issues_of(document) == [
        '/data/evse_id: does not match the EvseID pattern, e.g. "DE*ABC*E123456*1"'
    ]


def test_a_decimal_sent_as_a_number_is_refused(example: Example) -> None:
    document = example(MessageType.CDR)
    document["data"]["consumed_energy"] = 22.345
    document["data"]["meter_values_in_between"][1] = 1245
    assert issues_of(document) == [
        '/data/consumed_energy: must be a string (decimal with at most 3 places, '
        'e.g. "12.345")',
        '/data/meter_values_in_between/1: must be a string (decimal with at most 3 places, '
        'e.g. "12.345")',
    ]


def test_energy_with_four_places_is_refused(example: Example) -> None:
    document = example(MessageType.NOTIFICATION_END)
    document["data"]["consumed_energy"] = "22.3451"
    assert issues_of(document) == [
        '/data/consumed_energy: does not match the decimal with at most 3 places pattern, '
        'e.g. "12.345"'
    ]


def test_a_time_without_offset_inside_data_is_refused(example: Example) -> None:
    document = example(MessageType.CDR)
    document["data"]["charging_end"] = "2024-05-01T15:35:00"
    assert issues_of(document) == [
        "/data/charging_end: does not match the date-time with offset pattern, "
        'e.g. "2024-05-01T14:30:00+02:00"'
    ]


def test_an_unknown_data_field_is_refused(example: Example) -> None:
    document = example(MessageType.EVSE_STATUS)
    document["data"]["evse_status"] = "Available"
    document["data"]["a/b~c"] = 1
    assert issues_of(document) == [
        "/data/a~1b~0c: is not allowed here",
        "/data/evse_status: is not allowed here",
    ]


def test_every_problem_is_reported_at_once(example: Example) -> None:
    document = example(MessageType.EVSE_UPSERT)
    record = document["data"]["evse"]
    record["plugs"] = []
    record["address"]["country"] = "DE"
    record["charging_facilities"][0]["power"] = 1000
    del record["hotline_phone_number"]
    assert issues_of(document) == [
        '/data/evse/address/country: does not match the country code pattern, e.g. "DEU"',
        "/data/evse/charging_facilities/0/power: must be at most 999",
        "/data/evse/hotline_phone_number: is required",
        "/data/evse/plugs: must have at least 1 item",
    ]


def test_opening_times_are_required_when_not_open_around_the_clock(example: Example) -> None:
    document = example(MessageType.EVSE_UPSERT)
    del document["data"]["evse"]["opening_times"]
    assert issues_of(document) == ["/data/evse/opening_times: is required"]
    document["data"]["evse"]["is_open_24_hours"] = True
    assert parse_envelope(json.dumps(document)).type is MessageType.EVSE_UPSERT


def test_no_payment_cannot_be_combined(example: Example) -> None:
    document = example(MessageType.EVSE_UPSERT)
    document["data"]["evse"]["payment_options"] = ["No Payment", "Contract"]
    assert issues_of(document) == [
        '/data/evse: "No Payment" cannot be combined with another payment option'
    ]


@pytest.mark.parametrize(
    ("identification", "expected"),
    [
        ({"kind": "card", "uid": "1234ABCD"}, '/data/identification/kind: must be one of: '
         '"rfid_mifare_family", "rfid", "qr_code", "plug_and_charge", "remote"'),
        ({"uid": "1234ABCD"}, "/data/identification/kind: is required"),
        ({"kind": "rfid_mifare_family", "uid": "1234abcd"},
         '/data/identification/uid: does not match the UID pattern, e.g. "1234ABCD"'),
        ({"kind": "rfid_mifare_family", "uid": "1234ABCD", "evco_id": "DE-8PS-C12345678-9"},
         "/data/identification/evco_id: is not allowed here"),
        ({"kind": "remote"}, "/data/identification/evco_id: is required"),
        ({"kind": "qr_code", "evco_id": "DE-8PS-C12345678-9",
          "hashed_pin": {"value": "$2a$10$abcdefghijk", "function": "Bcrypt"}},
         "/data/identification/hashed_pin: must not be given in a CDR or charging "
         "notification: a hashed PIN goes only into uploads of authentication data (give "
         "the pin, or the evco_id alone)"),
    ],
)
def test_identification_problems_are_named(
    example: Example, identification: dict[str, Any], expected: str
) -> None:
    document = example(MessageType.CDR)
    document["data"]["identification"] = identification
    assert issues_of(document) == [expected]


@pytest.mark.parametrize(
    "message_type",
    [MessageType.NOTIFICATION_START, MessageType.NOTIFICATION_PROGRESS,
     MessageType.NOTIFICATION_END, MessageType.NOTIFICATION_ERROR],
)
def test_a_charging_notification_carries_no_hashed_pin(
    example: Example, message_type: MessageType
) -> None:
    # OICP QRCodeIdentificationType: HashedPIN "can be provided only when uploading
    # Authentication data"; the QR code's pin or its evco_id alone still pass.
    document = example(message_type)
    document["data"]["identification"] = {"kind": "qr_code",
                                          "evco_id": "DE-8PS-C12345678-9", "pin": "1234"}
    assert parse_envelope(json.dumps(document)).type is message_type
    document["data"]["identification"] = {
        "kind": "qr_code", "evco_id": "DE-8PS-C12345678-9",
        "hashed_pin": {"value": "$2a$10$abcdefghijk", "function": "Bcrypt"},
    }
    (issue,) = issues_of(document)
    assert issue.startswith("/data/identification/hashed_pin: must not be given in a CDR or "
                            "charging notification")


@pytest.mark.parametrize("energy", ["1000", "1000.000", "999.999", "0001000.0", "0"])
def test_a_cdr_may_consume_up_to_1000_kwh(example: Example, energy: str) -> None:
    document = example(MessageType.CDR)
    data = document["data"]
    data["consumed_energy"] = energy
    data.pop("meter_value_start", None)
    data.pop("meter_value_end", None)
    assert parse_envelope(json.dumps(document)).data["consumed_energy"] == energy


@pytest.mark.parametrize("energy", ["1000.001", "1001", "1010", "1100", "2000", "10000",
                                    "00012345.5", "22345"])
def test_a_cdr_over_1000_kwh_is_refused_by_the_contract(example: Example, energy: str) -> None:
    # Hubject refuses (022) a ConsumedEnergy over 1000 kWh as implausible (rule
    # cdr-consumed-energy-limit): most likely the backend sent Wh.
    document = example(MessageType.CDR)
    document["data"]["consumed_energy"] = energy
    document["data"].pop("meter_value_start", None)
    document["data"].pop("meter_value_end", None)
    assert issues_of(document) == [
        "/data/consumed_energy: must be at most 1000 (kWh): Hubject refuses a larger "
        "consumed energy as implausible (likely given in Wh)"
    ]


def test_a_notification_may_report_more_than_1000_kwh(example: Example) -> None:
    # The limit is Hubject's rule for the CDR; a notification's energy is not bounded.
    document = example(MessageType.NOTIFICATION_END)
    document["data"]["consumed_energy"] = "1500.5"
    document["data"].pop("meter_value_start", None)
    document["data"].pop("meter_value_end", None)
    assert parse_envelope(json.dumps(document)).type is MessageType.NOTIFICATION_END


def test_a_qr_code_takes_pin_or_hashed_pin_not_both(example: Example) -> None:
    document = example(MessageType.AUTHORIZATION_START_REQUEST)
    document["data"]["identification"] = {
        "kind": "qr_code", "evco_id": "DE-8PS-C12345678-9", "pin": "1234",
        "hashed_pin": {"value": "$2a$10$abcdefghijk", "function": "Bcrypt"},
    }
    assert issues_of(document) == [
        "/data/identification: takes one of pin and hashed_pin, not both"
    ]


def test_authorization_refuses_the_rfid_kind(example: Example) -> None:
    document = example(MessageType.AUTHORIZATION_START_REQUEST)
    document["data"]["identification"] = {"kind": "rfid", "uid": "1234ABCD",
                                          "rfid_type": "mifareCls"}
    assert issues_of(document) == [
        '/data/identification: kind "rfid" must not be used for authorization; send the '
        'card as kind "rfid_mifare_family"'
    ]


def test_authorization_needs_the_qr_code_pin_in_clear(example: Example) -> None:
    document = example(MessageType.AUTHORIZATION_START_REQUEST)
    document["data"]["identification"] = {
        "kind": "qr_code", "evco_id": "DE-8PS-C12345678-9",
        "hashed_pin": {"value": "$2a$10$abcdefghijk", "function": "Bcrypt"},
    }
    assert issues_of(document) == ["/data/identification/pin: is required"]


def test_a_remote_start_carries_a_remote_identification(example: Example) -> None:
    document = example(MessageType.REMOTE_START_COMMAND)
    document["data"]["identification"] = {"kind": "plug_and_charge",
                                          "evco_id": "DE-8PS-C12345678-9"}
    assert issues_of(document) == ['/data/identification/kind: must be "remote"']


def test_a_progress_needs_a_duration_or_an_energy(example: Example) -> None:
    document = example(MessageType.NOTIFICATION_PROGRESS)
    del document["data"]["charging_duration_ms"], document["data"]["consumed_energy_progress"]
    assert issues_of(document) == [
        "/data: needs charging_duration_ms or consumed_energy_progress (or both)"
    ]


@pytest.mark.parametrize(
    ("result", "code", "expected"),
    [
        (True, "501", '/data/status_code: must be "000" (result true goes with status code '
                      '000)'),
        (False, "000", "/data/status_code: result false needs a status code other than 000"),
    ],
)
def test_a_command_reply_result_agrees_with_its_status_code(
    example: Example, result: bool, code: str, expected: str
) -> None:
    document = example(MessageType.REMOTE_START_REPLY)
    document["data"]["result"] = result
    document["data"]["status_code"] = code
    assert issues_of(document) == [expected]


@pytest.mark.parametrize(
    ("message_type", "attribute"),
    [
        (MessageType.REMOTE_START_REPLY, "correlationid"),
        (MessageType.AUTHORIZATION_START_REPLY, "correlationid"),
        (MessageType.DELIVERY_RESULT, "correlationid"),
        (MessageType.REMOTE_START_COMMAND, "deadline"),
        (MessageType.RESERVATION_STOP_COMMAND, "deadline"),
    ],
)
def test_replies_need_a_correlation_id_and_commands_a_deadline(
    example: Example, message_type: MessageType, attribute: str
) -> None:
    document = example(message_type)
    del document[attribute]
    assert issues_of(document) == [f"/{attribute}: is required"]


def test_a_rejected_delivery_result_needs_code_and_reason(example: Example) -> None:
    document = example(MessageType.DELIVERY_RESULT)
    del document["data"]["status_code"], document["data"]["reason"]
    assert issues_of(document) == ["/data/reason: is required", "/data/status_code: is required"]
    document["data"]["outcome"] = "accepted"
    assert parse_envelope(json.dumps(document)).data["outcome"] == "accepted"


# --- writing -----------------------------------------------------------------------------


def test_a_made_envelope_survives_the_bus() -> None:
    berlin = timezone(timedelta(hours=2))
    envelope = make_envelope(
        MessageType.NOTIFICATION_END,
        {
            "session_id": SESSION_ID,
            "evse_id": EVSE_ID,
            "charging_end": datetime(2024, 5, 1, 15, 35, tzinfo=berlin),
            "consumed_energy": Decimal("22.345"),
            "meter_value_start": Decimal("1E+3"),
            "meter_values_in_between": (Decimal("1001.5"), Decimal("1010")),
        },
        source="urn:test",
        subject=SESSION_ID,
        extensions={"traceparent": "00-abc-def-01"},
    )
    raw = envelope.to_bytes()
    document = json.loads(raw)
    assert document["data"] == {
        "session_id": SESSION_ID,
        "evse_id": EVSE_ID,
        "charging_end": "2024-05-01T15:35:00+02:00",
        "consumed_energy": "22.345",
        "meter_value_start": "1000",
        "meter_values_in_between": ["1001.5", "1010"],
    }
    assert document["specversion"] == "1.0"
    assert document["datacontenttype"] == "application/json"
    assert document["traceparent"] == "00-abc-def-01"
    assert datetime.fromisoformat(document["time"]).tzinfo is not None
    assert parse_envelope(raw) == envelope


def test_made_envelopes_get_fresh_ids_and_the_default_source() -> None:
    data = {"evse_id": EVSE_ID, "status": EvseStatus.AVAILABLE}
    first = make_envelope(MessageType.EVSE_STATUS, data)
    second = make_envelope(MessageType.EVSE_STATUS, data)
    assert first.id != second.id
    assert first.source == DEFAULT_SOURCE
    assert first.data["status"] == "Available"


def test_an_outgoing_message_that_breaks_the_contract_is_not_made() -> None:
    with pytest.raises(ContractError) as caught:
        make_envelope(
            MessageType.NOTIFICATION_END,
            {"session_id": SESSION_ID, "evse_id": EVSE_ID,
             "charging_end": datetime(2024, 5, 1, 15, 35),  # naive: no offset
             "consumed_energy": Decimal("22.3456")},
        )
    assert [str(i) for i in caught.value.issues] == [
        '/data/charging_end: does not match the date-time with offset pattern, '
        'e.g. "2024-05-01T14:30:00+02:00"',
        '/data/consumed_energy: does not match the decimal with at most 3 places pattern, '
        'e.g. "12.345"',
    ]


def test_an_unknown_type_is_not_made() -> None:
    with pytest.raises(ContractError, match="/type: is not a known message type"):
        make_envelope("com.hubject-connector.evse.status.v9", {})


def test_a_hand_built_envelope_is_checked() -> None:
    envelope = make_envelope(MessageType.EVSE_STATUS, {"evse_id": EVSE_ID, "status": "Unknown"})
    broken: Envelope = dataclasses.replace(envelope, data={"evse_id": EVSE_ID})
    with pytest.raises(ContractError, match="/data/status: is required"):
        validate_envelope(broken)
    validate_envelope(envelope)


def test_a_reply_answers_its_request(example: Example) -> None:
    command = parse_envelope(json.dumps(example(MessageType.REMOTE_START_COMMAND)))
    reply = make_reply(command, {"result": False, "status_code": "602"}, source="urn:cpo")
    assert reply.type is MessageType.REMOTE_START_REPLY
    assert reply.correlation_id == command.id
    assert reply.subject == command.subject
    assert parse_envelope(reply.to_bytes()) == reply


def test_an_event_has_no_reply_type(example: Example) -> None:
    event = parse_envelope(json.dumps(example(MessageType.CDR)))
    with pytest.raises(ValueError, match="expects no reply"):
        make_reply(event, {"result": True, "status_code": "000"})


def test_a_delivery_result_refers_to_the_message(example: Example) -> None:
    cdr = parse_envelope(json.dumps(example(MessageType.CDR)))
    result = make_delivery_result(
        cdr.id, Outcome.ACCEPTED, message_type=cdr.type, subject=cdr.subject,
        status_code="000", session_id=SESSION_ID, attempts=2,
    )
    assert result.correlation_id == cdr.id
    assert result.data == {"message_id": cdr.id, "message_type": str(cdr.type),
                           "outcome": "accepted", "status_code": "000",
                           "session_id": SESSION_ID, "attempts": 2}
    with pytest.raises(ContractError, match="/data/reason: is required"):
        make_delivery_result(cdr.id, Outcome.DEAD_LETTERED)
