"""The declarative model machinery: rules, error wording, pointers, Decimal and time handling."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pytest

from hubject_connector.oicp import codec
from hubject_connector.oicp.codec import OicpValidationError
from hubject_connector.oicp.common import Acknowledgement, Identification
from hubject_connector.oicp.model import fields_of, format_date_time, parse_date_time, wire


class Colour(StrEnum):
    RED = "Red"
    BLUE = "Blue"


@dataclass(frozen=True, slots=True, kw_only=True)
class Leaf:
    evse_id: str = wire("EvseID", pattern="EvseID")
    energy: Decimal | None = wire("Energy", default=None, places=3, minimum=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Root:
    name: str = wire("Name", max_length=5, aliases=("name",))
    colour: Colour = wire("Colour")
    when: datetime | None = wire("When", default=None)
    count: int | None = wire("Count", default=None)
    leaves: list[Leaf] = wire("Leaves", min_items=1)


def _errors(payload: dict[str, Any]) -> list[str]:
    with pytest.raises(OicpValidationError) as info:
        codec.load(Root, payload)
    return [str(i) for i in info.value.issues]


GOOD: dict[str, Any] = {"Name": "abc", "Colour": "Red", "Leaves": [{"EvseID": "DE*ABC*E1"}]}


def test_pointer_names_list_index_and_rule() -> None:
    payload = {**GOOD, "Leaves": [{"EvseID": "DE*ABC*E1"}, {"EvseID": "nope"}]}
    assert _errors(payload) == ["/Leaves/1/EvseID: does not match the EvseID pattern"]


def test_every_rule_has_its_own_wording() -> None:
    payload = {
        "Name": "toolong",
        "Colour": "Green",
        "When": "2024-01-01 10:00:00",
        "Count": True,
        "Leaves": [{"EvseID": "DE*ABC*E1", "Energy": Decimal("1.2345")}],
    }
    assert _errors(payload) == [
        "/Colour: must be one of: Red, Blue",
        "/Count: must be an integer",
        "/Leaves/0/Energy: has more than 3 decimal places",
        "/Name: is 7 characters long, over the limit of 5",
        "/When: is not a date-time of the form YYYY-MM-DDThh:mm:ssTZD",
    ]


def test_missing_mandatory_and_empty_list() -> None:
    assert _errors({"Colour": "Red", "Leaves": []}) == [
        "/Leaves: has 0 items, needs at least 1",
        "/Name: is mandatory and missing",
    ]


def test_trailing_newline_does_not_pass_a_pattern() -> None:
    # re.match(...$) would accept this; the layer uses fullmatch.
    payload = {**GOOD, "Leaves": [{"EvseID": "DE*ABC*E1\n"}]}
    assert _errors(payload) == ["/Leaves/0/EvseID: does not match the EvseID pattern"]


def test_alias_spelling_is_read_and_canonical_one_written() -> None:
    root = codec.load(Root, {**{k: v for k, v in GOOD.items() if k != "Name"}, "name": "x"})
    assert root.name == "x"
    assert b'"Name":"x"' in codec.encode(root)


def test_decimal_survives_round_trip_exactly() -> None:
    body = b'{"Name":"a","Colour":"Blue","Leaves":[{"EvseID":"DE*ABC*E1","Energy":0.1}]}'
    root = codec.decode(Root, body)
    assert root.leaves[0].energy == Decimal("0.1")
    assert isinstance(root.leaves[0].energy, Decimal)
    assert codec.encode(root) == body


def test_negative_decimal_breaks_minimum() -> None:
    payload = {**GOOD, "Leaves": [{"EvseID": "DE*ABC*E1", "Energy": -1}]}
    assert _errors(payload) == ["/Leaves/0/Energy: must be at least 0"]


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("2024-03-01T10:00:00+01:00", timedelta(hours=1)),
        ("2024-03-01T10:00:00Z", timedelta(0)),
        ("2024-03-01T10:00:00.038Z", timedelta(0)),
        ("2024-03-01T10:00:00.123456789-05:30", -timedelta(hours=5, minutes=30)),
    ],
)
def test_date_time_keeps_its_offset(text: str, offset: timedelta) -> None:
    value = parse_date_time(text)
    assert value.utcoffset() == offset


@pytest.mark.parametrize(
    "text", ["2024-03-01T10:00:00", "2024-03-01 10:00:00Z", "2024-13-01T10:00:00Z", "today"]
)
def test_malformed_date_times_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r".+"):
        parse_date_time(text)


def test_date_time_written_with_its_offset_and_fractions_only_when_present() -> None:
    tz = timezone(timedelta(hours=2))
    assert format_date_time(datetime(2024, 3, 1, 10, 0, tzinfo=tz)) == "2024-03-01T10:00:00+02:00"
    assert (
        format_date_time(datetime(2024, 3, 1, 10, 0, 0, 38000, tzinfo=tz))
        == "2024-03-01T10:00:00.038+02:00"
    )


def test_identification_takes_exactly_one_option() -> None:
    with pytest.raises(OicpValidationError) as info:
        codec.load(Identification, {})
    assert [str(i) for i in info.value.issues] == [
        "/: exactly one identification option must be given (got none)"
    ]


def test_not_json_and_not_an_object() -> None:
    with pytest.raises(OicpValidationError, match="is not valid UTF-8 JSON"):
        codec.decode(Acknowledgement, b"{nope")
    with pytest.raises(OicpValidationError, match="must be a JSON object"):
        codec.decode(Acknowledgement, b"[]")


def test_nulls_read_for_optional_fields_and_never_written() -> None:
    ack = codec.decode(
        Acknowledgement, b'{"Result":false,"StatusCode":{"Code":"022","Description":null}}'
    )
    assert ack.status_code.description is None
    assert codec.encode(ack) == b'{"Result":false,"StatusCode":{"Code":"022"}}'


def test_field_metadata_is_introspectable() -> None:
    names = {f.rule.key: f for f in fields_of(Root)}
    assert names["Leaves"].is_list
    assert names["Leaves"].required
    assert names["When"].optional
    assert not names["When"].required


def test_protocol_layer_imports_no_io() -> None:
    code = (
        "import sys, importlib, pkgutil, hubject_connector.oicp as p\n"
        "for m in pkgutil.iter_modules(p.__path__):\n"
        "    importlib.import_module('hubject_connector.oicp.' + m.name)\n"
        "bad = [n for n in ('aiohttp', 'asyncio', 'aio_pika', 'sqlite3') if n in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"the pure OICP layer imported {out}"


def test_qr_code_takes_a_pin_or_a_hash_or_neither_but_not_both() -> None:
    qr = "QRCodeIdentification"
    alone = codec.load(Identification, {qr: {"EvcoID": "DE*8EO*Aet5e4*3"}})
    assert alone.evco_id() == "DE*8EO*Aet5e4*3"
    both = {"EvcoID": "DE*8EO*Aet5e4*3", "PIN": "1234",
            "HashedPIN": {"Value": "a5ghdhf73h", "Function": "Bcrypt"}}
    with pytest.raises(OicpValidationError) as info:
        codec.load(Identification, {qr: both})
    assert [str(i) for i in info.value.issues] == [
        "/QRCodeIdentification: takes one of HashedPIN and PIN, not both"
    ]
