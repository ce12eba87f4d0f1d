"""The compiled schemas (bus/schema_compiler.py) answer exactly as the jsonschema validator.

The compiled check is the fast path of ``parse_envelope`` and ``make_envelope``: a
message it passes is not shown to the validator at all. So it must never pass what the
validator refuses; and it should pass what the validator accepts, or the speed is lost.
Both are checked here against the validator itself: keyword by keyword on small schemas,
and on the contract's own schemas with the documented messages broken at random.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from hubject_connector.bus import contract
from hubject_connector.bus.schema_compiler import compile_schema
from tests.unit.bus_contract.documents import fenced_blocks


def _compiled_pair(schema: dict[str, Any]) -> tuple[Any, Any]:
    """The compiled check and the contract's validator class for a self-contained schema
    (the stock validator with the contract's ECMA-262 ``pattern``)."""
    uri = "https://example.invalid/schema.json"
    registry: Registry[Any] = Registry().with_resource(
        uri, Resource.from_contents(schema, default_specification=DRAFT202012))
    checker = FormatChecker(formats=())
    checker.checks("date-time")(lambda v: not isinstance(v, str) or "T" in v)
    check = compile_schema(schema, uri, registry, pattern=contract._compiled,
                           format_ok=checker.conforms)
    assert check is not None, "a schema of supported keywords must compile"
    return check, contract._ContractValidator(schema, registry=registry, format_checker=checker)


#: (schema, values): each value is judged by both.
KEYWORD_CASES: list[tuple[dict[str, Any], list[Any]]] = [
    ({"type": "integer"}, [1, 1.0, 1.5, True, "1", None]),
    ({"type": "number"}, [1, 1.5, True, "1", None]),
    ({"type": ["string", "integer", "boolean"]}, ["a", 3, False, 1.5, None, [], {}]),
    ({"type": "object"}, [{}, [], "x"]),
    ({"type": "array"}, [[], {}, "x"]),
    ({"type": "null"}, [None, 0, ""]),
    ({"const": 1}, [1, 1.0, True, "1"]),
    ({"const": True}, [True, 1, False]),
    ({"const": "1.0"}, ["1.0", 1.0]),
    ({"const": [1, {"a": False}]},
     [[1, {"a": False}], [True, {"a": 0}], [1, {"a": False, "b": 1}]]),
    ({"enum": ["a", "b"]}, ["a", "c", 1]),
    ({"enum": [1, None, "x"]}, [1, 1.0, True, None, "x", "y"]),
    ({"pattern": "^[A-Z]{2}$"}, ["DE", "DE\n", "de", 12, None]),
    ({"pattern": "[0-9]"}, ["a1b", "ab"]),
    ({"format": "date-time"}, ["2024-01-01T00:00:00Z", "2024-01-01", 5]),
    ({"format": "uri"}, ["not a uri", 5]),
    ({"minLength": 2, "maxLength": 3}, ["a", "ab", "abcd", 5, ["a"]]),
    ({"minItems": 1, "maxItems": 2}, [[], [1], [1, 2, 3], "ab"]),
    ({"minimum": 0, "maximum": 10}, [-1, 0, 10, 10.5, True, "5"]),
    ({"required": ["a"]}, [{"a": 1}, {}, [], "a"]),
    ({"properties": {"a": {"type": "string"}}}, [{"a": "x"}, {"a": 1}, {}, "a"]),
    ({"properties": {"a": {}}, "additionalProperties": False}, [{"a": 1}, {"b": 1}, []]),
    ({"properties": {"a": {}}, "additionalProperties": {"type": "integer"}},
     [{"a": "x", "b": 1}, {"b": "x"}]),
    ({"propertyNames": {"pattern": "^[a-z]{1,3}$"}}, [{"ab": 1}, {"abcd": 1}, {"A": 1}, []]),
    ({"items": {"type": "integer"}}, [[1, 2], [1, "a"], [], {"0": "a"}]),
    ({"contains": {"const": 2}}, [[1, 2], [1], [], "2"]),
    ({"allOf": [{"minimum": 1}, {"maximum": 2}]}, [0, 1.5, 3]),
    ({"anyOf": [{"type": "string"}, {"minimum": 5}]}, ["a", 6, 4, None]),
    ({"oneOf": [{"type": "integer"}, {"minimum": 0}]}, [1, -1, 0.5, -0.5]),
    ({"not": {"type": "string"}}, ["a", 1]),
    ({"if": {"properties": {"k": {"const": "a"}}}, "then": {"required": ["x"]},
      "else": {"required": ["y"]}}, [{"k": "a", "x": 1}, {"k": "a", "y": 1}, {"k": "b", "y": 1},
                                     {"k": "b"}, "s"]),
    ({"then": {"required": ["x"]}}, [{}, {"x": 1}]),
    ({"$defs": {"id": {"type": "string", "minLength": 1}},
      "properties": {"a": {"$ref": "#/$defs/id", "maxLength": 2}}},
     [{"a": "x"}, {"a": ""}, {"a": "xyz"}, {"a": 1}]),
    (True, [1, None]),  # type: ignore[list-item]
    ({"properties": {"a": False}}, [{"a": 1}, {}]),
]


@pytest.mark.parametrize(("schema", "values"), KEYWORD_CASES)
def test_each_keyword_judges_as_the_validator(schema: Any, values: list[Any]) -> None:
    if schema is True:
        schema = {"allOf": [True]}
    check, validator = _compiled_pair(schema)
    for value in values:
        assert check(value) == validator.is_valid(value), (schema, value)


def test_a_recursive_schema_compiles() -> None:
    schema = {"$defs": {"node": {"type": "object", "properties": {
        "next": {"$ref": "#/$defs/node"}, "v": {"type": "integer"}}}},
        "$ref": "#/$defs/node"}
    check, validator = _compiled_pair(schema)
    for value in ({"v": 1, "next": {"v": 2, "next": {}}}, {"v": 1, "next": {"v": "x"}}):
        assert check(value) == validator.is_valid(value)


@pytest.mark.parametrize("keyword", [{"patternProperties": {"^a": {}}}, {"uniqueItems": True},
                                     {"$dynamicRef": "#x"}, {"unevaluatedProperties": False},
                                     {"properties": {"a": {"$id": "https://x.invalid/a"}}}])
def test_an_unknown_keyword_leaves_the_schema_to_the_validator(keyword: dict[str, Any]) -> None:
    uri = "https://example.invalid/schema.json"
    registry: Registry[Any] = Registry().with_resource(
        uri, Resource.from_contents(keyword, default_specification=DRAFT202012))
    assert compile_schema(keyword, uri, registry, pattern=contract._compiled,
                          format_ok=lambda value, name: True) is None


# --- the contract's own schemas --------------------------------------------------------------


def _examples() -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for body in fenced_blocks("json"):
        document = json.loads(body)
        if isinstance(document, dict) and isinstance(document.get("type"), str):
            found.setdefault(document["type"], document)
    return list(found.values())


EXAMPLES = _examples()


def _schema_file(document: dict[str, Any]) -> str:
    return contract.MESSAGE_SPECS[contract.MessageType(document["type"])].schema_file


def _judges(document: Any, schema_file: str) -> tuple[bool, bool]:
    """(compiled check, validator) verdicts on ``document``."""
    check = contract._quick_checks()[schema_file]
    assert check is not None
    return check(document), contract._validators()[schema_file].is_valid(document)


def test_every_contract_schema_compiles() -> None:
    missing = [name for name, check in contract._quick_checks().items() if check is None]
    assert missing == []


def test_every_documented_message_passes_the_compiled_check() -> None:
    assert len(EXAMPLES) == len(contract.MessageType)
    for document in EXAMPLES:
        assert _judges(document, _schema_file(document)) == (True, True), document["type"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a member or item in ``value``."""
    found: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        found.append((*prefix, key))
        found.extend(_paths(item, (*prefix, key)))
    return found


#: Values that sit on the edges of the contract's rules.
EDGE_VALUES = st.sampled_from([
    "", " ", "x", "DE*ABC", "DE*ABC*E123456*1", "DE*ABC*E123456*1\n", "de*abc*e1", "1234ABCD",
    "2024-05-01T12:00:00+02:00", "2024-05-01T12:00:00", "2024-02-30T12:00:00Z", "1.000",
    "12.5", "1000.000", "1000.001", "-1", "Available", "accepted",
    "com.hubject-connector.evse.status.v1",
    "b2688855-7f00-0002-6d8e-48d883f6abb6", "x" * 201, 0, 1, -1, 1.0, 1.5, 10**6, True,
    False, None, [], {}, ["x"], {"kind": "remote"},
    {"value": "$2a$10$abcdefghijk", "function": "Bcrypt"},
])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                                          allow_infinity=False)
    | st.text(max_size=8) | EDGE_VALUES,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)


@st.composite
def broken(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A documented message with one to three random changes, and its type's schema
    (sometimes the envelope's)."""
    document = copy.deepcopy(draw(st.sampled_from(EXAMPLES)))
    schema_file = draw(st.sampled_from([_schema_file(document)] * 4 + ["envelope.json"]))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(document)
        path = draw(st.sampled_from(paths))
        parent: Any = document
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = copy.deepcopy(draw(JSON_VALUES))
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            name = draw(st.text(min_size=1, max_size=8) | st.sampled_from(
                ["extra", "subject", "deadline", "correlationid", "traceparent", "status",
                 "hashed_pin"]))
            parent[name] = copy.deepcopy(draw(JSON_VALUES))
        else:
            parent.append(copy.deepcopy(draw(JSON_VALUES)))
    return schema_file, document


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=broken())
def test_a_broken_message_is_judged_as_the_validator_judges_it(
    case: tuple[str, dict[str, Any]],
) -> None:
    schema_file, document = case
    compiled, validator = _judges(document, schema_file)
    # Never valid where the validator refuses (its errors would be lost) ...
    assert not (compiled and not validator)
    # ... and valid wherever it accepts (the fast path is taken).
    assert compiled == validator
