"""Two ``serve`` processes on one RabbitMQ and one PostgreSQL, and a ``kill -9`` of one.

The setup a CPO runs for availability: two replicas of the connector with the same
configuration file, sharing the broker (the ordered ``evse`` queue has a single active
consumer, the others compete) and the PostgreSQL state store (pushes of one operation
take turns through an advisory lock). The backend is raw aio-pika as docs/contract.md
says (``tests.e2e.conftest.RabbitBackend``: publisher confirms, ``mandatory``), Hubject is
the simulator in this process over mutual TLS with the dev PKI.

The backend publishes a burst: status changes of many EVSEs (several each, each newer
than the one before), CDRs of distinct sessions and EVSE upserts (each EVSE twice, the
second one newer). The simulator holds back the first EVSE data push and the first CDR
calls, so that the process which is the evse queue's active consumer (read from each
process's ``/metrics``) is killed with a push of EVSE data and CDRs in flight, status
changes in its hands and (usually) the backend still publishing. The other process must
take over, and the backend must notice nothing but (at most) a repeated result:

* at the simulator, no two pushes of one operation were ever in flight together;
* Hubject holds every CDR, each accepted once; a session called twice only across the
  kill (the survivor sending again a CDR whose first call died with the killed process),
  the copy refused by Hubject as already there and taken as accepted;
* Hubject's status of every EVSE is the latest one published, its EVSE data the latest;
* every message got a delivery result; no CDR, upsert or status was rejected. The
  results of status changes are owed by the state store from the commit that decides
  them (a pending change replaced, statuses marked pushed) until the bus confirmed them:
  those the killed process owed and had not published, the survivor publishes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hubject_connector.certs import DevPki
from hubject_connector.config import Config
from hubject_connector.simulator import RecordedRequest, Simulator
from hubject_connector.simulator.faults import Hold
from hubject_connector.state.base import StatusChange
from hubject_connector.state.factory import build_store
from tests.e2e.conftest import RabbitBackend
from tests.integration.flows import messages
from tests.integration.flows.conftest import drop_schema, eventually
from tests.integration.service.harness import (
    ServeProcess,
    config_of,
    delete_rabbitmq_topology,
    log_event,
    settings,
    unique_rabbitmq_names,
)
from tests.integration.state.conftest import postgres_dsn

__all__ = ["postgres_dsn"]

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq, pytest.mark.postgresql]

OPERATOR_ID: Final = messages.OPERATOR_ID
#: The burst: small enough for a loaded 2-core machine, large enough that a kill finds
#: every kind of work under way in both processes.
EVSES: Final = 120
STATUS_ROUNDS: Final = 4
CDRS: Final = 120
UPSERTED_EVSES: Final = 12
#: CDR calls the simulator holds back until the kill (some of them the killed process's).
HELD_CDRS: Final = 6
STATES: Final = ("Available", "Occupied", "Reserved", "OutOfService")
SERIALIZED: Final = ("PushEvseData", "PushEvseStatus")
#: Upper bound of each wait: a broken hand-over fails the test instead of hanging it.
WAIT: Final = 30.0
CONSUMED: Final = "hubject_connector_flow_messages_consumed_total"


@dataclass
class Replicas:
    """The shared configuration file and the ``serve`` processes started with it."""

    file: Path
    config: Config
    processes: list[ServeProcess] = field(default_factory=list)

    async def launch(self) -> ServeProcess:
        """Start one more replica; it is killed at the test's end if still running."""
        process = await ServeProcess.launch(self.file)
        self.processes.append(process)
        await process.wait_started()
        return process


