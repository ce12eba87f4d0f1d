"""Every operation has a table of invalid payloads covering every kind of broken rule.

The issue asks, for each operation, for payloads that are refused with the right pointer: a
missing mandatory field, a bad enum value, an ID that does not match its pattern, a string
over its length limit, two identification options at once, energy with more than 3
decimals, and a malformed date-time. The rows live with their areas
(``tests/unit/oicp_evse/test_invalid_payloads.py``, ``tests/unit/oicp_charging/test_invalid.py``)
plus the acknowledgement's rows below. This module reads those tables, sorts each row into
the kind of rule it breaks by the message it expects, and checks that every operation's
request and answer has a row of every kind its models can break. Which kinds apply is read
from the models themselves (an enum field somewhere in the message, a date-time, energy with
3 places, an ``Identification`` ...), so a new field of a new kind asks for its row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

import pytest

from hubject_connector.oicp import codec, messages
from hubject_connector.oicp.common import Acknowledgement, Identification
from hubject_connector.oicp.model import fields_of
from hubject_connector.oicp.operations import OPERATIONS
from tests.unit.oicp_charging import test_invalid as charging_table
from tests.unit.oicp_evse import test_invalid_payloads as evse_table

MISSING: Final = "missing mandatory field"
ENUM: Final = "bad enum value"
ID_PATTERN: Final = "ID not matching its pattern"
LENGTH: Final = "string over its length limit"
TWO_OPTIONS: Final = "two identification options"
ENERGY: Final = "energy with more than 3 decimals"
DATE_TIME: Final = "malformed date-time"

#: The patterns that are IDs (the others are formats: hh:mm, geo coordinates, currency ...).
ID_PATTERNS: Final = frozenset(
    {"OperatorID", "EvseID", "ProviderID", "ProviderID or *", "EvcoID", "SessionID", "UID",
     "ChargingPoolID"}
)
#: Spec: energy is "Decimal (,3)" in kWh; the models declare it with ``places=3``.
ENERGY_PLACES: Final = 3

# --- eRoamingAcknowledgement, the answer of ten operations ------------------------------

ACK: Final[dict[str, Any]] = {
    "Result": True,
    "StatusCode": {"Code": "000", "Description": "Success"},
    "SessionID": "5e7c1a2b-0d3f-4a6e-9b8c-1f2e3d4c5b6a",
    "CPOPartnerSessionID": "cpo-session-17",
}

#: (change to the valid acknowledgement, the one issue it must cause). ``None`` removes.
ACK_CASES: Final = [
    pytest.param({"Result": None}, "/Result: is mandatory and missing", id="missing-result"),
    pytest.param({"StatusCode": None}, "/StatusCode: is mandatory and missing",
                 id="missing-status-code"),
    pytest.param({"StatusCode": {"Description": "no code"}},
                 "/StatusCode/Code: is mandatory and missing", id="missing-code"),
    pytest.param({"SessionID": "5e7c1a2b-0d3f-4a6e-9b8c"},
                 "/SessionID: does not match the SessionID pattern", id="short-session-id"),
    pytest.param({"CPOPartnerSessionID": "c" * 251},
                 "/CPOPartnerSessionID: is 251 characters long, over the limit of 250",
                 id="long-cpo-partner-session-id"),
    pytest.param({"StatusCode": {"Code": "000", "AdditionalInfo": "i" * 1001}},
                 "/StatusCode/AdditionalInfo: is 1001 characters long, over the limit of 1000",
                 id="long-additional-info"),
    pytest.param({"Result": "true"}, "/Result: must be true or false", id="result-as-string"),
]


def _acknowledgement(change: dict[str, Any]) -> dict[str, Any]:
    payload = dict(ACK)
    for key, value in change.items():
        if value is None:
            del payload[key]
        else:
            payload[key] = value
    return payload


@pytest.mark.parametrize(("change", "issue"), ACK_CASES)
@pytest.mark.parametrize("name", ["eRoamingAcknowledgement", "eRoamingAcknowledgment"])
def test_broken_acknowledgement_is_refused_with_pointer_and_rule(
    name: str, change: dict[str, Any], issue: str
) -> None:
    assert isinstance(messages.decode_message(name, ACK), Acknowledgement)
    with pytest.raises(codec.OicpValidationError) as caught:
        messages.decode_message(name, _acknowledgement(change))
    assert [str(i) for i in caught.value.issues] == [issue]


# --- the coverage check ------------------------------------------------------------------


def kind_of(issue: str) -> str | None:
    """The kind of broken rule an expected issue ("pointer: message") stands for."""
    message = issue.split(": ", 1)[1]
    if message == "is mandatory and missing":
        return MISSING
    if message.startswith("must be one of: "):
        return ENUM
    if message.startswith("does not match the ") and message.endswith(" pattern"):
        name = message.removeprefix("does not match the ").removesuffix(" pattern")
        return ID_PATTERN if name in ID_PATTERNS else None
    if "characters long, over the limit of" in message:
        return LENGTH
    if message.startswith("exactly one identification option must be given (got ") and (
        ", " in message
    ):
        return TWO_OPTIONS
    if message == f"has more than {ENERGY_PLACES} decimal places":
        return ENERGY
    if message == "is not a date-time of the form YYYY-MM-DDThh:mm:ssTZD":
        return DATE_TIME
    return None


def _rows() -> Iterator[tuple[type, str]]:
    """(model of the broken payload, expected issue) for every row of every table."""
    for case in evse_table.CASES:
        yield case.model, case.issue
    for param in charging_table.CASES:
        load, build, _path, _value, expected = param.values
        # The valid payload a row starts from tells its model (a notification's by Type).
        model = type(load(build()))
        for issue in expected:
            yield model, issue
    for param in ACK_CASES:
        issue = param.values[1]
        assert isinstance(issue, str)
        yield Acknowledgement, issue


def applicable_kinds(model: type, seen: frozenset[type] = frozenset()) -> set[str]:
    """The kinds of broken rule a message model can be given, read from its fields."""
    kinds = {MISSING} if any(f.required for f in fields_of(model)) else set()
    for field in fields_of(model):
        base, rule = field.base, field.rule
        if isinstance(base, type) and issubclass(base, StrEnum):
            kinds.add(ENUM)
        if rule.pattern in ID_PATTERNS:
            kinds.add(ID_PATTERN)
        if base is str and rule.max_length is not None:
            kinds.add(LENGTH)
        if base is Identification:
            kinds.add(TWO_OPTIONS)
        if base is Decimal and rule.places == ENERGY_PLACES:
            kinds.add(ENERGY)
        if base is datetime:
            kinds.add(DATE_TIME)
        if dataclasses.is_dataclass(base) and isinstance(base, type) and base not in seen:
            kinds |= applicable_kinds(base, seen | {model})
    return kinds


def _covered() -> dict[type, set[str]]:
    covered: dict[type, set[str]] = {}
    for model, issue in _rows():
        kind = kind_of(issue)
        if kind is not None:
            covered.setdefault(model, set()).add(kind)
    return covered


def _units() -> Iterator[tuple[str, tuple[type, ...]]]:
    """Each operation's request (all four notification models together) and answer."""
    for op in OPERATIONS.values():
        yield f"{op.name} request {op.request}", messages.request_classes(op)
        yield f"{op.name} answer {op.response}", (messages.response_class(op),)


