"""What only the RabbitMQ adapter has: broker topology, reconnection, replicas."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from datetime import datetime
from typing import Any

import aio_pika
import aio_pika.exceptions
import pytest

from hubject_connector.bus.base import IncomingMessage, QueueSpec, RetryLater
from hubject_connector.bus.contract import (
    MessageType,
    Outcome,
    make_delivery_result,
    parse_envelope,
)
from hubject_connector.bus.rabbitmq import RabbitMQBus, RabbitMQNames
from hubject_connector.bus.topology import connector_queues
from tests.integration.bus.conftest import (
    COMMANDS,
    EVSE_STATUS,
    REMOTE_START,
    WAIT,
    BusKit,
    Collector,
    close_connections,
    connection_pids,
    dead_letters_where,
    eventually,
    rabbitmqctl,
    read_line,
    remote_start,
    remote_start_reply,
    start_worker,
    status_event,
)
from tests.unit.bus_contract.documents import dead_letter_headers

DELIVERY_RESULT = str(MessageType.DELIVERY_RESULT)
RESULTS = "backend.results"

pytestmark = pytest.mark.rabbitmq


async def queues_by_name(kit: BusKit) -> dict[str, dict[str, Any]]:
    """The broker's view of this test's queues."""
    rows = await rabbitmqctl("list_queues", "name", "type", "durable", "arguments")
    prefix = kit.config.rabbitmq.queue_prefix
    return {row["name"]: row for row in rows if row["name"].startswith(prefix)}


def arguments_of(row: dict[str, Any]) -> dict[str, Any]:
    """A list_queues row's arguments as a dict (rabbitmqctl gives [name, type, value])."""
    raw = row["arguments"]
    if isinstance(raw, dict):
        return raw
    return {item[0]: item[-1] for item in raw}


async def test_topology_quorum_work_queues_and_a_classic_dead_letter_queue(
    rabbit_kit: BusKit,
) -> None:
    kit = rabbit_kit
    names = RabbitMQNames(kit.config.rabbitmq)
    bus = await kit.connected()
    plain = QueueSpec(kit.queue("cdr"))
    ordered = QueueSpec(kit.queue("status"), bindings=(EVSE_STATUS,), ordered=True)
    await bus.declare(plain)
    await bus.declare(ordered)

    queues = await queues_by_name(kit)
    assert queues[names.queue(plain.name)]["type"] == "quorum"
    assert queues[names.queue(plain.name)]["durable"] is True
    work = arguments_of(queues[names.queue(plain.name)])
    assert work["x-dead-letter-exchange"] == kit.config.rabbitmq.dead_letter_exchange
    # A message that kills its consumer comes back, but not forever; what the broker
    # dead-letters itself cannot vanish on the way (at-least-once needs reject-publish).
    assert work["x-delivery-limit"] == kit.config.rabbitmq.delivery_limit
    assert work["x-dead-letter-strategy"] == "at-least-once"
    assert work["x-overflow"] == "reject-publish"
    assert "x-single-active-consumer" not in work
    assert arguments_of(queues[names.queue(ordered.name)])["x-single-active-consumer"] is True
    assert queues[names.dead_letter_queue]["type"] == "classic"
    for delay in kit.config.retry_delays_seconds:
        assert queues[names.retry_queue(delay)]["type"] == "quorum"
        retry = arguments_of(queues[names.retry_queue(delay)])
        assert retry["x-message-ttl"] == 200
        assert retry["x-dead-letter-exchange"] == ""
        assert retry["x-dead-letter-strategy"] == "at-least-once"
        assert retry["x-overflow"] == "reject-publish"
    for backend in (COMMANDS, RESULTS):
        assert queues[names.queue(backend)]["type"] == "quorum"

    exchanges = {
        row["name"]: row
        for row in await rabbitmqctl("list_exchanges", "name", "type", "durable")
        if row["name"] in (names.exchange, names.dead_letter_exchange)
    }
    assert {name: (row["type"], row["durable"]) for name, row in exchanges.items()} == {
        names.exchange: ("topic", True),
        names.dead_letter_exchange: ("topic", True),
    }

    # Consumers take a limited number of messages at a time and ack them by hand.
    await bus.consume(plain, Collector(), prefetch=3)
    await bus.consume(ordered, Collector(), prefetch=3)

    async def consumers() -> dict[str, dict[str, Any]] | None:
        rows = await rabbitmqctl("list_consumers", "queue_name", "prefetch_count", "ack_required")
        mine = {r["queue_name"]: r for r in rows if r["queue_name"] in
                (names.queue(plain.name), names.queue(ordered.name))}
        return mine if len(mine) == 2 else None

    found = await eventually(consumers, "the two consumers")
    assert found[names.queue(plain.name)]["prefetch_count"] == 3
    assert found[names.queue(ordered.name)]["prefetch_count"] == 1  # one at a time, in order
    assert all(row["ack_required"] is True for row in found.values())


