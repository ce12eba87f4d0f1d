"""Fixtures for the charging messages: the official OpenAPI, read without YAML surprises."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS30Validator

_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _NoTimestampLoader(yaml.SafeLoader):
    """SafeLoader that keeps ``2021-01-23T14:23:54.228Z`` a string, as in JSON."""


_NoTimestampLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@pytest.fixture(scope="session")
def cpo_openapi(oicp_spec_dir: Path) -> dict[str, Any]:
    """The official CPO OpenAPI document, parsed."""
    with (oicp_spec_dir / "cpo" / "openapi.yaml").open(encoding="utf-8") as handle:
        # A SafeLoader subclass: no arbitrary objects, only the timestamp resolver removed.
        document: dict[str, Any] = yaml.load(handle, Loader=_NoTimestampLoader)  # noqa: S506
    return document


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

    def errors(name: str, instance: Any) -> list[str]:
        # A root with the components, so the schema's "#/components/..." refs resolve.
        root = {"$ref": f"#/components/schemas/{name}", "components": cpo_openapi["components"]}
        validator = OAS30Validator(root, format_checker=OAS30Validator.FORMAT_CHECKER)
        return sorted(e.message for e in validator.iter_errors(instance))

    return errors
