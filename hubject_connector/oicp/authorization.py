"""eRoamingAuthorization (service version 2.1): AuthorizeStart/Stop and their answers.

The CPO sends ``eRoamingAuthorizeStart`` when a customer identifies at a charge point the
CPO does not know, and ``eRoamingAuthorizeStop`` to ask whether that customer may stop the
session; Hubject answers with ``eRoamingAuthorizationStart``/``eRoamingAuthorizationStop``.
Spec: OICP 2.3 CPO, "Services and Operations", eRoamingAuthorization.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import ClassVar

from hubject_connector.oicp.common import (
    PARTNER_SESSION_ID_MAX,
    PRODUCT_ID_MAX,
    Identification,
    StatusCode,
)
from hubject_connector.oicp.conformance import Severity, SpecRule, spec_rule
from hubject_connector.oicp.model import wire

NO_RFID_IDENTIFICATION = spec_rule(
    "authorization-no-rfid-identification",
    source="03 CPO Data Types, IdentificationType, note 1: \"The option RFIDIdentification "
    "MUST not be used in the eRoamingAuthorization process\"",
    wording="RFIDIdentification must not be used in the authorization process (use "
    "RFIDMifareFamilyIdentification)",
)
CLEAR_TEXT_PIN = spec_rule(
    "authorization-clear-text-pin",
    source="02 CPO Services and Operations, eRoamingAuthorizeStart, \"Pin Security\": \"this "
    "operation MUST always provide the PIN field (clear text)\"; 03 CPO Data Types, "
    "QRCodeIdentificationType: PIN \"is required in Authorization requests\", HashedPIN "
    "\"In Authorization requests this field must be null\"",
    wording="QRCodeIdentification must carry the PIN in clear text in {message}, not a "
    "HashedPIN",
)
AUTHORIZED_WITHOUT_SESSION_ID = spec_rule(
    "answer-authorized-without-session-id",
    source="02 CPO Services and Operations, eRoamingAuthorizeStart: the answer carries \"in "
    "case of successful authorization the created SessionID\"; 01 CPO Communication "
    "Paradigms, Session handling: the SessionID \"MUST be provided with each subsequent "
    "request\"",
    wording="Authorized without a SessionID: treated as NotAuthorized (no CDR could name "
    "the session)",
    severity=Severity.ANSWER,
)
#: Spec: StatusCodeType, AdditionalInfo, field length 1000.
_ADDITIONAL_INFO_MAX = 1000


class AuthorizationStatus(StrEnum):
    """Spec: "AuthorizationStatusType"."""

    AUTHORIZED = "Authorized"
    NOT_AUTHORIZED = "NotAuthorized"


def _authorization_identification_issues(
    identification: Identification, message: str
) -> list[tuple[str, str]]:
    # Spec: IdentificationType, note 1: "The option RFIDIdentification MUST not be used in the
    # eRoamingAuthorization process" (RFID cards go as RFIDMifareFamilyIdentification).
    if identification.rfid is not None:
        return [NO_RFID_IDENTIFICATION.at("Identification")]
    # Spec: eRoamingAuthorizeStart, "Pin Security", and QRCodeIdentificationType: in
    # authorization requests the PIN is mandatory and HashedPIN null; Hubject hashes what it
    # gets, so a hashed PIN would be hashed again and refused.
    qr_code = identification.qr_code
    if qr_code is not None and qr_code.pin is None:
        return [CLEAR_TEXT_PIN.at("Identification", message=message)]
    return []


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizeStart:
    """Spec: "eRoamingAuthorizeStart": may this customer charge here?"""

    OICP_NAME: ClassVar[str] = "eRoamingAuthorizeStart"

    session_id: str | None = wire("SessionID", default=None, pattern="SessionID")
    cpo_partner_session_id: str | None = wire(
        "CPOPartnerSessionID", default=None, max_length=PARTNER_SESSION_ID_MAX
    )
    emp_partner_session_id: str | None = wire(
        "EMPPartnerSessionID", default=None, max_length=PARTNER_SESSION_ID_MAX
    )
    operator_id: str = wire("OperatorID", pattern="OperatorID")
    evse_id: str | None = wire("EvseID", default=None, pattern="EvseID")
    identification: Identification = wire("Identification")
    partner_product_id: str | None = wire(
        "PartnerProductID", default=None, max_length=PRODUCT_ID_MAX
    )

    def oicp_issues(self) -> list[tuple[str, str]]:
        return _authorization_identification_issues(self.identification, "AuthorizeStart")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizeStop:
    """Spec: "eRoamingAuthorizeStop": may this customer stop the session ``session_id``?"""

    OICP_NAME: ClassVar[str] = "eRoamingAuthorizeStop"

    session_id: str = wire("SessionID", pattern="SessionID")
    cpo_partner_session_id: str | None = wire(
        "CPOPartnerSessionID", default=None, max_length=PARTNER_SESSION_ID_MAX
    )
    emp_partner_session_id: str | None = wire(
        "EMPPartnerSessionID", default=None, max_length=PARTNER_SESSION_ID_MAX
    )
    operator_id: str = wire("OperatorID", pattern="OperatorID")
    evse_id: str | None = wire("EvseID", default=None, pattern="EvseID")
    identification: Identification = wire("Identification")

    def oicp_issues(self) -> list[tuple[str, str]]:
        return _authorization_identification_issues(self.identification, "AuthorizeStop")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizationStart:
    """Spec: "eRoamingAuthorizationStart", Hubject's answer to AuthorizeStart.

    On a positive answer Hubject fills ``session_id`` (needed for the CDR) and the
    ``provider_id`` of the authorizing EMP; checking that is left to the flow, which can
    answer the charge point sensibly, rather than to decoding.
    """

    OICP_NAME: ClassVar[str] = "eRoamingAuthorizationStart"

    session_id: str | None = wire("SessionID", default=None, pattern="SessionID")
    cpo_partner_session_id: str | None = wire(
        "CPOPartnerSessionID", default=None, max_length=PARTNER_SESSION_ID_MAX
    )
    emp_partner_session_id: str | None = wire(
        "EMPPartnerSessionID", default=None, max_length=PARTNER_SESSION_ID_MAX
    )
    provider_id: str | None = wire("ProviderID", default=None, pattern="ProviderID")
    authorization_status: AuthorizationStatus = wire("AuthorizationStatus")
    status_code: StatusCode = wire("StatusCode")
    #: Identification data that may also stop the session (each item one option).
    authorization_stop_identifications: list[Identification] | None = wire(
        "AuthorizationStopIdentifications", default=None
    )

    @property
    def authorized(self) -> bool:
        """Whether the customer may charge."""
        return self.authorization_status is AuthorizationStatus.AUTHORIZED


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizationStop:
    """Spec: "eRoamingAuthorizationStop", Hubject's answer to AuthorizeStop."""

    OICP_NAME: ClassVar[str] = "eRoamingAuthorizationStop"

    session_id: str | None = wire("SessionID", default=None, pattern="SessionID")
    cpo_partner_session_id: str | None = wire(
        "CPOPartnerSessionID", default=None, max_length=PARTNER_SESSION_ID_MAX
    )
    emp_partner_session_id: str | None = wire(
        "EMPPartnerSessionID", default=None, max_length=PARTNER_SESSION_ID_MAX
    )
    provider_id: str | None = wire("ProviderID", default=None, pattern="ProviderID")
    authorization_status: AuthorizationStatus = wire("AuthorizationStatus")
    status_code: StatusCode = wire("StatusCode")

    @property
    def authorized(self) -> bool:
        """Whether the customer may stop the session."""
        return self.authorization_status is AuthorizationStatus.AUTHORIZED


def checked_answer(answer: AuthorizationStart) -> tuple[AuthorizationStart, SpecRule | None]:
    """Hubject's answer as the connector acts on it, and the rule it broke, if any.

    An Authorized answer without a SessionID cannot be followed through (the CDR must name
    the session): it becomes NotAuthorized, Hubject's status code kept and the reason put
    first in AdditionalInfo, so the charge point refuses rather than charging for free.
    """
    if not answer.authorized or answer.session_id is not None:
        return answer, None
    rule = AUTHORIZED_WITHOUT_SESSION_ID
    note = rule.message()
    original = answer.status_code.additional_info
    info = f"{note}; {original}" if original else note
    status_code = replace(answer.status_code, additional_info=info[:_ADDITIONAL_INFO_MAX])
    downgraded = replace(
        answer, authorization_status=AuthorizationStatus.NOT_AUTHORIZED, status_code=status_code
    )
    return downgraded, rule