@pytest.mark.parametrize(("unit", "models"), list(_units()), ids=[u for u, _ in _units()])
def test_every_operation_has_a_row_of_every_kind(unit: str, models: tuple[type, ...]) -> None:
    covered = _covered()
    needed = set().union(*(applicable_kinds(m) for m in models))
    present = set().union(*(covered.get(m, set()) for m in models))
    assert needed - present == set(), f"{unit}: no invalid payload for {sorted(needed - present)}"


def test_the_kinds_are_read_from_the_models() -> None:
    # The check above is only as good as this reading: a remote stop has no enum, no
    # identification, no energy and no time; a CDR has all of them.
    from hubject_connector.oicp.cdr import ChargeDetailRecord
    from hubject_connector.oicp.remote import AuthorizeRemoteStop

    assert applicable_kinds(AuthorizeRemoteStop) == {MISSING, ID_PATTERN, LENGTH}
    assert applicable_kinds(ChargeDetailRecord) == {
        MISSING, ENUM, ID_PATTERN, LENGTH, TWO_OPTIONS, ENERGY, DATE_TIME
    }
    assert kind_of("/X: has more than 3 decimal places") == ENERGY
    assert kind_of("/X: does not match the hh:mm pattern") is None
    assert kind_of(
        "/Identification: exactly one identification option must be given (got none)"
    ) is None
