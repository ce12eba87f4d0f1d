"""Reading a JSON Schema validator's verdict on a document, for test messages."""

from __future__ import annotations

from typing import Any

from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator


def innermost_errors(validator: Validator, instance: Any) -> list[str]:
    """Every error as ``/pointer: message``, nested oneOf/anyOf causes unfolded.

    The official OpenAPI and AsyncAPI schemas nest oneOf/anyOf deeply; the outer error
    only says "is not valid under any of the given schemas", the innermost ones say why.
    """

    def where(error: ValidationError) -> str:
        return "/" + "/".join(str(part) for part in error.absolute_path)

    found = []
    for error in validator.iter_errors(instance):
        leaves = [error]
        while any(leaf.context for leaf in leaves):
            leaves = [sub for leaf in leaves for sub in (leaf.context or [leaf])]
        found += [f"{where(leaf)}: {leaf.message[:200]}" for leaf in leaves]
    return found
