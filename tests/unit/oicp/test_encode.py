"""``codec.encode`` writes exactly the bytes of the exact encoder, on either of its paths.

``encode`` hands a message without Decimals to the standard library's C encoder (speed)
and one with Decimals to ``encode_json`` (an exact JSON number for each). Either way the
bytes on the wire must be the same: a CDR's digest (the "same CDR?" question when Hubject
says it already has one) is taken from them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubject_connector.oicp import codec, messages
from hubject_connector.oicp.evse import PushEvseStatus
from hubject_connector.oicp.operations import OPERATIONS
from tests.strategies import from_model


def _models() -> list[type]:
    seen: dict[type, None] = {}
    for op in OPERATIONS.values():
        for model in (*messages.request_classes(op), messages.response_class(op)):
            seen[model] = None
    return list(seen)


def _has_decimal(value: Any) -> bool:
    if isinstance(value, Decimal):
        return True
    if isinstance(value, dict):
        return any(_has_decimal(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_decimal(v) for v in value)
    return False


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_every_message_is_written_as_the_exact_encoder_writes_it(
    model: type, data: st.DataObject
) -> None:
    message = data.draw(from_model(model), label=model.__name__)
    assert codec.encode(message) == codec.encode_json(codec.dump(message))


def test_a_status_push_with_non_ascii_names_is_written_unescaped() -> None:
    push = codec.load(PushEvseStatus, {
        "ActionType": "fullLoad",
        "OperatorEvseStatus": {
            "OperatorID": "DE*ABC", "OperatorName": "Ladesäulen \u00e9\u4e2d \"quoted\"",
            "EvseStatusRecord": [{"EvseID": "DE*ABC*E1*1", "EvseStatus": "Available"}],
        },
    })
    body = codec.encode(push)
    assert not _has_decimal(codec.dump(push))
    assert body == codec.encode_json(codec.dump(push))
    assert "Ladesäulen é中 \\\"quoted\\\"".encode() in body


def test_decimals_are_written_as_exact_numbers() -> None:
    value = {"MeterValueStart": Decimal("1234.500"), "Values": [Decimal("0.1")]}
    assert codec.encode_json(value) == b'{"MeterValueStart":1234.500,"Values":[0.1]}'
