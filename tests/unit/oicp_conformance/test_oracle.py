"""The oracle itself: the schema validation used above refuses what it must refuse.

Without these, a validator that resolved nothing or checked no formats would let every
conformance test pass.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.oicp_conformance.conftest import Spec, component_ref

pytestmark = pytest.mark.spec


def _example(spec: Spec, component: str) -> dict[str, Any]:
    return dict(spec.schemas[component]["example"])


def test_the_example_itself_passes(spec: Spec) -> None:
    example = _example(spec, "eRoamingChargingNotificationStart")
    assert spec.errors(component_ref("eRoamingChargingNotificationStart"), example) == []


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("ChargingStart", "2020-09-23 14:17:53+02:00", "date-time"),
        ("ChargingStart", "2020-09-23T14:17:53", "date-time"),
        ("EvseID", "DE*XYZ*ETEST1\n", "does not match"),
        ("SessionID", "f98efba4-02d8-4fa0-b810-9a9d50d2c52", "does not match"),
        ("MeterValueStart", "0", "is not of type"),
        ("Type", "Begin", "is not one of"),
        ("OperatorID", None, "None is not of type"),
    ],
)
def test_broken_fields_are_refused(spec: Spec, key: str, value: Any, fragment: str) -> None:
    example = _example(spec, "eRoamingChargingNotificationStart")
    example[key] = value
    errors = spec.errors(component_ref("eRoamingChargingNotificationStart"), example)
    assert any(key in e and fragment in e for e in errors), errors


def test_nested_references_are_resolved(spec: Spec) -> None:
    example = _example(spec, "eRoamingChargingNotificationStart")
    # Identification → RFIDMifareFamilyIdentification → UID: three references deep.
    example["Identification"] = {"RFIDMifareFamilyIdentification": {"UID": "1234abcd"}}
    errors = spec.errors(component_ref("eRoamingChargingNotificationStart"), example)
    assert any("UID" in e for e in errors), errors


def test_patterns_follow_ecma_262(spec: Spec) -> None:
    # OAS 3.0 patterns are ECMA-262 regular expressions, where \d is [0-9]; Python's re
    # would accept other scripts' digits. openapi-schema-validator follows ECMA-262 when
    # "regress" is installed (the ecma-regex extra in pyproject.toml).
    example = {"EvcoID": "DE-DCB-C12345678-\u0663"}
    assert spec.errors(component_ref("RemoteIdentification"), example) != []
    example = {"EvcoID": "DE-DCB-C12345678-3"}
    assert spec.errors(component_ref("RemoteIdentification"), example) == []


def test_missing_mandatory_field_is_refused(spec: Spec) -> None:
    example = _example(spec, "eRoamingChargingNotificationStart")
    del example["EvseID"]
    errors = spec.errors(component_ref("eRoamingChargingNotificationStart"), example)
    assert errors == ["$: 'EvseID' is a required property"]
