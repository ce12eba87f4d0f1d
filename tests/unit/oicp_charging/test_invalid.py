"""One broken rule at a time: each payload is refused with the exact pointer and rule.

Every case starts from a valid payload (``payloads``), changes one thing and expects exactly
the issues that change causes, so a rule that is missing, misplaced or worded for another
field fails its row.
"""

from __future__ import annotations

from collections.abc import Callable
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
from hubject_connector.oicp.cdr import ChargeDetailRecord
from hubject_connector.oicp.codec import OicpValidationError
from hubject_connector.oicp.notifications import decode_notification
from hubject_connector.oicp.remote import (
    AuthorizeRemoteReservationStart,
    AuthorizeRemoteReservationStop,
    AuthorizeRemoteStart,
    AuthorizeRemoteStop,
)
from tests.unit.oicp_charging import payloads as p
from tests.unit.oicp_charging.payloads import DELETE, changed

TWO_OPTIONS = {**p.mifare(), **p.remote_identification()}
TWO_OPTIONS_ISSUE = (
    "/Identification: exactly one identification option must be given "
    "(got RFIDMifareFamilyIdentification, RemoteIdentification)"
)
LONG_251 = "x" * 251
RFID_IDENTIFICATION = {"RFIDIdentification": {"UID": p.UID, "RFID": "mifareCls"}}
QR_HASHED = {
    "QRCodeIdentification": {
        "EvcoID": p.EVCO_ID,
        "HashedPIN": {"Value": "$2a$10$abcdefghij", "Function": "Bcrypt"},
    }
}

RFID_BAD_TYPE = {"RFIDIdentification": {"UID": p.UID, "RFID": "mifare"}}
RFID_BAD_TYPE_ISSUE = (
    "/Identification/RFIDIdentification/RFID: must be one of: mifareCls, mifareDes, calypso, "
    "nfc, mifareFamily"
)
RFID_BAD_EXPIRY = {"RFIDIdentification": {"UID": p.UID, "RFID": "nfc", "ExpiryDate": "2030-12"}}
RFID_BAD_EXPIRY_ISSUE = (
    "/Identification/RFIDIdentification/ExpiryDate: is not a date-time of the form "
    "YYYY-MM-DDThh:mm:ssTZD"
)

Loader = Callable[[dict[str, Any]], Any]


def _loader(model: type[Any]) -> Loader:
    def load(payload: dict[str, Any]) -> Any:
        return codec.load(model, payload)

    return load


def _progress_without_duration() -> dict[str, Any]:
    return changed(p.notification_progress(), ("ChargingDuration",), DELETE)


def _case(
    loader: Loader,
    build: Callable[[], dict[str, Any]],
    path: tuple[str | int, ...],
    value: Any,
    *issues: str,
    id: str,
) -> Any:
    return pytest.param(loader, build, path, value, list(issues), id=id)


AUTHORIZE_START = _loader(AuthorizeStart)
AUTHORIZE_STOP = _loader(AuthorizeStop)
AUTHORIZATION_START = _loader(AuthorizationStart)
AUTHORIZATION_STOP = _loader(AuthorizationStop)
CDR = _loader(ChargeDetailRecord)
REMOTE_START = _loader(AuthorizeRemoteStart)
REMOTE_STOP = _loader(AuthorizeRemoteStop)
RESERVATION_START = _loader(AuthorizeRemoteReservationStart)
RESERVATION_STOP = _loader(AuthorizeRemoteReservationStop)
NOTIFICATION = decode_notification

