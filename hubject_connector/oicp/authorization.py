"""eRoamingAuthorization (service version 2.1): AuthorizeStart/Stop and their answers.

The CPO sends ``eRoamingAuthorizeStart`` when a customer identifies at a charge point the
CPO does not know, and ``eRoamingAuthorizeStop`` to ask whether that customer may stop the
session; Hubject answers with ``eRoamingAuthorizationStart``/``eRoamingAuthorizationStop``.
Spec: OICP 2.3 CPO, "Services and Operations", eRoamingAuthorization.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from hubject_connector.oicp.common import (
    PARTNER_SESSION_ID_MAX,
    PRODUCT_ID_MAX,
    Identification,
    StatusCode,
)
from hubject_connector.oicp.model import wire


class AuthorizationStatus(StrEnum):
    """Spec: "AuthorizationStatusType"."""

    AUTHORIZED = "Authorized"
    NOT_AUTHORIZED = "NotAuthorized"


def _authorization_identification_issues(identification: Identification) -> list[tuple[str, str]]:
    # Spec: IdentificationType, note 1: "The option RFIDIdentification MUST not be used in the
    # eRoamingAuthorization process" (RFID cards go as RFIDMifareFamilyIdentification).
    if identification.rfid is not None:
        return [
            (
                "Identification",
                "RFIDIdentification must not be used in the authorization process "
                "(use RFIDMifareFamilyIdentification)",
            )
        ]
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
        issues = _authorization_identification_issues(self.identification)
        qr_code = self.identification.qr_code
        # Spec: eRoamingAuthorizeStart, "Pin Security": "this operation MUST always provide
        # the PIN field (clear text)"; a hashed PIN would be hashed again and refused.
        if qr_code is not None and qr_code.pin is None:
            issues.append(
                (
                    "Identification",
                    "QRCodeIdentification must carry the PIN in clear text in AuthorizeStart, "
                    "not a HashedPIN",
                )
            )
        return issues


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
        return _authorization_identification_issues(self.identification)


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
