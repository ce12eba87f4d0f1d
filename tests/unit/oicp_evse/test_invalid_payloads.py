"""Broken pushes are refused with the JSON pointer of the broken field and the rule it breaks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pytest

from hubject_connector.oicp import codec
from hubject_connector.oicp.evse import (
    ActionType,
    DayValue,
    DynamicInfoAvailable,
    EvseStatus,
    PlugType,
    PushEvseData,
    PushEvseStatus,
)
from hubject_connector.oicp.pricing import (
    AdditionalReferenceType,
    PushEVSEPricing,
    PushPricingProductData,
    ReferenceUnit,
)
from tests.unit.oicp_evse import payloads
from tests.unit.oicp_evse.payloads import REMOVE


def one_of(enum: type[StrEnum]) -> str:
    """The enum rule's message, listing the allowed values in declaration order."""
    return "must be one of: " + ", ".join(member.value for member in enum)


MISSING = "is mandatory and missing"


@dataclass(frozen=True)
class Case:
    """One broken payload: the edits that break it and the single issue it must raise."""

    id: str
    model: type[Any]
    base: Callable[[], dict[str, Any]]
    edits: tuple[tuple[str, Any], ...]
    issue: str

    def payload(self) -> dict[str, Any]:
        body = self.base()
        for pointer, value in self.edits:
            payloads.edit(body, pointer, value)
        return body


def data(case_id: str, issue: str, *edits: tuple[str, Any]) -> Case:
    return Case(case_id, PushEvseData, payloads.evse_data, edits, issue)


def status(case_id: str, issue: str, *edits: tuple[str, Any]) -> Case:
    return Case(case_id, PushEvseStatus, payloads.evse_status, edits, issue)


def products(case_id: str, issue: str, *edits: tuple[str, Any]) -> Case:
    return Case(case_id, PushPricingProductData, payloads.pricing_products, edits, issue)


def assignment(case_id: str, issue: str, *edits: tuple[str, Any]) -> Case:
    return Case(case_id, PushEVSEPricing, payloads.evse_pricing, edits, issue)


R = "/OperatorEvseData/EvseDataRecord/0"
S = "/OperatorEvseStatus/EvseStatusRecord/0"
P = "/PricingProductData"
PR = "/PricingProductData/PricingProductDataRecords/0"

