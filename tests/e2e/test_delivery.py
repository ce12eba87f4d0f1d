"""The promises of issue 7 at a small size, from the backend's side of the contract.

The large versions (50,000 statuses, 1,000 CDRs with kill -9, two processes) live in
bench/ and the resilience tests; these show each property with the fewest messages.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

from hubject_connector.simulator import FaultKind
from hubject_connector.simulator.hub import HubRules
from tests.e2e.conftest import EndToEnd, hubject_connector
from tests.integration.flows import messages
from tests.integration.flows.conftest import eventually


async def test_status_changes_coalesce_and_an_older_one_never_overwrites_a_newer(
    e2e: EndToEnd,
) -> None:
    backend = e2e.backend
    evses = [f"DE*ABC*E10{i}" for i in range(3)]
    states = ["Available", "Occupied", "Reserved", "OutOfService", "Unknown"]
    rng = random.Random(7)
    # Eight changes per EVSE at distinct times, sent in shuffled order.
    changes = [(evse, step, rng.choice(states)) for evse in evses for step in range(8)]
    rng.shuffle(changes)
    docs = [messages.status(evse, state, at=step) for evse, step, state in changes]
    for doc in docs:
        await backend.send(doc)
    outcomes = [(await backend.result(doc["id"]))["outcome"] for doc in docs]

    latest = {evse: max((s, st) for e, s, st in changes if e == evse)[1] for evse in evses}
    await eventually(lambda: dict(e2e.simulator.state.evse_status_of("DE*ABC")) == latest,
                     "the latest status of every EVSE at Hubject")
    assert e2e.simulator.overlaps == []
    assert set(outcomes) <= {"accepted", "dropped"}
    assert all(len(backend.results_of(doc["id"])) == 1 for doc in docs)
    # The latest change of each EVSE is the one accepted last for it.
    newest = {evse: max(s for e, s, _ in changes if e == evse) for evse in evses}
    for doc, (evse, step, _), outcome in zip(docs, changes, outcomes, strict=True):
        if step == newest[evse]:
            assert outcome == "accepted", doc

    # Later, an older change arrives: dropped, Hubject keeps the newer one.
    older = messages.status(evses[0], "Available", at=-1)
    await backend.send(older)
    data = await backend.result(older["id"])
    assert data["outcome"] == "dropped"
    assert data["reason"] == "a newer status of this EVSE is known"
    assert dict(e2e.simulator.state.evse_status_of("DE*ABC")) == latest


async def test_each_cdr_reaches_hubject_exactly_once_through_503s_and_lost_answers(
    e2e: EndToEnd,
) -> None:
    backend = e2e.backend
    e2e.simulator.faults.fail_percentage(
        40, kinds=[FaultKind.HTTP_503, FaultKind.DROP_AFTER_PROCESSING],
        operation="ChargeDetailRecord", seed=11)
    docs = [messages.cdr() for _ in range(10)]
    for doc in docs:
        await backend.send(doc)
    results = [await backend.result(doc["id"]) for doc in docs]

    assert [r["outcome"] for r in results] == ["accepted"] * len(docs)
    calls = e2e.requests("ChargeDetailRecord")
    faults = Counter(call.fault for call in calls)
    assert faults["drop-after-processing"] >= 1, faults
    assert faults["http-503"] >= 1, faults
    stored = Counter(str(call.json["SessionID"]) for call in calls if call.result is True)
    sessions = {doc["data"]["session_id"] for doc in docs}
    assert stored == Counter(dict.fromkeys(sessions, 1))
    assert set(e2e.simulator.state.cdrs) == sessions
    assert all(len(backend.results_of(doc["id"])) == 1 for doc in docs)


async def test_a_refused_cdr_waits_in_the_dead_letters_and_goes_through_corrected(
    e2e: EndToEnd, tmp_path: Path,
) -> None:
    backend = e2e.backend
    # Hubject refuses a CDR of a session it did not create (400, "Session is invalid").
    e2e.simulator.hub.rules = HubRules(cdr_requires_known_session=True)
    wrong = messages.cdr()
    await backend.send(wrong)
    data = await backend.result(wrong["id"])

    assert data["outcome"] == "rejected"
    assert data["status_code"] == "400"
    assert wrong["data"]["session_id"] in data["additional_info"]

    config = e2e.write_config(tmp_path / "connector.toml")
    code, out, err = await hubject_connector("--config", str(config), "dlq", "list", "--json")
    assert (code, err) == (0, "")
    (letter,) = json.loads(out)
    assert letter["message_id"] == wrong["id"]
    assert "400" in letter["reason"]
    assert wrong["data"]["session_id"] in letter["reason"]

    # The backend finds the right session (authorized through Hubject) and corrects the CDR.
    reply = await backend.ask(messages.authorize_start())
    session = reply["data"]["session_id"]
    corrected = json.loads(letter["body"])
    corrected["data"]["session_id"] = corrected["subject"] = session
    body = tmp_path / "corrected.json"
    body.write_text(json.dumps(corrected), encoding="utf-8")
    code, out, err = await hubject_connector(
        "--config", str(config), "dlq", "replay", letter["id"], "--body", str(body))
    assert (code, err) == (0, "")

    await eventually(lambda: len(backend.results_of(wrong["id"])) == 2, "a second result")
    assert backend.results_of(wrong["id"])[1]["data"]["outcome"] == "accepted"
    assert list(e2e.simulator.state.cdrs) == [session]
    code, out, _ = await hubject_connector("--config", str(config), "dlq", "list")
    assert (code, out.strip()) == (0, "no dead letters")
