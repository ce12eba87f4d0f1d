"""ID patterns of OICP 2.3, by name.

Each pattern is the body of the text spec's regular expression, without anchors: callers
match with ``re.fullmatch`` (in Python ``$`` also matches before a trailing newline, so
``re.match(...$)`` would accept ``"DE*ABC\\n"``). Where the OpenAPI is looser than the text
spec (unanchored alternations, lower-case EvseIDs), the stricter text wins, and every
pattern here accepts only strings that the official OpenAPI accepts too.
"""

from __future__ import annotations

import re
from typing import Final

# Spec: OICP 2.3 CPO, "OperatorIDType" (ISO 15118 | DIN SPEC 91286).
OPERATOR_ID: Final = r"([A-Za-z]{2}\*?[A-Za-z0-9]{3})|(\+?[0-9]{1,3}\*[0-9]{3})"
# Spec: "EvseIDType". The ISO form needs the "E" after the OperatorID. The text spec allows
# upper case only; the OpenAPI's [A-Za-z] is looser, and the text wins.
EVSE_ID: Final = (
    r"([A-Z]{2}\*?[A-Z0-9]{3}\*?E[A-Z0-9\*]{1,30})"
    r"|(\+?[0-9]{1,3}\*[0-9]{3}\*[0-9\*]{1,32})"
)
# Spec: "ProviderIDType".
PROVIDER_ID: Final = r"([A-Za-z]{2}\-?[A-Za-z0-9]{3})|([A-Za-z]{2}[\*|-]?[A-Za-z0-9]{3})"
# The OpenAPI's ProviderIDAsterisk is ``^(...)|\*$``: unanchored on one side. It means
# "a ProviderID, or * for every provider".
PROVIDER_ID_OR_ASTERISK: Final = rf"({PROVIDER_ID})|\*"
# Spec: "EvcoIDType" (contract ID).
EVCO_ID: Final = (
    r"([A-Za-z]{2}\-?[A-Za-z0-9]{3}\-?C[A-Za-z0-9]{8}\-?[\d|A-Za-z])"
    r"|([A-Za-z]{2}[\*|\-]?[A-Za-z0-9]{3}[\*|\-]?[A-Za-z0-9]{6}[\*|\-]?[\d|X])"
)
# Spec: "SessionIDType", a GUID.
SESSION_ID: Final = r"[A-Za-z0-9]{8}(-[A-Za-z0-9]{4}){3}-[A-Za-z0-9]{12}"
# Spec: "UIDType": 8, 14 or 20 upper-case hex digits.
UID: Final = r"[0-9A-F]{8}|[0-9A-F]{14}|[0-9A-F]{20}"
# Spec: "ChargingPoolIDType". The OpenAPI pattern is unanchored.
CHARGING_POOL_ID: Final = r"[A-Za-z]{2}\*?[A-Za-z0-9]{3}\*?P[A-Za-z0-9\*]{1,30}"
# Spec: "TimeZone" in EvseDataRecord, e.g. "UTC+01:00". The OpenAPI writes it as a list of
# single-character classes, ``[+,-]`` admitting a comma by mistake.
TIME_ZONE: Final = r"UTC[+-][0-9]{2}:[0-9]{2}"
# Spec: "LanguageCodeType" (ISO 639-1 or 639-2/T with optional region and private tag).
LANGUAGE_CODE: Final = r"[a-z]{2,3}(?:-[A-Z]{2,3}(?:-[a-zA-Z]{4})?)?(?:-x-[a-zA-Z0-9]{1,8})?"
# Spec: "hh:mm" in OpeningTimes and ProductAvailabilityTimes periods. The spec's
# "[0-9]{2}:[0-9]{2}" would also take "99:99"; times of day 00:00 to 23:59 are taken here
# (and in the bus contract's hh:mm), and "24:00", which operators use to end a period at
# midnight and the spec's pattern admits.
TIME_OF_DAY: Final = r"([01][0-9]|2[0-3]):[0-5][0-9]|24:00"
# Spec: "HotlinePhoneNumber": "+" and 5 to 15 digits.
PHONE_NUMBER: Final = r"\+[0-9]{5,15}"
# Spec: "GeoCoordinatesResponseFormat": Google, DecimalDegree, DegreeMinuteSeconds.
GEO_GOOGLE: Final = r"-?1?\d{1,2}\.\d{1,6}\s*\,?\s*-?1?\d{1,2}\.\d{1,6}"
GEO_DECIMAL_DEGREE: Final = r"-?1?\d{1,2}\.\d{1,6}"
GEO_DMS: Final = r"-?1?\d{1,2}°[ ]?\d{1,2}'[ ]?\d{1,2}\.\d+''"
# Spec: "HashValueType", the "Value" of a HashedPIN. The spec writes the class with
# doubled backslashes, which taken literally admits a backslash; no hash encoding (hex,
# Base64, bcrypt) produces one, so it is left out.
HASHED_PIN: Final = r"[0-9A-Za-z\.+/=\$]{10,100}"
# Spec: "CountryCodeType": ISO 3166-1 alpha-3.
COUNTRY_CODE: Final = r"[A-Z]{3}"
# Spec: "CurrencyID": ISO 4217.
CURRENCY_ID: Final = r"[A-Z]{3}"