CASES = [
    # --- eRoamingPushEvseData ---------------------------------------------------------
    data("missing HotlinePhoneNumber", f"{R}/HotlinePhoneNumber: {MISSING}",
         (f"{R}/HotlinePhoneNumber", REMOVE)),
    data("missing OperatorName", f"/OperatorEvseData/OperatorName: {MISSING}",
         ("/OperatorEvseData/OperatorName", REMOVE)),
    data("missing PostalCode", f"{R}/Address/PostalCode: {MISSING}",
         (f"{R}/Address/PostalCode", REMOVE)),
    data("missing DynamicInfoAvailable", f"{R}/DynamicInfoAvailable: {MISSING}",
         (f"{R}/DynamicInfoAvailable", REMOVE)),
    data("missing Power", f"{R}/ChargingFacilities/0/Power: {MISSING}",
         (f"{R}/ChargingFacilities/0/Power", REMOVE)),
    data("null EvseDataRecord",
         "/OperatorEvseData/EvseDataRecord: is mandatory and may not be null",
         ("/OperatorEvseData/EvseDataRecord", None)),
    data("EvseDataRecord not a list", "/OperatorEvseData/EvseDataRecord: must be an array",
         ("/OperatorEvseData/EvseDataRecord", {"EvseID": "DE*ABC*E1"})),
    data("bad ActionType", f"/ActionType: {one_of(ActionType)}", ("/ActionType", "replace")),
    data("bad plug", f"{R}/Plugs/0: {one_of(PlugType)}", (f"{R}/Plugs/0", "Type 2")),
    data("DynamicInfoAvailable as boolean",
         f"{R}/DynamicInfoAvailable: {one_of(DynamicInfoAvailable)}",
         (f"{R}/DynamicInfoAvailable", True)),
    data("bad day", f"{R}/OpeningTimes/0/on: {one_of(DayValue)}",
         (f"{R}/OpeningTimes/0/on", "Holiday")),
    data("bad EvseID", f"{R}/EvseID: does not match the EvseID pattern",
         (f"{R}/EvseID", "DE*ABC*X1234")),
    data("EvseID with trailing newline", f"{R}/EvseID: does not match the EvseID pattern",
         (f"{R}/EvseID", "DE*ABC*E1234\n")),
    data("bad OperatorID", "/OperatorEvseData/OperatorID: does not match the OperatorID pattern",
         ("/OperatorEvseData/OperatorID", "DEU*ABC")),
    data("bad HubOperatorID", f"{R}/HubOperatorID: does not match the OperatorID pattern",
         (f"{R}/HubOperatorID", "DE*AB")),
    data("EvseID as ChargingPoolID", f"{R}/ChargingPoolID: does not match the ChargingPoolID "
         "pattern", (f"{R}/ChargingPoolID", "DE*ABC*E1234")),
    data("bad phone number", f"{R}/HotlinePhoneNumber: does not match the phone number pattern",
         (f"{R}/HotlinePhoneNumber", "030 123456")),
    data("bad time zone", f"{R}/Address/TimeZone: does not match the TimeZone pattern",
         (f"{R}/Address/TimeZone", "UTC,01:00")),
    data("alpha-2 country", f"{R}/Address/Country: does not match the country code pattern",
         (f"{R}/Address/Country", "DE")),
    data("bad Google coordinates",
         f"{R}/GeoCoordinates/Google/Coordinates: does not match the Google geo coordinates "
         "pattern", (f"{R}/GeoCoordinates/Google/Coordinates", "52,52 13,40")),
    data("bad decimal degree",
         f"{R}/GeoCoordinates/DecimalDegree/Latitude: does not match the decimal degree pattern",
         (f"{R}/GeoCoordinates", {"DecimalDegree": {"Longitude": "13.4", "Latitude": "52"}})),
    data("bad opening time", f"{R}/OpeningTimes/0/Period/0/begin: does not match the hh:mm "
         "pattern", (f"{R}/OpeningTimes/0/Period/0/begin", "8:00")),
    data("bad language code", f"{R}/ChargingStationNames/0/lang: does not match the language "
         "code pattern", (f"{R}/ChargingStationNames/0/lang", "EN")),
    data("long City", f"{R}/Address/City: is 51 characters long, over the limit of 50",
         (f"{R}/Address/City", "B" * 51)),
    data("short Street", f"{R}/Address/Street: is 1 characters long, under the minimum of 2",
         (f"{R}/Address/Street", "A")),
    data("long OperatorName",
         "/OperatorEvseData/OperatorName: is 101 characters long, over the limit of 100",
         ("/OperatorEvseData/OperatorName", "O" * 101)),
    data("long station name",
         f"{R}/ChargingStationNames/0/value: is 151 characters long, over the limit of 150",
         (f"{R}/ChargingStationNames/0/value", "N" * 151)),
    data("long ChargingStationId",
         f"{R}/ChargingStationId: is 51 characters long, over the limit of 50",
         (f"{R}/ChargingStationId", "S" * 51)),
    data("long ClearinghouseID",
         f"{R}/ClearinghouseID: is 21 characters long, over the limit of 20",
         (f"{R}/ClearinghouseID", "C" * 21)),
    data("lastUpdate with a space",
         f"{R}/lastUpdate: is not a date-time of the form YYYY-MM-DDThh:mm:ssTZD",
         (f"{R}/lastUpdate", "2024-03-01 10:15:00+01:00")),
    data("lastUpdate without offset",
         f"{R}/lastUpdate: is not a date-time of the form YYYY-MM-DDThh:mm:ssTZD",
         (f"{R}/lastUpdate", "2024-03-01T10:15:00")),
    data("lastUpdate 25 o'clock",
         f"{R}/lastUpdate: is not a date-time of the form YYYY-MM-DDThh:mm:ssTZD",
         (f"{R}/lastUpdate", "2024-03-01T25:15:00Z")),
    data("CO2Emission over 99999",
         f"{R}/EnvironmentalImpact/CO2Emission: must be at most 99999",
         (f"{R}/EnvironmentalImpact/CO2Emission", 100000)),
    data("negative CO2Emission",
         f"{R}/EnvironmentalImpact/CO2Emission: must be at least 0",
         (f"{R}/EnvironmentalImpact/CO2Emission", Decimal("-0.1"))),
    data("CO2Emission as string", f"{R}/EnvironmentalImpact/CO2Emission: must be a number",
         (f"{R}/EnvironmentalImpact/CO2Emission", "30.3")),
    data("Power with a fraction", f"{R}/ChargingFacilities/0/Power: must be an integer",
         (f"{R}/ChargingFacilities/0/Power", Decimal("22.5"))),
    data("Amperage over 99", f"{R}/ChargingFacilities/0/Amperage: must be at most 99",
         (f"{R}/ChargingFacilities/0/Amperage", 100)),
    data("Percentage over 99", f"{R}/EnergySource/0/Percentage: must be at most 99",
         (f"{R}/EnergySource/0/Percentage", 100)),
    data("IsOpen24Hours as string", f"{R}/IsOpen24Hours: must be true or false",
         (f"{R}/IsOpen24Hours", "false")),
    data("two geo formats",
         f"{R}/GeoCoordinates: exactly one of Google, DecimalDegree, DegreeMinuteSeconds must "
         "be given (got Google, DecimalDegree)",
         (f"{R}/GeoCoordinates/DecimalDegree", {"Longitude": "13.404954",
                                                "Latitude": "52.520008"})),
    data("no geo format",
         f"{R}/GeoCoordinates: exactly one of Google, DecimalDegree, DegreeMinuteSeconds must "
         "be given (got none)", (f"{R}/GeoCoordinates", {})),
    data("No Payment with Contract",
         f"{R}/PaymentOptions: 'No Payment' cannot be combined with another payment option",
         (f"{R}/PaymentOptions", ["No Payment", "Contract"])),
    data("closed hours without OpeningTimes",
         f"{R}/OpeningTimes: is mandatory when IsOpen24Hours is false",
         (f"{R}/OpeningTimes", REMOVE)),
    # --- eRoamingPushEvseStatus -------------------------------------------------------
    status("missing ActionType", f"/ActionType: {MISSING}", ("/ActionType", REMOVE)),
    status("missing OperatorID", f"/OperatorEvseStatus/OperatorID: {MISSING}",
           ("/OperatorEvseStatus/OperatorID", REMOVE)),
    status("missing EvseStatus", f"{S}/EvseStatus: {MISSING}", (f"{S}/EvseStatus", REMOVE)),
    status("bad EvseStatus", f"{S}/EvseStatus: {one_of(EvseStatus)}",
           (f"{S}/EvseStatus", "Charging")),
    status("bad EvseID", f"{S}/EvseID: does not match the EvseID pattern",
           (f"{S}/EvseID", "+49*810")),
    status("bad OperatorID",
           "/OperatorEvseStatus/OperatorID: does not match the OperatorID pattern",
           ("/OperatorEvseStatus/OperatorID", "DE-ABC")),
    status("long OperatorName",
           "/OperatorEvseStatus/OperatorName: is 101 characters long, over the limit of 100",
           ("/OperatorEvseStatus/OperatorName", "O" * 101)),
    # --- eRoamingPushPricingProductData -----------------------------------------------
    products("missing PricingDefaultPrice", f"{P}/PricingDefaultPrice: {MISSING}",
             (f"{P}/PricingDefaultPrice", REMOVE)),
    products("missing IsValid24hours", f"{PR}/IsValid24hours: {MISSING}",
             (f"{PR}/IsValid24hours", REMOVE)),
    products("missing Periods", f"{PR}/ProductAvailabilityTimes/0/Periods: {MISSING}",
             (f"{PR}/ProductAvailabilityTimes/0/Periods", REMOVE)),
    products("bad reference unit", f"{P}/PricingDefaultReferenceUnit: {one_of(ReferenceUnit)}",
             (f"{P}/PricingDefaultReferenceUnit", "SECOND")),
    products("bad additional reference",
             f"{PR}/AdditionalReferences/0/AdditionalReference: "
             f"{one_of(AdditionalReferenceType)}",
             (f"{PR}/AdditionalReferences/0/AdditionalReference", "TAX")),
    products("bad day", f"{PR}/ProductAvailabilityTimes/0/on: {one_of(DayValue)}",
             (f"{PR}/ProductAvailabilityTimes/0/on", "Weekdays")),
    products("bad ProviderID", f"{P}/ProviderID: does not match the ProviderID or * pattern",
             (f"{P}/ProviderID", "DE*8EO*")),
    products("two asterisks", f"{P}/ProviderID: does not match the ProviderID or * pattern",
             (f"{P}/ProviderID", "**")),
    products("bad OperatorID", f"{P}/OperatorID: does not match the OperatorID pattern",
             (f"{P}/OperatorID", "+49536")),
    products("lower-case currency",
             f"{P}/PricingDefaultPriceCurrency: does not match the currency pattern",
             (f"{P}/PricingDefaultPriceCurrency", "eur")),
    products("bad period end",
             f"{PR}/ProductAvailabilityTimes/0/Periods/0/end: does not match the hh:mm pattern",
             (f"{PR}/ProductAvailabilityTimes/0/Periods/0/end", "22:60")),
    products("long ProductID", f"{PR}/ProductID: is 51 characters long, over the limit of 50",
             (f"{PR}/ProductID", "P" * 51)),
    products("long OperatorName", f"{P}/OperatorName: is 101 characters long, over the limit "
             "of 100", (f"{P}/OperatorName", "O" * 101)),
    products("price as string", f"{P}/PricingDefaultPrice: must be a number",
             (f"{P}/PricingDefaultPrice", "0.45")),
    products("price as boolean", f"{PR}/PricePerReferenceUnit: must be a number",
             (f"{PR}/PricePerReferenceUnit", True)),
    products("duplicate ProductID",
             f"{P}/PricingProductDataRecords: ProductID 'AC 1' is given more than once",
             (f"{P}/PricingProductDataRecords/-",
              payloads.pricing_products()["PricingProductData"]["PricingProductDataRecords"][0])),
    # --- eRoamingPushEVSEPricing ------------------------------------------------------
    assignment("missing ProviderID", f"/EVSEPricing/0/ProviderID: {MISSING}",
               ("/EVSEPricing/0/ProviderID", REMOVE)),
    assignment("bad ActionType", f"/ActionType: {one_of(ActionType)}",
               ("/ActionType", "FullLoad")),
    assignment("bad EvseID", "/EVSEPricing/0/EvseID: does not match the EvseID pattern",
               ("/EVSEPricing/0/EvseID", "DEABC")),
    assignment("bad ProviderID",
               "/EVSEPricing/0/ProviderID: does not match the ProviderID or * pattern",
               ("/EVSEPricing/0/ProviderID", "DE-8EO-1")),
    assignment("long ProductID",
               "/EVSEPricing/0/EvseIDProductList/0: is 51 characters long, over the limit of 50",
               ("/EVSEPricing/0/EvseIDProductList/0", "P" * 51)),
    assignment("no EVSEPricing", "/EVSEPricing: has 0 items, needs at least 1",
               ("/EVSEPricing", [])),
    assignment("no products", "/EVSEPricing/0/EvseIDProductList: has 0 items, needs at least 1",
               ("/EVSEPricing/0/EvseIDProductList", [])),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.model.OICP_NAME}: {c.id}")
