"""Bytes to models and back, and validation errors as JSON pointers.

JSON is parsed with ``parse_float=Decimal`` and written by a small encoder of our own,
because the standard library can only write a ``Decimal`` as a float (losing "0.1" to
0.1000000000000000055...) or as a string (which the spec's ``number`` refuses).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import marshmallow

from hubject_connector.errors import OicpError
from hubject_connector.oicp.model import schema_instance

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Issue:
    """One broken rule: where (a JSON pointer into the payload) and what."""

    pointer: str
    message: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"


class OicpValidationError(OicpError):
    """A payload broke the OICP rules. ``issues`` lists each broken rule with its pointer.

    The status code it suggests is 022 (data error), as Hubject answers for invalid data.
    """

    status_code = "022"

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.pointer, i.message))
        super().__init__("; ".join(str(i) for i in self.issues))


def _escape(token: str) -> str:
    # RFC 6901: "~" and "/" inside a token are written "~0" and "~1".
    return token.replace("~", "~0").replace("/", "~1")


def _walk(messages: Any, pointer: str) -> Iterator[Issue]:
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            if key == "_schema":
                yield from _walk(value, pointer)
            else:
                yield from _walk(value, f"{pointer}/{_escape(str(key))}")
    elif isinstance(messages, list | tuple):
        for item in messages:
            yield from _walk(item, pointer)
    else:
        yield Issue(pointer, _rephrase(str(messages)))


# marshmallow's own wording, in the style of ours ("what is wrong", lower case).
_REPHRASE = {
    "Missing data for required field.": "is mandatory and missing",
    "Field may not be null.": "is mandatory and may not be null",
    "Invalid input type.": "must be an object",
    "Not a valid list.": "must be an array",
}


def _rephrase(message: str) -> str:
    return _REPHRASE.get(message, message)


def issues_from(error: marshmallow.ValidationError) -> list[Issue]:
    """Flatten marshmallow's nested error messages into pointer issues."""
    return list(_walk(error.messages, ""))


def parse_json(body: bytes | str) -> Any:
    """Parse JSON text, numbers with fractions as ``Decimal``."""
    try:
        return json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OicpValidationError([Issue("", f"is not valid UTF-8 JSON: {exc}")]) from exc


def load(model: type[T], payload: Any) -> T:
    """Validate a parsed JSON value and build the model. Raises ``OicpValidationError``."""
    if not isinstance(payload, Mapping):
        raise OicpValidationError([Issue("", "must be a JSON object")])
    try:
        result: T = schema_instance(model).load(payload)
    except marshmallow.ValidationError as exc:
        raise OicpValidationError(issues_from(exc)) from exc
    return result


def decode(model: type[T], body: bytes | str) -> T:
    """JSON bytes to a model. Raises ``OicpValidationError`` naming each broken rule."""
    return load(model, parse_json(body))


def dump(instance: Any) -> dict[str, Any]:
    """A model as a JSON-ready dict (``Decimal`` kept for ``encode_json``)."""
    result: dict[str, Any] = schema_instance(type(instance)).dump(instance)
    return result


def encode(instance: Any) -> bytes:
    """A model as UTF-8 JSON bytes, as sent on the wire."""
    return encode_json(dump(instance))


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON where a ``Decimal`` is written as an exact JSON number."""
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts).encode("utf-8")


def _encode(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif value is None or isinstance(value, bool | int):
        out.append(json.dumps(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot write {value} as JSON")
        out.append(format(value, "f"))
    elif isinstance(value, float):
        out.append(json.dumps(value, allow_nan=False))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")
