"""The flows with real parts: the simulator over mTLS, a real bus, a real state store.

``env`` gives a test a running fake Hubject, a connector (``Connector``: state store,
bus, Hubject client and ``Flows``, started and stopped as the service does) and the
backend's side of the same bus (``Backend``: publishes messages, collects the delivery
results, asks authorization requests). It runs on the embedded bus and on RabbitMQ;
``store_env`` also on PostgreSQL. Names (queue prefixes, schemas, files) are unique per
test and torn down afterwards.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from hubject_connector.bus.base import Bus, Consumer, DeadLetter, IncomingMessage, QueueSpec
from hubject_connector.bus.contract import Envelope, MessageType
from hubject_connector.bus.factory import build_bus
from hubject_connector.bus.topology import cdr_retry_delays, connector_queues
from hubject_connector.certs import DevPki
from hubject_connector.config import (
    BusConfig,
    Config,
    FlowsConfig,
    PostgresStateConfig,
    SqliteStateConfig,
    StateConfig,
)
from hubject_connector.flows import Flows
from hubject_connector.hubject.client import HubjectClient
from hubject_connector.simulator import Card, Simulator, SimulatorConfig
from hubject_connector.state.base import StateStore
from hubject_connector.state.factory import build_store
from hubject_connector.state.postgres import quote_identifier
from tests.integration.bus.conftest import delete_topology, rabbitmq_url
from tests.integration.bus.conftest import make_config as bus_config
from tests.integration.flows.messages import CARD_UID, envelope
from tests.integration.hubject.conftest import client_config
from tests.integration.state.conftest import POSTGRES_DSN, postgres_dsn

__all__ = ["postgres_dsn", "rabbitmq_url"]

#: Upper bound of every wait: a broken flow fails instead of hanging.
WAIT = 30.0
#: The backend's queue of delivery results (docs/contract.md).
RESULTS = QueueSpec("backend.results", bindings=(str(MessageType.DELIVERY_RESULT),))

#: Short waits and retries: the tests check what happens, not how long it takes.
FLOWS = FlowsConfig(
    status_batch_size=100,
    status_max_wait_seconds=0.1,
    cdr_retry_for_seconds=0.6,
    cdr_retry_initial_delay_seconds=0.2,
    cdr_retry_max_delay_seconds=0.2,
)


async def eventually(check: Callable[[], Any], what: str, give_up_after: float = WAIT) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; fail after a while."""
    try:
        async with asyncio.timeout(give_up_after):
            while True:
                result = check()
                if asyncio.iscoroutine(result):
                    result = await result
                if result:
                    return result
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


class Connector:
    """The connector's parts, started and stopped in the service's order."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.registry = CollectorRegistry()
        self.store: StateStore | None = None
        self.bus: Bus | None = None
        self.client: HubjectClient | None = None
        self.flows: Flows | None = None

    async def start(self) -> Connector:
        """Open the store, connect the bus (queues declared), start client and flows."""
        config = self.config
        self.store = build_store(config.state, registry=self.registry)
        await self.store.open()
        self.bus = build_bus(config.bus, queues=connector_queues(config.flows))
        await self.bus.connect()
        self.client = HubjectClient(config.hubject, registry=self.registry)
        await self.client.start()
        self.flows = Flows(config, bus=self.bus, client=self.client, store=self.store,
                           registry=self.registry)
        await self.flows.start()
        return self

    async def stop(self, grace: float = 5.0) -> None:
        """Stop the flows (within ``grace``), then close client, bus and store."""
        if self.flows is not None:
            await self.flows.stop(grace)
            self.flows = None
        if self.client is not None:
            await self.client.close()
            self.client = None
        if self.bus is not None:
            await self.bus.close()
            self.bus = None
        if self.store is not None:
            await self.store.close()
            self.store = None

    def metric(self, name: str, **labels: str) -> float:
        """A metric sample's value (0 when absent)."""
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


