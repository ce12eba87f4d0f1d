"""CDRs: at least once into the connector, exactly once at Hubject per SessionID."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

from hubject_connector.simulator import FaultKind
from tests.integration.flows import messages
from tests.integration.flows.conftest import FlowEnv, eventually


def accepted_at_hubject(env: FlowEnv) -> Counter[str]:
    """SessionID → how many ChargeDetailRecord calls Hubject accepted (Result true)."""
    return Counter(
        str(r.json["SessionID"]) for r in env.simulator.requests_of("ChargeDetailRecord")
        if r.result is True
    )


async def test_a_cdr_reaches_hubject_once_even_when_sent_twice(env: FlowEnv) -> None:
    await env.connector()
    backend = env.backend
    doc = messages.cdr()
    first = await backend.send(doc)
    assert (await backend.result(first))["outcome"] == "accepted"
    # The backend sends it again (at least once), with the same content.
    again = dict(doc, id="0b0b0b0b-0000-4000-8000-00000000cafe")
    result = await backend.result(await backend.send(again))

    assert result["outcome"] == "accepted"
    assert "not sent again" in result["reason"]
    assert len(env.simulator.requests_of("ChargeDetailRecord")) == 1
    session = doc["data"]["session_id"]
    assert result["session_id"] == session
    assert list(env.simulator.state.cdrs) == [session]


async def test_another_cdr_of_an_accepted_session_is_refused_and_kept(env: FlowEnv) -> None:
    await env.connector()
    backend = env.backend
    doc = messages.cdr()
    assert (await backend.result(await backend.send(doc)))["outcome"] == "accepted"
    other = messages.cdr(doc["data"]["session_id"], cpo_partner_session_id="cpo-other")
    result = await backend.result(await backend.send(other))

    assert result["outcome"] == "rejected"
    assert result["status_code"] == "022"
    assert "already accepted another CDR" in result["reason"]
    (letter,) = await backend.dead_letters()
    assert letter.message_id == other["id"]
    assert "one CDR per SessionID" in letter.reason
    assert len(env.simulator.requests_of("ChargeDetailRecord")) == 1


async def test_a_lost_answer_counts_as_accepted_when_hubject_has_it(env: FlowEnv) -> None:
    await env.connector()
    backend = env.backend
    # Hubject stores the CDR, the answer is lost; the client asks again and Hubject says
    # the CDR exists already.
    env.simulator.faults.drop_connection(operation="ChargeDetailRecord", after_processing=True)
    doc = messages.cdr()
    result = await backend.result(await backend.send(doc))

    assert result["outcome"] == "accepted"
    calls = env.simulator.requests_of("ChargeDetailRecord")
    assert len(calls) == 2
    assert "already exists" in (calls[1].additional_info or "")
    assert accepted_at_hubject(env) == Counter({doc["data"]["session_id"]: 1})


async def test_a_lost_answer_across_a_bus_retry_counts_as_accepted(env: FlowEnv) -> None:
    connector = await env.connector()
    backend = env.backend
    # Every attempt of the first delivery loses its answer: the bus retries the message.
    env.simulator.faults.drop_connection(3, operation="ChargeDetailRecord",
                                         after_processing=True)
    doc = messages.cdr()
    result = await backend.result(await backend.send(doc))

    assert result["outcome"] == "accepted"
    assert result["attempts"] == 2
    assert accepted_at_hubject(env) == Counter({doc["data"]["session_id"]: 1})
    assert connector.metric("hubject_connector_flow_messages_retried_total", flow="cdr") == 1


async def test_transient_failures_are_retried_by_the_bus(env: FlowEnv) -> None:
    await env.connector()
    backend = env.backend
    env.simulator.faults.http_503(4, operation="ChargeDetailRecord")
    doc = messages.cdr()
    result = await backend.result(await backend.send(doc))

    assert result["outcome"] == "accepted"
    assert result["attempts"] == 2
    assert list(env.simulator.state.cdrs) == [doc["data"]["session_id"]]


async def test_a_cdr_whose_retries_are_used_up_is_dead_lettered_and_replayed(
    env: FlowEnv,
) -> None:
    await env.connector()
    backend = env.backend
    env.simulator.faults.http_503(1000, operation="ChargeDetailRecord")
    doc = messages.cdr()
    result = await backend.result(await backend.send(doc))

    assert result["outcome"] == "dead_lettered"
    assert result["reason"].startswith("gave up after 3 retries")
    assert result["attempts"] == 4
    (letter,) = await backend.dead_letters()
    assert letter.message_id == doc["id"]

    env.simulator.faults.clear()
    await backend.bus.replay_dead_letter(letter.id)
    await eventually(lambda: len(backend.results_of(doc["id"])) == 2, "a second result")
    assert backend.results_of(doc["id"])[1].data["outcome"] == "accepted"
    assert accepted_at_hubject(env) == Counter({doc["data"]["session_id"]: 1})


async def test_a_cdr_ending_ahead_of_the_connectors_clock_waits_and_goes_through(
    env: FlowEnv,
) -> None:
    # The charge point's clock runs 5 s ahead: its SessionEnd lies in the future when the
    # CDR arrives (a margin wide enough for a loaded machine to look at it before then).
    # Retried every 0.2 s (the bus's delay) for up to 20 s, not dead-lettered.
    connector = await env.connector(cdr_retry_for_seconds=20.0)
    backend = env.backend
    doc = messages.cdr(session_end=(datetime.now(UTC) + timedelta(seconds=5)).isoformat())
    result = await backend.result(await backend.send(doc))

    assert result["outcome"] == "accepted"
    assert result["attempts"] == 1  # Hubject was called only once the time had passed
    assert connector.metric("hubject_connector_flow_messages_retried_total", flow="cdr") >= 1
    assert await backend.bus.list_dead_letters() == []
    assert accepted_at_hubject(env) == Counter({doc["data"]["session_id"]: 1})


async def test_a_cdr_in_the_future_breaking_another_rule_is_refused_at_once(
    env: FlowEnv,
) -> None:
    # The future SessionEnd would pass with time, another operator's EVSE never does.
    connector = await env.connector(cdr_retry_for_seconds=8.0)
    backend = env.backend
    doc = messages.cdr(session_end=(datetime.now(UTC) + timedelta(seconds=60)).isoformat(),
                       evse_id="DE*XYZ*E123456*1")
    result = await backend.result(await backend.send(doc))

    assert result["outcome"] == "rejected"
    assert "lies in the future" in result["reason"]
    (letter,) = await backend.dead_letters()
    assert letter.message_id == doc["id"]
    assert connector.metric("hubject_connector_flow_messages_retried_total", flow="cdr") == 0
    assert env.simulator.requests_of("ChargeDetailRecord") == []


async def test_a_refused_cdr_is_kept_with_hubjects_reason_and_goes_through_corrected(
    env: FlowEnv,
) -> None:
    await env.connector()
    backend = env.backend
    env.simulator.faults.result_false(operation="ChargeDetailRecord", code="018")
    doc = messages.cdr()
    result = await backend.result(await backend.send(doc))

    assert result["outcome"] == "rejected"
    assert result["status_code"] == "018"
    assert result["additional_info"] == "failure scripted in the simulator"
    (letter,) = await backend.dead_letters()
    assert letter.message_id == doc["id"]
    assert "018" in letter.reason
    assert "failure scripted in the simulator" in letter.reason

    corrected = json.loads(letter.body)
    corrected["data"]["cpo_partner_session_id"] = "cpo-corrected"
    await backend.bus.replay_dead_letter(letter.id, body=json.dumps(corrected).encode())
    await eventually(lambda: len(backend.results_of(doc["id"])) == 2, "a second result")

    assert backend.results_of(doc["id"])[1].data["outcome"] == "accepted"
    stored = env.simulator.state.cdrs[doc["data"]["session_id"]]
    assert stored.cpo_partner_session_id == "cpo-corrected"
    assert await backend.bus.list_dead_letters() == []


async def test_every_cdr_reaches_hubject_exactly_once_through_failures(
    store_env: FlowEnv,
) -> None:
    env = store_env
    await env.connector()
    backend = env.backend
    env.simulator.faults.fail_percentage(
        40, kinds=[FaultKind.HTTP_503, FaultKind.DROP_AFTER_PROCESSING],
        operation="ChargeDetailRecord", seed=7)
    docs = [messages.cdr() for _ in range(8)]
    for doc in docs:
        await backend.send(doc)
    results = [await backend.result(doc["id"]) for doc in docs]

    assert [r["outcome"] for r in results] == ["accepted"] * 8
    faults = Counter(r.fault for r in env.simulator.requests_of("ChargeDetailRecord"))
    assert faults["drop-after-processing"] >= 1, faults  # the property was put to the test
    assert faults["http-503"] >= 1, faults
    sessions = {doc["data"]["session_id"] for doc in docs}
    assert accepted_at_hubject(env) == Counter(dict.fromkeys(sessions, 1))
    assert set(env.simulator.state.cdrs) == sessions
    assert all(len(backend.results_of(doc["id"])) == 1 for doc in docs)


async def test_two_copies_handled_at_once_reach_hubject_once_and_both_are_accepted(
    env: FlowEnv,
) -> None:
    await env.connector()
    backend = env.backend
    held = env.simulator.faults.hold(operation="ChargeDetailRecord")
    doc = messages.cdr()
    copy = dict(doc, id="0c0c0c0c-0000-4000-8000-00000000beef")
    await backend.send(doc)
    await asyncio.wait_for(held.arrived.wait(), 10)
    # The first copy's call waits at Hubject; the second copy goes through meanwhile.
    await backend.send(copy)
    await env.simulator.wait_for_requests(1, operation="ChargeDetailRecord")
    held.release()
    results = [await backend.result(doc["id"]), await backend.result(copy["id"])]

    assert [r["outcome"] for r in results] == ["accepted", "accepted"]
    assert accepted_at_hubject(env) == Counter({doc["data"]["session_id"]: 1})
    assert await backend.bus.list_dead_letters() == []
