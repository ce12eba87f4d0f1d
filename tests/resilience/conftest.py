"""The resilience suite: the connector under faults, and what a user would see afterwards.

Each test runs real parts (RabbitMQ, PostgreSQL, SQLite, the simulator over mutual TLS),
breaks one of them in the middle of a burst of traffic, lets it heal, and then checks
the outcome a CPO would notice:

* nothing lost: every message the backend handed over got its delivery result, every
  CDR is at Hubject, and Hubject's status of every EVSE is the latest one sent;
* nothing sent twice: Hubject accepted each SessionID's CDR once, and was not called
  again for a CDR it had already accepted (:func:`cdr_calls`).

No assertion is about time; every wait has an upper bound so that a broken connector
fails instead of hanging. Names (queue prefixes, schemas, files, roles) are unique per
test and torn down afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import pytest

from hubject_connector.bus.factory import build_bus
from hubject_connector.certs import DevPki
from hubject_connector.config import Config, FlowsConfig, StateConfig
from hubject_connector.simulator import Simulator
from tests.integration.bus.conftest import rabbitmq_url
from tests.integration.flows import messages
from tests.integration.flows.conftest import (
    Backend,
    FlowEnv,
    drop_schema,
    eventually,
    flow_config,
    simulator,
    simulator_config,
)
from tests.integration.service.harness import delete_rabbitmq_topology
from tests.integration.state.conftest import postgres_dsn

__all__ = ["postgres_dsn", "rabbitmq_url", "simulator", "simulator_config"]

OPERATOR_ID: Final = messages.OPERATOR_ID
#: Upper bound of a wait for one thing to happen.
WAIT: Final = 30.0
#: Upper bound of the wait for a burst to settle after the fault healed.
SETTLE: Final = 60.0

#: Short pauses, and CDR retries that outlast every outage of this suite (a CDR given up
#: on would be "lost" to the test even though it is kept as a dead letter).
RESILIENT_FLOWS: Final = FlowsConfig(
    status_batch_size=50,
    status_max_wait_seconds=0.1,
    cdr_retry_for_seconds=120.0,
    cdr_retry_initial_delay_seconds=0.2,
    cdr_retry_max_delay_seconds=0.5,
)


@dataclass
class Burst:
    """CDRs and status changes a backend sends in one go, and what must become of them."""

    cdrs: list[dict[str, Any]]
    statuses: list[dict[str, Any]]

    @classmethod
    def make(cls, *, cdrs: int = 20, evses: int = 5, changes: int = 40,
             tag: str | None = None) -> Burst:
        """``cdrs`` new CDRs; ``changes`` status changes spread over ``evses`` EVSEs.

        Each change of an EVSE is newer than the one before it, so the last one sent for
        each EVSE is the status Hubject must end with.
        """
        tag = tag or uuid.uuid4().hex[:6].upper()
        states = ("Available", "Occupied", "Reserved", "OutOfService")
        evse_ids = [f"{OPERATOR_ID}*E{tag}{i}" for i in range(evses)]
        statuses = [
            messages.status(evse_ids[i % evses], states[(i // evses) % len(states)], at=i)
            for i in range(changes)
        ]
        return cls([messages.cdr() for _ in range(cdrs)], statuses)

    @property
    def ids(self) -> list[str]:
        """The message ids of everything in the burst."""
        return [str(doc["id"]) for doc in [*self.cdrs, *self.statuses]]

    def interleaved(self) -> list[dict[str, Any]]:
        """CDRs and status changes mixed, as a busy backend sends them."""
        out: list[dict[str, Any]] = []
        cdrs, statuses = list(self.cdrs), list(self.statuses)
        while cdrs or statuses:
            if cdrs:
                out.append(cdrs.pop(0))
            out.extend(statuses[:2])
            del statuses[:2]
        return out

    @property
    def sessions(self) -> set[str]:
        """The SessionIDs of the CDRs."""
        return {str(doc["data"]["session_id"]) for doc in self.cdrs}

    def latest_statuses(self) -> dict[str, str]:
        """EvseID → the status sent last (the newest)."""
        return {str(doc["data"]["evse_id"]): str(doc["data"]["status"])
                for doc in self.statuses}


def results_by_message(backend: Backend) -> dict[str, list[str]]:
    """Message id → the outcomes of the delivery results received about it, in order.

    A result received again with the same id is the same CloudEvent, which the backend
    drops as the contract says; it is counted once here too.
    """
    found: dict[str, dict[str, str]] = {}
    for result in backend.results:
        found.setdefault(str(result.data["message_id"]), {}).setdefault(
            result.id, str(result.data["outcome"]))
    return {message: list(results.values()) for message, results in found.items()}


async def settled(backend: Backend, burst: Burst, give_up_after: float = SETTLE) -> None:
    """Wait until every message of ``burst`` has a delivery result."""
    wanted = {str(doc["id"]): str(doc["type"]).split(".")[-2] for doc in burst.interleaved()}

    def missing() -> list[str]:
        have = results_by_message(backend)
        return [f"{wanted[i]} {i}" for i in wanted if i not in have]

    try:
        await eventually(lambda: not missing(), "a delivery result for every message",
                         give_up_after)
    except AssertionError:
        raise AssertionError(f"{len(missing())} of {len(wanted)} messages got no delivery "
                             f"result: {missing()[:5]}") from None


def cdr_calls(simulator: Simulator) -> Counter[str]:
    """SessionID → how many ChargeDetailRecord calls reached the simulator."""
    return Counter(str(call.json["SessionID"])
                   for call in simulator.requests_of("ChargeDetailRecord")
                   if isinstance(call.json, dict) and "SessionID" in call.json)


def cdrs_accepted(simulator: Simulator) -> Counter[str]:
    """SessionID → how many ChargeDetailRecord calls the simulator accepted."""
    return Counter(str(call.json["SessionID"])
                   for call in simulator.requests_of("ChargeDetailRecord")
                   if call.result is True)


def calls_after_acceptance(simulator: Simulator) -> list[str]:
    """SessionIDs the simulator was sent again after it had accepted them (a CDR twice)."""
    accepted: set[str] = set()
    again: list[str] = []
    for call in simulator.requests_of("ChargeDetailRecord"):
        session = str(call.json["SessionID"]) if isinstance(call.json, dict) else ""
        if session in accepted:
            again.append(session)
        if call.result is True:
            accepted.add(session)
    return again


def assert_nothing_lost(env: FlowEnv, burst: Burst, *, exactly_one_call: bool,
                        answers_lost: bool = False) -> None:
    """The outcomes a user checks after the fault (module doc).

    ``exactly_one_call``: Hubject itself was healthy, so each CDR must have been sent
    once, not only accepted once (a lost answer from Hubject excuses a second call,
    which Hubject then refuses as already there, nothing else does). ``answers_lost``:
    Hubject's answers may have been lost on the way back, so a CDR may have been sent
    again after Hubject accepted it (and refused that copy).
    """
    outcomes = results_by_message(env.backend)
    for doc in burst.cdrs:
        assert outcomes[doc["id"]] == ["accepted"], (doc["id"], outcomes[doc["id"]])
    for doc in burst.statuses:
        assert outcomes[doc["id"]] in (["accepted"], ["dropped"]), outcomes[doc["id"]]
    sessions = burst.sessions
    assert cdrs_accepted(env.simulator) == Counter(dict.fromkeys(sessions, 1))
    if not answers_lost:
        assert calls_after_acceptance(env.simulator) == []
    if exactly_one_call:
        assert cdr_calls(env.simulator) == Counter(dict.fromkeys(sessions, 1))
    assert sessions <= set(env.simulator.state.cdrs)
    pushed = dict(env.simulator.state.evse_status_of(OPERATOR_ID))
    latest = burst.latest_statuses()
    assert {evse: pushed.get(evse) for evse in latest} == latest
    assert env.simulator.overlaps == []


async def send_all(backend: Backend, docs: Sequence[dict[str, Any]]) -> None:
    """Send every document, in order (each is stored by the bus when this returns)."""
    for doc in docs:
        await backend.send(doc)


async def wait_for_results(backend: Backend, count: int) -> None:
    """Wait until results about ``count`` different messages arrived (the burst is mid-way)."""
    await eventually(lambda: len(results_by_message(backend)) >= count,
                     f"results about {count} messages")


@dataclass
class Envs:
    """Makes ``FlowEnv``s of a test and tears down what they declared."""

    tmp_path: Path
    pki: DevPki
    made: list[tuple[FlowEnv, StateConfig | None]] = field(default_factory=list)

    async def make(self, kind: str, simulator: Simulator, *, url: str | None = None,
                   state: StateConfig | None = None, flows: FlowsConfig = RESILIENT_FLOWS,
                   bus_path: Path | None = None, quorum_queues: bool = True) -> FlowEnv:
        """A connector configuration and a started backend on bus ``kind``.

        The backend has a connection name of its own on RabbitMQ, so that a test closing
        the connector's connections leaves the backend's alone. ``bus_path``: where the
        embedded bus's file is (else in the test's directory); ``quorum_queues`` False:
        classic queues on RabbitMQ.
        """
        config = flow_config(kind, self.tmp_path, self.pki, simulator, state, url)
        embedded = config.bus.embedded
        if bus_path is not None:
            embedded = replace(embedded, path=bus_path)
        rabbit = replace(config.bus.rabbitmq, quorum_queues=quorum_queues)
        config = replace(config, flows=flows,
                         bus=replace(config.bus, embedded=embedded, rabbitmq=rabbit))
        backend_config = replace(config.bus, rabbitmq=replace(
            rabbit, connection_name=f"{rabbit.connection_name}-backend"))
        env = FlowEnv(kind, self.pki, simulator, config,
                      Backend(build_bus(backend_config, serve=False)))
        self.made.append((env, state))
        await env.backend.start()
        return env

    async def close(self) -> None:
        """Stop every connector and backend; delete queues and schemas."""
        for env, state in self.made:
            for connector in env.connectors:
                await connector.stop(0.0)
            await env.backend.close()
            config: Config = env.config
            if env.kind == "rabbitmq":
                # The backend's results queue is one of the backend queues deleted too.
                await delete_rabbitmq_topology(
                    config.bus.rabbitmq, config.flows, config.bus.retry_delays_seconds)
            if state is not None and state.kind == "postgresql":
                await drop_schema(state)


@pytest.fixture
async def envs(tmp_path: Path, dev_pki: DevPki) -> AsyncIterator[Envs]:
    """Flow environments of one test, torn down at its end."""
    made = Envs(tmp_path, dev_pki)
    try:
        yield made
    finally:
        await made.close()


async def gather_bounded(*aws: Any, give_up_after: float = SETTLE) -> list[Any]:
    """``asyncio.gather`` with an upper bound."""
    async with asyncio.timeout(give_up_after):
        return list(await asyncio.gather(*aws))
