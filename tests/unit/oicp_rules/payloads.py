"""Valid requests that pass every rule, including the context rules, in ``CONTEXT``.

Each function builds a fresh payload (numbers with a fraction as ``Decimal``, as
``codec.parse_json`` reads them). The values are our own: the operator DE*ABC sends them
on 1 March 2024 at noon in Berlin, for one EVSE whose calibration law data is External.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Final

from hubject_connector.oicp.conformance import CheckContext

OPERATOR_ID: Final = "DE*ABC"
EVSE_ID: Final = "DE*ABC*E1234*1"
OTHER_OPERATOR_ID: Final = "DE*XYZ"
OTHER_EVSE_ID: Final = "DE*XYZ*E1"
SESSION_ID: Final = "5e7c1a2b-0d3f-4a6e-9b8c-1f2e3d4c5b6a"
EVCO_ID: Final = "DE-XYZ-C12345678-9"
UID: Final = "04A1B2C3"
BERLIN_WINTER: Final = timezone(timedelta(hours=1))
NOW: Final = datetime(2024, 3, 1, 12, 0, tzinfo=BERLIN_WINTER)

#: Who sends, when, and what Hubject holds: every rule applies.
CONTEXT: Final = CheckContext(
    operator_id=OPERATOR_ID, now=NOW, calibration_law={EVSE_ID: "External"}
)

#: A path in a payload: keys and list indexes.
Path = tuple[str | int, ...]


class _Remove:
    def __repr__(self) -> str:
        return "REMOVE"


#: As the new value of a change: remove the member.
REMOVE: Final = _Remove()


def changed(payload: dict[str, Any], changes: Mapping[Path, Any]) -> dict[str, Any]:
    """A deep copy of ``payload`` with each path set to its value (or removed)."""
    result = copy.deepcopy(payload)
    for path, value in changes.items():
        target: Any = result
        for step in path[:-1]:
            target = target[step]
        if value is REMOVE:
            del target[path[-1]]
        else:
            target[path[-1]] = copy.deepcopy(value)
    return result


def mifare() -> dict[str, Any]:
    """An RFID card, as the authorization process wants it."""
    return {"RFIDMifareFamilyIdentification": {"UID": UID}}


def qr_code(**fields: Any) -> dict[str, Any]:
    """A QR code identification: the contract, and the given PIN or HashedPIN."""
    return {"QRCodeIdentification": {"EvcoID": EVCO_ID, **fields}}


HASHED_PIN: Final = {"Value": "$2a$10$abcdefghij", "Function": "Bcrypt"}


def charge_detail_record() -> dict[str, Any]:
    """eRoamingChargeDetailRecord of a session 10:00-11:10, charging 10:05-11:00."""
    return {
        "SessionID": SESSION_ID,
        "CPOPartnerSessionID": "cpo-session-17",
        "EvseID": EVSE_ID,
        "Identification": mifare(),
        "SessionStart": "2024-03-01T10:00:00+01:00",
        "ChargingStart": "2024-03-01T10:05:00+01:00",
        "ChargingEnd": "2024-03-01T11:00:00+01:00",
        "SessionEnd": "2024-03-01T11:10:00+01:00",
        "MeterValueStart": Decimal("1000.500"),
        "MeterValueEnd": Decimal("1022.625"),
        "ConsumedEnergy": Decimal("22.125"),
        "SignedMeteringValues": [
            {"SignedMeteringValue": "OCMF|{start}|{sig}", "MeteringStatus": "Start"},
            {"SignedMeteringValue": "OCMF|{end}|{sig}", "MeteringStatus": "End"},
        ],
    }


def authorize_start() -> dict[str, Any]:
    """eRoamingAuthorizeStart with a QR code and its PIN."""
    return {
        "OperatorID": OPERATOR_ID,
        "EvseID": EVSE_ID,
        "Identification": qr_code(PIN="1234"),
    }


def authorize_stop() -> dict[str, Any]:
    """eRoamingAuthorizeStop with a QR code and its PIN."""
    return {
        "SessionID": SESSION_ID,
        "OperatorID": OPERATOR_ID,
        "EvseID": EVSE_ID,
        "Identification": qr_code(PIN="1234"),
    }


def notification_start() -> dict[str, Any]:
    """eRoamingChargingNotification of Type Start."""
    return {
        "Type": "Start",
        "SessionID": SESSION_ID,
        "EvseID": EVSE_ID,
        "OperatorID": OPERATOR_ID,
        "SessionStart": "2024-03-01T10:00:00+01:00",
        "ChargingStart": "2024-03-01T10:05:00+01:00",
    }


def notification_progress() -> dict[str, Any]:
    """eRoamingChargingNotification of Type Progress, 10 minutes into the charging."""
    return {
        "Type": "Progress",
        "SessionID": SESSION_ID,
        "EvseID": EVSE_ID,
        "OperatorID": OPERATOR_ID,
        "SessionStart": "2024-03-01T10:00:00+01:00",
        "ChargingStart": "2024-03-01T10:05:00+01:00",
        "EventOccurred": "2024-03-01T10:15:00+01:00",
        "ChargingDuration": 600000,
        "ConsumedEnergyProgress": Decimal("4.2"),
    }


def notification_end() -> dict[str, Any]:
    """eRoamingChargingNotification of Type End, with a QR code identification."""
    return {
        "Type": "End",
        "SessionID": SESSION_ID,
        "EvseID": EVSE_ID,
        "OperatorID": OPERATOR_ID,
        "Identification": qr_code(),
        "SessionStart": "2024-03-01T10:00:00+01:00",
        "ChargingStart": "2024-03-01T10:05:00+01:00",
        "ChargingEnd": "2024-03-01T11:00:00+01:00",
        "MeterValueStart": Decimal("1000.500"),
        "MeterValueEnd": Decimal("1022.625"),
        "ConsumedEnergy": Decimal("22.125"),
    }


def authorize_remote_start() -> dict[str, Any]:
    """eRoamingAuthorizeRemoteStart (from Hubject)."""
    return {
        "SessionID": SESSION_ID,
        "ProviderID": "DE-XYZ",
        "EvseID": EVSE_ID,
        "Identification": {"RemoteIdentification": {"EvcoID": EVCO_ID}},
    }


def evse_data() -> dict[str, Any]:
    """eRoamingPushEvseData with one record, located by decimal degrees."""
    return {
        "ActionType": "insert",
        "OperatorEvseData": {
            "OperatorID": OPERATOR_ID,
            "OperatorName": "ABC Charging",
            "EvseDataRecord": [
                {
                    "EvseID": EVSE_ID,
                    "ChargingStationNames": [{"lang": "en", "value": "Market Square"}],
                    "Address": {
                        "Country": "DEU",
                        "City": "Berlin",
                        "Street": "Marktplatz",
                        "PostalCode": "10115",
                        "HouseNum": "1",
                    },
                    "GeoCoordinates": {
                        "DecimalDegree": {"Latitude": "52.520008", "Longitude": "13.404954"}
                    },
                    "Plugs": ["Type 2 Outlet"],
                    "ChargingFacilities": [{"PowerType": "AC_3_PHASE", "Power": 22}],
                    "RenewableEnergy": True,
                    "CalibrationLawDataAvailability": "External",
                    "AuthenticationModes": ["NFC RFID Classic", "REMOTE"],
                    "MaxCapacity": 50,
                    "PaymentOptions": ["Contract"],
                    "ValueAddedServices": ["None"],
                    "Accessibility": "Free publicly accessible",
                    "HotlinePhoneNumber": "+4930123456",
                    "IsOpen24Hours": True,
                    "IsHubjectCompatible": True,
                    "DynamicInfoAvailable": "auto",
                }
            ],
        },
    }


#: Where the one record of ``evse_data`` is.
RECORD: Final[Path] = ("OperatorEvseData", "EvseDataRecord", 0)


def geo(**formats: Any) -> dict[Path, Any]:
    """Changes to ``evse_data`` that locate its record by ``formats`` instead."""
    return {(*RECORD, "GeoCoordinates"): formats}


def evse_status() -> dict[str, Any]:
    """eRoamingPushEvseStatus with one record."""
    return {
        "ActionType": "update",
        "OperatorEvseStatus": {
            "OperatorID": OPERATOR_ID,
            "EvseStatusRecord": [{"EvseID": EVSE_ID, "EvseStatus": "Occupied"}],
        },
    }


def pricing_products() -> dict[str, Any]:
    """eRoamingPushPricingProductData with one product for every EMP."""
    return {
        "ActionType": "fullLoad",
        "PricingProductData": {
            "OperatorID": OPERATOR_ID,
            "ProviderID": "*",
            "PricingDefaultPrice": Decimal("0.45"),
            "PricingDefaultPriceCurrency": "EUR",
            "PricingDefaultReferenceUnit": "KILOWATT_HOUR",
            "PricingProductDataRecords": [
                {
                    "ProductID": "AC 1",
                    "ReferenceUnit": "KILOWATT_HOUR",
                    "ProductPriceCurrency": "EUR",
                    "PricePerReferenceUnit": Decimal("0.39"),
                    "MaximumProductChargingPower": Decimal("22"),
                    "IsValid24hours": True,
                    "ProductAvailabilityTimes": [
                        {"Periods": [{"begin": "00:00", "end": "24:00"}], "on": "Everyday"}
                    ],
                    "AdditionalReferences": [
                        {
                            "AdditionalReference": "START FEE",
                            "AdditionalReferenceUnit": "HOUR",
                            "PricePerAdditionalReferenceUnit": Decimal("1.00"),
                        }
                    ],
                }
            ],
        },
    }


#: Where the one product of ``pricing_products`` is.
PRODUCT: Final[Path] = ("PricingProductData", "PricingProductDataRecords", 0)


def evse_pricing() -> dict[str, Any]:
    """eRoamingPushEVSEPricing assigning one product to the EVSE for every EMP."""
    return {
        "ActionType": "insert",
        "EVSEPricing": [{"EvseID": EVSE_ID, "ProviderID": "*", "EvseIDProductList": ["AC 1"]}],
    }
