"""Valid request bodies for the simulator's tests, as JSON-ready dicts built fresh per call."""

from __future__ import annotations

import json
from typing import Any, Final

OPERATOR_ID: Final = "DE*ABC"
OTHER_OPERATOR_ID: Final = "DE*XYZ"
PROVIDER_ID: Final = "DE-8EO"
UID: Final = "04A1B2C3"
EVCO_ID: Final = "DE-8EO-CAB123456-7"
SESSION_ID: Final = "5e7c1a2b-0d3f-4a6e-9b8c-1f2e3d4c5b6a"


def evse_id(n: int = 1, operator: str = OPERATOR_ID) -> str:
    """An EvseID of ``operator``."""
    return f"{operator}*E{n}"


def encode(payload: dict[str, Any]) -> bytes:
    """A payload as the UTF-8 JSON a client sends."""
    return json.dumps(payload).encode()


def evse_record(evse: str) -> dict[str, Any]:
    """One EvseDataRecord with only the mandatory fields."""
    return {
        "EvseID": evse,
        "ChargingStationNames": [{"lang": "en", "value": "Market Square"}],
        "Address": {"Country": "DEU", "City": "Berlin", "Street": "Marktplatz",
                    "PostalCode": "10115", "HouseNum": "1"},
        "GeoCoordinates": {"Google": {"Coordinates": "52.520008 13.404954"}},
        "Plugs": ["Type 2 Outlet"],
        "ChargingFacilities": [{"PowerType": "AC_3_PHASE", "Power": 22}],
        "RenewableEnergy": False,
        "CalibrationLawDataAvailability": "Not Available",
        "AuthenticationModes": ["NFC RFID Classic"],
        "PaymentOptions": ["Contract"],
        "ValueAddedServices": ["None"],
        "Accessibility": "Free publicly accessible",
        "HotlinePhoneNumber": "+4930123456",
        "IsOpen24Hours": True,
        "IsHubjectCompatible": True,
        "DynamicInfoAvailable": "auto",
    }


def evse_data(action: str, *evse_ids: str, operator: str = OPERATOR_ID) -> dict[str, Any]:
    """eRoamingPushEvseData with a record per EvseID."""
    return {
        "ActionType": action,
        "OperatorEvseData": {
            "OperatorID": operator,
            "OperatorName": "ABC Charging",
            "EvseDataRecord": [evse_record(e) for e in evse_ids],
        },
    }


def evse_status(action: str, statuses: dict[str, str],
                operator: str = OPERATOR_ID) -> dict[str, Any]:
    """eRoamingPushEvseStatus with the given EvseID → status."""
    return {
        "ActionType": action,
        "OperatorEvseStatus": {
            "OperatorID": operator,
            "EvseStatusRecord": [{"EvseID": e, "EvseStatus": s} for e, s in statuses.items()],
        },
    }


def pricing_products(action: str, *product_ids: str) -> dict[str, Any]:
    """eRoamingPushPricingProductData for every EMP."""
    return {
        "ActionType": action,
        "PricingProductData": {
            "OperatorID": OPERATOR_ID,
            "ProviderID": "*",
            "PricingDefaultPrice": 0.45,
            "PricingDefaultPriceCurrency": "EUR",
            "PricingDefaultReferenceUnit": "KILOWATT_HOUR",
            "PricingProductDataRecords": [
                {
                    "ProductID": pid,
                    "ReferenceUnit": "KILOWATT_HOUR",
                    "ProductPriceCurrency": "EUR",
                    "PricePerReferenceUnit": 0.39,
                    "MaximumProductChargingPower": 22,
                    "IsValid24hours": True,
                    "ProductAvailabilityTimes": [
                        {"Periods": [{"begin": "00:00", "end": "23:59"}], "on": "Everyday"}
                    ],
                }
                for pid in product_ids
            ],
        },
    }


def evse_pricing(action: str, evse: str, *product_ids: str) -> dict[str, Any]:
    """eRoamingPushEVSEPricing assigning products to one EVSE for every EMP."""
    return {
        "ActionType": action,
        "EVSEPricing": [
            {"EvseID": evse, "ProviderID": "*", "EvseIDProductList": list(product_ids)}
        ],
    }


def mifare(uid: str = UID) -> dict[str, Any]:
    """An RFID card Identification."""
    return {"RFIDMifareFamilyIdentification": {"UID": uid}}


def authorize_start(identification: dict[str, Any] | None = None,
                    evse: str | None = None) -> dict[str, Any]:
    """eRoamingAuthorizeStart."""
    return {
        "CPOPartnerSessionID": "cpo-17",
        "OperatorID": OPERATOR_ID,
        "EvseID": evse or evse_id(),
        "Identification": identification or mifare(),
    }


def authorize_stop(session_id: str, identification: dict[str, Any] | None = None) -> dict[str, Any]:
    """eRoamingAuthorizeStop."""
    return {
        "SessionID": session_id,
        "OperatorID": OPERATOR_ID,
        "EvseID": evse_id(),
        "Identification": identification or mifare(),
    }


def cdr(session_id: str = SESSION_ID, evse: str | None = None) -> dict[str, Any]:
    """eRoamingChargeDetailRecord."""
    return {
        "SessionID": session_id,
        "EvseID": evse or evse_id(),
        "Identification": mifare(),
        "ChargingStart": "2024-03-01T10:05:00+01:00",
        "ChargingEnd": "2024-03-01T11:00:00+01:00",
        "SessionStart": "2024-03-01T10:00:00+01:00",
        "SessionEnd": "2024-03-01T11:10:00+01:00",
        "ConsumedEnergy": 22.125,
    }


def notification_progress(session_id: str = SESSION_ID) -> dict[str, Any]:
    """eRoamingChargingNotification of Type Progress."""
    return {
        "Type": "Progress",
        "SessionID": session_id,
        "EvseID": evse_id(),
        "ChargingStart": "2024-03-01T10:05:00+01:00",
        "EventOccurred": "2024-03-01T10:15:00+01:00",
        "ConsumedEnergyProgress": 4.2,
        "OperatorID": OPERATOR_ID,
    }
