"""Valid request bodies of the four pushes, and JSON-pointer edits to break them.

Each function returns a fresh payload as ``codec.parse_json`` would (numbers with a
fraction as ``Decimal``), so a test may change it freely.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

#: Marks a JSON-pointer edit that removes the member instead of setting it.
REMOVE = object()


def evse_data() -> dict[str, Any]:
    """eRoamingPushEvseData with one record that uses most optional fields."""
    return {
        "ActionType": "fullLoad",
        "OperatorEvseData": {
            "OperatorID": "DE*ABC",
            "OperatorName": "ABC Charging",
            "EvseDataRecord": [
                {
                    "lastUpdate": "2024-03-01T10:15:00+01:00",
                    "EvseID": "DE*ABC*E1234*1",
                    "ChargingPoolID": "DE*ABC*P1234",
                    "ChargingStationId": "STATION 1",
                    "ChargingStationNames": [{"lang": "en", "value": "Market Square"}],
                    "Address": {
                        "Country": "DEU",
                        "City": "Berlin",
                        "Street": "Marktplatz",
                        "PostalCode": "10115",
                        "HouseNum": "1",
                        "TimeZone": "UTC+01:00",
                    },
                    "GeoCoordinates": {"Google": {"Coordinates": "52.520008 13.404954"}},
                    "Plugs": ["Type 2 Outlet"],
                    "ChargingFacilities": [
                        {"PowerType": "AC_3_PHASE", "Voltage": 230, "Amperage": 32, "Power": 22}
                    ],
                    "RenewableEnergy": False,
                    "EnergySource": [{"Energy": "Wind", "Percentage": 60}],
                    "EnvironmentalImpact": {"CO2Emission": Decimal("30.3")},
                    "CalibrationLawDataAvailability": "Local",
                    "AuthenticationModes": ["NFC RFID Classic", "REMOTE"],
                    "PaymentOptions": ["Contract"],
                    "ValueAddedServices": ["None"],
                    "Accessibility": "Free publicly accessible",
                    "HotlinePhoneNumber": "+4930123456",
                    "IsOpen24Hours": False,
                    "OpeningTimes": [
                        {"Period": [{"begin": "08:00", "end": "20:00"}], "on": "Workdays"}
                    ],
                    "IsHubjectCompatible": True,
                    "DynamicInfoAvailable": "auto",
                }
            ],
        },
    }


def evse_status() -> dict[str, Any]:
    """eRoamingPushEvseStatus with one record."""
    return {
        "ActionType": "update",
        "OperatorEvseStatus": {
            "OperatorID": "DE*ABC",
            "OperatorName": "ABC Charging",
            "EvseStatusRecord": [{"EvseID": "DE*ABC*E1234*1", "EvseStatus": "Occupied"}],
        },
    }


def pricing_products() -> dict[str, Any]:
    """eRoamingPushPricingProductData with one product for every EMP."""
    return {
        "ActionType": "fullLoad",
        "PricingProductData": {
            "OperatorID": "DE*ABC",
            "OperatorName": "ABC Charging",
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
                    "MaximumProductChargingPower": 22,
                    "IsValid24hours": False,
                    "ProductAvailabilityTimes": [
                        {"Periods": [{"begin": "06:00", "end": "22:00"}], "on": "Everyday"}
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


def evse_pricing() -> dict[str, Any]:
    """eRoamingPushEVSEPricing assigning one product to one EVSE for one EMP."""
    return {
        "ActionType": "insert",
        "EVSEPricing": [
            {"EvseID": "DE*ABC*E1234*1", "ProviderID": "DE-8EO", "EvseIDProductList": ["AC 1"]}
        ],
    }


def edit(payload: dict[str, Any], pointer: str, value: Any) -> dict[str, Any]:
    """Set (with ``REMOVE``: delete) the member at a JSON pointer; returns the payload."""
    *parents, last = pointer.lstrip("/").split("/")
    node: Any = payload
    for token in parents:
        node = node[int(token)] if isinstance(node, list) else node[token]
    if isinstance(node, list):
        if last == "-":
            # RFC 6901: "-" names the element after the last one.
            node.append(value)
        elif value is REMOVE:
            del node[int(last)]
        else:
            node[int(last)] = value
    elif value is REMOVE:
        del node[last]
    else:
        node[last] = value
    return payload
