"""The ID and format patterns: the text spec's own examples pass, and nothing more than the
whole string, in ASCII, does.
"""

from __future__ import annotations

import re
from typing import Final

import pytest

from hubject_connector.oicp import patterns

#: Valid values for every pattern: the examples of the text spec's data types (03_CPO_Data_Types)
#: where it gives some, else values of the documented form.
EXAMPLES: Final[dict[str, list[str]]] = {
    "OperatorID": ["DE*A36", "DEA36", "+49*536"],
    "EvseID": ["DE*AB7*E840*6487", "DEAB7E8406487", "+49*810*000*438"],
    "ProviderID": ["DE8EO", "DE-8EO", "DE*8EO"],
    "ProviderID or *": ["DE-8EO", "*"],
    "EvcoID": ["DE-8EO-CAet5e4XY-3", "DE8EOCAet5e43X1", "DE*8EO*Aet5e4*3", "DE-8EO-Aet5e4-3",
               "DE8EOAet5e43"],
    "SessionID": ["b2688855-7f00-0002-6d8e-48d883f6abb6"],
    # The text's other example, "AFFH1768", is not hex: its own regular expression refuses it.
    "UID": ["7568290FFF765F", "04A1B2C3", "0123456789ABCDEF0123"],
    "ChargingPoolID": ["IT*123*P456*AB789"],
    "TimeZone": ["UTC+01:00", "UTC-05:00"],
    "language code": ["en", "deu", "de-DE", "zh-CN-Hans", "en-x-custom"],
    "hh:mm": ["00:00", "08:30", "23:59", "24:00"],
    "phone number": ["+0305132787"],
    "Google geo coordinates": ["47.662249 9.360922", "-21.568201,9.360922"],
    "decimal degree": ["9.360922", "-21.568201", "179.5"],
    "degree-minute-second": ["9°21'39.32''", "-21°34'23.16''"],
    "HashedPIN": ["a5ghdhf73h", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"],
    "country code": ["DEU", "CHE"],
    "currency": ["EUR", "CHF"],
}

#: Values of the right shape that the text spec's stricter reading refuses.
REFUSED: Final[dict[str, list[str]]] = {
    # Upper case only in the text spec; the OpenAPI's [A-Za-z] is looser.
    "EvseID": ["de*ab7*e840*6487", "DE*AB7*840*6487", "+49*810"],
    "OperatorID": ["DE*AB", "DEU*ABC", "+49536"],
    # The ISO form needs the "C" and 8 characters; the DIN form 6.
    "EvcoID": ["DE-8EO-CAet5e4X-3", "DE-8EO-Aet5e4X-3"],
    "ProviderID or *": ["**", "DE-8EO*", "DE8EO-and-more"],
    "SessionID": ["b2688855-7f00-0002-6d8e", "b26888557f0000026d8e48d883f6abb6"],
    "UID": ["04a1b2c3", "04A1B2C", "AFFH1768"],
    "ChargingPoolID": ["IT*123*E456", "pool IT*123*P456"],
    "TimeZone": ["UTC,01:00", "UTC+1:00", "CET"],
    "hh:mm": ["8:00", "24:01", "12:60"],
    "HashedPIN": ["short", "abc\\defghijk"],
    "country code": ["DE", "deu"],
}


def _with_non_ascii_digit(value: str) -> str:
    # U+0663 ARABIC-INDIC DIGIT THREE: a digit to Python's \d, not to ECMA-262's or the spec's.
    return re.sub(r"[0-9]", "\u0663", value, count=1)


def test_every_pattern_has_examples() -> None:
    assert set(EXAMPLES) == set(patterns.PATTERNS)
    assert set(REFUSED) <= set(patterns.PATTERNS)


@pytest.mark.parametrize("name", sorted(patterns.PATTERNS))
def test_examples_match(name: str) -> None:
    for value in EXAMPLES[name]:
        assert patterns.matches(name, value), value


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_values_of_a_wrong_form_do_not_match(name: str) -> None:
    for value in REFUSED[name]:
        assert not patterns.matches(name, value), value


@pytest.mark.parametrize("name", sorted(patterns.PATTERNS))
def test_only_the_whole_string_matches(name: str) -> None:
    # fullmatch: "$" in re.match would let a trailing newline through.
    for value in EXAMPLES[name]:
        for candidate in (value + "\n", " " + value, value + " ", value + value[-1] + "!"):
            assert not patterns.matches(name, candidate), repr(candidate)


@pytest.mark.parametrize("name", sorted(patterns.PATTERNS))
def test_digits_are_ascii_digits(name: str) -> None:
    assert patterns.compiled(name).flags & re.ASCII
    for value in EXAMPLES[name]:
        changed = _with_non_ascii_digit(value)
        if changed != value:
            assert not patterns.matches(name, changed), changed