@pytest.fixture
async def replicas(dev_pki: DevPki, tmp_path: Path, simulator: Simulator, rabbitmq_url: str,
                   postgres_dsn: str) -> AsyncIterator[Replicas]:
    """One configuration for both replicas: RabbitMQ and PostgreSQL names of this test."""
    data = settings(dev_pki, tmp_path, hubject_url=simulator.url)
    data["bus"] = {
        "kind": "rabbitmq",
        "rabbitmq": {"url": rabbitmq_url, **unique_rabbitmq_names()},
        "retry_delays_seconds": [0.2, 0.2],
    }
    data["state"] = {"kind": "postgresql", "postgresql": {
        "dsn": postgres_dsn, "schema": f"test_replicas_{uuid.uuid4().hex[:12]}",
        "pool_size": 4}}
    # Several status pushes during the burst; CDR retries as short as the bus's, so that
    # the retry queues torn down below are all there are.
    data["flows"].update(status_batch_size=50, status_max_wait_seconds=0.1,
                         cdr_retry_initial_delay_seconds=0.2,
                         cdr_retry_max_delay_seconds=0.2, cdr_retry_for_seconds=60.0)
    data["service"]["shutdown_grace_seconds"] = 5.0
    config = config_of(tmp_path, data)
    made = Replicas(tmp_path / "connector.toml", config)
    try:
        yield made
    finally:
        for process in made.processes:
            await process.kill()
        await delete_rabbitmq_topology(config.bus.rabbitmq, config.flows,
                                       config.bus.retry_delays_seconds)
        await drop_schema(config.state)


async def sample(session: aiohttp.ClientSession, process: ServeProcess, name: str,
                 **labels: str) -> float:
    """The sum of a metric's samples with these labels, from the process's ``/metrics``."""
    assert process.started is not None
    async with session.get(f"{process.started['ops']}/metrics") as response:
        text = await response.text()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and labels.items() <= found.labels.items():
                total += found.value
    return total


