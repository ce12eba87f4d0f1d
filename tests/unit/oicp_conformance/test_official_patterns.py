"""patterns.py against the official OpenAPI's patterns (ECMA-262, searched, as a validator
applies them): everything ours accepts, the OpenAPI accepts; where ours refuses more, the
difference is one the text spec or the meaning of the field calls for, and is listed here.
"""

from __future__ import annotations

from typing import Any, Final

import pytest
import regress
from hypothesis import given, settings
from hypothesis import strategies as st

from hubject_connector.oicp import patterns
from tests.unit.oicp.test_patterns import EXAMPLES
from tests.unit.oicp_conformance.conftest import Spec

pytestmark = pytest.mark.spec

_GEO = "GeoCoordinates/properties"
_PERIOD = "OpeningTimes/properties/Period/items/properties"

#: Our pattern name → where the OpenAPI writes the same rule (under #/components/schemas/).
#: Country and currency codes have no pattern in the OpenAPI.
OPENAPI: Final[dict[str, str]] = {
    "OperatorID": "OperatorID",
    "EvseID": "EvseID",
    "ProviderID": "ProviderID",
    "ProviderID or *": "ProviderIDAsterisk",
    "EvcoID": "EvcoID",
    "SessionID": "SessionID",
    "UID": "UID",
    "ChargingPoolID": "EvseDataRecord/properties/ChargingPoolID",
    "TimeZone": "EvseDataRecord/properties/Address/properties/TimeZone",
    "language code": "InfoTextType/properties/lang",
    "hh:mm": f"{_PERIOD}/begin",
    "phone number": "EvseDataRecord/properties/HotlinePhoneNumber",
    "Google geo coordinates": f"{_GEO}/Google/properties/Coordinates",
    "decimal degree": f"{_GEO}/DecimalDegree/properties/Latitude",
    "degree-minute-second": f"{_GEO}/DegreeMinuteSeconds/properties/Latitude",
    "HashedPIN": "QRCodeIdentification/properties/HashedPIN/properties/Value",
}

#: Values the OpenAPI accepts and ours refuses, on purpose.
STRICTER: Final[dict[str, list[str]]] = {
    # The text spec's EvseIDType is upper case only; the text wins over the OpenAPI.
    "EvseID": ["de*ab7*E840*6487", "DE*AB7*Eab"],
    # ``^(...)|\*$`` is anchored on one side only: it means "a ProviderID, or *".
    "ProviderID or *": ["DE8EO-and-more", "any text ending in *"],
    # Unanchored in the OpenAPI: any text containing a pool ID would pass.
    "ChargingPoolID": ["pool IT*123*P456 here"],
    # ``[+,-]`` admits a comma by mistake, and the pattern is unanchored.
    "TimeZone": ["UTC,01:00", "UTC+01:00 (CET)"],
    # "[0-9]{2}:[0-9]{2}" unanchored: ours takes only times of day, 00:00 to 24:00.
    "hh:mm": ["24:01", "99:99", "open 08:00"],
    # The text spec writes the class with doubled backslashes, which admits a backslash;
    # no hash encoding (hex, Base64, bcrypt) produces one.
    "HashedPIN": ["abcd\\efghij"],
}


def _official(spec: Spec, name: str) -> str:
    node: Any = spec.schemas
    for token in OPENAPI[name].split("/"):
        node = node[token]
    pattern: str = node["pattern"]
    return pattern


def _accepts(pattern: str, value: str) -> bool:
    # As openapi-schema-validator applies a pattern: ECMA-262, searched (not anchored).
    return regress.Regex(pattern).find(value) is not None


def test_every_pattern_is_mapped() -> None:
    assert set(OPENAPI) == set(patterns.PATTERNS) - {"country code", "currency"}
    assert set(STRICTER) <= set(OPENAPI)


@pytest.mark.parametrize("name", sorted(OPENAPI))
def test_the_examples_pass_the_official_pattern(spec: Spec, name: str) -> None:
    official = _official(spec, name)
    for value in EXAMPLES[name]:
        assert _accepts(official, value), value


@pytest.mark.parametrize("name", sorted(STRICTER))
def test_where_ours_is_stricter(spec: Spec, name: str) -> None:
    official = _official(spec, name)
    for value in STRICTER[name]:
        assert _accepts(official, value), value
        assert not patterns.matches(name, value), value


@pytest.mark.parametrize("name", sorted(OPENAPI))
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_what_ours_accepts_the_official_pattern_accepts(
    spec: Spec, name: str, data: st.DataObject
) -> None:
    value = data.draw(st.from_regex(patterns.compiled(name), fullmatch=True), label=name)
    assert _accepts(_official(spec, name), value), value
