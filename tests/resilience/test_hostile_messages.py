"""Malformed and hostile messages on the bus, fuzzed with Hypothesis.

What a backend (or anyone who can publish) may put on the connector's queues: random
bytes, random JSON, envelopes of each type whose ``data`` is random or has one field
replaced by a random value, with random AMQP headers. Each is sent the way a backend
sends: on RabbitMQ published raw to the exchange with the type as routing key (it reaches
the flow's consumer unchecked), on the embedded bus POSTed to the HTTP API. What must
become of each: refused with 400 (HTTP API) or dead-lettered with a reason, or, when it
happens to be a valid message, a delivery result; and a valid message of the same queue
sent right after it still flows (its result or reply arrives), so no consumer died and no
queue is stuck.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import aio_pika
import aio_pika.abc
import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubject_connector.bus.contract import MESSAGE_SPECS, Direction, Kind, MessageType
from hubject_connector.bus.rabbitmq import RabbitMQNames
from hubject_connector.simulator import Simulator
from tests.integration.flows import messages
from tests.integration.flows.conftest import Connector, FlowEnv, eventually
from tests.resilience.conftest import Envs

pytestmark = pytest.mark.slow

#: Every type the connector takes from the backend (events and requests).
INBOUND: Final = sorted(
    str(t) for t, spec in MESSAGE_SPECS.items()
    if spec.direction is Direction.TO_CONNECTOR and spec.kind in (Kind.EVENT, Kind.REQUEST)
)
EXAMPLES: Final = 40

JSON_LEAVES = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
               | st.text(max_size=20))
JSON = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def marker(message_type: str) -> dict[str, Any]:
    """A valid message of the queue ``message_type`` goes to, which must still flow."""
    kind = MessageType(message_type)
    queue = MESSAGE_SPECS[kind].queue
    if queue == "evse-status":
        return messages.status(f"DE*ABC*E{uuid.uuid4().hex[:8].upper()}", "Available")
    if queue == "cdr":
        return messages.cdr()
    if queue == "notifications":
        return messages.notification(MessageType.NOTIFICATION_START, messages.new_session_id())
    if queue == "authorization":
        return messages.authorize_start()
    if queue == "evse":
        return messages.upsert()
    # Pricing: Hubject takes 6 pushes a minute. An EVSE of another operator is refused by
    # the connector itself (022) without a call, which shows the consumer alive as well.
    return messages.document(MessageType.PRICING_EVSE, evse_pricing=[
        {"evse_id": "DE*XYZ*E1*1", "provider_id": "*", "evse_id_product_list": ["AC 22kW"]}])


@dataclass(frozen=True)
class Hostile:
    """One hostile message: its routing key (a type), body, AMQP headers, and its id."""

    routing_key: str
    body: bytes
    headers: dict[str, Any]
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def _envelope(message_type: str, data: Any, message_id: str) -> bytes:
    doc = messages.document(MessageType(message_type))
    doc["id"] = message_id
    doc["data"] = data
    return json.dumps(doc).encode()


@st.composite
def hostile(draw: Callable[..., Any]) -> Hostile:
    """Random bytes, random JSON, or an envelope with random or one mutated field."""
    routing_key = draw(st.sampled_from(INBOUND))
    headers = draw(st.sampled_from([
        {}, {"x-retries": "many"}, {"x-retries": 2**62}, {"x-retries": -7}, {"x-retries": 2},
        {"x-original-routing-key": "\x00" * 3}, {"x-deadline": "yesterday"},
    ]))
    message_id = str(uuid.uuid4())
    shape = draw(st.sampled_from(["bytes", "json", "envelope", "mutated", "envelope-json"]))
    if shape == "bytes":
        body = draw(st.binary(max_size=300))
    elif shape == "json":
        body = json.dumps(draw(JSON)).encode()
    elif shape == "envelope":
        body = _envelope(routing_key, draw(st.dictionaries(st.text(max_size=10), JSON,
                                                           max_size=5)), message_id)
    elif shape == "mutated":
        doc = messages.document(MessageType(routing_key))
        doc["id"] = message_id
        doc["data"][draw(st.sampled_from(sorted(doc["data"])))] = draw(JSON)
        body = json.dumps(doc).encode()
    else:
        # A valid envelope of one type under another type's routing key, or with a
        # random attribute changed.
        doc = copy.deepcopy(marker(draw(st.sampled_from(INBOUND))))
        doc["id"] = message_id
        doc[draw(st.sampled_from(["type", "time", "specversion", "source", "subject"]))] = \
            draw(JSON)
        body = json.dumps(doc).encode()
    return Hostile(routing_key, body, headers, message_id)


@dataclass
class DeadLetters:
    """The dead-letter queue on RabbitMQ, consumed: original message id → reason."""

    reasons: dict[str, str] = field(default_factory=dict)

    async def take(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            headers = message.headers or {}
            original = headers.get("x-original-message-id") or message.message_id
            self.reasons[str(original)] = str(headers.get("x-death-reason") or "")


@dataclass
class Door:
    """How a backend hands the connector a message on one bus, and what became of it."""

    env: FlowEnv
    connector: Connector
    session: aiohttp.ClientSession
    exchange: aio_pika.abc.AbstractExchange | None = None
    dead: DeadLetters = field(default_factory=DeadLetters)

    async def send_hostile(self, message: Hostile) -> None:
        """Send it and check what became of it (module doc)."""
        if self.exchange is not None:
            await self.exchange.publish(aio_pika.Message(
                message.body, message_id=message.message_id, headers=message.headers,
                content_type="application/cloudevents+json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT), message.routing_key,
                mandatory=True)
            await eventually(lambda: message.message_id in self.dead.reasons
                             or self.env.backend.results_of(message.message_id),
                             "the hostile message dead-lettered or answered")
            if message.message_id in self.dead.reasons:
                assert self.dead.reasons[message.message_id], "a dead letter without reason"
            return
        bus_url = getattr(self.connector.bus, "http_url", None)
        async with self.session.post(f"{bus_url}/v1/messages", data=message.body, headers={
                "Content-Type": "application/cloudevents+json"}) as answer:
            body = await answer.json()
            status = answer.status
        assert status in (202, 400), (status, body)
        if status == 400:
            assert body["error"]
            async with self.session.get(
                    f"{bus_url}/v1/dead-letters/{body['dead_letter_id']}") as answer:
                assert answer.status == 200
                assert (await answer.json())["reason"]
            return
        # Valid after all (the contract took it): it is handled like any message.
        accepted = str(body["id"])

        async def outcome() -> bool:
            letters = await self.env.backend.bus.list_dead_letters(limit=10_000)
            return bool(self.env.backend.results_of(accepted)
                        or any(letter.message_id == accepted for letter in letters))

        await eventually(outcome, "the valid message handled")

    async def still_flows(self, message_type: str) -> None:
        """A valid message of the same queue is handled (result or reply)."""
        doc = marker(message_type)
        if MESSAGE_SPECS[MessageType(doc["type"])].kind is Kind.REQUEST:
            reply = await self.env.backend.ask(doc)
            assert reply.correlation_id == doc["id"]
            return
        await self.env.backend.send(doc)
        await self.env.backend.result(doc["id"])


@pytest.fixture(params=["embedded", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
async def door(request: pytest.FixtureRequest, envs: Envs,
               simulator: Simulator) -> AsyncIterator[Door]:
    """A running connector and the way in for hostile messages, on each bus."""
    kind: str = request.param
    url = request.getfixturevalue("rabbitmq_url") if kind == "rabbitmq" else None
    env = await envs.make(kind, simulator, url=url)
    connector = await env.connector()
    async with aiohttp.ClientSession() as session:
        made = Door(env, connector, session)
        if kind != "rabbitmq":
            yield made
            return
        names = RabbitMQNames(env.config.bus.rabbitmq)
        connection = await aio_pika.connect(env.config.bus.rabbitmq.url)
        try:
            channel = await connection.channel(publisher_confirms=True)
            made.exchange = await channel.get_exchange(names.exchange)
            dead = await channel.get_queue(names.dead_letter_queue)
            await dead.consume(made.dead.take)
            yield made
        finally:
            await connection.close()


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(message=hostile())
async def test_hostile_messages_are_refused_or_dead_lettered_and_the_queue_flows_on(
    door: Door, message: Hostile,
) -> None:
    async with asyncio.timeout(60):
        await door.send_hostile(message)
        await door.still_flows(message.routing_key)
    assert door.connector.flows is not None
    assert door.connector.flows.running


@pytest.mark.rabbitmq
@pytest.mark.parametrize("retries", [-7, "seven"])
async def test_a_forged_retry_count_does_not_wedge_a_message(
    envs: Envs, simulator: Simulator, rabbitmq_url: str, retries: int | str,
) -> None:
    """``x-retries`` is the bus's own header, but anyone publishing can set it."""
    env = await envs.make("rabbitmq", simulator, url=rabbitmq_url)
    await env.connector()
    # Hubject fails the first calls: the message is to be retried, by its header's count.
    simulator.faults.http_503(3, operation="ChargingNotifications")
    doc = messages.notification(MessageType.NOTIFICATION_START, messages.new_session_id())
    names = RabbitMQNames(env.config.bus.rabbitmq)
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(names.exchange)
        await exchange.publish(aio_pika.Message(
            json.dumps(doc).encode(), message_id=doc["id"], headers={"x-retries": retries},
            content_type="application/cloudevents+json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT), doc["type"], mandatory=True)

    result = await env.backend.result(doc["id"])
    assert result["outcome"] == "accepted"