async def test_connect_declares_every_given_queue_with_its_own_retry_queues(
    rabbit_kit: BusKit,
) -> None:
    kit = rabbit_kit
    names = RabbitMQNames(kit.config.rabbitmq)
    cdr = kit.spec(
        QueueSpec(kit.queue("cdr"), bindings=(str(MessageType.CDR),), retry_delays=(0.05, 0.4),
                  prefetch=3)
    )
    ordered = kit.spec(QueueSpec(kit.queue("evse"), bindings=(EVSE_STATUS,), ordered=True))
    bus = await kit.connected(queues=[cdr, ordered])

    # No consumer yet, and already there: the queues, bound, and a retry queue per delay.
    queues = await queues_by_name(kit)
    assert {names.queue(cdr.name), names.queue(ordered.name)} <= set(queues)
    assert arguments_of(queues[names.queue(ordered.name)])["x-single-active-consumer"] is True
    for delay, ms in ((0.05, 50), (0.4, 400), (0.2, 200)):
        assert arguments_of(queues[names.retry_queue(delay)])["x-message-ttl"] == ms
    bindings = await rabbitmqctl("list_bindings", "source_name", "destination_name", "routing_key")
    assert {"source_name": names.exchange, "destination_name": names.queue(cdr.name),
            "routing_key": str(MessageType.CDR)} in bindings

    # A consumer by name takes the queue's prefetch.
    await bus.consume(cdr.name, Collector())

    async def consumer() -> dict[str, Any] | None:
        rows = await rabbitmqctl("list_consumers", "queue_name", "prefetch_count")
        return next((r for r in rows if r["queue_name"] == names.queue(cdr.name)), None)

    assert (await eventually(consumer, "the consumer"))["prefetch_count"] == 3


