"""The packaged JSON Schemas: valid draft 2020-12, complete, and faithful to the OICP patterns."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import regress
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from hubject_connector.bus.contract import (
    MESSAGE_SPECS,
    SCHEMA_BASE_URI,
    MessageType,
    schema_documents,
    schema_for,
)
from hubject_connector.oicp import patterns

DOCUMENTS = schema_documents()
DEFS: Mapping[str, Mapping[str, Any]] = DOCUMENTS["common.json"]["$defs"]
#: The $defs that carry an OICP ID pattern, with the patterns.py name (their title).
ID_DEFS = {name: d["title"] for name, d in DEFS.items() if d.get("title") in patterns.PATTERNS}


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) of every keyword in a schema document."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield path, key, value
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}/{i}")


def test_there_is_one_schema_per_message_type_and_nothing_else() -> None:
    expected = {spec.schema_file for spec in MESSAGE_SPECS.values()}
    assert set(DOCUMENTS) == expected | {"envelope.json", "common.json"}
    assert len(expected) == len(MessageType)


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_each_schema_is_a_valid_2020_12_schema_with_id_and_title(name: str) -> None:
    document = DOCUMENTS[name]
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"] == SCHEMA_BASE_URI + name
    assert document["title"]


@pytest.mark.parametrize("message_type", list(MessageType))
def test_each_message_schema_pins_its_type_and_names_it(message_type: MessageType) -> None:
    schema = schema_for(message_type)
    assert schema["properties"]["type"] == {"const": str(message_type)}
    assert str(message_type) in schema["title"]
    assert {"$ref": "envelope.json"} in schema["allOf"]


def test_every_ref_resolves() -> None:
    registry: Registry[Any] = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc, default_specification=DRAFT202012))
        for doc in DOCUMENTS.values()
    )
    refs = 0
    for document in DOCUMENTS.values():
        resolver = registry.resolver(base_uri=document["$id"])
        for _, key, value in _walk(document):
            if key == "$ref":
                assert resolver.lookup(value).contents is not None
                refs += 1
    assert refs > 100


def test_every_pattern_is_an_anchored_ecma_262_unicode_regex() -> None:
    # Backends validate with other engines (ajv compiles with the "u" flag, which refuses
    # escapes like "\-" outside a class); every pattern must be whole-string.
    found = 0
    for name, document in DOCUMENTS.items():
        for path, key, value in _walk(document):
            if key == "pattern":
                found += 1
                assert value.startswith("^"), (name, path)
                assert value.endswith("$"), (name, path)
                regress.Regex(value, "u")
    assert found >= len(ID_DEFS)


def test_every_oicp_id_pattern_is_in_common_json() -> None:
    assert set(ID_DEFS.values()) == set(patterns.PATTERNS) - {
        "Google geo coordinates", "degree-minute-second"
    }


def _ecma_accepts(pattern: str, value: str) -> bool:
    return regress.Regex(pattern, "u").find(value) is not None


def _oicp(name: str) -> re.Pattern[str]:
    # The oracle: the OICP layer's pattern with ASCII digits (what the text spec means;
    # ECMA's \d is ASCII, Python's also takes other scripts' digits).
    return re.compile(patterns.PATTERNS[name], re.ASCII)


@pytest.mark.parametrize("def_name", sorted(ID_DEFS))
@given(data=st.data())
def test_id_patterns_accept_what_the_oicp_layer_accepts(
    def_name: str, data: st.DataObject
) -> None:
    valid = data.draw(st.from_regex(_oicp(ID_DEFS[def_name]), fullmatch=True))
    assert _ecma_accepts(DEFS[def_name]["pattern"], valid)


@pytest.mark.parametrize("def_name", sorted(ID_DEFS))
@given(data=st.data())
def test_id_patterns_refuse_what_the_oicp_layer_refuses(
    def_name: str, data: st.DataObject
) -> None:
    oracle = _oicp(ID_DEFS[def_name])
    valid = data.draw(st.from_regex(oracle, fullmatch=True))
    noise = data.draw(st.text(min_size=1, max_size=3))
    for candidate in (valid + noise, noise + valid, valid + "\n", noise):
        expected = oracle.fullmatch(candidate) is not None
        assert _ecma_accepts(DEFS[def_name]["pattern"], candidate) == expected, candidate


@pytest.mark.parametrize(
    ("def_name", "value", "accepted"),
    [
        ("Energy", "0", True),
        ("Energy", "22.345", True),
        ("Energy", "22.3456", False),
        ("Energy", "-1.5", False),
        ("Energy", "1e3", False),
        ("Energy", "1.", False),
        ("Energy", "", False),
        ("Amount", "0.000001", True),
        ("Amount", "-0.39", False),
        ("EmissionValue", "99999", True),
        ("EmissionValue", "99999.0", True),
        ("EmissionValue", "99999.5", False),
        ("EmissionValue", "100000", False),
        ("DateTime", "2024-05-01T14:30:00Z", True),
        ("DateTime", "2024-05-01T14:30:00.123456789-05:00", True),
        ("DateTime", "2024-05-01T14:30:00", False),
        ("DateTime", "2024-05-01 14:30:00Z", False),
        ("DateTime", "2024-05-01", False),
        ("StatusCode", "000", True),
        ("StatusCode", "0", False),
    ],
)
def test_value_patterns(def_name: str, value: str, accepted: bool) -> None:
    assert _ecma_accepts(DEFS[def_name]["pattern"], value) is accepted


def test_identification_kinds_are_closed_objects() -> None:
    kinds = DEFS["Identification"]["properties"]["kind"]["enum"]
    assert kinds == ["rfid_mifare_family", "rfid", "qr_code", "plug_and_charge", "remote"]
    for rule in DEFS["Identification"]["allOf"]:
        target = rule["then"]["$ref"].removeprefix("#/$defs/")
        assert DEFS[target]["additionalProperties"] is False
        assert re.fullmatch(r"[A-Za-z]+Identification", target)
