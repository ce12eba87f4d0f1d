"""The requests Hubject sends to the CPO: remote start/stop and reservation start/stop.

An EMP asks through Hubject to start or stop charging (eRoamingAuthorization 2.1) or to
reserve a charge point (eRoamingReservation 1.1); the CPO answers each with an
``eRoamingAcknowledgement`` (``common.Acknowledgement``), a remote start in well under 10 s.
Spec: OICP 2.3 CPO, "Services and Operations", eRoamingAuthorizeRemoteStart/Stop and
eRoamingAuthorizeRemoteReservationStart/Stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hubject_connector.oicp.common import (
    PARTNER_SESSION_ID_MAX,
    PRODUCT_ID_MAX,
    Identification,
)
from hubject_connector.oicp.conformance import spec_rule
from hubject_connector.oicp.model import wire

REMOTE_IDENTIFICATION_ONLY = spec_rule(
    "remote-identification-only",
    source="03 CPO Data Types, IdentificationType, note 2: \"For the Remote Authorization "
    "process, only the option RemoteIdentification MUST be used\"",
    wording="must be RemoteIdentification in a remote start (got {options})",
)

# The OpenAPI's reservation schemas spell it "EMPPartnerSessionId"; the text spec and every
# other message write "EMPPartnerSessionID". Both are read, the latter is written.
_EMP_PARTNER_SESSION_ID_ALIASES = ("EMPPartnerSessionId",)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizeRemoteStart:
    """Spec: "eRoamingAuthorizeRemoteStart": start charging at ``evse_id`` for this customer."""

    OICP_NAME: ClassVar[str] = "eRoamingAuthorizeRemoteStart"

    session_id: str = wire("SessionID", pattern="SessionID")
    cpo_partner_session_id: str | None = wire(
        "CPOPartnerSessionID", default=None, max_length=PARTNER_SESSION_ID_MAX
    )
    emp_partner_session_id: str | None = wire(
        "EMPPartnerSessionID", default=None, max_length=PARTNER_SESSION_ID_MAX
    )
    provider_id: str = wire("ProviderID", pattern="ProviderID")
    evse_id: str = wire("EvseID", pattern="EvseID")
    identification: Identification = wire("Identification")
    partner_product_id: str | None = wire(
        "PartnerProductID", default=None, max_length=PRODUCT_ID_MAX
    )

    def oicp_issues(self) -> list[tuple[str, str]]:
        # Spec: IdentificationType, note 2: "For the Remote Authorization process, only the
        # option RemoteIdentification MUST be used in the respective messages."
        chosen = self.identification.options()
        if chosen != ["RemoteIdentification"]:
            return [REMOTE_IDENTIFICATION_ONLY.at("Identification", options=", ".join(chosen))]
        return []


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizeRemoteStop:
    """Spec: "eRoamingAuthorizeRemoteStop": stop the session ``session_id``."""

    OICP_NAME: ClassVar[str] = "eRoamingAuthorizeRemoteStop"

    session_id: str = wire("SessionID", pattern="SessionID")
    cpo_partner_session_id: str | None = wire(
        "CPOPartnerSessionID", default=None, max_length=PARTNER_SESSION_ID_MAX
    )
    emp_partner_session_id: str | None = wire(
        "EMPPartnerSessionID", default=None, max_length=PARTNER_SESSION_ID_MAX
    )
    provider_id: str = wire("ProviderID", pattern="ProviderID")
    evse_id: str = wire("EvseID", pattern="EvseID")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizeRemoteReservationStart:
    """Spec: "eRoamingAuthorizeRemoteReservationStart": reserve ``evse_id``.

    ``session_id`` is optional here (text spec and OpenAPI agree), unlike a remote start.
    """

    OICP_NAME: ClassVar[str] = "eRoamingAuthorizeRemoteReservationStart"

    session_id: str | None = wire("SessionID", default=None, pattern="SessionID")
    cpo_partner_session_id: str | None = wire(
        "CPOPartnerSessionID", default=None, max_length=PARTNER_SESSION_ID_MAX
    )
    emp_partner_session_id: str | None = wire(
        "EMPPartnerSessionID",
        default=None,
        max_length=PARTNER_SESSION_ID_MAX,
        aliases=_EMP_PARTNER_SESSION_ID_ALIASES,
    )
    provider_id: str = wire("ProviderID", pattern="ProviderID")
    evse_id: str = wire("EvseID", pattern="EvseID")
    identification: Identification = wire("Identification")
    #: The reservation product, e.g. "Reservation".
    partner_product_id: str | None = wire(
        "PartnerProductID", default=None, max_length=PRODUCT_ID_MAX
    )
    #: Minutes. Spec: Integer, field length 2; the OpenAPI: 1 to 99.
    duration: int | None = wire("Duration", default=None, minimum=1, maximum=99)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizeRemoteReservationStop:
    """Spec: "eRoamingAuthorizeRemoteReservationStop": end the reservation ``session_id``.

    Spec: after it, the CPO MUST send a CDR for the reservation.
    """

    OICP_NAME: ClassVar[str] = "eRoamingAuthorizeRemoteReservationStop"

    session_id: str = wire("SessionID", pattern="SessionID")
    cpo_partner_session_id: str | None = wire(
        "CPOPartnerSessionID", default=None, max_length=PARTNER_SESSION_ID_MAX
    )
    emp_partner_session_id: str | None = wire(
        "EMPPartnerSessionID",
        default=None,
        max_length=PARTNER_SESSION_ID_MAX,
        aliases=_EMP_PARTNER_SESSION_ID_ALIASES,
    )
    provider_id: str = wire("ProviderID", pattern="ProviderID")
    evse_id: str = wire("EvseID", pattern="EvseID")
