"""EVSE data: upsert as insert or update by the state store, delete, full load."""

from __future__ import annotations

from hubject_connector.state.base import EvseEntry
from tests.integration.flows import messages
from tests.integration.flows.conftest import FlowEnv

EVSE_1 = "DE*ABC*E123456*1"
EVSE_2 = "DE*ABC*E123456*2"


def actions(env: FlowEnv) -> list[tuple[str, list[str]]]:
    """(ActionType, EvseIDs) of every PushEvseData the simulator received."""
    return [
        (body["ActionType"], [r["EvseID"] for r in body["OperatorEvseData"]["EvseDataRecord"]])
        for body in env.records("PushEvseData")
    ]


async def test_upserts_become_insert_then_update_and_a_delete_carries_the_record(
    env: FlowEnv,
) -> None:
    connector = await env.connector()
    backend = env.backend
    first = await backend.send(messages.upsert(EVSE_1))
    assert (await backend.result(first))["outcome"] == "accepted"
    second = await backend.send(messages.upsert(EVSE_1, hardware_manufacturer="Other Ltd"))
    assert (await backend.result(second))["outcome"] == "accepted"
    gone = await backend.send(messages.delete(EVSE_1))
    assert (await backend.result(gone))["outcome"] == "accepted"

    assert actions(env) == [("insert", [EVSE_1]), ("update", [EVSE_1]), ("delete", [EVSE_1])]
    # The delete sent the record last accepted: the updated one.
    deleted = env.records("PushEvseData")[2]["OperatorEvseData"]["EvseDataRecord"][0]
    assert deleted["HardwareManufacturer"] == "Other Ltd"
    assert env.simulator.state.evse_data_of("DE*ABC") == {}
    assert connector.store is not None
    assert await connector.store.get_evse(EVSE_1) is None
    assert env.simulator.overlaps == []


async def test_an_upsert_hubject_refuses_by_state_is_sent_as_the_other_action(
    env: FlowEnv,
) -> None:
    # The EVSE reached Hubject before the connector kept state (or the state was lost):
    # Hubject refuses the insert, the update goes through and the state is corrected.
    connector = await env.connector()
    backend = env.backend
    await backend.result(await backend.send(messages.full_load(EVSE_1)))
    assert connector.store is not None
    await connector.store.delete_evse(EVSE_1)

    upsert = await backend.send(messages.upsert(EVSE_1))
    result = await backend.result(upsert)

    assert result["outcome"] == "accepted"
    assert actions(env)[1:] == [("insert", [EVSE_1]), ("update", [EVSE_1])]
    assert env.simulator.requests_of("PushEvseData")[1].status_code == "022"
    assert await connector.store.get_evse(EVSE_1) is not None


async def test_a_full_load_is_one_call_and_replaces_the_state(env: FlowEnv) -> None:
    connector = await env.connector()
    backend = env.backend
    assert connector.store is not None
    await connector.store.put_evse(EvseEntry("DE*ABC*E9", "DE*ABC", {"EvseID": "DE*ABC*E9"}))

    loaded = await backend.send(messages.full_load(EVSE_1, EVSE_2))
    result = await backend.result(loaded)

    assert result["outcome"] == "accepted"
    assert actions(env) == [("fullLoad", [EVSE_1, EVSE_2])]
    assert sorted(env.simulator.state.evse_data_of("DE*ABC")) == [EVSE_1, EVSE_2]
    assert await connector.store.evse_ids("DE*ABC") == [EVSE_1, EVSE_2]


async def test_a_delete_of_an_unknown_evse_without_record_is_refused_and_kept(
    env: FlowEnv,
) -> None:
    await env.connector()
    backend = env.backend
    gone = await backend.send(messages.delete(EVSE_2))
    result = await backend.result(gone)

    assert result["outcome"] == "rejected"
    assert result["status_code"] == "022"
    assert "/data/evse" in result["reason"]
    (letter,) = await backend.dead_letters()
    assert letter.message_id == gone
    assert "/data/evse" in letter.reason
    assert env.records("PushEvseData") == []


async def test_an_evse_of_another_operator_is_refused_before_it_is_sent(env: FlowEnv) -> None:
    await env.connector()
    backend = env.backend
    foreign = await backend.send(messages.upsert("DE*XYZ*E1*1"))
    result = await backend.result(foreign)

    assert result["outcome"] == "rejected"
    assert result["status_code"] == "022"
    assert "DE*XYZ*E1*1" in result["reason"] or "XYZ" in result["reason"]
    (letter,) = await backend.dead_letters()
    assert letter.message_id == foreign
    assert env.records("PushEvseData") == []


async def test_hubject_refusing_for_good_gives_its_code_and_info(env: FlowEnv) -> None:
    await env.connector()
    backend = env.backend
    env.simulator.faults.result_false(operation="PushEvseData", code="017")
    upsert = await backend.send(messages.upsert(EVSE_1))
    result = await backend.result(upsert)

    assert result["outcome"] == "rejected"
    assert result["status_code"] == "017"
    assert "017" in result["reason"]
    assert len(env.records("PushEvseData")) == 1


async def test_an_older_upsert_or_delete_arriving_late_is_not_sent(env: FlowEnv) -> None:
    # A retried message goes to the back of the ordered queue: a newer one may pass it.
    await env.connector()
    backend = env.backend
    newer = messages.upsert(EVSE_1, hardware_manufacturer="Newer Ltd")
    older_upsert = messages.upsert(EVSE_1, hardware_manufacturer="Older Ltd")
    older_delete = messages.delete(EVSE_1)
    older_upsert["time"] = older_delete["time"] = "2024-05-01T09:00:00+02:00"
    newer["time"] = "2024-05-01T10:00:00+02:00"
    assert (await backend.result(await backend.send(newer)))["outcome"] == "accepted"

    late = [await backend.result(await backend.send(doc)) for doc in (older_upsert, older_delete)]

    assert [r["outcome"] for r in late] == ["dropped", "dropped"]
    assert "newer message about this EVSE" in late[0]["reason"]
    assert actions(env) == [("insert", [EVSE_1])]
    held = env.simulator.state.evse_data_of("DE*ABC")[EVSE_1]
    assert held.hardware_manufacturer == "Newer Ltd"
