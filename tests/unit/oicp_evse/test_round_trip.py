"""Spellings and numbers on a round trip: both spellings read, one written; Decimal stays exact."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from hubject_connector.oicp import codec
from hubject_connector.oicp.evse import (
    Accessibility,
    ActionType,
    Address,
    AuthenticationMode,
    CalibrationLawDataAvailability,
    ChargingFacility,
    DynamicInfoAvailable,
    EvseDataRecord,
    EvseStatus,
    EvseStatusRecord,
    GeoCoordinates,
    GeoCoordinatesDegreeMinuteSeconds,
    InfoText,
    OperatorEvseData,
    OperatorEvseStatus,
    PaymentOption,
    PlugType,
    PowerType,
    PushEvseData,
    PushEvseStatus,
    ValueAddedService,
)
from hubject_connector.oicp.pricing import PushPricingProductData
from tests.unit.oicp_evse import payloads

RECORD = "/OperatorEvseData/EvseDataRecord/0"


def _record(body: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = body["OperatorEvseData"]["EvseDataRecord"][0]
    return record


def test_charging_station_id_both_spellings_read_table_spelling_written() -> None:
    for spelling in ("ChargingStationId", "ChargingStationID"):
        body = payloads.evse_data()
        record = _record(body)
        del record["ChargingStationId"]
        record[spelling] = "STATION 7"
        push = codec.decode(PushEvseData, codec.encode_json(body))
        assert push.operator_evse_data.evse_data_records[0].charging_station_id == "STATION 7"
        written = _record(json.loads(codec.encode(push)))
        assert written["ChargingStationId"] == "STATION 7"
        assert "ChargingStationID" not in written


def test_the_canonical_spelling_wins_when_both_are_sent() -> None:
    body = payloads.evse_data()
    _record(body)["ChargingStationID"] = "OTHER"
    push = codec.decode(PushEvseData, codec.encode_json(body))
    assert push.operator_evse_data.evse_data_records[0].charging_station_id == "STATION 1"


def test_alias_spelling_is_checked_like_the_canonical_one() -> None:
    body = payloads.evse_data()
    record = _record(body)
    del record["ChargingStationId"]
    record["ChargingStationID"] = "S" * 51
    with pytest.raises(codec.OicpValidationError) as caught:
        codec.decode(PushEvseData, codec.encode_json(body))
    assert [str(i) for i in caught.value.issues] == [
        # The pointer names the spelling that was sent, so it resolves in the payload.
        f"{RECORD}/ChargingStationID: is 51 characters long, over the limit of 50"
    ]


def test_periods_both_spellings_read_openapi_spelling_written() -> None:
    body = payloads.pricing_products()
    times = body["PricingProductData"]["PricingProductDataRecords"][0]["ProductAvailabilityTimes"]
    times[0]["Period"] = times[0].pop("Periods")
    push = codec.decode(PushPricingProductData, codec.encode_json(body))
    record = push.pricing_product_data.pricing_product_data_records[0]
    assert record.product_availability_times[0].periods[0].begin == "06:00"
    written = json.loads(codec.encode(push))
    written_times = written["PricingProductData"]["PricingProductDataRecords"][0][
        "ProductAvailabilityTimes"
    ][0]
    assert set(written_times) == {"Periods", "on"}


def test_prices_stay_exact_decimals_through_bytes() -> None:
    body = (
        b'{"ActionType":"fullLoad","PricingProductData":{"OperatorID":"DE*ABC","ProviderID":"*",'
        b'"PricingDefaultPrice":0.1,"PricingDefaultPriceCurrency":"EUR",'
        b'"PricingDefaultReferenceUnit":"MINUTE","PricingProductDataRecords":[{'
        b'"ProductID":"DC","ReferenceUnit":"KILOWATT_HOUR","ProductPriceCurrency":"CHF",'
        b'"PricePerReferenceUnit":0.30,"MaximumProductChargingPower":150.5,'
        b'"IsValid24hours":true,"ProductAvailabilityTimes":[],"AdditionalReferences":[{'
        b'"AdditionalReference":"PARKING FEE","AdditionalReferenceUnit":"MINUTE",'
        b'"PricePerAdditionalReferenceUnit":0.123456789012345678901}]}]}}'
    )
    push = codec.decode(PushPricingProductData, body)
    data = push.pricing_product_data
    record = data.pricing_product_data_records[0]
    values = [
        data.pricing_default_price,
        record.price_per_reference_unit,
        record.maximum_product_charging_power,
        record.additional_references[0].price_per_additional_reference_unit
        if record.additional_references
        else None,
    ]
    assert all(type(v) is Decimal for v in values)
    assert [str(v) for v in values] == ["0.1", "0.30", "150.5", "0.123456789012345678901"]
    # Written as the same JSON numbers (not floats, not strings), byte for byte.
    assert codec.encode(push) == body
    assert codec.decode(PushPricingProductData, codec.encode(push)) == push


def test_built_evse_data_is_written_with_wire_names_and_types() -> None:
    record = EvseDataRecord(
        evse_id="+49*810*000*438",
        charging_station_names=[InfoText(lang="de", value="Ladepunkt")],
        address=Address(country="DEU", city="Köln", street="Ring", postal_code="50667",
                        house_num="3a"),
        geo_coordinates=GeoCoordinates(
            degree_minute_seconds=GeoCoordinatesDegreeMinuteSeconds(
                longitude="6°57'30.10''", latitude="50°56'33.20''"
            )
        ),
        plugs=[PlugType.CCS_COMBO_2_PLUG_CABLE_ATTACHED],
        charging_facilities=[ChargingFacility(power_type=PowerType.DC, power=150)],
        renewable_energy=True,
        calibration_law_data_availability=CalibrationLawDataAvailability.EXTERNAL,
        authentication_modes=[AuthenticationMode.PNC],
        payment_options=[PaymentOption.DIRECT, PaymentOption.CONTRACT],
        value_added_services=[ValueAddedService.NONE],
        accessibility=Accessibility.PAYING_PUBLICLY_ACCESSIBLE,
        hotline_phone_number="+49221123456",
        is_open_24_hours=True,
        is_hubject_compatible=True,
        dynamic_info_available=DynamicInfoAvailable.FALSE,
    )
    push = PushEvseData(
        action_type=ActionType.INSERT,
        operator_evse_data=OperatorEvseData(
            operator_id="+49*810", operator_name="Köln Laden", evse_data_records=[record]
        ),
    )
    written = json.loads(codec.encode(push))
    out = _record(written)
    assert written["ActionType"] == "insert"
    assert out["DynamicInfoAvailable"] == "false"
    assert out["GeoCoordinates"] == {
        "DegreeMinuteSeconds": {"Longitude": "6°57'30.10''", "Latitude": "50°56'33.20''"}
    }
    assert out["ChargingFacilities"] == [{"PowerType": "DC", "Power": 150}]
    # Absent optional fields are left out, never written as null.
    assert "OpeningTimes" not in out
    assert "lastUpdate" not in out
    assert codec.decode(PushEvseData, codec.encode(push)) == push


def test_built_evse_status_round_trips() -> None:
    push = PushEvseStatus(
        action_type=ActionType.UPDATE,
        operator_evse_status=OperatorEvseStatus(
            operator_id="DE*ABC",
            evse_status_records=[
                EvseStatusRecord(evse_id="DE*ABC*E1", evse_status=EvseStatus.OUT_OF_SERVICE)
            ],
        ),
    )
    assert codec.encode(push) == (
        b'{"ActionType":"update","OperatorEvseStatus":{"OperatorID":"DE*ABC",'
        b'"EvseStatusRecord":[{"EvseID":"DE*ABC*E1","EvseStatus":"OutOfService"}]}}'
    )
    assert codec.decode(PushEvseStatus, codec.encode(push)) == push
