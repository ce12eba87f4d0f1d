"""OICP status codes: meaning, and whether trying again may help.

Status codes are strings on the wire ("000", not 0). The table follows the StatusCode
enumeration of OICP 2.3; ``transient`` marks codes where the same request may succeed later
(Hubject-side faults, partner timeouts), which the retry policy repeats.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from hubject_connector.oicp.conformance import Severity, spec_rule


class Area(StrEnum):
    """The area of usage the spec gives each code."""

    GENERAL = "general"
    INTERNAL = "internal system"
    AUTHENTICATION = "authentication"
    SESSION = "session"
    EVSE = "EVSE"


@dataclass(frozen=True, slots=True)
class StatusCodeInfo:
    """One row of the status code table."""

    code: str
    meaning: str
    area: Area
    transient: bool = False


SUCCESS: Final = "000"

UNKNOWN_STATUS_CODE = spec_rule(
    "answer-unknown-status-code",
    source="03 CPO Data Types, StatusCodeType: Code \"To be selected from valid range\", "
    "CodeType (list of error and status codes)",
    wording="status code {code} is not in the OICP 2.3 table: passed on as it is",
    severity=Severity.ANSWER,
)

_ROWS: Final = (
    StatusCodeInfo("000", "Success.", Area.GENERAL),
    StatusCodeInfo("001", "Hubject system error.", Area.INTERNAL, transient=True),
    StatusCodeInfo("002", "Hubject database error.", Area.INTERNAL, transient=True),
    StatusCodeInfo("009", "Data transaction error.", Area.INTERNAL, transient=True),
    StatusCodeInfo("017", "Unauthorized Access.", Area.INTERNAL),
    StatusCodeInfo("018", "Inconsistent EvseID.", Area.INTERNAL),
    StatusCodeInfo("019", "Inconsistent EvcoID.", Area.INTERNAL),
    StatusCodeInfo("021", "System error.", Area.GENERAL, transient=True),
    StatusCodeInfo("022", "Data error.", Area.GENERAL),
    StatusCodeInfo("101", "QR Code Authentication failed – Invalid Credentials.",
                   Area.AUTHENTICATION),
    StatusCodeInfo("102", "RFID Authentication failed – invalid UID.", Area.AUTHENTICATION),
    StatusCodeInfo("103", "RFID Authentication failed – card not readable.",
                   Area.AUTHENTICATION),
    StatusCodeInfo("105", "PLC Authentication failed - invalid EvcoID.", Area.AUTHENTICATION),
    StatusCodeInfo("106", "No positive authentication response.", Area.AUTHENTICATION),
    StatusCodeInfo("110", "QR Code App Authentication failed – time out error.",
                   Area.AUTHENTICATION),
    StatusCodeInfo("120", "PLC (ISO/ IEC 15118) Authentication failed – invalid underlying "
                   "EvcoID.", Area.AUTHENTICATION),
    StatusCodeInfo("121", "PLC (ISO/ IEC 15118) Authentication failed – invalid certificate.",
                   Area.AUTHENTICATION),
    StatusCodeInfo("122", "PLC (ISO/ IEC 15118) Authentication failed – time out error.",
                   Area.AUTHENTICATION),
    StatusCodeInfo("200", "EvcoID locked.", Area.AUTHENTICATION),
    StatusCodeInfo("210", "No valid contract.", Area.SESSION),
    StatusCodeInfo("300", "Partner not found.", Area.SESSION),
    StatusCodeInfo("310", "Partner did not respond.", Area.SESSION, transient=True),
    StatusCodeInfo("320", "Service not available.", Area.SESSION, transient=True),
    StatusCodeInfo("400", "Session is invalid.", Area.SESSION),
    StatusCodeInfo("501", "Communication to EVSE failed.", Area.EVSE),
    StatusCodeInfo("510", "No EV connected to EVSE.", Area.EVSE),
    StatusCodeInfo("601", "EVSE already reserved.", Area.EVSE),
    StatusCodeInfo("602", "EVSE already in use/ wrong token.", Area.EVSE),
    StatusCodeInfo("603", "Unknown EVSE ID.", Area.EVSE),
    StatusCodeInfo("604", "EVSE ID is not Hubject compatible.", Area.EVSE),
    StatusCodeInfo("700", "EVSE out of service.", Area.EVSE),
)

#: Every OICP 2.3 status code, by code.
STATUS_CODES: Final[dict[str, StatusCodeInfo]] = {row.code: row for row in _ROWS}

#: Codes a CPO may put in its answers to Hubject's remote start/stop and reservation calls.
INBOUND_ANSWER_CODES: Final = frozenset(
    {"000", "022", "400", "501", "510", "601", "602", "603", "700"}
)


def describe(code: str) -> StatusCodeInfo:
    """The table row for ``code``; an unknown code is described as such and not transient."""
    info = STATUS_CODES.get(code)
    if info is None:
        return StatusCodeInfo(code, "Unknown status code.", Area.GENERAL)
    return info


def is_transient(code: str) -> bool:
    """Whether a request answered with ``code`` may succeed if sent again later."""
    return describe(code).transient
