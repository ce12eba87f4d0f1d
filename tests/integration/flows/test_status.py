"""EVSE status: coalesced per EVSE (latest time wins, across restarts), pushed in batches."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from hubject_connector.flows import status as status_flow
from hubject_connector.simulator.state import RecordSet, operator_key
from hubject_connector.state.base import StatusChange
from hubject_connector.state.factory import build_store
from tests.integration.flows import messages
from tests.integration.flows.conftest import FlowEnv, eventually
from tests.integration.flows.messages import T0

EVSE_1 = "DE*ABC*E123456*1"
EVSE_2 = "DE*ABC*E123456*2"


def pushed(env: FlowEnv) -> list[tuple[str, list[tuple[str, str]]]]:
    """(ActionType, [(EvseID, status)]) of every PushEvseStatus the simulator received."""
    return [
        (body["ActionType"],
         [(r["EvseID"], r["EvseStatus"]) for r in body["OperatorEvseStatus"]["EvseStatusRecord"]])
        for body in env.records("PushEvseStatus")
    ]


def statuses_of(env: FlowEnv) -> dict[str, str]:
    """What the simulator holds."""
    return dict(env.simulator.state.evse_status_of("DE*ABC"))


async def test_an_older_status_never_overwrites_a_newer_one(env: FlowEnv) -> None:
    await env.connector()
    backend = env.backend
    newer = await backend.send(messages.status(EVSE_1, "Occupied", at=2))
    assert (await backend.result(newer))["outcome"] == "accepted"

    older = await backend.send(messages.status(EVSE_1, "Available", at=1))
    result = await backend.result(older)

    assert result["outcome"] == "dropped"
    assert result["reason"] == "a newer status of this EVSE is known"
    await asyncio.sleep(0.3)  # a push of the older one would have happened by now
    assert statuses_of(env) == {EVSE_1: "Occupied"}
    assert all(("Available" not in dict(records).values()) for _, records in pushed(env))


async def test_changes_waiting_for_a_push_are_coalesced_to_the_latest(env: FlowEnv) -> None:
    await env.connector()
    backend = env.backend
    held = env.simulator.faults.hold(operation="PushEvseStatus")
    first = await backend.send(messages.status(EVSE_2, "Available", at=0))
    await asyncio.wait_for(held.arrived.wait(), 10)
    # While that push is in flight, three changes of EVSE_1 come in: only the latest is
    # pushed next; the others are dropped as superseded or older.
    ids = [await backend.send(messages.status(EVSE_1, state, at=at))
           for state, at in (("Reserved", 1), ("Occupied", 2), ("OutOfService", 3))]
    early = [await backend.result(i) for i in ids[:2]]
    held.release()
    last = await backend.result(ids[2])

    assert [r["outcome"] for r in early] == ["dropped", "dropped"]
    assert last["outcome"] == "accepted"
    assert (await backend.result(first))["outcome"] == "accepted"
    assert statuses_of(env) == {EVSE_1: "OutOfService", EVSE_2: "Available"}
    evse_1_pushed = [s for _, records in pushed(env) for e, s in records if e == EVSE_1]
    assert evse_1_pushed
    assert set(evse_1_pushed) == {"OutOfService"}
    assert env.simulator.overlaps == []
    for message_id in [first, *ids]:
        assert len(backend.results_of(message_id)) == 1


def answered(env: FlowEnv) -> list[tuple[str, str | None]]:
    """(ActionType, status code of the answer) of every PushEvseStatus, in order."""
    return [(r.json["ActionType"], r.status_code)
            for r in env.simulator.requests_of("PushEvseStatus")]


async def test_new_evses_are_inserted_and_known_ones_updated(env: FlowEnv) -> None:
    # The text spec refuses an update of a status record Hubject does not hold, and an
    # insert of one it holds: the connector remembers which EVSEs Hubject holds.
    await env.connector(status_max_wait_seconds=0.3)
    backend = env.backend
    first = await backend.send(messages.status(EVSE_1, "Available"))
    assert (await backend.result(first))["outcome"] == "accepted"
    # A known EVSE and a new one (in one batch or two): an update and an insert.
    ids = [await backend.send(messages.status(EVSE_1, "Occupied", at=5)),
           await backend.send(messages.status(EVSE_2, "Reserved", at=5))]
    for message_id in ids:
        assert (await backend.result(message_id))["outcome"] == "accepted"

    assert pushed(env)[0] == ("insert", [(EVSE_1, "Available")])
    assert sorted(pushed(env)[1:]) == [
        ("insert", [(EVSE_2, "Reserved")]),
        ("update", [(EVSE_1, "Occupied")]),
    ]
    assert {code for _, code in answered(env)} == {"000"}
    assert statuses_of(env) == {EVSE_1: "Occupied", EVSE_2: "Reserved"}
    assert env.simulator.overlaps == []


async def test_an_evse_hubject_holds_already_is_updated_when_the_insert_is_refused(
    env: FlowEnv,
) -> None:
    # A new state store (or one lost) beside a Hubject that holds the EVSEs' statuses.
    await env.connector()
    env.simulator.state.evse_status.setdefault(
        operator_key("DE*ABC"), RecordSet()).records[EVSE_1] = "Available"
    change = await env.backend.send(messages.status(EVSE_1, "Occupied"))
    assert (await env.backend.result(change))["outcome"] == "accepted"
    later = await env.backend.send(messages.status(EVSE_1, "Available", at=5))
    assert (await env.backend.result(later))["outcome"] == "accepted"

    assert answered(env) == [("insert", "022"), ("update", "000"), ("update", "000")]
    assert statuses_of(env) == {EVSE_1: "Available"}
    assert len(env.backend.results_of(change)) == 1


async def test_a_full_load_heals_when_hubject_lost_statuses_it_held(env: FlowEnv) -> None:
    await env.connector()
    backend = env.backend
    for evse in (EVSE_1, EVSE_2):
        await backend.result(await backend.send(messages.status(evse, "Available")))
    # Hubject lost its status records: the update is refused, the operator's latest
    # statuses go as one fullLoad (the last resort).
    env.simulator.state.evse_status.clear()
    change = await backend.send(messages.status(EVSE_1, "Occupied", at=5))
    assert (await backend.result(change))["outcome"] == "accepted"

    assert answered(env)[-2:] == [("update", "022"), ("fullLoad", "000")]
    assert pushed(env)[-1] == ("fullLoad", [(EVSE_1, "Occupied"), (EVSE_2, "Available")])
    assert statuses_of(env) == {EVSE_1: "Occupied", EVSE_2: "Available"}
    assert len(backend.results_of(change)) == 1


async def test_statuses_go_in_batches_of_the_configured_size(env: FlowEnv) -> None:
    connector = await env.connector(status_batch_size=3)
    backend = env.backend
    # Hubject holds the EVSEs' statuses already: every push is an update.
    evses = [f"DE*ABC*E{i}" for i in range(7)]
    env.simulator.hub.rules = type(env.simulator.hub.rules)(status_update_upserts=True)
    held = env.simulator.faults.hold(operation="PushEvseStatus")
    warmup = await backend.send(messages.status("DE*ABC*E99", "Available"))
    await asyncio.wait_for(held.arrived.wait(), 10)
    ids = [await backend.send(messages.status(e, "Occupied", at=1)) for e in evses]
    assert connector.store is not None
    store = connector.store
    await eventually(lambda: _pending(store, len(evses)), "the changes stored as pending")
    held.release()
    for message_id in [warmup, *ids]:
        assert (await backend.result(message_id))["outcome"] == "accepted"

    sizes = [len(records) for _, records in pushed(env)]
    assert max(sizes) <= 3
    assert sum(sizes) == 8
    assert statuses_of(env) == {**dict.fromkeys(evses, "Occupied"), "DE*ABC*E99": "Available"}
    assert connector.metric("hubject_connector_flow_status_batch_size_count") == len(sizes)


async def _pending(store: Any, count: int) -> bool:
    return len(await store.pending_statuses(100)) >= count


async def test_a_failed_push_is_tried_again_and_the_status_kept(env: FlowEnv) -> None:
    connector = await env.connector()
    backend = env.backend
    env.simulator.hub.rules = type(env.simulator.hub.rules)(status_update_upserts=True)
    # Two calls fail (three attempts each inside the client), the third goes through.
    env.simulator.faults.http_503(6, operation="PushEvseStatus")
    change = await backend.send(messages.status(EVSE_1, "Occupied"))
    result = await backend.result(change)

    assert result["outcome"] == "accepted"
    assert statuses_of(env) == {EVSE_1: "Occupied"}
    assert connector.metric("hubject_connector_flow_status_push_failures_total") == 2
    assert len(backend.results_of(change)) == 1


async def test_a_status_of_another_operator_is_refused_and_kept(env: FlowEnv) -> None:
    await env.connector()
    backend = env.backend
    foreign = await backend.send(messages.status("DE*XYZ*E1", "Available"))
    result = await backend.result(foreign)

    assert result["outcome"] == "rejected"
    assert result["status_code"] == "022"
    (letter,) = await backend.dead_letters()
    assert letter.message_id == foreign
    assert env.records("PushEvseStatus") == []


async def test_the_newest_status_wins_across_a_restart(store_env: FlowEnv) -> None:
    env = store_env
    first = await env.connector()
    backend = env.backend
    newer = await backend.send(messages.status(EVSE_1, "Occupied", at=2))
    assert (await backend.result(newer))["outcome"] == "accepted"
    await first.stop()
    calls = len(env.records("PushEvseStatus"))

    await env.connector()
    older = await backend.send(messages.status(EVSE_1, "Available", at=1))
    result = await backend.result(older)

    assert result["outcome"] == "dropped"
    await asyncio.sleep(0.3)
    assert statuses_of(env) == {EVSE_1: "Occupied"}
    assert len(env.records("PushEvseStatus")) == calls


async def test_changes_stored_but_not_pushed_before_a_stop_are_pushed_at_start(
    store_env: FlowEnv,
) -> None:
    env = store_env
    # As after a crash between the commit of a change and its push.
    store = build_store(env.config.state)
    await store.open()
    try:
        await store.record_statuses([StatusChange(EVSE_2, "DE*ABC", "Reserved", T0, "left-1")])
    finally:
        await store.close()

    await env.connector()
    result = await env.backend.result("left-1")

    assert result["outcome"] == "accepted"
    assert statuses_of(env) == {EVSE_2: "Reserved"}


async def test_a_periodic_full_refresh_sends_every_known_status(env: FlowEnv) -> None:
    await env.connector(status_full_refresh_seconds=0.2)
    backend = env.backend
    for evse in (EVSE_1, EVSE_2):
        await backend.result(await backend.send(messages.status(evse, "Available")))

    def refreshed() -> bool:
        return any(action == "fullLoad" and len(records) == 2 for action, records in pushed(env))

    await eventually(refreshed, "a fullLoad of both statuses")
    assert statuses_of(env) == {EVSE_1: "Available", EVSE_2: "Available"}


async def test_pending_statuses_are_pushed_when_the_flows_stop(env: FlowEnv) -> None:
    connector = await env.connector(status_max_wait_seconds=60.0)
    change = await env.backend.send(messages.status(EVSE_1, "Reserved"))
    assert connector.store is not None
    store = connector.store
    await eventually(lambda: _pending(store, 1), "the change stored as pending")
    assert env.records("PushEvseStatus") == []
    flows = connector.flows
    assert flows is not None
    running = [flows.running]

    await connector.stop(grace=10.0)

    running.append(flows.running)
    assert running == [True, False]

    assert statuses_of(env) == {EVSE_1: "Reserved"}
    assert (await env.backend.result(change))["outcome"] == "accepted"


async def test_a_message_breaking_the_contract_is_dead_lettered_with_a_result(
    env: FlowEnv,
) -> None:
    await env.connector()
    doc = messages.status("DE*ABC*E123456*1", "Available")
    doc["data"]["evse_id"] = "not an EvseID"
    await env.backend.bus.publish(doc["type"], json.dumps(doc).encode(), message_id=doc["id"])
    result = await env.backend.result(doc["id"])

    assert result["outcome"] == "dead_lettered"
    assert "/data/evse_id" in result["reason"]
    (letter,) = await env.backend.dead_letters()
    assert "/data/evse_id" in letter.reason


async def test_changes_left_by_another_process_are_pushed_without_new_traffic(
    store_env: FlowEnv, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(status_flow, "IDLE_POLL_SECONDS", 0.2)
    env = store_env
    connector = await env.connector()
    assert connector.store is not None
    # Another connector (now dead) stored the change and never pushed it.
    await connector.store.record_statuses(
        [StatusChange(EVSE_2, "DE*ABC", "OutOfService", T0, "orphan-1")])

    result = await env.backend.result("orphan-1")

    assert result["outcome"] == "accepted"
    assert statuses_of(env) == {EVSE_2: "OutOfService"}
