"""The answers Hubject gives: eRoamingAcknowledgement, eRoamingAuthorizationStart/Stop.

Hubject answers with HTTP 200 and the operation's answer message, also when it refuses a
request: the refusal is ``Result`` false (or ``AuthorizationStatus`` NotAuthorized) with a
status code, and ``AdditionalInfo`` saying what was wrong (OICP 2.3, "Status codes").
"""

from __future__ import annotations

from typing import Final

from hubject_connector.oicp import status
from hubject_connector.oicp.authorization import (
    AuthorizationStart,
    AuthorizationStatus,
    AuthorizationStop,
)
from hubject_connector.oicp.common import Acknowledgement, Identification, StatusCode
from hubject_connector.oicp.messages import response_class
from hubject_connector.oicp.operations import Operation

#: StatusCode AdditionalInfo is at most 1000 characters (StatusCodeType).
ADDITIONAL_INFO_MAX: Final = 1000


def status_code(code: str, additional_info: str | None = None) -> StatusCode:
    """A StatusCode with the table's description and the info cut to its maximum length."""
    if additional_info is not None and len(additional_info) > ADDITIONAL_INFO_MAX:
        additional_info = additional_info[: ADDITIONAL_INFO_MAX - 1] + "…"
    return StatusCode(code=code, description=status.describe(code).meaning,
                      additional_info=additional_info)


def _partner_ids(request: object | None) -> dict[str, str | None]:
    # Hubject returns the partners' own session IDs with every answer (OICP 2.3,
    # "Session handling"), so a CPO can relate the answer to its session.
    return {
        "cpo_partner_session_id": getattr(request, "cpo_partner_session_id", None),
        "emp_partner_session_id": getattr(request, "emp_partner_session_id", None),
    }


def _authorization_status(authorized: bool) -> AuthorizationStatus:
    return AuthorizationStatus.AUTHORIZED if authorized else AuthorizationStatus.NOT_AUTHORIZED


def acknowledgement(
    result: bool,
    code: str,
    additional_info: str | None = None,
    *,
    request: object | None = None,
    session_id: str | None = None,
) -> Acknowledgement:
    """An eRoamingAcknowledgement."""
    if session_id is None:
        session_id = getattr(request, "session_id", None)
    return Acknowledgement(
        result=result, status_code=status_code(code, additional_info), session_id=session_id,
        **_partner_ids(request),
    )


def authorization_start(
    authorized: bool,
    code: str,
    additional_info: str | None = None,
    *,
    request: object | None = None,
    session_id: str | None = None,
    provider_id: str | None = None,
    stop_identifications: list[Identification] | None = None,
) -> AuthorizationStart:
    """An eRoamingAuthorizationStart."""
    return AuthorizationStart(
        session_id=session_id,
        provider_id=provider_id,
        authorization_status=_authorization_status(authorized),
        status_code=status_code(code, additional_info),
        authorization_stop_identifications=stop_identifications,
        **_partner_ids(request),
    )


def authorization_stop(
    authorized: bool,
    code: str,
    additional_info: str | None = None,
    *,
    request: object | None = None,
    session_id: str | None = None,
    provider_id: str | None = None,
) -> AuthorizationStop:
    """An eRoamingAuthorizationStop."""
    return AuthorizationStop(
        session_id=session_id,
        provider_id=provider_id,
        authorization_status=_authorization_status(authorized),
        status_code=status_code(code, additional_info),
        **_partner_ids(request),
    )


def refusal(
    operation: Operation, code: str, additional_info: str | None = None,
    *, request: object | None = None,
) -> object:
    """The operation's own answer message saying no: Result false or NotAuthorized."""
    answer = response_class(operation)
    session_id = getattr(request, "session_id", None)
    if answer is AuthorizationStart:
        return authorization_start(False, code, additional_info, request=request,
                                   session_id=session_id)
    if answer is AuthorizationStop:
        return authorization_stop(False, code, additional_info, request=request,
                                  session_id=session_id)
    return acknowledgement(False, code, additional_info, request=request)

