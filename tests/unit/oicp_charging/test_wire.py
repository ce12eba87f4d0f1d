"""What goes on the wire: spellings read and written, exact energy, time offsets kept."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from hubject_connector.oicp import codec
from hubject_connector.oicp.authorization import (
    AuthorizationStart,
    AuthorizationStop,
    AuthorizeStart,
    AuthorizeStop,
)
from hubject_connector.oicp.cdr import ChargeDetailRecord, MeteringStatus
from hubject_connector.oicp.notifications import (
    ChargingNotificationError,
    ErrorType,
    decode_notification,
)
from hubject_connector.oicp.remote import (
    AuthorizeRemoteReservationStart,
    AuthorizeRemoteReservationStop,
    AuthorizeRemoteStart,
    AuthorizeRemoteStop,
)
from tests.unit.oicp_charging import payloads as p
from tests.unit.oicp_charging.payloads import changed

MESSAGES: list[tuple[type[Any], Callable[[], dict[str, Any]]]] = [
    (AuthorizeStart, p.authorize_start),
    (AuthorizeStop, p.authorize_stop),
    (AuthorizationStart, p.authorization_start),
    (AuthorizationStop, p.authorization_stop),
    (ChargeDetailRecord, p.charge_detail_record),
    (AuthorizeRemoteStart, p.authorize_remote_start),
    (AuthorizeRemoteStop, p.authorize_remote_stop),
    (AuthorizeRemoteReservationStart, p.authorize_remote_reservation_start),
    (AuthorizeRemoteReservationStop, p.authorize_remote_reservation_stop),
]
IDS = [model.__name__ for model, _ in MESSAGES]


@pytest.mark.parametrize(("model", "build"), MESSAGES, ids=IDS)
def test_round_trip_keeps_every_field(
    model: type[Any], build: Callable[[], dict[str, Any]]
) -> None:
    instance = codec.load(model, build())
    body = codec.encode(instance)
    assert codec.parse_json(body) == build()
    assert codec.decode(model, body) == instance


@pytest.mark.spec
@pytest.mark.parametrize(("model", "build"), MESSAGES, ids=IDS)
def test_written_messages_are_valid_for_the_official_schema(
    model: type[Any],
    build: Callable[[], dict[str, Any]],
    openapi_errors: Callable[[str, Any], list[str]],
) -> None:
    written = codec.parse_json(codec.encode(codec.load(model, build())))
    assert openapi_errors(model.OICP_NAME, written) == []


def test_energy_is_written_as_exact_numbers() -> None:
    record = codec.load(ChargeDetailRecord, p.charge_detail_record())
    assert record.consumed_energy == Decimal("22.125")
    body = codec.encode(record)
    assert b'"ConsumedEnergy":22.125' in body
    assert b'"MeterValueStart":1000.500' in body
    assert b'"MeterValueInBetween":{"meterValues":[1010.1,1020]}' in body


def test_float_energy_from_json_text_stays_exact() -> None:
    body = codec.encode(codec.load(ChargeDetailRecord, p.charge_detail_record()))
    body = body.replace(b'"ConsumedEnergy":22.125', b'"ConsumedEnergy":0.1')
    body = body.replace(b'"MeterValueEnd":1022.625', b'"MeterValueEnd":1000.6')
    record = codec.decode(ChargeDetailRecord, body)
    # 1000.6 - 1000.500 is exactly 0.1 in Decimal (as a float it would be 0.10000000000002274).
    assert record.consumed_energy == Decimal("0.1")


def test_times_keep_their_offset_and_compare_as_instants() -> None:
    # End written in UTC, start in local time: 10:00Z (11:00+01:00) is after 10:05+01:00.
    payload = changed(p.charge_detail_record(), ("ChargingEnd",), "2024-03-01T10:00:00Z")
    record = codec.load(ChargeDetailRecord, payload)
    assert record.charging_end - record.charging_start == timedelta(minutes=55)
    written = codec.parse_json(codec.encode(record))
    assert written["ChargingStart"] == "2024-03-01T10:05:00+01:00"
    # Written back as "+00:00", never "Z": the encoder writes every time with its offset.
    assert written["ChargingEnd"] == "2024-03-01T10:00:00+00:00"


def test_fractions_of_seconds_are_read() -> None:
    payload = changed(p.charge_detail_record(), ("SessionEnd",), "2024-03-01T11:10:00.038Z")
    record = codec.load(ChargeDetailRecord, payload)
    assert record.session_end.microsecond == 38000
    assert codec.parse_json(codec.encode(record))["SessionEnd"] == "2024-03-01T11:10:00.038+00:00"


@pytest.mark.parametrize(
    ("model", "build", "alias", "canonical"),
    [
        (ChargeDetailRecord, p.charge_detail_record, "HubOperatorId", "HubOperatorID"),
        (ChargeDetailRecord, p.charge_detail_record, "HubProviderId", "HubProviderID"),
        (AuthorizeRemoteReservationStart, p.authorize_remote_reservation_start,
         "EMPPartnerSessionId", "EMPPartnerSessionID"),
        (AuthorizeRemoteReservationStop, p.authorize_remote_reservation_stop,
         "EMPPartnerSessionId", "EMPPartnerSessionID"),
    ],
    ids=["HubOperatorId", "HubProviderId", "reservation-start-EMP", "reservation-stop-EMP"],
)
def test_other_spelling_is_read_and_the_table_spelling_written(
    model: type[Any], build: Callable[[], dict[str, Any]], alias: str, canonical: str
) -> None:
    payload = build()
    value = payload.pop(canonical, "emp-7")
    payload[alias] = value
    written = codec.dump(codec.load(model, payload))
    assert written[canonical] == value
    assert alias not in written


def test_meter_values_spelling() -> None:
    payload = p.charge_detail_record()
    payload["MeterValueInBetween"] = {"MeterValues": [Decimal("1001")]}
    written = codec.dump(codec.load(ChargeDetailRecord, payload))
    # Hubject's OpenAPI and all its JSON examples name the list "meterValues".
    assert written["MeterValueInBetween"] == {"meterValues": [Decimal("1001")]}


def test_error_class_spelling_of_the_data_type_table_is_read() -> None:
    payload = changed(p.notification_error(), ("ErrorType",), "Critical Error")
    notification = decode_notification(payload)
    assert isinstance(notification, ChargingNotificationError)
    assert notification.error_type is ErrorType.CRITICAL_ERROR
    # Written as the OpenAPI's enum spells it (the only spelling it accepts).
    assert codec.dump(notification)["ErrorType"] == "CriticalError"


def test_answers_say_whether_authorized() -> None:
    start = codec.load(AuthorizationStart, p.authorization_start())
    assert start.authorized
    assert start.authorization_stop_identifications is not None
    assert [i.options() for i in start.authorization_stop_identifications] == [
        ["RFIDMifareFamilyIdentification"],
        ["RemoteIdentification"],
    ]
    stop = codec.load(AuthorizationStop, p.authorization_stop())
    assert not stop.authorized
    assert stop.status_code.code == "102"


def test_record_fields_are_typed() -> None:
    record = codec.load(ChargeDetailRecord, p.charge_detail_record())
    assert record.signed_metering_values is not None
    assert [v.metering_status for v in record.signed_metering_values] == [
        MeteringStatus.START,
        MeteringStatus.END,
    ]
    assert record.identification.uid() == p.UID
    assert record.calibration_law_verification_info is not None
    assert record.calibration_law_verification_info.metering_signature_encoding_format == (
        "OCMF: V1"
    )


def test_optional_parts_may_be_absent_or_null() -> None:
    minimal = {
        key: value
        for key, value in p.charge_detail_record().items()
        if key in {"SessionID", "EvseID", "Identification", "ChargingStart", "ChargingEnd",
                   "SessionStart", "SessionEnd", "ConsumedEnergy"}
    }
    record = codec.load(ChargeDetailRecord, {**minimal, "HubProviderID": None})
    assert record.meter_value_start is None
    assert record.hub_provider_id is None
    # Absent values are left out when written, never sent as null.
    assert set(codec.dump(record)) == set(minimal)