CASES = [
    # --- AuthorizeStart -------------------------------------------------------------
    _case(AUTHORIZE_START, p.authorize_start, ("OperatorID",), DELETE,
          "/OperatorID: is mandatory and missing", id="start-missing-operator"),
    _case(AUTHORIZE_START, p.authorize_start, ("Identification",), DELETE,
          "/Identification: is mandatory and missing", id="start-missing-identification"),
    _case(AUTHORIZE_START, p.authorize_start, ("OperatorID",), "DE*AB",
          "/OperatorID: does not match the OperatorID pattern", id="start-operator-pattern"),
    _case(AUTHORIZE_START, p.authorize_start, ("EvseID",), "DE*ABC*1234",
          "/EvseID: does not match the EvseID pattern", id="start-evse-without-E"),
    _case(AUTHORIZE_START, p.authorize_start, ("EvseID",), "DE*ABC*E1234\n",
          "/EvseID: does not match the EvseID pattern", id="start-evse-trailing-newline"),
    _case(AUTHORIZE_START, p.authorize_start, ("SessionID",), "string",
          "/SessionID: does not match the SessionID pattern", id="start-placeholder-session"),
    _case(AUTHORIZE_START, p.authorize_start,
          ("Identification", "RFIDMifareFamilyIdentification", "UID"), "04a1b2c3",
          "/Identification/RFIDMifareFamilyIdentification/UID: does not match the UID pattern",
          id="start-uid-lower-case"),
    _case(AUTHORIZE_START, p.authorize_start, ("CPOPartnerSessionID",), LONG_251,
          "/CPOPartnerSessionID: is 251 characters long, over the limit of 250",
          id="start-cpo-partner-session-too-long"),
    _case(AUTHORIZE_START, p.authorize_start, ("PartnerProductID",), "P" * 51,
          "/PartnerProductID: is 51 characters long, over the limit of 50",
          id="start-product-too-long"),
    _case(AUTHORIZE_START, p.authorize_start, ("Identification",), TWO_OPTIONS,
          TWO_OPTIONS_ISSUE, id="start-two-identifications"),
    _case(AUTHORIZE_START, p.authorize_start, ("Identification",), {},
          "/Identification: exactly one identification option must be given (got none)",
          id="start-no-identification-option"),
    _case(AUTHORIZE_START, p.authorize_start, ("Identification",), RFID_IDENTIFICATION,
          "/Identification: RFIDIdentification must not be used in the authorization process "
          "(use RFIDMifareFamilyIdentification)", id="start-rfid-identification"),
    _case(AUTHORIZE_START, p.authorize_start, ("Identification",), QR_HASHED,
          "/Identification: QRCodeIdentification must carry the PIN in clear text in "
          "AuthorizeStart, not a HashedPIN", id="start-hashed-pin"),
    # RFIDIdentification is refused here, but its own fields are checked first.
    _case(AUTHORIZE_START, p.authorize_start, ("Identification",), RFID_BAD_TYPE,
          RFID_BAD_TYPE_ISSUE, id="start-bad-rfid-type"),
    _case(AUTHORIZE_START, p.authorize_start, ("Identification",), RFID_BAD_EXPIRY,
          RFID_BAD_EXPIRY_ISSUE, id="start-bad-expiry-date"),
    # --- AuthorizeStop --------------------------------------------------------------
    _case(AUTHORIZE_STOP, p.authorize_stop, ("SessionID",), DELETE,
          "/SessionID: is mandatory and missing", id="stop-missing-session"),
    _case(AUTHORIZE_STOP, p.authorize_stop, ("Identification",),
          {"QRCodeIdentification": {**QR_HASHED["QRCodeIdentification"],
                                    "HashedPIN": {"Value": "abcdefghij", "Function": "SHA-256"}}},
          "/Identification/QRCodeIdentification/HashedPIN/Function: must be one of: Bcrypt",
          id="stop-bad-hash-function"),
    _case(AUTHORIZE_STOP, p.authorize_stop, ("EMPPartnerSessionID",), LONG_251,
          "/EMPPartnerSessionID: is 251 characters long, over the limit of 250",
          id="stop-emp-partner-session-too-long"),
    _case(AUTHORIZE_STOP, p.authorize_stop, ("Identification",), TWO_OPTIONS,
          TWO_OPTIONS_ISSUE, id="stop-two-identifications"),
    _case(AUTHORIZE_STOP, p.authorize_stop, ("Identification",), RFID_IDENTIFICATION,
          "/Identification: RFIDIdentification must not be used in the authorization process "
          "(use RFIDMifareFamilyIdentification)", id="stop-rfid-identification"),
    # A GUID without its hyphens is not a SessionID.
    _case(AUTHORIZE_STOP, p.authorize_stop, ("SessionID",), "5e7c1a2b0d3f4a6e9b8c1f2e3d4c5b6a",
          "/SessionID: does not match the SessionID pattern", id="stop-session-without-hyphens"),
    _case(AUTHORIZE_STOP, p.authorize_stop, ("Identification",), RFID_BAD_EXPIRY,
          RFID_BAD_EXPIRY_ISSUE, id="stop-bad-expiry-date"),
    # --- AuthorizationStart / AuthorizationStop (answers) ---------------------------
    _case(AUTHORIZATION_START, p.authorization_start, ("StatusCode",), DELETE,
          "/StatusCode: is mandatory and missing", id="answer-missing-status"),
    _case(AUTHORIZATION_START, p.authorization_start, ("AuthorizationStatus",), "Accepted",
          "/AuthorizationStatus: must be one of: Authorized, NotAuthorized",
          id="answer-bad-status"),
    _case(AUTHORIZATION_START, p.authorization_start, ("ProviderID",), "DE_XYZ",
          "/ProviderID: does not match the ProviderID pattern", id="answer-provider-pattern"),
    _case(AUTHORIZATION_START, p.authorization_start, ("StatusCode", "Description"), "d" * 201,
          "/StatusCode/Description: is 201 characters long, over the limit of 200",
          id="answer-description-too-long"),
    _case(AUTHORIZATION_START, p.authorization_start, ("AuthorizationStopIdentifications", 1),
          TWO_OPTIONS,
          "/AuthorizationStopIdentifications/1: exactly one identification option must be "
          "given (got RFIDMifareFamilyIdentification, RemoteIdentification)",
          id="answer-stop-identification-two-options"),
    _case(AUTHORIZATION_START, p.authorization_start, ("AuthorizationStopIdentifications", 0),
          RFID_BAD_EXPIRY,
          "/AuthorizationStopIdentifications/0/RFIDIdentification/ExpiryDate: is not a "
          "date-time of the form YYYY-MM-DDThh:mm:ssTZD", id="answer-stop-identification-date"),
    _case(AUTHORIZATION_STOP, p.authorization_stop, ("AuthorizationStatus",), DELETE,
          "/AuthorizationStatus: is mandatory and missing", id="stop-answer-missing-status"),
    _case(AUTHORIZATION_STOP, p.authorization_stop, ("StatusCode", "Code"), 0,
          "/StatusCode/Code: must be a string", id="stop-answer-code-not-string"),
    _case(AUTHORIZATION_STOP, p.authorization_stop, ("AuthorizationStatus",), "Denied",
          "/AuthorizationStatus: must be one of: Authorized, NotAuthorized",
          id="stop-answer-bad-status"),
    _case(AUTHORIZATION_STOP, p.authorization_stop, ("ProviderID",), "DE*XYZ*1",
          "/ProviderID: does not match the ProviderID pattern", id="stop-answer-provider"),
    _case(AUTHORIZATION_STOP, p.authorization_stop, ("CPOPartnerSessionID",), LONG_251,
          "/CPOPartnerSessionID: is 251 characters long, over the limit of 250",
          id="stop-answer-cpo-partner-session-too-long"),
    # --- ChargeDetailRecord ---------------------------------------------------------
    _case(CDR, p.charge_detail_record, ("ConsumedEnergy",), DELETE,
          "/ConsumedEnergy: is mandatory and missing", id="cdr-missing-energy"),
    _case(CDR, p.charge_detail_record, ("SessionEnd",), DELETE,
          "/SessionEnd: is mandatory and missing", id="cdr-missing-session-end"),
    _case(CDR, p.charge_detail_record, ("SessionID",), "string",
          "/SessionID: does not match the SessionID pattern", id="cdr-placeholder-session"),
    _case(CDR, p.charge_detail_record, ("HubOperatorID",), "DE-HUB",
          "/HubOperatorID: does not match the OperatorID pattern", id="cdr-hub-operator-pattern"),
    _case(CDR, p.charge_detail_record, ("HubProviderID",), "DE*HUB1",
          "/HubProviderID: does not match the ProviderID pattern", id="cdr-hub-provider-pattern"),
    _case(CDR, p.charge_detail_record, ("SignedMeteringValues", 1, "MeteringStatus"), "Middle",
          "/SignedMeteringValues/1/MeteringStatus: must be one of: Start, Progress, End",
          id="cdr-bad-metering-status"),
    _case(CDR, p.charge_detail_record, ("SignedMeteringValues",),
          [{"SignedMeteringValue": "v", "MeteringStatus": "Progress"}] * 11,
          "/SignedMeteringValues: has 11 items, allows at most 10",
          id="cdr-eleven-signed-values"),
    _case(CDR, p.charge_detail_record, ("SignedMeteringValues", 0, "SignedMeteringValue"),
          "s" * 3001,
          "/SignedMeteringValues/0/SignedMeteringValue: is 3001 characters long, over the "
          "limit of 3000", id="cdr-signed-value-too-long"),
    _case(CDR, p.charge_detail_record, ("CalibrationLawVerificationInfo", "MeteringSignatureUrl"),
          "https://" + "u" * 193,
          "/CalibrationLawVerificationInfo/MeteringSignatureUrl: is 201 characters long, over "
          "the limit of 200", id="cdr-signature-url-too-long"),
    _case(CDR, p.charge_detail_record,
          ("CalibrationLawVerificationInfo", "CalibrationLawCertificateID"), "c" * 101,
          "/CalibrationLawVerificationInfo/CalibrationLawCertificateID: is 101 characters long,"
          " over the limit of 100", id="cdr-certificate-id-too-long"),
    _case(CDR, p.charge_detail_record, ("CalibrationLawVerificationInfo", "PublicKey"),
          "k" * 1001,
          "/CalibrationLawVerificationInfo/PublicKey: is 1001 characters long, over the limit "
          "of 1000", id="cdr-public-key-too-long"),
    _case(CDR, p.charge_detail_record,
          ("CalibrationLawVerificationInfo", "MeteringSignatureEncodingFormat"), "f" * 51,
          "/CalibrationLawVerificationInfo/MeteringSignatureEncodingFormat: is 51 characters "
          "long, over the limit of 50", id="cdr-encoding-format-too-long"),
    _case(CDR, p.charge_detail_record,
          ("CalibrationLawVerificationInfo", "SignedMeteringValuesVerificationInstruction"),
          "i" * 401,
          "/CalibrationLawVerificationInfo/SignedMeteringValuesVerificationInstruction: is 401 "
          "characters long, over the limit of 400", id="cdr-instruction-too-long"),
    _case(CDR, p.charge_detail_record, ("Identification",), TWO_OPTIONS,
          TWO_OPTIONS_ISSUE, id="cdr-two-identifications"),
    _case(CDR, p.charge_detail_record, ("ConsumedEnergy",), Decimal("22.1250"),
          "/ConsumedEnergy: has more than 3 decimal places", id="cdr-energy-four-places"),
    _case(CDR, p.charge_detail_record, ("MeterValueInBetween", "meterValues", 0),
          Decimal("-1"), "/MeterValueInBetween/meterValues/0: must be at least 0",
          id="cdr-negative-meter-value"),
    _case(CDR, p.charge_detail_record, ("MeterValueStart",), Decimal("1000.5001"),
          "/MeterValueStart: has more than 3 decimal places", id="cdr-meter-four-places"),
    _case(CDR, p.charge_detail_record, ("MeterValueInBetween", "meterValues", 1),
          Decimal("1020.0001"),
          "/MeterValueInBetween/meterValues/1: has more than 3 decimal places",
          id="cdr-meter-in-between-four-places"),
    _case(CDR, p.charge_detail_record, ("ConsumedEnergy",), "22.125",
          "/ConsumedEnergy: must be a number", id="cdr-energy-as-string"),
    _case(CDR, p.charge_detail_record, ("ConsumedEnergy",), Decimal("22"),
          "/ConsumedEnergy: must be MeterValueEnd - MeterValueStart = 22.125 (got 22)",
          id="cdr-energy-contradicts-meter"),
    _case(CDR, p.charge_detail_record, ("ChargingStart",), "2024-03-01 10:05:00+01:00",
          "/ChargingStart: is not a date-time of the form YYYY-MM-DDThh:mm:ssTZD",
          id="cdr-date-time-space"),
    _case(CDR, p.charge_detail_record, ("ChargingEnd",), "2024-03-01T11:00:00",
          "/ChargingEnd: is not a date-time of the form YYYY-MM-DDThh:mm:ssTZD",
          id="cdr-date-time-without-offset"),
    _case(CDR, p.charge_detail_record, ("SessionStart",), "2024-03-01T10:00:00+0100",
          "/SessionStart: is not a date-time of the form YYYY-MM-DDThh:mm:ssTZD",
          id="cdr-date-time-offset-without-colon"),
    _case(CDR, p.charge_detail_record, ("ChargingEnd",), "2024-03-01T10:04:59+01:00",
          "/ChargingEnd: must not be before ChargingStart", id="cdr-charging-end-before-start"),
    _case(CDR, p.charge_detail_record, ("SessionEnd",), "2024-03-01T09:59:00+01:00",
          "/SessionEnd: must not be before SessionStart", id="cdr-session-end-before-start"),
    # Instants are compared, not clock readings: 10:30+02:00 (08:30 UTC) is before the
    # start at 10:05+01:00 (09:05 UTC).
    _case(CDR, p.charge_detail_record, ("ChargingEnd",), "2024-03-01T10:30:00+02:00",
          "/ChargingEnd: must not be before ChargingStart", id="cdr-end-before-start-by-offset"),
    # --- Charging notifications (through the Type dispatch) -------------------------
    _case(NOTIFICATION, p.notification_start, ("ChargingStart",), DELETE,
          "/ChargingStart: is mandatory and missing", id="note-start-missing-charging-start"),
    _case(NOTIFICATION, p.notification_start, ("OperatorID",), "DE*ABCD",
          "/OperatorID: does not match the OperatorID pattern", id="note-start-operator-pattern"),
    _case(NOTIFICATION, p.notification_start, ("MeterValueStart",), Decimal("0.0001"),
          "/MeterValueStart: has more than 3 decimal places", id="note-start-meter-four-places"),
    _case(NOTIFICATION, p.notification_start, ("Identification",), TWO_OPTIONS,
          TWO_OPTIONS_ISSUE, id="note-start-two-identifications"),
    _case(NOTIFICATION, p.notification_start, ("PartnerProductID",), "P" * 51,
          "/PartnerProductID: is 51 characters long, over the limit of 50",
          id="note-start-product-too-long"),
    _case(NOTIFICATION, p.notification_start, ("SessionStart",), "2024-03-01T10:00+01:00",
          "/SessionStart: is not a date-time of the form YYYY-MM-DDThh:mm:ssTZD",
          id="note-start-date-time-without-seconds"),
    _case(NOTIFICATION, p.notification_progress, ("EventOccurred",), DELETE,
          "/EventOccurred: is mandatory and missing", id="note-progress-missing-event"),
    _case(NOTIFICATION, p.notification_progress, ("ConsumedEnergyProgress",), Decimal("4.2005"),
          "/ConsumedEnergyProgress: has more than 3 decimal places",
          id="note-progress-energy-four-places"),
    _case(NOTIFICATION, p.notification_progress, ("ChargingDuration",), -1,
          "/ChargingDuration: must be at least 0", id="note-progress-negative-duration"),
    _case(NOTIFICATION, p.notification_progress, ("ChargingDuration",), Decimal("1.5"),
          "/ChargingDuration: must be an integer", id="note-progress-fractional-duration"),
    _case(NOTIFICATION, p.notification_progress, ("EventOccurred",), "2024-03-01T10:00:00+01:00",
          "/EventOccurred: must not be before ChargingStart", id="note-progress-event-too-early"),
    _case(NOTIFICATION, _progress_without_duration, ("ConsumedEnergyProgress",), DELETE,
          "/: needs ChargingDuration or ConsumedEnergyProgress (or both)",
          id="note-progress-neither-duration-nor-energy"),
    _case(NOTIFICATION, p.notification_end, ("ChargingEnd",), DELETE,
          "/ChargingEnd: is mandatory and missing", id="note-end-missing-charging-end"),
    _case(NOTIFICATION, p.notification_end, ("ChargingEnd",), "2024-03-01T11:00:00.5",
          "/ChargingEnd: is not a date-time of the form YYYY-MM-DDThh:mm:ssTZD",
          id="note-end-date-time-without-offset"),
    _case(NOTIFICATION, p.notification_end, ("ConsumedEnergy",), Decimal("22.1251"),
          "/ConsumedEnergy: has more than 3 decimal places", id="note-end-energy-four-places"),
    _case(NOTIFICATION, p.notification_end, ("ChargingEnd",), "2024-03-01T10:00:00+01:00",
          "/ChargingEnd: must not be before ChargingStart", id="note-end-before-start"),
    _case(NOTIFICATION, p.notification_end, ("SessionEnd",), "2024-03-01T09:00:00+01:00",
          "/SessionEnd: must not be before SessionStart", id="note-end-session-end-too-early"),
    _case(NOTIFICATION, p.notification_end, ("MeterValueEnd",), Decimal("1022.000"),
          "/ConsumedEnergy: must be MeterValueEnd - MeterValueStart = 21.500 (got 22.125)",
          id="note-end-energy-contradicts-meter"),
    _case(NOTIFICATION, p.notification_error, ("ErrorType",), "Fatal",
          "/ErrorType: must be one of: ConnectorError, CriticalError", id="note-error-bad-type"),
    _case(NOTIFICATION, p.notification_error, ("ErrorType",), DELETE,
          "/ErrorType: is mandatory and missing", id="note-error-missing-type"),
    _case(NOTIFICATION, p.notification_error, ("ErrorAdditionalInfo",), LONG_251,
          "/ErrorAdditionalInfo: is 251 characters long, over the limit of 250",
          id="note-error-info-too-long"),
    _case(NOTIFICATION, p.notification_error, ("EvseID",), "de*abc*e1234",
          "/EvseID: does not match the EvseID pattern", id="note-error-evse-lower-case"),
    _case(NOTIFICATION, p.notification_error, ("Identification",), TWO_OPTIONS,
          TWO_OPTIONS_ISSUE, id="note-error-two-identifications"),
    # --- Remote start / stop (from Hubject) -----------------------------------------
    _case(REMOTE_START, p.authorize_remote_start, ("SessionID",), DELETE,
          "/SessionID: is mandatory and missing", id="remote-start-missing-session"),
    _case(REMOTE_START, p.authorize_remote_start, ("ProviderID",), "DEXYZ1",
          "/ProviderID: does not match the ProviderID pattern", id="remote-start-provider"),
    _case(REMOTE_START, p.authorize_remote_start,
          ("Identification", "RemoteIdentification", "EvcoID"), "DE-XYZ-12345678-9",
          "/Identification/RemoteIdentification/EvcoID: does not match the EvcoID pattern",
          id="remote-start-evco-pattern"),
    _case(REMOTE_START, p.authorize_remote_start, ("EMPPartnerSessionID",), LONG_251,
          "/EMPPartnerSessionID: is 251 characters long, over the limit of 250",
          id="remote-start-emp-partner-session-too-long"),
    _case(REMOTE_START, p.authorize_remote_start, ("Identification",), TWO_OPTIONS,
          TWO_OPTIONS_ISSUE, id="remote-start-two-identifications"),
    _case(REMOTE_START, p.authorize_remote_start, ("Identification",), p.mifare(),
          "/Identification: must be RemoteIdentification in a remote start "
          "(got RFIDMifareFamilyIdentification)", id="remote-start-not-remote-identification"),
    # An option other than RemoteIdentification is refused, but its own fields are checked
    # first, with their pointers.
    _case(REMOTE_START, p.authorize_remote_start, ("Identification",), RFID_BAD_TYPE,
          RFID_BAD_TYPE_ISSUE, id="remote-start-bad-rfid-type"),
    _case(REMOTE_START, p.authorize_remote_start, ("Identification",), RFID_BAD_EXPIRY,
          RFID_BAD_EXPIRY_ISSUE, id="remote-start-bad-expiry-date"),
    _case(REMOTE_STOP, p.authorize_remote_stop, ("EvseID",), DELETE,
          "/EvseID: is mandatory and missing", id="remote-stop-missing-evse"),
    _case(REMOTE_STOP, p.authorize_remote_stop, ("SessionID",), "f98efba4-02d8-4fa0-b810",
          "/SessionID: does not match the SessionID pattern", id="remote-stop-short-session"),
    _case(REMOTE_STOP, p.authorize_remote_stop, ("CPOPartnerSessionID",), LONG_251,
          "/CPOPartnerSessionID: is 251 characters long, over the limit of 250",
          id="remote-stop-cpo-partner-session-too-long"),
    # --- Reservation start / stop (from Hubject) ------------------------------------
    _case(RESERVATION_START, p.authorize_remote_reservation_start, ("Identification",), DELETE,
          "/Identification: is mandatory and missing", id="reservation-missing-identification"),
    _case(RESERVATION_START, p.authorize_remote_reservation_start, ("Duration",), 0,
          "/Duration: must be at least 1", id="reservation-duration-zero"),
    _case(RESERVATION_START, p.authorize_remote_reservation_start, ("Duration",), 100,
          "/Duration: must be at most 99", id="reservation-duration-100"),
    _case(RESERVATION_START, p.authorize_remote_reservation_start, ("Duration",), "15",
          "/Duration: must be an integer", id="reservation-duration-string"),
    _case(RESERVATION_START, p.authorize_remote_reservation_start, ("Identification",),
          {"RFIDIdentification": {"UID": p.UID, "RFID": "mifare"}},
          "/Identification/RFIDIdentification/RFID: must be one of: mifareCls, mifareDes, "
          "calypso, nfc, mifareFamily", id="reservation-bad-rfid-type"),
    _case(RESERVATION_START, p.authorize_remote_reservation_start, ("Identification",),
          {"RFIDIdentification": {"UID": p.UID, "RFID": "nfc", "ExpiryDate": "2030-12"}},
          "/Identification/RFIDIdentification/ExpiryDate: is not a date-time of the form "
          "YYYY-MM-DDThh:mm:ssTZD", id="reservation-bad-expiry-date"),
    _case(RESERVATION_START, p.authorize_remote_reservation_start, ("Identification",),
          TWO_OPTIONS, TWO_OPTIONS_ISSUE, id="reservation-two-identifications"),
    # The OpenAPI's spelling is read, the limit applies to it, and the pointer names it.
    _case(RESERVATION_START, p.authorize_remote_reservation_start, ("EMPPartnerSessionId",),
          LONG_251, "/EMPPartnerSessionId: is 251 characters long, over the limit of 250",
          id="reservation-emp-partner-session-id-alias-too-long"),
    _case(RESERVATION_START, p.authorize_remote_reservation_start, ("EvseID",), "+49*810",
          "/EvseID: does not match the EvseID pattern", id="reservation-evse-is-operator"),
    _case(RESERVATION_STOP, p.authorize_remote_reservation_stop, ("SessionID",), DELETE,
          "/SessionID: is mandatory and missing", id="reservation-stop-missing-session"),
    _case(RESERVATION_STOP, p.authorize_remote_reservation_stop, ("ProviderID",), "*",
          "/ProviderID: does not match the ProviderID pattern",
          id="reservation-stop-asterisk-provider"),
    _case(RESERVATION_STOP, p.authorize_remote_reservation_stop, ("CPOPartnerSessionID",),
          LONG_251, "/CPOPartnerSessionID: is 251 characters long, over the limit of 250",
          id="reservation-stop-cpo-partner-session-too-long"),
]


@pytest.mark.parametrize(("load", "build", "path", "value", "expected"), CASES)
def test_invalid_payload_is_refused_with_pointer_and_rule(
    load: Loader,
    build: Callable[[], dict[str, Any]],
    path: tuple[str | int, ...],
    value: Any,
    expected: list[str],
) -> None:
    # The unchanged payload is valid: the change alone causes the issue.
    load(build())
    with pytest.raises(OicpValidationError) as info:
        load(changed(build(), path, value))
    assert [str(issue) for issue in info.value.issues] == expected
    assert info.value.status_code == "022"


def test_every_operation_has_rows() -> None:
    covered = {param.values[0] for param in CASES}
    assert covered == {
        AUTHORIZE_START, AUTHORIZE_STOP, AUTHORIZATION_START, AUTHORIZATION_STOP, CDR,
        REMOTE_START, REMOTE_STOP, RESERVATION_START, RESERVATION_STOP, NOTIFICATION,
    }
