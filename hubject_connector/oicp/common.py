"""Types shared by many OICP messages: identification, status code, acknowledgement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from hubject_connector.oicp.conformance import spec_rule
from hubject_connector.oicp.model import given_keys, one_of_issues, wire

# Spec: PartnerSessionID fields are free text of at most 250 characters.
PARTNER_SESSION_ID_MAX = 250
# Spec: "ProductIDType": standard values or a custom ID of at most 50 characters.
PRODUCT_ID_MAX = 50

IDENTIFICATION_ONE_OPTION = spec_rule(
    "identification-one-option",
    source="03 CPO Data Types, IdentificationType: \"One of the following five options "
    "MUST be provided\"",
    wording="exactly one identification option must be given (got {options})",
)
QR_CODE_PIN_OR_HASH = spec_rule(
    "qr-code-pin-or-hash",
    source="02 CPO Services and Operations, eRoamingAuthorizeStart, \"Pin Security\": "
    "\"a PIN field or a HashedPIN field (only one of the two options must be provided)\"",
    wording="takes one of HashedPIN and PIN, not both",
)
HASHED_PIN_UPLOAD_ONLY = spec_rule(
    "hashed-pin-upload-only",
    source="03 CPO Data Types, QRCodeIdentificationType, HashedPIN: \"This field can be "
    "provided only when uploading Authentication data\"",
    wording="must not be given in {message}: a HashedPIN goes only into uploads of "
    "authentication data (give the PIN, or the EvcoID alone)",
)


class RFIDType(StrEnum):
    """Spec: "RFIDType"."""

    MIFARE_CLS = "mifareCls"
    MIFARE_DES = "mifareDes"
    CALYPSO = "calypso"
    NFC = "nfc"
    MIFARE_FAMILY = "mifareFamily"


class HashFunction(StrEnum):
    """Spec: HashedPIN "Function"."""

    BCRYPT = "Bcrypt"


class LegacyHashFunction(StrEnum):
    """Spec: LegacyHashData "Function"."""

    MD5 = "MD5"
    SHA1 = "SHA-1"


@dataclass(frozen=True, slots=True, kw_only=True)
class RFIDMifareFamilyIdentification:
    """Spec: "RFIDMifareFamilyIdentificationType"."""

    uid: str = wire("UID", pattern="UID")


@dataclass(frozen=True, slots=True, kw_only=True)
class RFIDIdentification:
    """Spec: "RFIDIdentificationType". Not for the authorization process."""

    uid: str = wire("UID", pattern="UID")
    rfid: RFIDType = wire("RFID")
    evco_id: str | None = wire("EvcoID", default=None, pattern="EvcoID")
    printed_number: str | None = wire("PrintedNumber", default=None, max_length=150)
    expiry_date: datetime | None = wire("ExpiryDate", default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class LegacyHashData:
    """Spec: "LegacyHashDataType"."""

    function: LegacyHashFunction = wire("Function")
    salt: str | None = wire("Salt", default=None, max_length=100)
    value: str | None = wire("Value", default=None, max_length=20)


@dataclass(frozen=True, slots=True, kw_only=True)
class HashedPIN:
    """Spec: "HashedPINType"."""

    value: str = wire("Value", pattern="HashedPIN")
    function: HashFunction = wire("Function")
    legacy_hash_data: LegacyHashData | None = wire("LegacyHashData", default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class QRCodeIdentification:
    """Spec: "QRCodeIdentificationType": the contract ID with a hashed PIN or a PIN."""

    evco_id: str = wire("EvcoID", pattern="EvcoID")
    hashed_pin: HashedPIN | None = wire("HashedPIN", default=None)
    pin: str | None = wire("PIN", default=None, max_length=20)

    def oicp_issues(self) -> list[tuple[str, str]]:
        # Spec: "HashedPIN" and "PIN" are a choice, so never both. Both are optional, though:
        # a CDR or notification may name the contract alone, and refusing it would hold back
        # a CDR (money) for no rule of Hubject's. AuthorizeStart asks for the PIN itself.
        if self.hashed_pin is not None and self.pin is not None:
            return [QR_CODE_PIN_OR_HASH.at()]
        return []


@dataclass(frozen=True, slots=True, kw_only=True)
class PlugAndChargeIdentification:
    """Spec: "PlugAndChargeIdentificationType" (ISO 15118 EMAID)."""

    evco_id: str = wire("EvcoID", pattern="EvcoID")


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteIdentification:
    """Spec: "RemoteIdentificationType"."""

    evco_id: str = wire("EvcoID", pattern="EvcoID")


@dataclass(frozen=True, slots=True, kw_only=True)
class Identification:
    """Spec: "IdentificationType": exactly one of five options."""

    rfid_mifare_family: RFIDMifareFamilyIdentification | None = wire(
        "RFIDMifareFamilyIdentification", default=None
    )
    rfid: RFIDIdentification | None = wire("RFIDIdentification", default=None)
    qr_code: QRCodeIdentification | None = wire("QRCodeIdentification", default=None)
    plug_and_charge: PlugAndChargeIdentification | None = wire(
        "PlugAndChargeIdentification", default=None
    )
    remote: RemoteIdentification | None = wire("RemoteIdentification", default=None)

    def options(self) -> list[str]:
        """The JSON names of the options that are set."""
        return given_keys(self)

    def oicp_issues(self) -> list[tuple[str, str]]:
        # Spec: IdentificationType is a choice: one option per message
        # (IDENTIFICATION_ONE_OPTION, worded by ``one_of_issues``).
        return one_of_issues(self, "identification option")

    def evco_id(self) -> str | None:
        """The contract ID carried by the chosen option, if it carries one."""
        for option in (self.rfid, self.qr_code, self.plug_and_charge, self.remote):
            if option is not None and option.evco_id is not None:
                return option.evco_id
        return None

    def uid(self) -> str | None:
        """The card UID carried by the chosen option, if it carries one."""
        for option in (self.rfid_mifare_family, self.rfid):
            if option is not None:
                return option.uid
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusCode:
    """Spec: "StatusCodeType". ``code`` is a string: "000", never 0."""

    code: str = wire("Code", max_length=3)
    description: str | None = wire("Description", default=None, max_length=200)
    additional_info: str | None = wire("AdditionalInfo", default=None, max_length=1000)


@dataclass(frozen=True, slots=True, kw_only=True)
class Acknowledgement:
    """Spec: "eRoamingAcknowledgement" (the OpenAPI spells it eRoamingAcknowledgment)."""

    OICP_NAME: ClassVar[str] = "eRoamingAcknowledgement"

    result: bool = wire("Result")
    status_code: StatusCode = wire("StatusCode")
    session_id: str | None = wire("SessionID", default=None, pattern="SessionID")
    cpo_partner_session_id: str | None = wire(
        "CPOPartnerSessionID", default=None, max_length=PARTNER_SESSION_ID_MAX
    )
    emp_partner_session_id: str | None = wire(
        "EMPPartnerSessionID", default=None, max_length=PARTNER_SESSION_ID_MAX
    )


def hashed_pin_issues(
    identification: Identification | None, message: str, key: str = "Identification"
) -> list[tuple[str, str]]:
    """An ``oicp_issues`` pair when a CPO message (CDR, notification) carries a HashedPIN.

    Spec: QRCodeIdentificationType, HashedPIN "can be provided only when uploading
    Authentication data" (an EMP's upload); ``message`` names the message for the wording.
    """
    if identification is None or identification.qr_code is None:
        return []
    if identification.qr_code.hashed_pin is None:
        return []
    return [
        HASHED_PIN_UPLOAD_ONLY.at(f"{key}/QRCodeIdentification/HashedPIN", message=message)
    ]