def test_broken_payload_is_refused_with_pointer_and_rule(case: Case) -> None:
    body = codec.encode_json(case.payload())
    with pytest.raises(codec.OicpValidationError) as caught:
        codec.decode(case.model, body)
    assert [str(issue) for issue in caught.value.issues] == [case.issue]
    # The error suggests Hubject's own answer to invalid data.
    assert caught.value.status_code == "022"


@pytest.mark.parametrize(
    ("model", "base"),
    [
        (PushEvseData, payloads.evse_data),
        (PushEvseStatus, payloads.evse_status),
        (PushPricingProductData, payloads.pricing_products),
        (PushEVSEPricing, payloads.evse_pricing),
    ],
    ids=lambda v: getattr(v, "OICP_NAME", ""),
)
def test_unbroken_base_payload_loads(model: type[Any], base: Callable[[], dict[str, Any]]) -> None:
    # Each case above breaks exactly one thing in a payload that is valid on its own.
    assert isinstance(codec.decode(model, codec.encode_json(base())), model)


def test_several_broken_records_are_all_reported() -> None:
    body = payloads.evse_status()
    record = body["OperatorEvseStatus"]["EvseStatusRecord"][0]
    body["OperatorEvseStatus"]["EvseStatusRecord"] = [
        {**record, "EvseID": "nope"},
        record,
        {**record, "EvseStatus": "Charging"},
    ]
    with pytest.raises(codec.OicpValidationError) as caught:
        codec.load(PushEvseStatus, body)
    assert [issue.pointer for issue in caught.value.issues] == [
        "/OperatorEvseStatus/EvseStatusRecord/0/EvseID",
        "/OperatorEvseStatus/EvseStatusRecord/2/EvseStatus",
    ]
