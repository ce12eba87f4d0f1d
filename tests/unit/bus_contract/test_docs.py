"""docs/contract.md: its examples are valid messages and its tables say what the code does."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from hubject_connector.bus.base import (
    DEAD_LETTER_HEADERS,
    DEAD_LETTERED_AT_HEADER,
    ERROR_HEADER,
    ORIGINAL_MESSAGE_ID_HEADER,
    ORIGINAL_QUEUE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    REASON_HEADER,
    RETRIES_HEADER,
)
from hubject_connector.bus.contract import (
    MESSAGE_SPECS,
    TYPE_PREFIX,
    ContractError,
    Kind,
    MessageType,
    Outcome,
    parse_envelope,
)
from tests.unit.bus_contract.documents import (
    CONTRACT_MD,
    dead_letter_headers,
    fenced_blocks,
    http_example,
)

JSON_EXAMPLES = fenced_blocks("json")


def test_contract_md_has_json_examples() -> None:
    # Guards the parametrized test below against passing on zero examples.
    assert len(JSON_EXAMPLES) >= len(MessageType)


@pytest.mark.parametrize("body", JSON_EXAMPLES, ids=lambda b: json.loads(b)["type"])
def test_every_json_example_is_a_valid_message(body: str) -> None:
    document = json.loads(body)
    envelope = parse_envelope(body.encode("utf-8"))
    assert (envelope.id, envelope.type, envelope.data) == (
        document["id"], document["type"], document["data"]
    )
    assert envelope.correlation_id == document.get("correlationid")
    assert parse_envelope(envelope.to_bytes()) == envelope


def test_every_message_type_has_one_example_and_results_one_per_outcome() -> None:
    documents = [json.loads(body) for body in JSON_EXAMPLES]
    results = [d for d in documents if d["type"] == MessageType.DELIVERY_RESULT]
    others = [d["type"] for d in documents if d["type"] != MessageType.DELIVERY_RESULT]
    expected = [str(t) for t in MessageType if t is not MessageType.DELIVERY_RESULT]
    assert sorted(others) == sorted(expected)
    assert sorted(d["data"]["outcome"] for d in results) == sorted(o.value for o in Outcome)


def test_each_example_result_answers_an_example_message_of_the_backend() -> None:
    documents = [json.loads(body) for body in JSON_EXAMPLES]
    sent = {d["id"]: d for d in documents if MESSAGE_SPECS[d["type"]].direction == "to_connector"}
    for result in (d for d in documents if d["type"] == MessageType.DELIVERY_RESULT):
        original = sent[result["correlationid"]]
        assert result["data"]["message_id"] == original["id"]
        assert result["data"]["message_type"] == original["type"]
        assert result.get("subject") == original.get("subject")
        assert MESSAGE_SPECS[original["type"]].kind == Kind.EVENT


def test_type_table_matches_the_message_specs() -> None:
    text = CONTRACT_MD.read_text(encoding="utf-8")
    rows = re.findall(
        r"^\| `(?P<type>[a-z0-9.-]+\.v\d+)` \| (?P<dir>[a-z →]+) \| (?P<kind>\w+) \| "
        r"(?P<answer>[^|]+) \| (?P<queue>[^|]+) \|$",
        text,
        re.M,
    )
    documented = {TYPE_PREFIX + row[0]: row[1:] for row in rows}
    assert set(documented) == {str(t) for t in MessageType}
    for message_type, spec in MESSAGE_SPECS.items():
        direction, kind, answer, queue = documented[str(message_type)]
        assert direction == ("backend → connector" if spec.direction == "to_connector"
                             else "connector → backend"), message_type
        assert kind == spec.kind.value, message_type
        if spec.reply_type is not None:
            assert answer.strip() == f"`{spec.reply_type.removeprefix(TYPE_PREFIX)}`"
        if spec.queue is None:
            assert "reply_to" in queue, message_type
        else:
            assert queue.strip() == f"`{spec.queue}`", message_type


def _error_of(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ContractError) as caught:
        parse_envelope(json.dumps(document).encode())
    return [str(issue) for issue in caught.value.issues]


def test_documented_error_lines_are_what_the_connector_says(
    example: Callable[[MessageType], dict[str, Any]],
) -> None:
    documented = "".join(fenced_blocks("text"))
    status = example(MessageType.EVSE_STATUS)
    status["data"]["evse_id"] = "DE*ABC*123"
    status["data"]["status"] = "Busy"
    cdr = example(MessageType.CDR)
    cdr["data"]["consumed_energy"] = 22.345
    del cdr["data"]["session_id"]
    no_offset = example(MessageType.EVSE_STATUS)
    no_offset["time"] = "2024-05-01T14:30:00"
    unknown = example(MessageType.EVSE_STATUS)
    unknown["type"] = "com.hubject-connector.evse.state.v1"
    lines = _error_of(status) + _error_of(cdr) + _error_of(no_offset) + _error_of(unknown)
    assert len(lines) == 6
    for line in lines:
        assert line in documented


def test_the_dead_letter_headers_documented_are_those_the_bus_adds() -> None:
    assert set(dead_letter_headers()) == DEAD_LETTER_HEADERS
    assert {
        REASON_HEADER, ERROR_HEADER, ORIGINAL_QUEUE_HEADER, ORIGINAL_ROUTING_KEY_HEADER,
        ORIGINAL_MESSAGE_ID_HEADER, RETRIES_HEADER, DEAD_LETTERED_AT_HEADER,
    } == DEAD_LETTER_HEADERS


def test_the_http_examples_are_pages_of_valid_messages() -> None:
    page = http_example("GET /v1/results?")
    items: list[dict[str, Any]] = page["results"]
    [item] = items
    message = parse_envelope(json.dumps(item["message"]).encode())
    assert message.type is MessageType.DELIVERY_RESULT
    assert (item["id"], item["correlation_id"], item["type"]) == (
        message.id, message.correlation_id, str(message.type)
    )
    assert page["next"] == item["cursor"]
    letters = http_example("GET /v1/dead-letters?")
    listed: list[dict[str, Any]] = letters["dead_letters"]
    assert letters["next"] == listed[0]["cursor"]
