"""Hubject's remote commands as bus commands, and the backend's replies as OICP answers.

What passes through: an EMP's eRoamingAuthorizeRemoteStart/Stop 2.1 or
eRoamingAuthorizeRemoteReservationStart/Stop 1.1, already decoded by the OICP layer, becomes
the ``data`` of the contract's ``remote.start``/``remote.stop``/``reservation.start``/
``reservation.stop`` command (docs/contract.md); the backend's reply ``data`` becomes the
``eRoamingAcknowledgement`` Hubject expects (OICP 2.3 CPO, eRoamingAuthorizeRemoteStart:
"The CPO MUST return an eRoamingAcknowledgement"). Answers the connector gives by itself
(a data error, no reply in time) are built here too, so every acknowledgement has one source.

Pure: no I/O, no clock, no event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from hubject_connector.bus.contract import ContractIssue, MessageType
from hubject_connector.oicp import patterns, status
from hubject_connector.oicp.codec import Issue
from hubject_connector.oicp.common import Acknowledgement, Identification, StatusCode
from hubject_connector.oicp.remote import (
    AuthorizeRemoteReservationStart,
    AuthorizeRemoteReservationStop,
    AuthorizeRemoteStart,
    AuthorizeRemoteStop,
)
from hubject_connector.translate.errors import TranslationError

#: The four requests Hubject sends to the CPO.
RemoteRequest = (
    AuthorizeRemoteStart
    | AuthorizeRemoteStop
    | AuthorizeRemoteReservationStart
    | AuthorizeRemoteReservationStop
)

#: Request model → the command type it becomes.
COMMAND_TYPES: Final[Mapping[type, MessageType]] = {
    AuthorizeRemoteStart: MessageType.REMOTE_START_COMMAND,
    AuthorizeRemoteStop: MessageType.REMOTE_STOP_COMMAND,
    AuthorizeRemoteReservationStart: MessageType.RESERVATION_START_COMMAND,
    AuthorizeRemoteReservationStop: MessageType.RESERVATION_STOP_COMMAND,
}

#: Spec: StatusCodeType "Description" and "AdditionalInfo" field lengths.
DESCRIPTION_MAX: Final = 200
ADDITIONAL_INFO_MAX: Final = 1000

_ELLIPSIS: Final = "…"


def command_type(request: RemoteRequest) -> MessageType:
    """The contract command type a request becomes."""
    return COMMAND_TYPES[type(request)]


def command_subject(request: RemoteRequest) -> str:
    """The command's ``subject`` (docs/contract.md): the EvseID for a start, else the SessionID.

    A reservation start may come without a SessionID (OICP makes it optional there); its
    subject is the EvseID as for every start.
    """
    if isinstance(request, AuthorizeRemoteStart | AuthorizeRemoteReservationStart):
        return request.evse_id
    return request.session_id


def command_data(request: RemoteRequest) -> dict[str, Any]:
    """The command ``data`` (snake_case, docs/contract.md) of a decoded OICP request.

    Optional OICP fields that are absent are left out, as the contract schemas want.
    """
    data: dict[str, Any] = {}
    if request.session_id is not None:
        data["session_id"] = request.session_id
    _put(data, "cpo_partner_session_id", request.cpo_partner_session_id)
    _put(data, "emp_partner_session_id", request.emp_partner_session_id)
    data["provider_id"] = request.provider_id
    data["evse_id"] = request.evse_id
    if isinstance(request, AuthorizeRemoteStart | AuthorizeRemoteReservationStart):
        data["identification"] = identification_data(request.identification)
        _put(data, "partner_product_id", request.partner_product_id)
    if isinstance(request, AuthorizeRemoteReservationStart):
        _put(data, "duration_minutes", request.duration)
    return data


def identification_data(identification: Identification) -> dict[str, Any]:
    """The contract's ``identification`` object (``kind`` + that option's fields).

    A remote start always carries RemoteIdentification (the OICP layer checks it); a
    reservation may carry any of the five options.
    """
    if identification.remote is not None:
        return {"kind": "remote", "evco_id": identification.remote.evco_id}
    if identification.rfid_mifare_family is not None:
        return {"kind": "rfid_mifare_family", "uid": identification.rfid_mifare_family.uid}
    if identification.plug_and_charge is not None:
        return {"kind": "plug_and_charge", "evco_id": identification.plug_and_charge.evco_id}
    if identification.rfid is not None:
        rfid = identification.rfid
        data: dict[str, Any] = {"kind": "rfid", "uid": rfid.uid, "rfid_type": rfid.rfid.value}
        _put(data, "evco_id", rfid.evco_id)
        _put(data, "printed_number", rfid.printed_number)
        if rfid.expiry_date is not None:
            data["expiry_date"] = rfid.expiry_date.isoformat()
        return data
    if identification.qr_code is not None:
        qr = identification.qr_code
        data = {"kind": "qr_code", "evco_id": qr.evco_id}
        _put(data, "pin", qr.pin)
        if qr.hashed_pin is not None:
            hashed: dict[str, Any] = {
                "value": qr.hashed_pin.value,
                "function": qr.hashed_pin.function.value,
            }
            legacy = qr.hashed_pin.legacy_hash_data
            if legacy is not None:
                legacy_data: dict[str, Any] = {"function": legacy.function.value}
                _put(legacy_data, "salt", legacy.salt)
                _put(legacy_data, "value", legacy.value)
                hashed["legacy_hash_data"] = legacy_data
            data["hashed_pin"] = hashed
        return data
    # The OICP layer refuses an Identification without an option: a programming error.
    raise TranslationError.at("/data/identification", "no identification option is set")


def acknowledgement(reply: Mapping[str, Any], request: RemoteRequest) -> Acknowledgement:
    """The eRoamingAcknowledgement for the backend's reply ``data`` to ``request``.

    ``result`` and ``status_code`` are the backend's; a missing description is the status
    code's own ("Session is invalid."). Session IDs the reply leaves out are those of the
    request, so Hubject can relate the answer (OICP 2.3, "Session handling").

    Raises ``TranslationError`` (pointers from the reply envelope's root) if the data
    lacks ``result`` or ``status_code``; the bus contract normally refuses such a reply first.
    """
    result = reply.get("result")
    code = reply.get("status_code")
    issues: list[ContractIssue] = []
    if not isinstance(result, bool):
        issues.append(ContractIssue("/data/result", "must be true or false"))
    if not isinstance(code, str) or len(code) != 3 or not code.isdigit():
        issues.append(ContractIssue(
            "/data/status_code", 'must be a status code of three digits, e.g. "000"'
        ))
    if issues or not isinstance(result, bool) or not isinstance(code, str):
        raise TranslationError(issues)
    description = _text(reply.get("status_description")) or _known_description(code)
    return Acknowledgement(
        result=result,
        status_code=StatusCode(
            code=code,
            description=_clip(description, DESCRIPTION_MAX),
            additional_info=_clip(_text(reply.get("additional_info")), ADDITIONAL_INFO_MAX),
        ),
        session_id=_session_id(reply.get("session_id")) or request.session_id,
        cpo_partner_session_id=_text(reply.get("cpo_partner_session_id"))
        or request.cpo_partner_session_id,
        emp_partner_session_id=_text(reply.get("emp_partner_session_id"))
        or request.emp_partner_session_id,
    )


def refusal(
    code: str,
    additional_info: str | None = None,
    *,
    request: RemoteRequest | None = None,
    session_id: str | None = None,
) -> Acknowledgement:
    """An acknowledgement with ``Result`` false and ``code``, given by the connector itself.

    Used when the backend did not answer in time or not validly, and for refused calls.
    The session IDs are the request's when it could be decoded, else ``session_id`` when
    it is a valid SessionID.
    """
    if request is not None:
        session_id = request.session_id
    return Acknowledgement(
        result=False,
        status_code=StatusCode(
            code=code,
            description=_clip(_known_description(code), DESCRIPTION_MAX),
            additional_info=_clip(additional_info, ADDITIONAL_INFO_MAX),
        ),
        session_id=_session_id(session_id),
        cpo_partner_session_id=request.cpo_partner_session_id if request else None,
        emp_partner_session_id=request.emp_partner_session_id if request else None,
    )


def data_error(issues: Iterable[Issue | str], *, session_id: str | None = None) -> Acknowledgement:
    """``Result`` false with 022 (data error), AdditionalInfo naming each field and rule.

    Issues are written as the OICP layer words them (``/EvseID: does not match ...``),
    joined by "; " and cut to the field's 1000 characters.
    """
    text = "; ".join(str(issue) for issue in issues) or "the request is not valid"
    return refusal("022", text, session_id=session_id)


def _put(data: dict[str, Any], key: str, value: object) -> None:
    if value is not None:
        data[key] = value


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _session_id(value: object) -> str | None:
    if isinstance(value, str) and patterns.matches("SessionID", value):
        return value
    return None


def _known_description(code: str) -> str | None:
    known = status.STATUS_CODES.get(code)
    return known.meaning if known is not None else None


def _clip(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - len(_ELLIPSIS)] + _ELLIPSIS
