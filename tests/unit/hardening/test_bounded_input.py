"""Bounded work for any input: numbers, nesting, duplicate keys and encodings that a
hostile or broken sender may send are refused at once, each with its pointer and a
sentence that says what is wrong, and never with a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hubject_connector.oicp import codec, messages
from hubject_connector.oicp.codec import OicpValidationError

SCRIPT = Path(sys.executable).with_name("hubject-connector")

#: A valid eRoamingChargingNotification of Type Progress: an integer field
#: (ChargingDuration) and energies (3 decimal places) side by side.
PROGRESS: dict[str, Any] = {
    "Type": "Progress",
    "SessionID": "5e7c1a2b-0d3f-4a6e-9b8c-1f2e3d4c5b6a",
    "EvseID": "DE*ABC*E1234*1",
    "ChargingStart": "2024-03-01T10:05:00+01:00",
    "EventOccurred": "2024-03-01T10:15:00+01:00",
    "ChargingDuration": 600000,
    "ConsumedEnergyProgress": 4.2,
    "OperatorID": "DE*ABC",
}


def progress_with(key: str, literal: str) -> bytes:
    """The Progress notification with ``key`` set to the JSON number ``literal`` as written."""
    body = json.dumps({**PROGRESS, key: "@@"})
    return body.replace('"@@"', literal).encode()


def issues_of(body: bytes | str) -> list[str]:
    with pytest.raises(OicpValidationError) as raised:
        messages.decode_message("eRoamingChargingNotification", body)
    return [str(issue) for issue in raised.value.issues]


def test_the_baseline_is_valid() -> None:
    decoded = messages.decode_message("eRoamingChargingNotification", json.dumps(PROGRESS))
    assert type(decoded).__name__ == "ChargingNotificationProgress"


def test_a_huge_exponent_in_an_integer_field_is_refused_before_converting() -> None:
    # int(Decimal("1e1000000")) would take minutes and build a million-digit number.
    [issue] = issues_of(progress_with("ChargingDuration", "1e1000000"))
    assert issue.startswith("/ChargingDuration: ")
    assert "1e1000000" in issue
    assert "beyond what any OICP field holds" in issue


def test_an_integer_beyond_what_the_field_holds_says_so() -> None:
    [issue] = issues_of(progress_with("ChargingDuration", "1e25"))
    assert issue == ("/ChargingDuration: has 26 digits before the decimal point, more than "
                     "this field holds (at most 18)")
    [issue] = issues_of(progress_with("ChargingDuration", "1" * 40))
    assert "has 40 digits" in issue


def test_a_huge_exponent_in_an_energy_field_is_refused_not_expanded() -> None:
    # Written out, 1e999999 kWh would be a megabyte of zeros in the request to Hubject.
    [issue] = issues_of(progress_with("ConsumedEnergyProgress", "1e999999"))
    assert issue.startswith("/ConsumedEnergyProgress: ")
    [issue] = issues_of(progress_with("ConsumedEnergyProgress", "1E+20"))
    assert issue == ("/ConsumedEnergyProgress: has 21 digits before the decimal point, "
                     "more than this field holds (at most 15)")
    # The largest energy the field holds still goes through, written as given.
    largest = messages.decode_message(
        "eRoamingChargingNotification", progress_with("ConsumedEnergyProgress",
                                                      "999999999999999.999"))
    assert b"999999999999999.999" in codec.encode(largest)


def test_a_ten_thousand_digit_integer_gets_a_clear_message() -> None:
    [issue] = issues_of(progress_with("ChargingDuration", "7" * 10_000))
    assert issue == ("/ChargingDuration: is an integer of 10000 digits; no OICP number has "
                     "more than 100")


def test_deep_nesting_is_a_clear_error() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    assert issues_of(deep) == ["/: nests deeper than 64 levels of arrays and objects"]
    # Hidden in a field nobody reads, too deep is still too deep ...
    nested = {**PROGRESS, "Extra": json.loads("[" * 70 + "]" * 70)}
    assert issues_of(json.dumps(nested)) == [
        "/: nests deeper than 64 levels of arrays and objects"]
    # ... and a sender's harmless extra structure is not refused.
    fine = {**PROGRESS, "Extra": json.loads("[" * 60 + "]" * 60)}
    messages.decode_message("eRoamingChargingNotification", json.dumps(fine))


def test_duplicate_keys_are_refused_where_they_are() -> None:
    body = json.dumps(PROGRESS)[:-1] + ', "EvseID": "DE*ABC*E9999*9"}'
    assert issues_of(body) == [
        "/: names the key 'EvseID' more than once: duplicate keys are refused"]
    inner = '{"Extra": {"a": 1, "a": 2}, ' + json.dumps(PROGRESS)[1:]
    assert issues_of(inner) == [
        "/Extra: names the key 'a' more than once: duplicate keys are refused"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_are_refused_as_such(encoding: str) -> None:
    # Python's json would read them silently; OICP bodies are UTF-8.
    body = json.dumps(PROGRESS).encode(encoding)
    assert issues_of(body) == [
        "/: is not UTF-8: it looks like UTF-16 or UTF-32 (OICP bodies are UTF-8 JSON)"]


def test_bytes_that_are_not_utf8_are_refused_as_such() -> None:
    body = json.dumps({**PROGRESS, "EvseID": "DE*ABC*E1234*ü"}).replace("\\u00fc", "ü")
    [issue] = issues_of(body.encode("latin-1"))
    assert issue.startswith("/: is not UTF-8: byte ")
    assert "0xfc" in issue


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_numbers(constant: str) -> None:
    [issue] = issues_of(progress_with("ConsumedEnergyProgress", constant))
    assert issue == f"/ConsumedEnergyProgress: is {constant}, which is not a JSON number"


def run(*args: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(SCRIPT), *args], input=stdin, capture_output=True,
                          timeout=120, check=False, env={"PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize(
    "command",
    [("oicp", "validate", "eRoamingPushEvseStatus", "-"), ("send", "PushEvseStatus", "-")],
    ids=["oicp-validate", "send"],
)
def test_the_commands_exit_1_with_a_sentence_not_a_traceback(command: tuple[str, ...]) -> None:
    result = run(*command, stdin=b"[" * 100_000 + b"]" * 100_000)
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 1, output
    assert "Traceback" not in output
    assert "RecursionError" not in output
    assert "nests deeper than 64 levels" in output