class Backend:
    """The backend's side of the bus: sends messages, collects delivery results."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.results: list[Envelope] = []
        self._consumer: Consumer | None = None

    async def start(self) -> Backend:
        """Connect and consume the delivery results."""
        await self.bus.connect()
        self._consumer = await self.bus.consume(RESULTS, self._take)
        return self

    async def close(self) -> None:
        """Stop consuming and disconnect."""
        if self._consumer is not None:
            await self._consumer.cancel()
        await self.bus.close()

    async def _take(self, message: IncomingMessage) -> None:
        self.results.append(message.envelope)

    async def send(self, doc: dict[str, Any]) -> str:
        """Publish one message as the contract says (routing key: its type); its id."""
        await self.bus.publish(doc["type"], json.dumps(doc).encode(), message_id=doc["id"])
        return str(doc["id"])

    async def ask(self, doc: dict[str, Any], timeout: float = 10.0) -> Envelope:  # noqa: ASYNC109
        """Send a request and wait for its reply."""
        return await self.bus.request(doc["type"], envelope(doc), timeout=timeout)

    def results_of(self, message_id: str) -> list[Envelope]:
        """The delivery results about ``message_id`` received so far."""
        return [r for r in self.results if r.data.get("message_id") == message_id]

    async def result(self, message_id: str, give_up_after: float = WAIT) -> dict[str, Any]:
        """The data of the (first) delivery result about ``message_id``, waiting for it."""
        found = await eventually(lambda: self.results_of(message_id),
                                 f"a delivery result about {message_id}", give_up_after)
        data: dict[str, Any] = found[0].data
        return data

    async def dead_letters(self, count: int = 1) -> list[DeadLetter]:
        """Wait until ``count`` dead letters exist; return them."""
        async def check() -> list[DeadLetter] | None:
            letters = await self.bus.list_dead_letters()
            return letters if len(letters) >= count else None

        found: list[DeadLetter] = await eventually(check, f"{count} dead letters")
        return found


@dataclass
class FlowEnv:
    """A simulator, the configuration of a connector for it, and the backend."""

    kind: str
    pki: DevPki
    simulator: Simulator
    config: Config
    backend: Backend
    connectors: list[Connector] = field(default_factory=list)

    async def connector(self, **flows: Any) -> Connector:
        """A started connector (``flows`` overrides FlowsConfig settings)."""
        config = self.config
        if flows:
            config = replace(config, flows=replace(config.flows, **flows))
        made = Connector(config)
        self.connectors.append(made)
        return await made.start()

    def records(self, operation: str) -> list[Any]:
        """The JSON bodies the simulator received for ``operation``, in order."""
        return [r.json for r in self.simulator.requests_of(operation)]


def flow_config(kind: str, tmp_path: Path, pki: DevPki, simulator: Simulator,
                state: StateConfig | None = None, url: str | None = None) -> Config:
    """A connector configuration for the simulator, a unique bus and a store."""
    bus: BusConfig = bus_config(kind, tmp_path, url) if url else bus_config(kind, tmp_path)
    return Config(
        hubject=client_config(pki, simulator, operator_name="ABC Charging"),
        bus=bus,
        state=state or StateConfig(
            kind="sqlite", sqlite=SqliteStateConfig(path=tmp_path / "state.sqlite3")),
        flows=FLOWS,
    )


def postgres_state(dsn: str) -> StateConfig:
    """A PostgreSQL store in a schema unique to the test."""
    return StateConfig(
        kind="postgresql",
        postgresql=PostgresStateConfig(dsn=dsn, schema=f"test_flows_{uuid.uuid4().hex[:12]}",
                                       pool_size=4),
    )


async def drop_schema(state: StateConfig) -> None:
    """Drop a test's PostgreSQL schema."""
    connection = await asyncpg.connect(state.postgresql.dsn)
    try:
        await connection.execute(
            f"DROP SCHEMA IF EXISTS {quote_identifier(state.postgresql.schema)} CASCADE")
    finally:
        await connection.close()


@pytest.fixture
def simulator_config(dev_pki: DevPki) -> SimulatorConfig:
    """The simulator knows one card (authorized)."""
    return SimulatorConfig.from_dev_pki(dev_pki, cards=(Card(uid=CARD_UID),))


@pytest.fixture
async def simulator(simulator_config: SimulatorConfig) -> AsyncIterator[Simulator]:
    """A running fake Hubject."""
    async with Simulator(simulator_config) as running:
        yield running


async def _env(kind: str, tmp_path: Path, pki: DevPki, simulator: Simulator,
               state: StateConfig | None, url: str | None) -> AsyncIterator[FlowEnv]:
    config = flow_config(kind, tmp_path, pki, simulator, state, url)
    backend_bus = build_bus(config.bus, serve=False)
    made = FlowEnv(kind, pki, simulator, config, Backend(backend_bus))
    try:
        await made.backend.start()
        yield made
    finally:
        for connector in made.connectors:
            await connector.stop(0.0)
        await made.backend.close()
        if kind == "rabbitmq":
            await delete_topology(
                config.bus, {spec.name for spec in connector_queues(config.flows)}
                | {RESULTS.name})
            extra = set(cdr_retry_delays(config.flows)) - set(config.bus.retry_delays_seconds)
            assert not extra, "the test's CDR retry delays must be the bus's (torn down)"
        if state is not None and state.kind == "postgresql":
            await drop_schema(state)


@pytest.fixture(params=["embedded", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
async def env(request: pytest.FixtureRequest, tmp_path: Path, dev_pki: DevPki,
              simulator: Simulator) -> AsyncIterator[FlowEnv]:
    """Flows on each bus, with a SQLite store."""
    kind: str = request.param
    url = request.getfixturevalue("rabbitmq_url") if kind == "rabbitmq" else None
    async for made in _env(kind, tmp_path, dev_pki, simulator, None, url):
        yield made


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
async def store_env(request: pytest.FixtureRequest, tmp_path: Path, dev_pki: DevPki,
                    simulator: Simulator) -> AsyncIterator[FlowEnv]:
    """Flows on the embedded bus, with each state store."""
    kind: str = request.param
    state = None
    if kind == "postgresql":
        state = postgres_state(request.getfixturevalue("postgres_dsn") or POSTGRES_DSN)
    async for made in _env("embedded", tmp_path, dev_pki, simulator, state, None):
        yield made
