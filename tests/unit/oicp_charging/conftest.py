"""Fixtures for the charging messages: examples and schemas of the official OpenAPI."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator


@pytest.fixture(scope="session")
def spec_example(cpo_openapi: dict[str, Any]) -> Callable[[str], dict[str, Any]]:
    """The ``example`` of a component schema, by schema name (a fresh copy each call)."""

    def example(name: str) -> dict[str, Any]:
        found: dict[str, Any] = copy.deepcopy(cpo_openapi["components"]["schemas"][name]["example"])
        return found

    return example


@pytest.fixture(scope="session")
def openapi_errors(cpo_openapi: dict[str, Any]) -> Callable[[str, Any], list[str]]:
    """What the official schema ``name`` finds wrong with a JSON value (empty: valid)."""

    validators: dict[str, OAS30Validator] = {}

    def errors(name: str, instance: Any) -> list[str]:
        validator = validators.get(name)
        if validator is None:
            # A root with the components, so the schema's "#/components/..." refs resolve.
            root = {
                "$ref": f"#/components/schemas/{name}",
                "components": cpo_openapi["components"],
            }
            validator = validators[name] = OAS30Validator(
                root, format_checker=OAS30Validator.FORMAT_CHECKER
            )
        return sorted(e.message for e in validator.iter_errors(instance))

    return errors
