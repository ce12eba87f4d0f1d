"""Hostile input to the contract: refused with a short ContractError, never another error."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from hubject_connector.bus.contract import ContractError, MessageType, parse_envelope


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b'{"specversion": "1.0", "data": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    ],
    ids=["arrays", "objects", "inside data"],
)
def test_a_body_nested_thousands_deep_is_refused(body: bytes) -> None:
    with pytest.raises(ContractError, match=r"^is nested too deeply to be a message$"):
        parse_envelope(body)


def test_an_unpaired_surrogate_is_refused_where_it_is(
    example: Callable[[MessageType], dict[str, Any]],
) -> None:
    status = example(MessageType.EVSE_STATUS)
    status["data"]["evse_id"] = "SURROGATE"
    body = json.dumps(status).replace("SURROGATE", "\\udc00")
    with pytest.raises(ContractError) as caught:
        parse_envelope(body.encode())
    assert str(caught.value).startswith("/data/evse_id: holds an unpaired UTF-16 surrogate")
    # A pair is one character (an emoji here), and fine where text is free.
    fine = example(MessageType.EVSE_STATUS)
    fine["source"] = "urn:cpo:PAIR"
    body = json.dumps(fine).replace("PAIR", "\\ud83d\\ude00")
    assert parse_envelope(body.encode()).source == "urn:cpo:\U0001f600"


def test_a_huge_key_or_value_makes_a_short_error(
    example: Callable[[MessageType], dict[str, Any]],
) -> None:
    status = example(MessageType.EVSE_STATUS)
    status["data"]["k" * 1_000_000] = 1
    with pytest.raises(ContractError) as caught:
        parse_envelope(json.dumps(status).encode())
    text = str(caught.value)
    assert len(text) < 300
    assert text.startswith("/data/kkkk")
    assert text.endswith("…: is not allowed here")