@dataclass
class Burst:
    """What the backend publishes, and what Hubject should hold in the end."""

    docs: list[dict[str, Any]]
    latest_status: dict[str, str]
    latest_upsert: dict[str, dict[str, Any]]
    sessions: set[str]

    @classmethod
    def make(cls) -> Burst:
        """Statuses round by round, CDRs and upserts woven in, second upserts last."""
        evses = [f"DE*ABC*E{7000 + i}*1" for i in range(EVSES)]
        statuses = [messages.status(evse, STATES[(i + step) % len(STATES)], at=step)
                    for step in range(STATUS_ROUNDS) for i, evse in enumerate(evses)]
        cdrs = [messages.cdr() for _ in range(CDRS)]
        upserted = evses[:UPSERTED_EVSES]
        first = [messages.upsert(evse, hotline_phone_number="+4930111111")
                 for evse in upserted]
        second = [messages.upsert(evse, hotline_phone_number="+4930222222")
                  for evse in upserted]
        docs: list[dict[str, Any]] = list(first)
        # One CDR after every few statuses: both kinds are under way at any moment.
        every = max(1, len(statuses) // len(cdrs))
        pending_cdrs = list(cdrs)
        for index, status in enumerate(statuses):
            docs.append(status)
            if index % every == every - 1 and pending_cdrs:
                docs.append(pending_cdrs.pop(0))
        docs += pending_cdrs + second
        return cls(
            docs=docs,
            latest_status={evse: STATES[(i + STATUS_ROUNDS - 1) % len(STATES)]
                           for i, evse in enumerate(evses)},
            latest_upsert={doc["data"]["evse"]["evse_id"]: doc for doc in second},
            sessions={doc["data"]["session_id"] for doc in cdrs},
        )

    def of_type(self, suffix: str) -> list[dict[str, Any]]:
        """The documents whose type ends in ``suffix``."""
        return [doc for doc in self.docs if doc["type"].endswith(suffix)]


async def publish(backend: RabbitBackend, docs: Sequence[dict[str, Any]],
                  published: list[str]) -> None:
    """Publish ``docs`` a few at a time, each confirmed by the broker."""
    step = 25
    for start in range(0, len(docs), step):
        chunk = docs[start:start + step]
        published += await asyncio.gather(*(backend.send(doc) for doc in chunk))


def unanswered(backend: RabbitBackend, docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents without a delivery result so far."""
    answered = {r["data"]["message_id"] for r in backend.results}
    return [doc for doc in docs if doc["id"] not in answered]


def logged_outcomes(process: ServeProcess, ids: set[str]) -> Counter[str]:
    """The outcomes ``process`` logged (``flows.result``) for the messages ``ids``."""
    found: Counter[str] = Counter()
    for line in process.stderr_lines:
        event = log_event(line)
        if event and event.get("event") == "flows.result" and event.get("message_id") in ids:
            found[f"{event['outcome']} ({event.get('reason') or 'no reason'})"] += 1
    return found


async def results_for(backend: RabbitBackend, docs: Sequence[dict[str, Any]],
                      replicas: Replicas, give_up_after: float = WAIT) -> None:
    """Wait for a result about every document; fail naming those without one."""
    try:
        await eventually(lambda: not unanswered(backend, docs),
                         "a delivery result for every message published", give_up_after)
    except AssertionError:
        missing = unanswered(backend, docs)
        ids = {doc["id"] for doc in missing}
        kinds = Counter(doc["type"] for doc in missing)
        logged = [dict(logged_outcomes(p, ids)) for p in replicas.processes]
        raise AssertionError(
            f"{len(missing)} messages without a delivery result: {dict(kinds)}; each replica "
            f"logged for them: {logged}") from None


async def test_a_kill_9_of_the_active_replica_hands_over_with_nothing_lost_nor_twice(
    replicas: Replicas, simulator: Simulator
) -> None:
    # Held until the kill: the first EVSE data push (from the evse queue's active
    # consumer) and the first CDR calls, whichever process makes them.
    evse_hold = simulator.faults.hold(operation="PushEvseData")
    cdr_holds = [simulator.faults.hold(operation="ChargeDetailRecord")
                 for _ in range(HELD_CDRS)]
    first, second = await asyncio.gather(replicas.launch(), replicas.launch())
    backend = await RabbitBackend(replicas.config).start()
    burst = Burst.make()
    statuses = burst.of_type(".evse.status.v1")
    published: list[str] = []
    publishing = asyncio.create_task(publish(backend, burst.docs, published))
    try:
        async with aiohttp.ClientSession() as session:
            held: list[Hold] = [evse_hold, *cdr_holds]
            await eventually(lambda: all(h.arrived.is_set() for h in held),
                             "the first EVSE data push and CDR calls at the simulator", WAIT)
            pair = (first, second)
            evse_consumed = [await sample(session, p, CONSUMED, flow="evse") for p in pair]
            active = [p for p, count in zip(pair, evse_consumed, strict=True) if count > 0]
            assert len(active) == 1, f"one active consumer of the evse queue: {evse_consumed}"
            (victim,) = active
            survivor = second if victim is first else first

            victim.process.kill()
            killed_at = asyncio.get_running_loop().time()
            # Released before this task yields: the held calls are answered before the
            # survivor can take over (its pushes wait for the locks the dead one held).
            simulator.faults.release_all()
            await victim.process.wait()

            async with asyncio.timeout(WAIT):
                await publishing
            assert published == [doc["id"] for doc in burst.docs]
            status_ids = {doc["id"] for doc in statuses}
            await results_for(backend, [d for d in burst.docs if d["id"] not in status_ids],
                              replicas)
            await eventually(
                lambda: dict(simulator.state.evse_status_of(OPERATOR_ID))
                == burst.latest_status,
                "Hubject's status of every EVSE to be the latest one published", WAIT)
            assert await sample(session, survivor, CONSUMED, flow="evse") > 0, \
                "the survivor took over the evse queue"
            # Those the killed process owed come with the survivor's sweep of the store.
            await results_for(backend, statuses, replicas)
    finally:
        publishing.cancel()
        await backend.close()

    # Pushes of one operation never overlapped, across both processes and the kill.
    assert [o for o in simulator.overlaps if o.operation in SERIALIZED] == []
    assert len(simulator.requests_of("PushEvseData")) > len(burst.latest_upsert)
    assert len(simulator.requests_of("PushEvseStatus")) > 1

    # Every CDR at Hubject, accepted once. A second call of a session only after the
    # kill (the survivor sending a CDR whose first call died with the killed process),
    # refused by Hubject as already there.
    cdr_calls: defaultdict[str, list[RecordedRequest]] = defaultdict(list)
    for call in simulator.requests_of("ChargeDetailRecord"):
        cdr_calls[str(call.json["SessionID"])].append(call)
    assert set(cdr_calls) == burst.sessions
    assert set(simulator.state.cdrs) == burst.sessions
    accepted = Counter(s for s, calls in cdr_calls.items() for c in calls if c.result is True)
    assert accepted == Counter(dict.fromkeys(burst.sessions, 1))
    for session_id, calls in cdr_calls.items():
        if len(calls) > 1:
            assert len(calls) == 2, f"{session_id}: {len(calls)} CDR calls"
            assert calls[1].started > killed_at, f"{session_id}: sent twice before the kill"
            (refused,) = [c for c in calls if c.result is not True]
            assert "already exists" in (refused.additional_info or ""), refused.additional_info

    # What the backend heard: every CDR accepted; nothing refused or dead-lettered.
    outcomes = {doc["id"]: {r["data"]["outcome"] for r in backend.results_of(doc["id"])}
                for doc in burst.docs}
    for doc in burst.of_type(".cdr.v1"):
        assert outcomes[doc["id"]] == {"accepted"}, backend.results_of(doc["id"])
    for doc in burst.of_type(".evse.upsert.v1") + statuses:
        assert outcomes[doc["id"]] <= {"accepted", "dropped"}, backend.results_of(doc["id"])
    for doc in [*burst.latest_upsert.values(), *statuses[-EVSES:]]:
        # The latest of each EVSE reached Hubject: accepted (when its result came).
        assert not outcomes[doc["id"]] or "accepted" in outcomes[doc["id"]], \
            backend.results_of(doc["id"])

    # Hubject holds the latest EVSE data of each EVSE upserted.
    records = simulator.state.evse_data_of(OPERATOR_ID)
    assert {evse: records[evse].hotline_phone_number for evse in burst.latest_upsert} == \
        dict.fromkeys(burst.latest_upsert, "+4930222222")


async def test_results_a_dead_replica_owed_are_published_by_a_live_one(
    replicas: Replicas,
) -> None:
    # What a replica killed right after its commits leaves: a pending status replaced
    # (its "dropped" owed) and a status marked pushed (its "accepted" owed), unpublished.
    def change(evse: str, at: int, message_id: str) -> StatusChange:
        return StatusChange(evse, OPERATOR_ID, "Available",
                            datetime(2024, 5, 1, 12, 0, at, tzinfo=UTC), message_id)

    left = [f"left-{uuid.uuid4().hex}" for _ in range(4)]
    store = build_store(replicas.config.state)
    await store.open()
    try:
        await store.record_statuses([change("DE*ABC*E1", 0, left[0])])
        await store.record_statuses([change("DE*ABC*E1", 1, left[1])])
        await store.mark_statuses_sent([change("DE*ABC*E1", 1, left[1])])
        # Owed before it starts: published at its start (the results wait in the
        # backend's queue, which the replica declares).
        await replicas.launch()
        backend = await RabbitBackend(replicas.config).start()
        try:
            await eventually(lambda: {r["data"]["message_id"] for r in backend.results}
                             >= set(left[:2]), "the results owed before the start", WAIT)
            # Owed while it runs, by a replica that dies: published by its sweep.
            await store.record_statuses([change("DE*ABC*E2", 0, left[2])])
            await store.record_statuses([change("DE*ABC*E2", 1, left[3])])
            await store.mark_statuses_sent([change("DE*ABC*E2", 1, left[3])])
            await eventually(lambda: {r["data"]["message_id"] for r in backend.results}
                             >= set(left), "the results owed while it runs", WAIT)
        finally:
            await backend.close()

        async def owes_nothing() -> bool:
            return await store.owed_status_results(10) == []

        # Crossed off once published.
        await eventually(owes_nothing, "the owed results crossed off", WAIT)
    finally:
        await store.close()

    outcomes = {message_id: [(r["data"]["outcome"], r["data"].get("reason"))
                             for r in backend.results_of(message_id)]
                for message_id in left}
    superseded = ("dropped", "superseded by a newer status of this EVSE before it was pushed")
    assert outcomes == {left[0]: [superseded], left[1]: [("accepted", None)],
                        left[2]: [superseded], left[3]: [("accepted", None)]}
