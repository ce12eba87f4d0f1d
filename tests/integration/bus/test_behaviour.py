"""The bus's behaviour, the same on every adapter (the ``kit`` fixture runs each test twice)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from hubject_connector.bus.base import (
    LATE_REPLIES,
    IncomingMessage,
    LateReply,
    QueueSpec,
    RequestTimeout,
    RetryLater,
    Unroutable,
)
from hubject_connector.bus.contract import (
    MESSAGE_SPECS,
    Direction,
    Envelope,
    MessageType,
    parse_envelope,
)
from hubject_connector.bus.topology import connector_queues, queue_spec
from hubject_connector.config import FlowsConfig
from tests.integration.bus.conftest import (
    COMMANDS,
    EVSE_STATUS,
    REMOTE_START,
    WAIT,
    BusKit,
    Collector,
    dead_letters_where,
    encode,
    publish_as_backend,
    read_line,
    remote_start,
    remote_start_reply,
    start_worker,
    status_dict,
    status_event,
)
from tests.unit.bus_contract.documents import fenced_blocks


def status_queue(kit: BusKit) -> QueueSpec:
    """A fresh queue bound to status changes."""
    return QueueSpec(kit.queue("status"), bindings=(EVSE_STATUS,))


async def test_published_messages_arrive_and_acked_ones_do_not_come_back(kit: BusKit) -> None:
    spec = status_queue(kit)
    bus = await kit.connected()
    got = Collector()
    consumer = await bus.consume(spec, got)
    sent = [status_event(status=s) for s in ("Available", "Occupied", "Reserved")]
    ids = [await bus.publish(EVSE_STATUS, envelope) for envelope in sent]

    await got.wait_for(3)
    assert ids == [e.id for e in sent]
    assert sorted(got.ids) == sorted(ids)
    statuses = {m.envelope.data["status"] for m in got.messages}
    assert statuses == {"Available", "Occupied", "Reserved"}
    assert not any(m.redelivered or m.retries for m in got.messages)

    await consumer.cancel()
    readiness = [bus.is_connected]
    await bus.close()
    readiness.append(bus.is_connected)
    assert readiness == [True, False]
    # A new connection sees only what is published from now on: the three were acked.
    again = await kit.connected()
    later = Collector()
    await again.consume(spec, later)
    marker = status_event(status="OutOfService")
    await again.publish(EVSE_STATUS, marker)
    await later.wait_for(1)
    assert later.ids == [marker.id]


async def test_publish_without_a_bound_queue_is_refused_not_dropped(kit: BusKit) -> None:
    bus = await kit.connected()
    with pytest.raises(Unroutable, match="no queue is bound"):
        await bus.publish("com.hubject-connector.cdr.v1", status_event())


async def test_failing_handler_dead_letters_with_the_reason_then_replay(kit: BusKit) -> None:
    spec = status_queue(kit)
    bus = await kit.connected()
    seen = Collector()
    broken = True

    async def handler(message: IncomingMessage) -> None:
        await seen(message)
        if broken:
            raise ValueError("station DE*ABC*E123456*1 is not in the backend's database")

    await bus.consume(spec, handler)
    sent = status_event()
    await bus.publish(EVSE_STATUS, sent)

    [letter] = await dead_letters_where(bus, "the dead letter")
    assert letter.queue == spec.name
    assert letter.reason == "ValueError: station DE*ABC*E123456*1 is not in the backend's database"
    assert letter.error == "builtins.ValueError"
    assert letter.body == sent.to_bytes()
    assert letter.message_id == sent.id
    assert letter.routing_key == EVSE_STATUS
    # A permanent error is not retried: the handler saw the message once.
    assert len(seen.messages) == 1
    assert (await bus.get_dead_letter(letter.id)).reason == letter.reason

    broken = False
    assert await bus.replay_dead_letter(letter.id) == sent.id
    again = (await seen.wait_for(2))[1]
    assert again.message_id == sent.id
    assert again.retries == 0
    assert again.envelope == sent
    assert await bus.list_dead_letters() == []


async def test_transient_failure_is_retried_later_without_blocking_the_queue(
    kit: BusKit,
) -> None:
    spec = status_queue(kit)
    bus = await kit.connected()
    first, second = status_event(status="Occupied"), status_event(status="Available")
    attempts: dict[str, list[int]] = {first.id: [], second.id: []}
    done: list[str] = []
    finished = asyncio.Event()

    async def handler(message: IncomingMessage) -> None:
        attempts[message.message_id].append(message.retries)
        if message.message_id == first.id and second.id not in done:
            raise RetryLater("the backend is busy")
        done.append(message.message_id)
        if len(done) == 2:
            finished.set()

    # Both wait in the queue before anyone consumes, one at a time: the first fails,
    # and the second must not wait behind the first's retry.
    await bus.declare(spec)
    await bus.publish(EVSE_STATUS, first)
    await bus.publish(EVSE_STATUS, second)
    await bus.consume(spec, handler, prefetch=1)
    async with asyncio.timeout(WAIT):
        await finished.wait()

    assert done == [second.id, first.id]
    assert attempts[first.id] == [0, 1]
    assert attempts[second.id] == [0]
    assert await bus.list_dead_letters() == []


async def test_retries_used_up_dead_letter_the_message(kit: BusKit) -> None:
    spec = status_queue(kit)
    bus = await kit.connected()
    retries: list[int] = []

    async def handler(message: IncomingMessage) -> None:
        retries.append(message.retries)
        raise RetryLater("Hubject answered 320")

    await bus.consume(spec, handler)
    sent = status_event()
    await bus.publish(EVSE_STATUS, sent)

    [letter] = await dead_letters_where(bus, "the message after its last retry")
    assert retries == [0, 1, 2, 3]  # the first try and one per configured delay
    assert letter.reason == "gave up after 3 retries: RetryLater: Hubject answered 320"
    assert letter.retries == 3
    assert letter.body == sent.to_bytes()
    # Retries travel by the queue's name; the letter still says how it was published.
    assert letter.routing_key == EVSE_STATUS
    assert (letter.queue, letter.message_id) == (spec.name, sent.id)


def backend_examples() -> list[Envelope]:
    """One documented message of each type the backend sends to a connector queue."""
    found: dict[str, Envelope] = {}
    for body in fenced_blocks("json"):
        document = json.loads(body)
        spec = MESSAGE_SPECS[MessageType(document["type"])]
        if spec.direction is not Direction.TO_CONNECTOR or spec.queue is None:
            continue
        document["id"] = str(uuid.uuid4())
        document.pop("deadline", None)  # the example's deadline is long past
        found.setdefault(document["type"], parse_envelope(json.dumps(document).encode()))
    return list(found.values())


async def test_connector_queues_exist_at_connect_so_a_backend_publishing_first_loses_nothing(
    kit: BusKit,
) -> None:
    # Before: without its queues declared, a backend's first message has nowhere to go
    # (RabbitMQ returns it, the embedded API answers 503): it would have to send again.
    bare = await kit.connected(serve=True)
    assert await publish_as_backend(kit, bare, status_event()) == "refused"
    await bare.close()

    queues = connector_queues()
    assert {spec.name for spec in queues} == {
        "evse", "evse-status", "authorization", "notifications", "cdr", "pricing"
    }
    bus = await kit.connected(serve=True, queues=queues)
    sent = backend_examples()
    assert len(sent) == 13
    # The backend comes first, as a plain client: every type is stored, none refused.
    assert [await publish_as_backend(kit, bus, m) for m in sent] == ["stored"] * len(sent)

    # The consumers start later, by queue name only, and find every message waiting in
    # its own queue.
    got = {spec.name: Collector() for spec in queues}
    for name, collector in got.items():
        await bus.consume(name, collector)
    expected: dict[str, list[str]] = {}
    for message in sent:
        expected.setdefault(MESSAGE_SPECS[message.type].queue or "", []).append(message.id)
    for name, ids in expected.items():
        await got[name].wait_for(len(ids))
        assert sorted(got[name].ids) == sorted(ids), name
    assert await bus.list_dead_letters() == []


async def test_a_queue_s_own_retry_delays_decide_how_long_it_is_retried(kit: BusKit) -> None:
    # CDRs are retried for days, not three times: the cdr queue's own delays (doubling to
    # a maximum, until their sum reaches cdr_retry_for_seconds), here in milliseconds.
    flows = FlowsConfig(
        cdr_retry_for_seconds=0.5,
        cdr_retry_initial_delay_seconds=0.05,
        cdr_retry_max_delay_seconds=0.2,
    )
    cdr = queue_spec("cdr", flows)
    assert cdr.retry_delays == (0.05, 0.1, 0.2, 0.2)
    assert kit.config.retry_delays_seconds == (0.2, 0.2, 0.2)  # the bus's: 3 retries
    bus = await kit.connected(queues=[cdr])
    retries: list[int] = []

    async def handler(message: IncomingMessage) -> None:
        retries.append(message.retries)
        raise RetryLater("Hubject answered 320")

    await bus.consume("cdr", handler)  # by name: the delays declared at connect apply
    [sent] = [m for m in backend_examples() if m.type is MessageType.CDR]
    await bus.publish(str(MessageType.CDR), sent)

    [letter] = await dead_letters_where(bus, "the CDR after its last retry")
    assert retries == [0, 1, 2, 3, 4]
    assert letter.reason == "gave up after 4 retries: RetryLater: Hubject answered 320"
    assert (letter.queue, letter.routing_key) == ("cdr", str(MessageType.CDR))


async def test_poison_messages_are_dead_lettered_and_the_next_one_is_handled(
    kit: BusKit,
) -> None:
    spec = status_queue(kit)
    bus = await kit.connected()
    got = Collector()
    await bus.consume(spec, got, prefetch=1)

    await bus.publish(EVSE_STATUS, b"this is not JSON")
    await bus.publish(EVSE_STATUS, encode(status_dict(type="com.hubject-connector.nope.v1")))
    await bus.publish(
        EVSE_STATUS, encode(status_dict(data={"evse_id": "no EVSE", "status": "Available"}))
    )
    good = status_event()
    await bus.publish(EVSE_STATUS, good)

    await got.wait_for(1)
    letters = await dead_letters_where(bus, "three poison messages", count=3)
    assert got.ids == [good.id]
    reasons = sorted(letter.reason for letter in letters)
    assert len(reasons) == 3
    assert any("is not valid JSON" in r for r in reasons), reasons
    assert any(r.startswith("ContractError: /type: is not a known message type") for r in reasons)
    assert any(
        r.startswith("ContractError: /data/evse_id: does not match the EvseID pattern")
        for r in reasons
    ), reasons
    assert {letter.error for letter in letters} == {"hubject_connector.bus.contract.ContractError"}
    assert {letter.body for letter in letters} >= {b"this is not JSON"}

    await bus.delete_dead_letter(letters[0].id)
    assert [d.id for d in await bus.list_dead_letters()] == [d.id for d in letters[1:]]


async def answer_remote_start(message: IncomingMessage) -> Envelope:
    """A backend that accepts every remote start."""
    return remote_start_reply(message.envelope)


async def test_request_gets_its_reply_before_the_deadline(kit: BusKit) -> None:
    spec = QueueSpec(COMMANDS, bindings=(REMOTE_START,))
    backend = await kit.connected()
    await backend.serve(spec, answer_remote_start)
    connector = await kit.connected()

    commands = [remote_start() for _ in range(3)]
    replies = await asyncio.gather(
        *(connector.request(REMOTE_START, c, timeout=WAIT) for c in commands)
    )

    for command, reply in zip(commands, replies, strict=True):
        assert reply.type is MessageType.REMOTE_START_REPLY
        assert reply.correlation_id == command.id
        assert reply.data["session_id"] == command.data["session_id"]
        assert reply.data["result"] is True


async def test_request_times_out_and_the_late_reply_is_kept(kit: BusKit) -> None:
    spec = QueueSpec(COMMANDS, bindings=(REMOTE_START,))
    backend = await kit.connected()
    received = asyncio.Event()
    answer = asyncio.Event()

    async def slow(message: IncomingMessage) -> Envelope:
        received.set()
        await answer.wait()
        return remote_start_reply(message.envelope, result=False)

    await backend.serve(spec, slow)
    connector = await kit.connected()
    reported: list[LateReply] = []
    was_reported = asyncio.Event()

    async def report(late: LateReply) -> None:
        reported.append(late)
        was_reported.set()

    connector.on_late_reply = report
    command = remote_start()

    # The responder must take the request before its deadline (else it expires unseen):
    # 5 s leaves a loaded machine room, the responder never answers in time anyway.
    with pytest.raises(RequestTimeout) as caught:
        await connector.request(REMOTE_START, command, timeout=5.0)
    assert caught.value.correlation_id == command.id
    assert received.is_set()

    answer.set()
    [letter] = await dead_letters_where(connector, "the late reply", queue=LATE_REPLIES)
    assert letter.reason.startswith("late reply"), letter.reason
    late = parse_envelope(letter.body)
    assert late.correlation_id == command.id
    assert late.data["result"] is False
    assert letter.routing_key == REMOTE_START
    async with asyncio.timeout(WAIT):
        await was_reported.wait()  # reported right after it was kept
    assert [(r.correlation_id, r.routing_key, r.body) for r in reported] == [
        (command.id, REMOTE_START, letter.body)
    ]


async def test_command_nobody_took_in_time_is_dead_lettered_not_delivered(
    kit: BusKit,
) -> None:
    spec = QueueSpec(COMMANDS, bindings=(REMOTE_START,))
    connector = await kit.connected()
    await connector.declare(spec)
    stale = remote_start()
    with pytest.raises(RequestTimeout):
        await connector.request(REMOTE_START, stale, timeout=1.0)

    # The backend comes up afterwards: it must not start charging for a request
    # Hubject was already told had failed.
    backend = await kit.connected()
    got = Collector()
    await backend.consume(spec, got)
    fresh = remote_start()
    await connector.publish(REMOTE_START, fresh)
    await got.wait_for(1)
    [letter] = await dead_letters_where(connector, "the expired command")
    assert got.ids == [fresh.id]
    assert letter.message_id == stale.id
    assert "expired" in letter.reason
    assert letter.queue == spec.name


async def test_message_held_by_a_killed_consumer_is_delivered_again(kit: BusKit) -> None:
    spec = status_queue(kit)
    bus = await kit.connected()
    await bus.declare(spec)
    sent = status_event()
    await bus.publish(EVSE_STATUS, sent)

    worker = await start_worker(kit, "hold", spec.name)
    try:
        assert await read_line(worker, "HOLDING ") == sent.id
    finally:
        worker.kill()  # SIGKILL: no chance to ack, nack or release
        await worker.wait()

    got = Collector()
    await bus.consume(spec, got)
    [message] = await got.wait_for(1)
    assert message.message_id == sent.id
    assert message.redelivered
    assert message.envelope == sent


async def test_handler_may_park_a_message_in_the_dead_letters(kit: BusKit) -> None:
    spec = status_queue(kit)
    bus = await kit.connected()
    outcomes: list[str] = []

    async def handler(message: IncomingMessage) -> None:
        # The consumer settles it after this handler; settling it here first is allowed.
        await message.dead_letter("the backend asked for it to be parked")
        outcomes.append("parked")

    await bus.consume(spec, handler, validate=False)
    await bus.publish(EVSE_STATUS, status_event())
    [letter] = await dead_letters_where(bus, "the parked message")
    assert letter.reason == "the backend asked for it to be parked"
    assert outcomes == ["parked"]


async def test_ordered_queue_is_handled_one_at_a_time_in_order_across_replicas(
    kit: BusKit,
) -> None:
    spec = QueueSpec(kit.queue("status"), bindings=(EVSE_STATUS,), ordered=True)
    replicas = [await kit.connected(), await kit.connected()]
    handled: list[str] = []
    running = 0
    most = 0
    got = Collector()

    async def handler(message: IncomingMessage) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)  # room for another replica to overlap, if it could
        handled.append(message.message_id)
        running -= 1
        await got(message)

    for replica in replicas:
        await replica.consume(spec, handler, prefetch=10)
    sent = [status_event(evse=f"DE*ABC*E{i:06d}") for i in range(10)]
    for envelope in sent:
        await replicas[0].publish(EVSE_STATUS, envelope)
    await got.wait_for(10)

    assert handled == [e.id for e in sent]
    assert most == 1


async def test_ordered_queue_hands_over_in_order_when_the_active_replica_is_killed(
    kit: BusKit,
) -> None:
    spec = QueueSpec(kit.queue("status"), bindings=(EVSE_STATUS,), ordered=True)
    bus = await kit.connected()
    await bus.declare(spec)
    sent = [status_event(evse=f"DE*ABC*E{i:06d}") for i in range(3)]
    for envelope in sent:
        await bus.publish(EVSE_STATUS, envelope)

    got = Collector()
    worker = await start_worker(kit, "hold", spec.name, "ordered")
    try:
        # The other replica is the active one and holds the first message.
        assert await read_line(worker, "HOLDING ") == sent[0].id
        await bus.consume(spec, got)  # this replica waits as the standby
    finally:
        worker.kill()  # SIGKILL: the active replica dies without a word
        await worker.wait()

    # The standby takes over with the dead replica's message, then the rest, in order:
    # had it not waited, it would have handled the second and third one first.
    await got.wait_for(3)
    assert got.ids == [e.id for e in sent]
    assert got.messages[0].redelivered


async def test_dead_letter_count_says_how_many_wait(kit: BusKit) -> None:
    spec = status_queue(kit)
    bus = await kit.connected()
    await bus.declare(spec)
    assert await bus.dead_letter_count() == 0

    async def handler(message: IncomingMessage) -> None:
        raise ValueError("unknown station")

    await bus.consume(spec, handler)
    await bus.publish(EVSE_STATUS, status_event(status="Occupied"))
    await bus.publish(EVSE_STATUS, status_event(status="Available"))
    first, _ = await dead_letters_where(bus, "two dead letters", count=2)
    # Listing them (dlq list) leaves them where they are: still counted.
    assert await bus.dead_letter_count() == 2

    await bus.delete_dead_letter(first.id)
    assert await bus.dead_letter_count() == 1
