"""Valid payloads of each charging message, built fresh per call, and a way to break them.

The values are our own (not Hubject's examples), chosen to pass every rule, so that a test
changing one field sees exactly the one issue that change causes.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any, Final

SESSION_ID: Final = "5e7c1a2b-0d3f-4a6e-9b8c-1f2e3d4c5b6a"
OPERATOR_ID: Final = "DE*ABC"
EVSE_ID: Final = "DE*ABC*E1234*1"
PROVIDER_ID: Final = "DE-XYZ"
EVCO_ID: Final = "DE-XYZ-C12345678-9"
UID: Final = "04A1B2C3"

Path = tuple[str | int, ...]


class _Delete:
    def __repr__(self) -> str:
        return "DELETE"


#: Pass as the new value to remove the field.
DELETE: Final = _Delete()


def changed(payload: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    """A deep copy of ``payload`` with the value at ``path`` replaced (or removed)."""
    result = copy.deepcopy(payload)
    target: Any = result
    for step in path[:-1]:
        target = target[step]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return result


def mifare() -> dict[str, Any]:
    """An Identification with the RFID card option used for authorization."""
    return {"RFIDMifareFamilyIdentification": {"UID": UID}}


def remote_identification() -> dict[str, Any]:
    """An Identification with the option used for remote authorization."""
    return {"RemoteIdentification": {"EvcoID": EVCO_ID}}


def authorize_start() -> dict[str, Any]:
    """eRoamingAuthorizeStart."""
    return {
        "CPOPartnerSessionID": "cpo-session-17",
        "OperatorID": OPERATOR_ID,
        "EvseID": EVSE_ID,
        "Identification": mifare(),
        "PartnerProductID": "AC3",
    }


def authorize_stop() -> dict[str, Any]:
    """eRoamingAuthorizeStop."""
    return {
        "SessionID": SESSION_ID,
        "OperatorID": OPERATOR_ID,
        "EvseID": EVSE_ID,
        "Identification": mifare(),
    }


def authorization_start() -> dict[str, Any]:
    """eRoamingAuthorizationStart (Hubject's answer)."""
    return {
        "SessionID": SESSION_ID,
        "ProviderID": PROVIDER_ID,
        "AuthorizationStatus": "Authorized",
        "StatusCode": {"Code": "000", "Description": "Success"},
        "AuthorizationStopIdentifications": [mifare(), remote_identification()],
    }


def authorization_stop() -> dict[str, Any]:
    """eRoamingAuthorizationStop (Hubject's answer)."""
    return {
        "SessionID": SESSION_ID,
        "ProviderID": PROVIDER_ID,
        "AuthorizationStatus": "NotAuthorized",
        "StatusCode": {"Code": "102", "Description": "RFID Authentication failed - invalid UID"},
    }


def charge_detail_record() -> dict[str, Any]:
    """eRoamingChargeDetailRecord with every optional part filled."""
    return {
        "SessionID": SESSION_ID,
        "CPOPartnerSessionID": "cpo-session-17",
        "EMPPartnerSessionID": "emp-session-4",
        "PartnerProductID": "AC3",
        "EvseID": EVSE_ID,
        "Identification": mifare(),
        "ChargingStart": "2024-03-01T10:05:00+01:00",
        "ChargingEnd": "2024-03-01T11:00:00+01:00",
        "SessionStart": "2024-03-01T10:00:00+01:00",
        "SessionEnd": "2024-03-01T11:10:00+01:00",
        "MeterValueStart": Decimal("1000.500"),
        "MeterValueEnd": Decimal("1022.625"),
        "MeterValueInBetween": {"meterValues": [Decimal("1010.1"), Decimal("1020")]},
        "ConsumedEnergy": Decimal("22.125"),
        "SignedMeteringValues": [
            {"SignedMeteringValue": "OCMF|{start}|{sig}", "MeteringStatus": "Start"},
            {"SignedMeteringValue": "OCMF|{end}|{sig}", "MeteringStatus": "End"},
        ],
        "CalibrationLawVerificationInfo": {
            "CalibrationLawCertificateID": "PTB-1-2-3456 : V1 : 01Jan2024",
            "PublicKey": "3059301306072a8648ce3d020106082a8648ce3d03010703420004",
            "MeteringSignatureUrl": "https://cpo.example/cdr/signatures.xml",
            "MeteringSignatureEncodingFormat": "OCMF: V1",
            "SignedMeteringValuesVerificationInstruction": "Open it with the S.A.F.E. app",
        },
        "HubOperatorID": "DE*HUB",
        "HubProviderID": "DE-HUB",
    }


def notification_start() -> dict[str, Any]:
    """eRoamingChargingNotification of Type Start."""
    return {
        "Type": "Start",
        "SessionID": SESSION_ID,
        "Identification": mifare(),
        "EvseID": EVSE_ID,
        "ChargingStart": "2024-03-01T10:05:00+01:00",
        "SessionStart": "2024-03-01T10:00:00+01:00",
        "MeterValueStart": Decimal("1000.500"),
        "OperatorID": OPERATOR_ID,
        "PartnerProductID": "AC3",
    }


def notification_progress() -> dict[str, Any]:
    """eRoamingChargingNotification of Type Progress (also a valid Start, bar its Type)."""
    return {
        "Type": "Progress",
        "SessionID": SESSION_ID,
        "EvseID": EVSE_ID,
        "ChargingStart": "2024-03-01T10:05:00+01:00",
        "EventOccurred": "2024-03-01T10:15:00+01:00",
        "ChargingDuration": 600000,
        "ConsumedEnergyProgress": Decimal("4.2"),
        "MeterValueStart": Decimal("1000.500"),
        "MeterValueInBetween": {"meterValues": [Decimal("1004.7")]},
        "OperatorID": OPERATOR_ID,
    }


def notification_end() -> dict[str, Any]:
    """eRoamingChargingNotification of Type End."""
    return {
        "Type": "End",
        "SessionID": SESSION_ID,
        "EvseID": EVSE_ID,
        "ChargingStart": "2024-03-01T10:05:00+01:00",
        "ChargingEnd": "2024-03-01T11:00:00+01:00",
        "SessionStart": "2024-03-01T10:00:00+01:00",
        "ConsumedEnergy": Decimal("22.125"),
        "MeterValueStart": Decimal("1000.500"),
        "MeterValueEnd": Decimal("1022.625"),
        "OperatorID": OPERATOR_ID,
        "PenaltyTimeStart": "2024-03-01T11:30:00+01:00",
    }


def notification_error() -> dict[str, Any]:
    """eRoamingChargingNotification of Type Error."""
    return {
        "Type": "Error",
        "SessionID": SESSION_ID,
        "EvseID": EVSE_ID,
        "ErrorType": "ConnectorError",
        "ErrorAdditionalInfo": "Plug not inserted within 60 s",
        "OperatorID": OPERATOR_ID,
    }


def authorize_remote_start() -> dict[str, Any]:
    """eRoamingAuthorizeRemoteStart (from Hubject)."""
    return {
        "SessionID": SESSION_ID,
        "EMPPartnerSessionID": "emp-session-4",
        "ProviderID": PROVIDER_ID,
        "EvseID": EVSE_ID,
        "Identification": remote_identification(),
        "PartnerProductID": "DC",
    }


def authorize_remote_stop() -> dict[str, Any]:
    """eRoamingAuthorizeRemoteStop (from Hubject)."""
    return {"SessionID": SESSION_ID, "ProviderID": PROVIDER_ID, "EvseID": EVSE_ID}


def authorize_remote_reservation_start() -> dict[str, Any]:
    """eRoamingAuthorizeRemoteReservationStart (from Hubject)."""
    return {
        "SessionID": SESSION_ID,
        "ProviderID": PROVIDER_ID,
        "EvseID": EVSE_ID,
        "Identification": remote_identification(),
        "PartnerProductID": "Reservation",
        "Duration": 15,
    }


def authorize_remote_reservation_stop() -> dict[str, Any]:
    """eRoamingAuthorizeRemoteReservationStop (from Hubject)."""
    return {"SessionID": SESSION_ID, "ProviderID": PROVIDER_ID, "EvseID": EVSE_ID}
