"""What each contract field becomes in OICP: spot checks of values a user would notice."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hubject_connector.bus.contract import MessageType
from hubject_connector.config import HubjectConfig
from hubject_connector.errors import ConfigError
from hubject_connector.oicp import codec
from hubject_connector.oicp.common import Identification, RFIDType
from hubject_connector.oicp.evse import DayValue, EvseStatus, OpeningTimes, Period
from hubject_connector.oicp.notifications import ChargingNotificationProgress
from hubject_connector.translate.outbound import (
    Context,
    TranslationError,
    authorize_start,
    charge_detail_record,
    evse_record,
    notification,
    operator_name_of,
    operator_of,
    pricing_products,
    push_evse_data,
    push_evse_status,
)
from hubject_connector.translate.payload import Payload, identification_data
from tests.unit.translate.conftest import Example

T = MessageType
SESSION = "b2688855-7f00-0002-6d8e-48d883f6abb6"


def test_energies_stay_exact_decimals(example: Example, ctx: Context) -> None:
    cdr = charge_detail_record(example(T.CDR), ctx)
    assert cdr.consumed_energy == Decimal("22.345")
    assert isinstance(cdr.consumed_energy, Decimal)
    assert cdr.meter_value_in_between is not None
    assert cdr.meter_value_in_between.meter_values == [
        Decimal("1239.750"), Decimal("1245.012"), Decimal("1251.300")
    ]
    body = codec.encode(cdr).decode()
    # Written as the backend wrote them: trailing zeros kept, no binary float noise.
    assert '"MeterValueStart":1234.500' in body
    assert '"MeterValueInBetween":{"meterValues":[1239.750,1245.012,1251.300]}' in body


def test_prices_stay_exact_decimals(example: Example, ctx: Context) -> None:
    data = example(T.PRICING_PRODUCTS)
    data["pricing_product_data_records"][0]["price_per_reference_unit"] = "0.1"
    push = pricing_products(data, ctx)
    (record,) = push.pricing_product_data.pricing_product_data_records
    assert record.price_per_reference_unit == Decimal("0.1")
    assert '"PricePerReferenceUnit":0.1,' in codec.encode(push).decode()
    assert record.additional_references is not None
    assert record.additional_references[0].price_per_additional_reference_unit == Decimal("2.00")


RFID = {"kind": "rfid", "uid": "04A2B3C4D5E6F7", "rfid_type": "mifareDes",
        "evco_id": "DE-8PS-C12345678-9", "printed_number": "No. 4711",
        "expiry_date": "2027-12-31T23:59:59+01:00"}


@pytest.mark.parametrize(
    ("identification", "option", "fields"),
    [
        ({"kind": "rfid_mifare_family", "uid": "1234ABCD"}, "RFIDMifareFamilyIdentification",
         {"uid": "1234ABCD"}),
        ({"kind": "qr_code", "evco_id": "DE-8PS-C12345678-9", "pin": "1234"},
         "QRCodeIdentification", {"evco_id": "DE-8PS-C12345678-9", "pin": "1234"}),
        ({"kind": "plug_and_charge", "evco_id": "DE-8PS-C12345678-9"},
         "PlugAndChargeIdentification", {"evco_id": "DE-8PS-C12345678-9"}),
        ({"kind": "remote", "evco_id": "DE-8PS-C12345678-9"}, "RemoteIdentification",
         {"evco_id": "DE-8PS-C12345678-9"}),
    ],
    ids=lambda v: v["kind"] if isinstance(v, dict) and "kind" in v else None,
)
def test_each_kind_is_its_identification_option(
    example: Example, ctx: Context, identification: dict[str, Any], option: str,
    fields: dict[str, str],
) -> None:
    data = example(T.AUTHORIZATION_START_REQUEST)
    data["identification"] = identification
    request = authorize_start(data, ctx)
    assert request.identification.options() == [option]
    chosen = getattr(request.identification, identification["kind"])
    assert {name: getattr(chosen, name) for name in fields} == fields


def test_an_rfid_card_keeps_its_type_and_printed_data(example: Example, ctx: Context) -> None:
    data = example(T.CDR)
    data["identification"] = RFID
    rfid = charge_detail_record(data, ctx).identification.rfid
    assert rfid is not None
    assert (rfid.uid, rfid.rfid, rfid.evco_id, rfid.printed_number) == (
        "04A2B3C4D5E6F7", RFIDType.MIFARE_DES, "DE-8PS-C12345678-9", "No. 4711"
    )
    # Given with an offset other than UTC: kept as given.
    assert rfid.expiry_date == datetime.fromisoformat("2027-12-31T23:59:59+01:00")


def test_a_hashed_pin_maps_with_its_legacy_data() -> None:
    # Which messages may carry a hashed PIN is the OICP model's rule; the mapping is this.
    identification = {
        "kind": "qr_code", "evco_id": "DE-8PS-C12345678-9",
        "hashed_pin": {"value": "$2a$10$Z3J0ZXN0c2FsdA.h3sP1n", "function": "Bcrypt",
                       "legacy_hash_data": {"function": "SHA-1", "salt": "s4lt", "value": "ab"}},
    }
    payload = Payload(UTC)
    body = payload.value(Identification, identification, "/data/identification", "")
    assert body == {"QRCodeIdentification": {
        "EvcoID": "DE-8PS-C12345678-9",
        "HashedPIN": {"Value": "$2a$10$Z3J0ZXN0c2FsdA.h3sP1n", "Function": "Bcrypt",
                      "LegacyHashData": {"Function": "SHA-1", "Salt": "s4lt", "Value": "ab"}},
    }}
    model = payload.load(Identification, body)
    assert identification_data(model) == identification


def test_geo_coordinates_are_sent_as_decimal_degrees(example: Example, ctx: Context) -> None:
    evse = example(T.EVSE_UPSERT)["evse"]
    evse["geo_charging_point_entrance"] = {"latitude": "52.5221", "longitude": "13.4128"}
    record = evse_record(evse, ctx)
    body = codec.dump(record)
    assert body["GeoCoordinates"] == {
        "DecimalDegree": {"Latitude": "52.521918", "Longitude": "13.413215"}
    }
    assert body["GeoChargingPointEntrance"] == {
        "DecimalDegree": {"Latitude": "52.5221", "Longitude": "13.4128"}
    }


def test_opening_times_periods_become_oicp_period(example: Example, ctx: Context) -> None:
    record = evse_record(example(T.EVSE_UPSERT)["evse"], ctx)
    assert record.opening_times == [
        OpeningTimes(period=[Period(begin="06:00", end="22:00")], on=DayValue.WORKDAYS),
        OpeningTimes(period=[Period(begin="08:00", end="20:00")], on=DayValue.WEEKEND),
    ]
    assert codec.dump(record)["OpeningTimes"][0] == {
        "Period": [{"begin": "06:00", "end": "22:00"}], "on": "Workdays"
    }


def test_progress_duration_in_milliseconds(example: Example, ctx: Context) -> None:
    progress = notification(T.NOTIFICATION_PROGRESS, example(T.NOTIFICATION_PROGRESS), ctx)
    assert isinstance(progress, ChargingNotificationProgress)
    assert progress.charging_duration == 1_800_000
    assert progress.consumed_energy_progress == Decimal("10.512")
    assert progress.meter_value_in_between is not None
    assert progress.meter_value_in_between.meter_values == [Decimal("1239.750"),
                                                            Decimal("1245.012")]


@pytest.mark.parametrize(
    ("message_type", "oicp_type"),
    [(T.NOTIFICATION_START, "Start"), (T.NOTIFICATION_PROGRESS, "Progress"),
     (T.NOTIFICATION_END, "End"), (T.NOTIFICATION_ERROR, "Error")],
)
def test_the_notification_type_follows_the_message_type(
    example: Example, ctx: Context, message_type: MessageType, oicp_type: str
) -> None:
    body = codec.dump(notification(message_type, example(message_type), ctx))
    assert (body["Type"], body["OperatorID"]) == (oicp_type, "DE*ABC")


def test_only_notification_types_are_notifications(example: Example, ctx: Context) -> None:
    with pytest.raises(ValueError, match="not a charging notification"):
        notification(T.CDR, example(T.CDR), ctx)


def test_operator_name_falls_back_to_the_configured_one(example: Example, ctx: Context) -> None:
    data = example(T.EVSE_UPSERT)
    data["operator_name"] = "Own Name GmbH"
    assert operator_name_of(data, ctx) == "Own Name GmbH"
    del data["operator_name"]
    record = evse_record(data["evse"], ctx)
    push = push_evse_data("insert", operator_of(data, ctx), operator_name_of(data, ctx), [record])
    assert push.operator_evse_data.operator_name == "ABC Charging"


def test_without_any_operator_name_an_evse_data_push_is_refused(
    example: Example, ctx: Context
) -> None:
    data = example(T.EVSE_UPSERT)
    del data["operator_name"]
    unnamed = Context("DE*ABC", "", ctx.zone)
    record = evse_record(data["evse"], unnamed)
    with pytest.raises(TranslationError) as info:
        push_evse_data("update", operator_of(data, unnamed), operator_name_of(data, unnamed),
                       [record])
    assert [i.pointer for i in info.value.issues] == ["/data/operator_name"]
    assert "[hubject] operator_name" in str(info.value)


def test_status_and_pricing_pushes_leave_an_absent_operator_name_out(
    example: Example, ctx: Context
) -> None:
    unnamed = Context("DE*ABC", "", ctx.zone)
    status = example(T.EVSE_STATUS)
    push = push_evse_status("update", operator_of(status, unnamed),
                            operator_name_of(status, unnamed), [(status["evse_id"], "Occupied")])
    assert "OperatorName" not in codec.dump(push)["OperatorEvseStatus"]
    assert push.operator_evse_status.evse_status_records[0].evse_status is EvseStatus.OCCUPIED
    products = example(T.PRICING_PRODUCTS)
    del products["operator_name"]
    assert pricing_products(products, unnamed).pricing_product_data.operator_name is None
    assert pricing_products(products, ctx).pricing_product_data.operator_name == "ABC Charging"


def test_operator_id_falls_back_to_the_configured_one(example: Example, ctx: Context) -> None:
    data = example(T.AUTHORIZATION_START_REQUEST)
    del data["operator_id"]
    assert authorize_start(data, ctx).operator_id == "DE*ABC"
    data["operator_id"] = "DE*SUB"
    assert authorize_start(data, ctx).operator_id == "DE*SUB"
    assert operator_of({"operator_id": "DE*SUB"}, ctx) == "DE*SUB"


def test_without_any_operator_id_the_message_is_refused(example: Example) -> None:
    nobody = Context("", "", ZoneInfo("UTC"))
    data = example(T.AUTHORIZATION_START_REQUEST)
    del data["operator_id"]
    with pytest.raises(TranslationError) as info:
        authorize_start(data, nobody)
    assert [i.pointer for i in info.value.issues] == ["/data/operator_id"]


def test_an_unknown_action_is_the_callers_mistake(example: Example, ctx: Context) -> None:
    record = evse_record(example(T.EVSE_UPSERT)["evse"], ctx)
    with pytest.raises(ValueError, match="not an OICP ActionType"):
        push_evse_data("upsert", "DE*ABC", "ABC Charging", [record])
    with pytest.raises(ValueError, match="not an OICP ActionType"):
        push_evse_status("replace", "DE*ABC", "", [])


def test_context_from_the_configuration() -> None:
    config = HubjectConfig(operator_id="DE*ABC", operator_name="ABC Charging",
                           time_zone="Europe/Berlin", sub_operator_ids=("DE*SUB",))
    assert Context.from_config(config) == Context(
        "DE*ABC", "ABC Charging", ZoneInfo("Europe/Berlin"), ("DE*SUB",)
    )
    with pytest.raises(ConfigError) as info:
        Context.from_config(HubjectConfig(time_zone="Mars/Olympus_Mons"))
    assert info.value.key == "hubject.time_zone"
