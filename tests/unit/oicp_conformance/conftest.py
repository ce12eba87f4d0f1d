"""The official OpenAPI as an oracle: load it, find each operation's schemas, validate.

The document is read from the shared spec folder (``oicp_spec_dir``), never copied into the
repository. Payloads are validated with openapi-schema-validator's OAS 3.0 validator, with
``$ref`` resolved inside the document and ``date-time`` formats checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, Final

import jsonschema
import pytest
from jsonschema.protocols import Validator
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry
from referencing.jsonschema import DRAFT4

from hubject_connector.oicp.operations import Operation

#: The URI the document is registered under, so "#/components/..." resolves inside it.
SPEC_URI: Final = "urn:oicp-2.3:cpo-openapi"
JSON: Final = "application/json"


def format_checker() -> jsonschema.FormatChecker:
    """The OAS 3.0 format checks plus ``date-time`` (RFC 3339), which OAS 3.0 leaves out.

    ``FormatChecker(formats=["date-time"])`` raises ``KeyError`` if the RFC 3339 checker is
    not installed, rather than silently accepting every string.
    """
    checker = jsonschema.FormatChecker(formats=["date-time"])
    checker.checkers = {**oas30_format_checker.checkers, **checker.checkers}
    return checker


class Spec:
    """The loaded OpenAPI document, with a cache of validators by JSON pointer."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self._registry: Registry[Any] = Registry().with_resource(
            SPEC_URI, DRAFT4.create_resource(document)
        )
        self._checker = format_checker()
        self._validators: dict[str, Validator] = {}

    def __repr__(self) -> str:
        # Short: Hypothesis prints the arguments of a failing example, this one included.
        return f"Spec({self.document['info']['title']!r} {self.document['info']['version']})"

    @property
    def paths(self) -> Mapping[str, Any]:
        """The document's paths (relative to ``/api/oicp``)."""
        result: Mapping[str, Any] = self.document["paths"]
        return result

    @property
    def schemas(self) -> Mapping[str, Any]:
        """The component schemas by name."""
        result: Mapping[str, Any] = self.document["components"]["schemas"]
        return result

    def validator(self, ref: str) -> Validator:
        """A validator for the schema at ``ref`` (``#/components/schemas/...``)."""
        cached = self._validators.get(ref)
        if cached is None:
            cached = OAS30Validator(
                {"$ref": SPEC_URI + ref}, registry=self._registry, format_checker=self._checker
            )
            self._validators[ref] = cached
        return cached

    def errors(self, ref: str, payload: Any) -> list[str]:
        """Every way ``payload`` breaks the schema at ``ref``, as "pointer: message"."""
        return sorted(
            f"{e.json_path}: {e.message}" for e in self.validator(ref).iter_errors(payload)
        )

    def resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        """Follow ``$ref`` (inside the document) until a schema that is not a reference."""
        seen = set()
        while "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), f"reference outside the document: {ref}"
            assert ref not in seen, f"reference cycle at {ref}"
            seen.add(ref)
            target: Any = self.document
            for token in ref[2:].split("/"):
                target = target[token.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def post(self, operation: Operation) -> Mapping[str, Any]:
        """The OpenAPI's POST operation object for an operation of the table."""
        result: Mapping[str, Any] = self.paths[operation.path]["post"]
        return result

    def request_schema(self, operation: Operation) -> Mapping[str, Any]:
        """The request body schema of an operation (a ``$ref``, or the notifications oneOf)."""
        result: Mapping[str, Any] = self.post(operation)["requestBody"]["content"][JSON]["schema"]
        return result

    def response_schema(self, operation: Operation) -> Mapping[str, Any]:
        """The schema of an operation's 200 answer."""
        result: Mapping[str, Any] = self.post(operation)["responses"]["200"]["content"][JSON][
            "schema"
        ]
        return result

    def request_pointer(self, operation: Operation) -> str:
        """The pointer of an operation's request body schema inside the document."""
        path = _escape(operation.path)
        return f"#/paths/{path}/post/requestBody/content/{_escape(JSON)}/schema"

    def media_examples(self) -> Iterator[tuple[str, str, Any]]:
        """Every example given on a request body or answer: (path, "request"/code, value)."""
        for path, item in self.paths.items():
            for method in item.values():
                if not isinstance(method, Mapping):
                    continue
                bodies = [("request", method.get("requestBody", {}))]
                bodies += [(str(code), r) for code, r in method.get("responses", {}).items()]
                for role, body in bodies:
                    for media in body.get("content", {}).values():
                        if "example" in media:
                            yield path, role, media["example"]
                        for example in (media.get("examples") or {}).values():
                            if "value" in example:
                                yield path, role, example["value"]


def _escape(token: str) -> str:
    # RFC 6901: "~" and "/" inside a pointer token.
    return token.replace("~", "~0").replace("/", "~1")


def component_ref(name: str) -> str:
    """The pointer of a component schema."""
    return f"#/components/schemas/{name}"


def as_json(body: bytes) -> Any:
    """Parse bytes as any JSON consumer would (fractions as floats)."""
    return json.loads(body)


@pytest.fixture(scope="session")
def spec(cpo_openapi: dict[str, Any]) -> Spec:
    """The official CPO OpenAPI of OICP 2.3, loaded once."""
    assert cpo_openapi["openapi"].startswith("3.0"), "expected an OpenAPI 3.0 document"
    return Spec(cpo_openapi)
