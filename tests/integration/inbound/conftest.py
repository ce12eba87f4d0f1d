"""The inbound server on 127.0.0.1 with the dev PKI, a bus, and a test backend answering on it.

The backend is written against docs/contract.md only, as a CPO's developer would write it:
on RabbitMQ a raw aio-pika consumer of ``<prefix>.backend.commands`` that publishes its
reply to the AMQP ``reply_to``; on the embedded bus an HTTP webhook whose response body is
the reply. Both keep the delivery results they receive.

RabbitMQ tests use a queue prefix unique to the test and delete what they declared.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import aio_pika.abc
import aiohttp
import pytest
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from hubject_connector.bus.base import Bus
from hubject_connector.bus.factory import build_bus
from hubject_connector.certs import DevPki
from hubject_connector.config import BusConfig, Config, InboundConfig
from hubject_connector.inbound import InboundServer
from hubject_connector.simulator import Simulator, SimulatorConfig
from tests.integration.bus.conftest import (
    RABBITMQ_URL,
    delete_topology,
    make_config,
    rabbitmq_url,  # noqa: F401 - the fixture, shared with the bus suite
)

#: Upper bound of every wait here: a broken server fails the test instead of hanging it.
WAIT = 20.0
EVSE_ID = "DE*ABC*E123456*1"
EVCO_ID = "DE-8PS-C12345678-9"
COMMANDS_QUEUE = "backend.commands"
RESULTS_QUEUE = "backend.results"
DELIVERY_RESULT = "com.hubject-connector.delivery.result.v1"

#: What the backend does with a command: the reply's ``data`` (None: no reply at all)
#: and how long it waits before replying.
Behaviour = Callable[[dict[str, Any]], "Answer"]


@dataclass(frozen=True)
class Answer:
    """The backend's reply data to one command, after ``delay`` seconds (None: never)."""

    data: dict[str, Any] | None
    delay: float = 0.0
    #: Replace the reply's type (to send a wrong one on purpose).
    reply_type: str | None = None


def accept(command: dict[str, Any]) -> Answer:
    """Carry out every command: result true, 000, our own session ID on starts."""
    data: dict[str, Any] = {"result": True, "status_code": "000"}
    session_id = command["data"].get("session_id")
    if session_id:
        data["session_id"] = session_id
    if command["type"].endswith(".start.command.v1"):
        data["cpo_partner_session_id"] = "cpo-" + command["id"][:8]
    return Answer(data)


def reply_envelope(command: dict[str, Any], answer: Answer) -> dict[str, Any]:
    """The reply to ``command`` as docs/contract.md writes it."""
    assert answer.data is not None
    reply: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "urn:test-backend",
        "type": answer.reply_type or command["type"].replace(".command.", ".reply."),
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "correlationid": command["id"],
        "data": answer.data,
    }
    if "subject" in command:
        reply["subject"] = command["subject"]
    return reply


@dataclass
class Backend:
    """What a test backend saw and sent."""

    behaviour: Behaviour = accept
    commands: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def seen(self, kind: list[dict[str, Any]], document: dict[str, Any]) -> None:
        """Keep ``document`` and wake whoever waits."""
        kind.append(document)
        self.changed.set()

    async def wait_for(self, what: Callable[[], bool], description: str) -> None:
        """Wait until ``what()`` holds (at most WAIT seconds)."""
        try:
            async with asyncio.timeout(WAIT):
                while not what():
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"waited for {description}; commands {len(self.commands)}, replies "
                f"{len(self.replies)}, results {self.results}"
            ) from None