#: Name used in error messages ("does not match the EvseID pattern") → pattern.
PATTERNS: Final[dict[str, str]] = {
    "OperatorID": OPERATOR_ID,
    "EvseID": EVSE_ID,
    "ProviderID": PROVIDER_ID,
    "ProviderID or *": PROVIDER_ID_OR_ASTERISK,
    "EvcoID": EVCO_ID,
    "SessionID": SESSION_ID,
    "UID": UID,
    "ChargingPoolID": CHARGING_POOL_ID,
    "TimeZone": TIME_ZONE,
    "language code": LANGUAGE_CODE,
    "hh:mm": TIME_OF_DAY,
    "phone number": PHONE_NUMBER,
    "Google geo coordinates": GEO_GOOGLE,
    "decimal degree": GEO_DECIMAL_DEGREE,
    "degree-minute-second": GEO_DMS,
    "HashedPIN": HASHED_PIN,
    "country code": COUNTRY_CODE,
    "currency": CURRENCY_ID,
}

# re.ASCII: the OpenAPI's patterns are ECMA-262, where \d is [0-9] only; Python's \d
# would also accept other scripts' digits ("DE-ABC-C12345678-\u0663"), which the schema refuses.
_COMPILED: Final[dict[str, re.Pattern[str]]] = {
    k: re.compile(v, re.ASCII) for k, v in PATTERNS.items()
}


def compiled(name: str) -> re.Pattern[str]:
    """The compiled pattern called ``name`` in ``PATTERNS``."""
    return _COMPILED[name]


def matches(name: str, value: str) -> bool:
    """Whether the whole of ``value`` matches the pattern called ``name``."""
    return _COMPILED[name].fullmatch(value) is not None


def operator_of_evse(evse_id: str) -> str:
    """The OperatorID part of an EvseID, normalised without separators, upper case.

    Used to check that an EvseID belongs to an operator (Hubject answers 018 otherwise).
    """
    if evse_id[:1] == "+" or evse_id[:1].isdigit():
        # DIN: "+49*810*..." (the "+" is optional) → country code and operator are the
        # first two groups, whose "*" separator is mandatory.
        parts = evse_id.lstrip("+").split("*")
        return "+" + parts[0] + "*" + parts[1] if len(parts) > 1 else evse_id
    # ISO: "DE*ABC*E..." → two letters and three characters, the "*" optional.
    return evse_id.replace("*", "").upper()[:5]


def normalise_operator_id(operator_id: str) -> str:
    """An OperatorID in a form comparable with ``operator_of_evse``."""
    if operator_id.lstrip("+")[:1].isdigit():
        digits = operator_id.lstrip("+").split("*")
        return "+" + "*".join(digits)
    return operator_id.replace("*", "").upper()
