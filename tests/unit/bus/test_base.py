"""The bus's pure rules: routing patterns, what a failure leads to, names."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubject_connector.bus.base import (
    DeadLetterOutcome,
    QueueSpec,
    RequestTimeout,
    Retry,
    RetryLater,
    clean_headers,
    disposition,
    topic_matches,
)
from hubject_connector.bus.contract import ContractError, ContractIssue
from hubject_connector.bus.factory import build_bus
from hubject_connector.bus.rabbitmq import RabbitMQNames, backend_queues
from hubject_connector.bus.topology import connector_queues
from hubject_connector.config import BusConfig, EmbeddedBusConfig, RabbitMQConfig
from hubject_connector.errors import BusError, ConfigError, TransportError

STATUS = "com.hubject-connector.evse.status.v1"


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        (STATUS, STATUS, True),
        (STATUS, "com.hubject-connector.evse.upsert.v1", False),
        ("com.hubject-connector.evse.*.v1", STATUS, True),
        ("com.hubject-connector.evse.*", STATUS, False),  # "*" is exactly one word
        ("com.hubject-connector.evse.#", STATUS, True),
        ("com.hubject-connector.#", "com.hubject-connector", True),  # "#" may be nothing
        ("#", "anything.at.all", True),
        ("#.v1", STATUS, True),
        ("#.v2", STATUS, False),
        ("com.#.status.v1", STATUS, True),
        ("", STATUS, False),
    ],
)
def test_topic_patterns_follow_amqp(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected


words = st.lists(st.text("abc-", min_size=1, max_size=4), min_size=1, max_size=5)


@given(words)
def test_a_key_matches_itself_and_hash(parts: list[str]) -> None:
    key = ".".join(parts)
    assert topic_matches(key, key)
    assert topic_matches("#", key)
    assert topic_matches(".".join("*" for _ in parts), key)
    assert not topic_matches(".".join("*" for _ in [*parts, "x"]), key)


DELAYS = (0.2, 1.0)


def test_transient_errors_are_retried_with_the_next_delay_then_dead_lettered() -> None:
    assert disposition(RetryLater("busy"), 0, DELAYS) == Retry(0.2, "RetryLater: busy")
    assert disposition(TransportError("reset"), 1, DELAYS) == Retry(1.0, "TransportError: reset")
    assert disposition(RetryLater("busy"), 2, DELAYS) == DeadLetterOutcome(
        "gave up after 2 retries: RetryLater: busy", "hubject_connector.bus.base.RetryLater"
    )


def test_permanent_and_unknown_errors_are_dead_lettered_at_once() -> None:
    assert disposition(KeyError("evse"), 0, DELAYS) == DeadLetterOutcome(
        "KeyError: 'evse'", "builtins.KeyError"
    )
    # ContractError is a BusError, which is transient by default; the contract wins.
    contract = ContractError([ContractIssue("/data/evse_id", "is required")])
    assert disposition(contract, 0, DELAYS) == DeadLetterOutcome(
        "ContractError: /data/evse_id: is required",
        "hubject_connector.bus.contract.ContractError",
    )
    assert isinstance(disposition(BusError("broker gone"), 0, DELAYS), Retry)
    assert disposition(ValueError(), 0, DELAYS).reason == "ValueError: ValueError()"


def test_request_timeout_names_what_timed_out() -> None:
    error = RequestTimeout("com.hubject-connector.remote.start.command.v1", 8.0, "abc")
    assert str(error) == (
        "no reply to 'com.hubject-connector.remote.start.command.v1' within 8 s "
        "(correlation id abc)"
    )
    assert error.transient


def test_headers_become_strings_and_tables_are_dropped() -> None:
    assert clean_headers(
        {"a": "x", "b": 3, "c": b"bytes", "x-death": [{"count": 1}], "d": True}
    ) == {"a": "x", "b": "3", "c": "bytes", "d": "True"}


def test_queue_without_bindings_is_bound_to_its_name() -> None:
    assert QueueSpec("cdr").patterns == ("cdr",)
    assert QueueSpec("status", bindings=(STATUS,)).patterns == (STATUS,)


def test_rabbitmq_names_derive_from_the_configuration() -> None:
    names = RabbitMQNames(RabbitMQConfig())
    assert names.exchange == "hubject-connector"
    assert names.queue("evse-status") == "hubject-connector.evse-status"
    assert names.logical("hubject-connector.evse-status") == "evse-status"
    assert names.dead_letter_exchange == "hubject-connector.dlx"
    assert names.dead_letter_queue == "hubject-connector.dead-letters"
    assert names.retry_exchange(5.0) == "hubject-connector.retry.5000ms"
    assert names.retry_queue(0.25) == "hubject-connector.retry.250ms"
    assert names.reply_queue("abc") == "hubject-connector.replies.abc"


def test_backend_queues_are_the_documented_ones_with_their_types() -> None:
    # docs/contract.md: commands in backend.commands, delivery results in backend.results.
    queues = {spec.name: spec for spec in backend_queues()}
    assert set(queues) == {"backend.commands", "backend.results"}
    assert sorted(queues["backend.commands"].patterns) == [
        "com.hubject-connector.remote.start.command.v1",
        "com.hubject-connector.remote.stop.command.v1",
        "com.hubject-connector.reservation.start.command.v1",
        "com.hubject-connector.reservation.stop.command.v1",
    ]
    assert queues["backend.results"].patterns == ("com.hubject-connector.delivery.result.v1",)
    assert not any(spec.ordered for spec in queues.values())


def test_factory_builds_the_configured_bus(tmp_path: Path) -> None:
    embedded = build_bus(BusConfig(embedded=EmbeddedBusConfig(path=tmp_path / "q.sqlite3")))
    assert type(embedded).__name__ == "EmbeddedBus"
    assert not embedded.is_connected
    rabbit = build_bus(BusConfig(kind="rabbitmq"))
    assert type(rabbit).__name__ == "RabbitMQBus"
    assert rabbit.retry_delays == (5.0, 30.0, 300.0)
    with pytest.raises(ConfigError, match=r"^bus\.kind: unknown bus"):
        build_bus(BusConfig(kind="kafka"))  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["embedded", "rabbitmq"])
def test_factory_hands_the_queues_to_declare_to_either_bus(
    kind: Literal["embedded", "rabbitmq"], tmp_path: Path
) -> None:
    config = BusConfig(kind=kind, embedded=EmbeddedBusConfig(path=tmp_path / "q.sqlite3"))
    bus = build_bus(config, queues=connector_queues())
    assert bus.queues == connector_queues()
    assert build_bus(config).queues == ()