class RabbitBackend(Backend):
    """A backend on RabbitMQ, with aio-pika and nothing of the connector's code."""

    @contextlib.asynccontextmanager
    async def run(self, url: str, prefix: str) -> AsyncIterator[None]:
        """Consume commands and delivery results until the test ends."""
        connection = await aio_pika.connect(url)
        tasks: set[asyncio.Task[None]] = set()
        try:
            channel = await connection.channel()
            commands = await channel.get_queue(f"{prefix}.{COMMANDS_QUEUE}", ensure=True)
            results = await channel.get_queue(f"{prefix}.{RESULTS_QUEUE}", ensure=True)

            async def on_command(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                async with message.process():
                    command = json.loads(message.body)
                    self.seen(self.commands, command)
                    answer = self.behaviour(command)
                    if answer.data is None:
                        return
                    task = asyncio.create_task(
                        self._reply(channel, message.reply_to or "", command, answer)
                    )
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)

            async def on_result(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                async with message.process():
                    self.seen(self.results, json.loads(message.body))

            await commands.consume(on_command)
            await results.consume(on_result)
            yield
        finally:
            for task in tasks:
                task.cancel()
            await connection.close()

    async def _reply(self, channel: aio_pika.abc.AbstractChannel, reply_to: str,
                     command: dict[str, Any], answer: Answer) -> None:
        await asyncio.sleep(answer.delay)
        reply = reply_envelope(command, answer)
        await channel.default_exchange.publish(
            aio_pika.Message(
                json.dumps(reply).encode(),
                correlation_id=command["id"],
                content_type="application/cloudevents+json",
                message_id=reply["id"],
            ),
            routing_key=reply_to,
        )
        self.seen(self.replies, reply)


class WebhookBackend(Backend):
    """A backend behind the embedded bus's webhook: the response body is the reply."""

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[str]:
        """Serve the webhook on 127.0.0.1; yields its URL."""

        released = asyncio.Event()

        async def webhook(request: web.Request) -> web.Response:
            document = await request.json()
            if request.headers.get("X-Routing-Key") == DELIVERY_RESULT:
                self.seen(self.results, document)
                return web.Response(status=204)
            self.seen(self.commands, document)
            answer = self.behaviour(document)
            if answer.data is None:
                # Hold the call as a stuck backend would, until the test ends.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(released.wait(), WAIT)
                return web.Response(status=503)
            await asyncio.sleep(answer.delay)
            reply = reply_envelope(document, answer)
            self.seen(self.replies, reply)
            return web.json_response(reply, content_type="application/cloudevents+json")

        app = web.Application()
        app.router.add_post("/hook", webhook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            yield f"http://127.0.0.1:{site.port}/hook"
        finally:
            released.set()
            await runner.cleanup()


def inbound_settings(pki: DevPki, **changes: Any) -> InboundConfig:
    """The inbound server on 127.0.0.1, a free port, with the dev PKI: mTLS required."""
    settings = InboundConfig(
        host="127.0.0.1",
        port=0,
        tls_cert=pki.server_cert,
        tls_key=pki.server_key,
        client_ca=pki.ca_cert,
        client_cert_mode="required",
        reply_deadline_seconds=5.0,
        read_timeout_seconds=5.0,
    )
    return replace(settings, **changes)


@dataclass
class Stack:
    """A running inbound server, its bus and its backend."""

    server: InboundServer
    bus: Bus
    backend: Backend
    registry: CollectorRegistry
    kind: str

    def metric(self, name: str, **labels: str) -> float:
        """A sample's value from the server's registry (0 when absent)."""
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


@pytest.fixture(autouse=True)
def default_structlog() -> Iterator[None]:
    """structlog's defaults, so ``capture_logs`` sees every level whatever ran before."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    yield
    structlog.configure(**saved)


@pytest.fixture
async def simulator(dev_pki: DevPki) -> AsyncIterator[Simulator]:
    """The simulator, here only to act as the EMP calling through Hubject."""
    async with Simulator(SimulatorConfig.from_dev_pki(dev_pki)) as running:
        yield running


class StackFactory:
    """Starts stacks on one kind of bus; stops them and deletes their topology after."""

    def __init__(self, kind: str, pki: DevPki, tmp_path: Path, broker: str) -> None:
        self.kind = kind
        self.pki = pki
        self.tmp_path = tmp_path
        self.rabbitmq_url = broker
        self._exits = contextlib.AsyncExitStack()

    async def start(self, behaviour: Behaviour = accept, **inbound: Any) -> Stack:
        """A server with ``inbound`` settings, its bus, and a backend doing ``behaviour``."""
        bus_config: BusConfig = make_config(self.kind, self.tmp_path / uuid.uuid4().hex[:8],
                                            self.rabbitmq_url)
        exits = self._exits
        backend: Backend
        if self.kind == "embedded":
            webhook = WebhookBackend(behaviour)
            url = await exits.enter_async_context(webhook.run())
            bus_config = replace(
                bus_config, embedded=replace(bus_config.embedded, webhook_url=url)
            )
            backend = webhook
        else:
            backend = RabbitBackend(behaviour)
            exits.push_async_callback(delete_topology, bus_config, set())
        bus = build_bus(bus_config)
        await bus.connect()
        exits.push_async_callback(bus.close)
        if isinstance(backend, RabbitBackend):
            await exits.enter_async_context(
                backend.run(self.rabbitmq_url, bus_config.rabbitmq.queue_prefix)
            )
        registry = CollectorRegistry()
        config = Config(bus=bus_config, inbound=inbound_settings(self.pki, **inbound))
        server = InboundServer(config, bus=bus, registry=registry)
        await server.start()
        exits.push_async_callback(server.stop, 1.0)
        return Stack(server, bus, backend, registry, self.kind)

    async def close(self) -> None:
        """Stop everything started, newest first."""
        await self._exits.aclose()


def _rabbitmq_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("rabbitmq_url")
    return url


@pytest.fixture(params=[pytest.param("rabbitmq", marks=pytest.mark.rabbitmq), "embedded"])
async def stacks(request: pytest.FixtureRequest, dev_pki: DevPki,
                 tmp_path: Path) -> AsyncIterator[StackFactory]:
    """Stacks on RabbitMQ and on the embedded bus."""
    kind: str = request.param
    url = _rabbitmq_url(request) if kind == "rabbitmq" else RABBITMQ_URL
    factory = StackFactory(kind, dev_pki, tmp_path, url)
    try:
        yield factory
    finally:
        await factory.close()


@pytest.fixture
async def embedded_stacks(dev_pki: DevPki, tmp_path: Path) -> AsyncIterator[StackFactory]:
    """Stacks on the embedded bus only (for what does not depend on the bus)."""
    factory = StackFactory("embedded", dev_pki, tmp_path, RABBITMQ_URL)
    try:
        yield factory
    finally:
        await factory.close()


@pytest.fixture
async def rabbit_stacks(dev_pki: DevPki, tmp_path: Path,
                        request: pytest.FixtureRequest) -> AsyncIterator[StackFactory]:
    """Stacks on RabbitMQ only."""
    factory = StackFactory("rabbitmq", dev_pki, tmp_path, _rabbitmq_url(request))
    try:
        yield factory
    finally:
        await factory.close()



def client_context(pki: DevPki, cert: Path | None = None, key: Path | None = None,
                   ) -> ssl.SSLContext:
    """A client context trusting the dev CA for the server, presenting ``cert`` if given."""
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def remote_start_body(provider_id: str = "DE-8PS", **changes: Any) -> dict[str, Any]:
    """A valid eRoamingAuthorizeRemoteStart as JSON."""
    body: dict[str, Any] = {
        "SessionID": str(uuid.uuid4()),
        "ProviderID": provider_id,
        "EvseID": EVSE_ID,
        "Identification": {"RemoteIdentification": {"EvcoID": EVCO_ID}},
    }
    body.update(changes)
    return body


START_PATH = "/charging/v21/providers/{provider}/authorize-remote/start"


async def post(url: str, body: bytes | dict[str, Any], *, context: ssl.SSLContext | None,
               headers: dict[str, str] | None = None, method: str = "POST",
               ) -> tuple[int, dict[str, Any]]:
    """Send one request; the HTTP status and the JSON answer."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    connector = aiohttp.TCPConnector(ssl=context if context is not None else False)
    async with aiohttp.ClientSession(connector=connector) as session, session.request(
        method, url, data=data,
        headers={"Content-Type": "application/json", **(headers or {})},
        timeout=aiohttp.ClientTimeout(total=WAIT),
    ) as response:
        return response.status, await response.json(content_type=None)


async def eventually(check: Callable[[], bool], what: str) -> None:
    """Wait until ``check()`` holds (at most WAIT seconds), polling."""
    try:
        async with asyncio.timeout(WAIT):
            while True:
                if check():
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"waited for {what}") from None