async def test_queues_an_older_version_declared_are_kept_and_used(rabbit_kit: BusKit) -> None:
    """Quorum work queues without a delivery limit, classic retry queues: as before."""
    kit = rabbit_kit
    names = RabbitMQNames(kit.config.rabbitmq)
    spec = QueueSpec(kit.queue("status"), bindings=(EVSE_STATUS,))
    old_delay = kit.config.retry_delays_seconds[0]
    connection = await aio_pika.connect(kit.config.rabbitmq.url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(
            names.queue(spec.name),
            durable=True,
            arguments={"x-queue-type": "quorum",
                       "x-dead-letter-exchange": kit.config.rabbitmq.dead_letter_exchange},
        )
        await channel.declare_queue(
            names.retry_queue(old_delay),
            durable=True,
            arguments={"x-message-ttl": 200, "x-dead-letter-exchange": ""},
        )

    bus = await kit.connected(queues=[spec])
    tries: list[int] = []

    async def flaky(message: IncomingMessage) -> None:
        tries.append(message.retries)
        if message.retries == 0:
            raise RetryLater("Hubject answered 320")

    got = Collector()

    async def handler(message: IncomingMessage) -> None:
        await flaky(message)
        await got(message)

    await bus.consume(spec.name, handler)
    sent = status_event()
    await bus.publish(EVSE_STATUS, sent)
    await got.wait_for(1)
    assert tries == [0, 1]  # retried through the old classic retry queue
    queues = await queues_by_name(kit)
    assert "x-delivery-limit" not in arguments_of(queues[names.queue(spec.name)])
    assert queues[names.retry_queue(old_delay)]["type"] == "classic"


async def test_a_message_that_kills_its_consumer_ends_in_the_dead_letters(
    rabbit_kit: BusKit,
) -> None:
    kit = BusKit(
        "rabbitmq",
        replace(
            rabbit_kit.config,
            rabbitmq=replace(rabbit_kit.config.rabbitmq, delivery_limit=1),
        ),
    )
    try:
        spec = kit.spec(QueueSpec(kit.queue("status"), bindings=(EVSE_STATUS,)))
        bus = await kit.connected(queues=[spec])
        sent = status_event()
        await bus.publish(EVSE_STATUS, sent)
        # The process handling it dies (kill -9) each time: delivered, returned, delivered
        # again; past the limit the broker dead-letters it instead of a third delivery.
        for _ in range(2):
            worker = await start_worker(kit, "hold", spec.name)
            try:
                assert await read_line(worker, "HOLDING ") == sent.id
            finally:
                worker.kill()
                await worker.wait()

        [letter] = await dead_letters_where(bus, "the message past its delivery limit")
        assert letter.reason == "delivery_limit (by the broker)"
        assert (letter.queue, letter.message_id, letter.routing_key) == (
            spec.name, sent.id, EVSE_STATUS
        )
        assert letter.body == sent.to_bytes()
        got = Collector()
        await bus.consume(spec.name, got)
        marker = status_event()
        await bus.publish(EVSE_STATUS, marker)
        await got.wait_for(1)
        assert got.ids == [marker.id]  # it is not delivered a third time
    finally:
        await kit.close()


async def test_existing_classic_queue_is_used_as_it_is(rabbit_kit: BusKit) -> None:
    """A broker (or an older deployment) that refuses quorum falls back to classic."""
    kit = rabbit_kit
    names = RabbitMQNames(kit.config.rabbitmq)
    spec = QueueSpec(kit.queue("legacy"), bindings=(EVSE_STATUS,))
    connection = await aio_pika.connect(kit.config.rabbitmq.url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(
            names.queue(spec.name),
            durable=True,
            arguments={"x-dead-letter-exchange": kit.config.rabbitmq.dead_letter_exchange},
        )

    bus = await kit.connected()
    got = Collector()
    await bus.consume(spec, got)
    sent = status_event()
    await bus.publish(EVSE_STATUS, sent)
    await got.wait_for(1)
    assert got.ids == [sent.id]
    assert (await queues_by_name(kit))[names.queue(spec.name)]["type"] == "classic"


async def test_dead_letter_carries_reason_headers_and_the_original(rabbit_kit: BusKit) -> None:
    kit = rabbit_kit
    names = RabbitMQNames(kit.config.rabbitmq)
    spec = QueueSpec(kit.queue("status"), bindings=(EVSE_STATUS,))
    bus = await kit.connected()

    async def refuse(message: object) -> None:
        raise LookupError("no such EVSE at the backend")

    await bus.consume(spec, refuse)
    sent = status_event()
    await bus.publish(EVSE_STATUS, sent, headers={"x-tenant": "eu-1"})
    await dead_letters_where(bus, "the dead letter")

    # What any AMQP tool sees in the dead-letter queue, not only our own API.
    connection = await aio_pika.connect(kit.config.rabbitmq.url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(names.dead_letter_queue, passive=True)
        raw = await queue.get(no_ack=False)
        assert raw.body == sent.to_bytes()
        headers = raw.headers or {}
        # Exactly the headers docs/contract.md lists, added to the message's own.
        assert set(headers) - {"x-tenant"} == set(dead_letter_headers())
        assert headers["x-death-reason"] == "LookupError: no such EVSE at the backend"
        assert headers["x-error"] == "builtins.LookupError"
        # The broker's name of the queue, as any AMQP tool shows it.
        assert headers["x-original-queue"] == names.queue(spec.name)
        assert headers["x-original-routing-key"] == EVSE_STATUS
        assert headers["x-original-message-id"] == sent.id
        assert raw.message_id != sent.id
        assert headers["x-retries"] == "0"
        assert datetime.fromisoformat(str(headers["x-dead-lettered-at"])).tzinfo is not None
        assert headers["x-tenant"] == "eu-1"
        await raw.nack(requeue=True)
    # Reading it did not take it away.
    assert [d.message_id for d in await bus.list_dead_letters()] == [sent.id]


async def test_broker_dropping_the_connection_loses_and_duplicates_nothing(
    rabbit_kit: BusKit,
) -> None:
    kit = rabbit_kit
    spec = QueueSpec(kit.queue("status"), bindings=(EVSE_STATUS,))
    bus = await kit.connected()
    assert isinstance(bus, RabbitMQBus)
    got = Collector()
    await bus.consume(spec, got)

    before = [status_event() for _ in range(10)]
    for envelope in before:
        await bus.publish(EVSE_STATUS, envelope)
    await got.wait_for(10)
    # Handled is not yet acked: wait until the broker holds none of them, so that each
    # of the ten is acked work, which must never come back after the reconnection.
    physical = RabbitMQNames(kit.config.rabbitmq).queue(spec.name)

    async def all_acked() -> bool:
        rows = await rabbitmqctl("list_queues", "name", "messages")
        return any(r["name"] == physical and r["messages"] == 0 for r in rows)

    await eventually(all_acked, "the broker to have the ten acks")

    [dropped] = await close_connections(kit.config.rabbitmq.connection_name)

    # Publishing waits for the robust connection to come back; the consumer is restored.
    after = [status_event(status="Occupied") for _ in range(10)]
    for envelope in after:
        await bus.publish(EVSE_STATUS, envelope)
    await got.wait_for(20)
    assert bus.is_connected
    # A last message behind everything: any duplicate would have arrived before it.
    marker = status_event(status="Reserved")
    await bus.publish(EVSE_STATUS, marker)
    await got.wait_for(21)

    # It really was a new connection that carried the second half.
    assert await connection_pids(kit.config.rabbitmq.connection_name) not in ([], [dropped])
    counts = Counter(got.ids)
    assert set(counts) == {e.id for e in [*before, *after, marker]}
    assert max(counts.values()) == 1, [i for i, n in counts.items() if n > 1]


async def test_replicas_compete_for_an_unordered_queue(rabbit_kit: BusKit) -> None:
    kit = rabbit_kit
    spec = QueueSpec(kit.queue("cdr"), bindings=(EVSE_STATUS,))
    first, second = await kit.connected(), await kit.connected()
    both = Collector()
    by_first: list[str] = []
    by_second: list[str] = []

    async def on_first(message: IncomingMessage) -> None:
        by_first.append(message.message_id)
        await both(message)

    async def on_second(message: IncomingMessage) -> None:
        by_second.append(message.message_id)
        await both(message)

    await first.consume(spec, on_first, prefetch=1)
    await second.consume(spec, on_second, prefetch=1)
    sent = [status_event() for _ in range(20)]
    for envelope in sent:
        await first.publish(EVSE_STATUS, envelope)
    await both.wait_for(20)

    assert by_first
    assert by_second
    assert not set(by_first) & set(by_second)
    assert set(both.ids) == {e.id for e in sent}


async def test_ordered_queue_has_one_active_replica_and_hands_over(rabbit_kit: BusKit) -> None:
    kit = rabbit_kit
    spec = QueueSpec(kit.queue("status"), bindings=(EVSE_STATUS,), ordered=True)
    active, standby = await kit.connected(), await kit.connected()
    got_active, got_standby = Collector(), Collector()
    await active.consume(spec, got_active)
    await standby.consume(spec, got_standby)

    sent = [status_event(evse=f"DE*ABC*E{i:06d}") for i in range(10)]
    for envelope in sent:
        await standby.publish(EVSE_STATUS, envelope)
    await got_active.wait_for(10)
    assert got_active.ids == [e.id for e in sent]  # one at a time, in order
    assert got_standby.ids == []

    await active.close()  # the active replica goes away
    more = [status_event(evse=f"DE*ABC*E{i:06d}") for i in range(10, 15)]
    for envelope in more:
        await standby.publish(EVSE_STATUS, envelope)
    await got_standby.wait_for(5)
    assert got_standby.ids == [e.id for e in more]


async def test_a_backend_that_starts_later_still_gets_its_commands_and_results(
    rabbit_kit: BusKit,
) -> None:
    kit = rabbit_kit
    names = RabbitMQNames(kit.config.rabbitmq)
    connector = await kit.connected()
    # Nobody has consumed, declared or bound the backend's queues yet: the connector did.
    result = make_delivery_result(status_event().id, Outcome.ACCEPTED, status_code="000")
    await connector.publish(DELIVERY_RESULT, result)
    command = remote_start()
    asking = asyncio.create_task(connector.request(REMOTE_START, command, timeout=WAIT))

    # The backend comes up: a plain AMQP client, as docs/contract.md tells it to be.
    connection = await aio_pika.connect(kit.config.rabbitmq.url)
    async with connection:
        channel = await connection.channel()
        results = await channel.declare_queue(names.queue(RESULTS), passive=True)
        commands = await channel.declare_queue(names.queue(COMMANDS), passive=True)
        got_result = await results.get(no_ack=False, timeout=WAIT)
        assert parse_envelope(got_result.body) == result
        await got_result.ack()

        async def next_command() -> aio_pika.abc.AbstractIncomingMessage | None:
            return await commands.get(no_ack=False, fail=False)

        delivery = await eventually(next_command, "the command in the backend's queue")
        asked = parse_envelope(delivery.body)
        assert asked == command
        assert delivery.correlation_id == command.id
        assert delivery.reply_to
        await channel.default_exchange.publish(
            aio_pika.Message(
                remote_start_reply(asked).to_bytes(),
                correlation_id=delivery.correlation_id,
                content_type="application/cloudevents+json",
            ),
            routing_key=delivery.reply_to,
        )
        await delivery.ack()
        reply = await asking
    assert reply.correlation_id == command.id
    assert reply.data["result"] is True


async def test_a_results_queue_the_backend_declared_its_own_way_is_kept_and_bound(
    rabbit_kit: BusKit,
) -> None:
    kit = rabbit_kit
    names = RabbitMQNames(kit.config.rabbitmq)
    connection = await aio_pika.connect(kit.config.rabbitmq.url)
    async with connection:
        channel = await connection.channel()
        # Classic, no dead-letter exchange: arguments the connector would not choose.
        mine = await channel.declare_queue(names.queue(RESULTS), durable=True)

        connector = await kit.connected()
        result = make_delivery_result("m-1", Outcome.DEAD_LETTERED, reason="no such EVSE")
        await connector.publish(DELIVERY_RESULT, result)

        got = await mine.get(no_ack=False, timeout=WAIT)
        assert parse_envelope(got.body) == result
        await got.ack()
    assert (await queues_by_name(kit))[names.queue(RESULTS)]["type"] == "classic"


async def test_a_backend_publishing_as_the_contract_says_learns_what_was_not_stored(
    rabbit_kit: BusKit,
) -> None:
    """docs/contract.md: confirms and mandatory=True; a return or a 404 means retry later."""
    kit = rabbit_kit
    names = RabbitMQNames(kit.config.rabbitmq)
    sent = status_event()
    connection = await aio_pika.connect(kit.config.rabbitmq.url)
    async with connection:

        async def publish(routing_key: str) -> str:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            try:
                exchange = await channel.get_exchange(names.exchange, ensure=False)
                await exchange.publish(
                    aio_pika.Message(sent.to_bytes(), message_id=sent.id),
                    routing_key=routing_key,
                    mandatory=True,
                )
            except aio_pika.exceptions.PublishError:
                return "returned"
            except aio_pika.exceptions.ChannelNotFoundEntity:
                return "no exchange"
            finally:
                if not channel.is_closed:
                    await channel.close()
            return "confirmed"

        # The connector never ran on this broker: there is no exchange yet.
        assert await publish(EVSE_STATUS) == "no exchange"
        connector = await kit.connected(queues=connector_queues())
        assert await publish(EVSE_STATUS) == "confirmed"
        assert await publish("com.hubject-connector.evse.statu.v1") == "returned"  # a typo

    got = Collector()
    await connector.consume("evse-status", got)
    [message] = await got.wait_for(1)
    assert message.envelope == sent
