"""Every rule beyond the OpenAPI, one at a time: a payload that breaks only that rule is
refused (or warned about) with the rule's wording at the right JSON pointer, and the same
payload unbroken passes every rule.

The payloads (``payloads``) pass all rules in ``payloads.CONTEXT``: sent by DE*ABC at noon
on 1 March 2024, for an EVSE whose calibration law data is External. Each row changes what
breaks one rule; ``review`` then runs everything ``oicp validate`` and ``send`` run, so a
row also fails when the change breaks a second rule, or when the rule reports elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import pytest

from hubject_connector.oicp.codec import Issue
from hubject_connector.oicp.conformance import CheckContext, Severity
from hubject_connector.oicp.context import ALL_RULES, review
from tests.unit.oicp_rules import payloads as p
from tests.unit.oicp_rules.payloads import PRODUCT, RECORD, REMOVE, Path, changed

CDR: Final = "eRoamingChargeDetailRecord"
NOTIFICATION: Final = "eRoamingChargingNotification"
START: Final = "eRoamingAuthorizeStart"
STOP: Final = "eRoamingAuthorizeStop"
REMOTE_START: Final = "eRoamingAuthorizeRemoteStart"
EVSE_DATA: Final = "eRoamingPushEvseData"
EVSE_STATUS: Final = "eRoamingPushEvseStatus"
PRODUCTS: Final = "eRoamingPushPricingProductData"
EVSE_PRICING: Final = "eRoamingPushEVSEPricing"

DIN_OPERATOR: Final = "+49*810"
DIN_CONTEXT: Final = CheckContext(operator_id=DIN_OPERATOR)


@dataclass(frozen=True)
class Case:
    """One row: ``changes`` to the valid payload of ``build`` break ``rule`` at ``pointer``."""

    rule: str
    message: str
    build: Callable[[], dict[str, Any]]
    changes: Mapping[Path, Any]
    pointer: str
    variant: str = ""
    context: CheckContext = field(default=p.CONTEXT)

    @property
    def id(self) -> str:
        return f"{self.rule}:{self.variant}" if self.variant else self.rule


def _din_status() -> dict[str, Any]:
    return changed(p.evse_status(), {
        ("OperatorEvseStatus", "OperatorID"): DIN_OPERATOR,
        ("OperatorEvseStatus", "EvseStatusRecord", 0, "EvseID"): "+49*810*000*438",
    })


def _product() -> dict[str, Any]:
    product: dict[str, Any] = p.pricing_products()["PricingProductData"][
        "PricingProductDataRecords"][0]
    return product


_FACILITY: Final = (*RECORD, "ChargingFacilities", 0)

CASES: Final = [
    # --- the model machinery ----------------------------------------------------------
    Case("length-limit", CDR, p.charge_detail_record, {("CPOPartnerSessionID",): "x" * 251},
         "/CPOPartnerSessionID"),
    Case("energy-decimal-places", CDR, p.charge_detail_record,
         {("ConsumedEnergy",): Decimal("22.1250")}, "/ConsumedEnergy"),
    # --- identification -----------------------------------------------------------------
    Case("identification-one-option", CDR, p.charge_detail_record,
         {("Identification",): {**p.mifare(), **p.qr_code()}}, "/Identification"),
    Case("qr-code-pin-or-hash", START, p.authorize_start,
         {("Identification",): p.qr_code(PIN="1234", HashedPIN=p.HASHED_PIN)},
         "/Identification/QRCodeIdentification"),
    Case("hashed-pin-upload-only", CDR, p.charge_detail_record,
         {("Identification",): p.qr_code(HashedPIN=p.HASHED_PIN)},
         "/Identification/QRCodeIdentification/HashedPIN"),
    Case("hashed-pin-upload-only", NOTIFICATION, p.notification_end,
         {("Identification", "QRCodeIdentification", "HashedPIN"): p.HASHED_PIN},
         "/Identification/QRCodeIdentification/HashedPIN", "notification"),
    Case("authorization-no-rfid-identification", START, p.authorize_start,
         {("Identification",): {"RFIDIdentification": {"UID": p.UID, "RFID": "mifareCls"}}},
         "/Identification"),
    Case("authorization-clear-text-pin", STOP, p.authorize_stop,
         {("Identification", "QRCodeIdentification", "PIN"): REMOVE}, "/Identification"),
    Case("authorization-clear-text-pin", START, p.authorize_start,
         {("Identification",): p.qr_code(HashedPIN=p.HASHED_PIN)}, "/Identification",
         "hashed-pin"),
    Case("remote-identification-only", REMOTE_START, p.authorize_remote_start,
         {("Identification",): p.mifare()}, "/Identification"),
    # --- EVSE data ------------------------------------------------------------------------
    Case("geo-one-format", EVSE_DATA, p.evse_data,
         {(*RECORD, "GeoCoordinates", "Google"): {"Coordinates": "52.520008 13.404954"}},
         "/OperatorEvseData/EvseDataRecord/0/GeoCoordinates"),
    Case("geo-range", EVSE_DATA, p.evse_data,
         {(*RECORD, "GeoCoordinates", "DecimalDegree", "Latitude"): "91.0"},
         "/OperatorEvseData/EvseDataRecord/0/GeoCoordinates/DecimalDegree/Latitude"),
    Case("geo-range", EVSE_DATA, p.evse_data,
         {(*RECORD, "GeoCoordinates", "DecimalDegree", "Longitude"): "-180.000001"},
         "/OperatorEvseData/EvseDataRecord/0/GeoCoordinates/DecimalDegree/Longitude",
         "longitude"),
    # Latitude and longitude swapped: "13.4 152.5" would be a valid spot in the Pacific.
    Case("geo-range", EVSE_DATA, p.evse_data,
         p.geo(Google={"Coordinates": "152.520008 13.404954"}),
         "/OperatorEvseData/EvseDataRecord/0/GeoCoordinates/Google/Coordinates", "google"),
    Case("geo-range", EVSE_DATA, p.evse_data,
         p.geo(DegreeMinuteSeconds={"Latitude": "95°0'0.0''", "Longitude": "13°24'17.83''"}),
         "/OperatorEvseData/EvseDataRecord/0/GeoCoordinates/DegreeMinuteSeconds/Latitude",
         "degree-minute-second"),
    Case("geo-minutes-seconds", EVSE_DATA, p.evse_data,
         p.geo(DegreeMinuteSeconds={"Latitude": "52°31'60.0''", "Longitude": "13°24'17.83''"}),
         "/OperatorEvseData/EvseDataRecord/0/GeoCoordinates/DegreeMinuteSeconds/Latitude"),
    Case("no-payment-alone", EVSE_DATA, p.evse_data,
         {(*RECORD, "PaymentOptions"): ["No Payment", "Contract"]},
         "/OperatorEvseData/EvseDataRecord/0/PaymentOptions"),
    Case("opening-times-when-not-24-hours", EVSE_DATA, p.evse_data,
         {(*RECORD, "IsOpen24Hours"): False}, "/OperatorEvseData/EvseDataRecord/0/OpeningTimes"),
    Case("renewable-energy-consistent", EVSE_DATA, p.evse_data,
         {(*RECORD, "EnergySource"): [{"Energy": "Solar", "Percentage": 70},
                                      {"Energy": "Coal", "Percentage": 30}]},
         "/OperatorEvseData/EvseDataRecord/0/RenewableEnergy"),
    Case("power-not-negative", EVSE_DATA, p.evse_data, {(*RECORD, "MaxCapacity"): -1},
         "/OperatorEvseData/EvseDataRecord/0/MaxCapacity"),
    Case("power-not-negative", EVSE_DATA, p.evse_data, {(*_FACILITY, "Power"): -22},
         "/OperatorEvseData/EvseDataRecord/0/ChargingFacilities/0/Power", "facility"),
    Case("power-not-negative", PRODUCTS, p.pricing_products,
         {(*PRODUCT, "MaximumProductChargingPower"): Decimal("-22")},
         "/PricingProductData/PricingProductDataRecords/0/MaximumProductChargingPower",
         "product"),
    # --- energy -----------------------------------------------------------------------------
    Case("energy-not-negative", CDR, p.charge_detail_record,
         {("ConsumedEnergy",): Decimal("-1"), ("MeterValueStart",): REMOVE,
          ("MeterValueEnd",): REMOVE}, "/ConsumedEnergy"),
    Case("energy-not-negative", NOTIFICATION, p.notification_progress,
         {("ConsumedEnergyProgress",): Decimal("-0.001")}, "/ConsumedEnergyProgress",
         "progress"),
    Case("cdr-signed-values-limit", CDR, p.charge_detail_record,
         {("SignedMeteringValues",): [{"SignedMeteringValue": f"OCMF|{i}", "MeteringStatus":
                                       "Progress"} for i in range(11)]},
         "/SignedMeteringValues"),
    Case("cdr-consumed-energy-limit", CDR, p.charge_detail_record,
         {("ConsumedEnergy",): Decimal("1000.001"), ("MeterValueEnd",): Decimal("2000.501")},
         "/ConsumedEnergy"),
    Case("consumed-energy-difference", CDR, p.charge_detail_record,
         {("ConsumedEnergy",): Decimal("22")}, "/ConsumedEnergy"),
    Case("meter-value-order", CDR, p.charge_detail_record,
         {("MeterValueEnd",): Decimal("999.000")}, "/MeterValueEnd"),
    Case("meter-value-order", NOTIFICATION, p.notification_end,
         {("MeterValueEnd",): Decimal("999.000")}, "/MeterValueEnd", "notification"),
    # --- times ------------------------------------------------------------------------------
    Case("time-order", CDR, p.charge_detail_record,
         {("ChargingStart",): "2024-03-01T09:59:59+01:00"}, "/ChargingStart"),
    Case("time-order", CDR, p.charge_detail_record,
         {("ChargingEnd",): "2024-03-01T10:04:59+01:00"}, "/ChargingEnd", "charging-end"),
    Case("time-order", CDR, p.charge_detail_record,
         {("SessionEnd",): "2024-03-01T10:59:59+01:00"}, "/SessionEnd", "session-end"),
    # Instants are compared: 10:30+02:00 is 09:30+01:00, before the session.
    Case("time-order", CDR, p.charge_detail_record,
         {("ChargingStart",): "2024-03-01T10:30:00+02:00"}, "/ChargingStart", "offsets"),
    Case("time-order", NOTIFICATION, p.notification_start,
         {("SessionStart",): "2024-03-01T10:05:01+01:00"}, "/ChargingStart",
         "notification-start"),
    Case("time-order", NOTIFICATION, p.notification_progress,
         {("EventOccurred",): "2024-03-01T10:04:00+01:00", ("ChargingDuration",): REMOVE},
         "/EventOccurred", "progress"),
    Case("cdr-session-end-not-in-future", CDR, p.charge_detail_record,
         {("SessionEnd",): "2024-03-01T12:00:01+01:00"}, "/SessionEnd"),
    # --- notifications ----------------------------------------------------------------------
    Case("notification-type", "eRoamingChargingNotificationStart", p.notification_start,
         {("Type",): "End"}, "/Type"),
    Case("progress-duration-or-energy", NOTIFICATION, p.notification_progress,
         {("ChargingDuration",): REMOVE, ("ConsumedEnergyProgress",): REMOVE}, ""),
    Case("progress-duration-consistent", NOTIFICATION, p.notification_progress,
         {("ChargingDuration",): 60000}, "/ChargingDuration"),
    Case("duration-not-negative", NOTIFICATION, p.notification_progress,
         {("ChargingDuration",): -1}, "/ChargingDuration"),
    # --- pricing ----------------------------------------------------------------------------
    Case("price-not-negative", PRODUCTS, p.pricing_products,
         {("PricingProductData", "PricingDefaultPrice"): Decimal("-0.01")},
         "/PricingProductData/PricingDefaultPrice"),
    Case("price-not-negative", PRODUCTS, p.pricing_products,
         {(*PRODUCT, "PricePerReferenceUnit"): Decimal("-0.39")},
         "/PricingProductData/PricingProductDataRecords/0/PricePerReferenceUnit", "product"),
    Case("price-not-negative", PRODUCTS, p.pricing_products,
         {(*PRODUCT, "AdditionalReferences", 0, "PricePerAdditionalReferenceUnit"):
          Decimal("-1")},
         "/PricingProductData/PricingProductDataRecords/0/AdditionalReferences/0/"
         "PricePerAdditionalReferenceUnit", "additional"),
    Case("evse-pricing-not-empty", EVSE_PRICING, p.evse_pricing, {("EVSEPricing",): []},
         "/EVSEPricing"),
    Case("evse-pricing-not-empty", EVSE_PRICING, p.evse_pricing,
         {("EVSEPricing", 0, "EvseIDProductList"): []}, "/EVSEPricing/0/EvseIDProductList",
         "products"),
    Case("product-id-unique", PRODUCTS, p.pricing_products,
         {("PricingProductData", "PricingProductDataRecords"): [_product(), _product()]},
         "/PricingProductData/PricingProductDataRecords"),
    # --- context: who sends -----------------------------------------------------------------
    Case("operator-id-matches", EVSE_STATUS, p.evse_status,
         {("OperatorEvseStatus", "OperatorID"): "DE*ABD"}, "/OperatorEvseStatus/OperatorID"),
    # The notifications path names no operator: the body's is the one Hubject checks.
    Case("operator-id-matches", NOTIFICATION, p.notification_start,
         {("OperatorID",): p.OTHER_OPERATOR_ID}, "/OperatorID", "notification"),
    Case("operator-id-matches", START, p.authorize_start,
         {("OperatorID",): p.OTHER_OPERATOR_ID}, "/OperatorID", "authorize-start"),
    Case("evse-id-owned", EVSE_STATUS, p.evse_status,
         {("OperatorEvseStatus", "EvseStatusRecord", 0, "EvseID"): p.OTHER_EVSE_ID},
         "/OperatorEvseStatus/EvseStatusRecord/0/EvseID"),
    Case("evse-id-owned", CDR, p.charge_detail_record, {("EvseID",): p.OTHER_EVSE_ID},
         "/EvseID", "cdr"),
    Case("evse-id-owned", EVSE_PRICING, p.evse_pricing,
         {("EVSEPricing", 0, "EvseID"): "DEXYZE1"}, "/EVSEPricing/0/EvseID", "pricing"),
    Case("evse-id-owned", EVSE_DATA, p.evse_data, {(*RECORD, "EvseID"): "DE*ABD*E1"},
         "/OperatorEvseData/EvseDataRecord/0/EvseID", "data"),
    # DIN: "+49*810" owns "+49*810*..." and "49*810*..." (the "+" is optional), not 811.
    Case("evse-id-owned", EVSE_STATUS, _din_status,
         {("OperatorEvseStatus", "EvseStatusRecord", 0, "EvseID"): "49*811*000*438"},
         "/OperatorEvseStatus/EvseStatusRecord/0/EvseID", "din", DIN_CONTEXT),
    # --- context: what Hubject holds --------------------------------------------------------
    Case("cdr-signed-values-for-external-calibration", CDR, p.charge_detail_record,
         {("SignedMeteringValues",): REMOVE}, "/SignedMeteringValues"),
    # --- warnings ---------------------------------------------------------------------------
    Case("time-local-offset", CDR, p.charge_detail_record,
         {("SessionEnd",): "2024-03-01T10:10:00Z"}, "/SessionEnd"),
    Case("time-local-offset", NOTIFICATION, p.notification_progress,
         {("EventOccurred",): "2024-03-01T09:15:00.000Z"}, "/EventOccurred", "notification"),
]

#: Rules proven elsewhere: what breaks them is an answer from Hubject, not a payload sent.
ANSWER_RULES: Final = frozenset(
    rule.id for rule in ALL_RULES.values() if rule.severity is Severity.ANSWER
)


def _found(case: Case, payload: dict[str, Any]) -> tuple[list[Issue], list[Issue]]:
    result = review(case.message, payload, case.context)
    return result.errors, result.warnings


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_breaking_one_rule(case: Case) -> None:
    rule = ALL_RULES[case.rule]
    # The valid payload passes every rule (and draws no warning) ...
    assert _found(case, case.build()) == ([], [])
    # ... and the change breaks exactly this one, at the pointer, in the rule's words.
    errors, warnings = _found(case, changed(case.build(), case.changes))
    if rule.severity is Severity.WARNING:
        assert errors == []
        broken = warnings
    else:
        assert warnings == []
        broken = errors
    assert [issue.pointer for issue in broken] == [case.pointer]
    assert rule.matches(broken[0].message), broken[0].message


def test_every_rule_sent_in_a_request_has_a_row() -> None:
    assert {case.rule for case in CASES} == set(ALL_RULES) - ANSWER_RULES


def test_the_answer_rules_are_the_two_hubject_answers() -> None:
    assert {"answer-authorized-without-session-id", "answer-unknown-status-code"} == ANSWER_RULES
