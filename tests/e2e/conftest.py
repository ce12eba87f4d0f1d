"""End to end: a backend that speaks only docs/contract.md, the connector, the simulator.

The backend here uses none of the connector's classes. On RabbitMQ it is raw aio-pika:
publisher confirms, ``mandatory``, the message properties the contract lists, a reply
queue of its own for authorization requests, and it consumes
``<prefix>.backend.results``. On the embedded bus it POSTs each message to
``/v1/messages`` and runs the webhook the connector POSTs results and replies to.

The connector runs in the test's process (state store, bus, Hubject client and flows, as
the service starts them) against the simulator over mutual TLS; what the simulator
records is checked against Hubject's official OpenAPI (the oracle of
tests/unit/oicp_conformance).
"""

from __future__ import annotations

import abc
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

import aio_pika
import aiohttp
import pytest
from aiohttp import web

from hubject_connector.bus.topology import connector_queues
from hubject_connector.certs import DevPki
from hubject_connector.config import Config
from hubject_connector.oicp.operations import operation as find_operation
from hubject_connector.simulator import RecordedRequest, Simulator
from tests.integration.bus.conftest import delete_topology, rabbitmq_url
from tests.integration.flows.conftest import (
    RESULTS,
    Connector,
    eventually,
    flow_config,
    simulator,
    simulator_config,
)
from tests.integration.service.harness import ServeProcess, serve_processes
from tests.unit.oicp_conformance.conftest import Spec, component_ref

__all__ = ["rabbitmq_url", "simulator", "simulator_config"]

CLOUDEVENTS: Final = "application/cloudevents+json"
RESULT_TYPE: Final = "com.hubject-connector.delivery.result.v1"
SCRIPT = Path(sys.executable).with_name("hubject-connector")


class Backend(abc.ABC):
    """A CPO backend as docs/contract.md describes one."""

    def __init__(self) -> None:
        self.results: list[dict[str, Any]] = []
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}

    @abc.abstractmethod
    async def send(self, doc: dict[str, Any]) -> str:
        """Send one event; its id once the bus holds it."""

    @abc.abstractmethod
    async def _send_request(self, doc: dict[str, Any]) -> None:
        """Send one request whose reply ``_reply`` receives."""

    async def ask(self, doc: dict[str, Any], give_up_after: float = 15.0) -> dict[str, Any]:
        """Send a request; its reply envelope (as JSON)."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[doc["id"]] = future
        await self._send_request(doc)
        async with asyncio.timeout(give_up_after):
            return await future

    def _reply(self, correlation_id: str | None, reply: dict[str, Any]) -> None:
        future = self._replies.pop(correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(reply)

    def results_of(self, message_id: str) -> list[dict[str, Any]]:
        """The delivery results (envelopes as JSON) about ``message_id`` so far."""
        return [r for r in self.results if r["data"]["message_id"] == message_id]

    async def result(self, message_id: str) -> dict[str, Any]:
        """The data of the first delivery result about ``message_id``, waiting for it."""
        found = await eventually(lambda: self.results_of(message_id),
                                 f"a delivery result about {message_id}")
        data: dict[str, Any] = found[0]["data"]
        return data

    @abc.abstractmethod
    async def close(self) -> None:
        """Disconnect."""


class RabbitBackend(Backend):
    """Raw aio-pika, as the contract says: confirms, mandatory, properties, reply_to."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.settings = config.bus.rabbitmq
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._reply_queue: aio_pika.abc.AbstractQueue | None = None

    async def start(self) -> RabbitBackend:
        """Connect, consume the results queue and a reply queue of its own."""
        self._connection = await aio_pika.connect(self.settings.url)
        channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await channel.get_exchange(self.settings.exchange)
        results = await channel.get_queue(f"{self.settings.queue_prefix}.{RESULTS.name}")
        await results.consume(self._on_result)
        self._reply_queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await self._reply_queue.consume(self._on_reply, no_ack=True)
        return self

    async def _on_result(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            self.results.append(json.loads(message.body))

    async def _on_reply(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self._reply(message.correlation_id, json.loads(message.body))

    def _message(self, doc: dict[str, Any], **properties: Any) -> aio_pika.Message:
        return aio_pika.Message(
            json.dumps(doc).encode(), content_type=CLOUDEVENTS,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=doc["id"],
            type=doc["type"], **properties)

    async def send(self, doc: dict[str, Any]) -> str:
        assert self._exchange is not None
        # Confirmed and routed (mandatory): once this returns, the broker holds it.
        await self._exchange.publish(self._message(doc), routing_key=doc["type"],
                                     mandatory=True)
        return str(doc["id"])

    async def _send_request(self, doc: dict[str, Any]) -> None:
        assert self._exchange is not None
        assert self._reply_queue is not None
        await self._exchange.publish(
            self._message(doc, reply_to=self._reply_queue.name, correlation_id=doc["id"]),
            routing_key=doc["type"], mandatory=True)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()


class HttpBackend(Backend):
    """The embedded bus's HTTP API and a webhook, as the contract says."""

    def __init__(self) -> None:
        super().__init__()
        self.messages_url = ""
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.webhook_url = ""

    async def start_webhook(self) -> str:
        """Listen for what the connector POSTs; the webhook's URL."""
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.webhook_url = f"http://{host}:{port}/hook"
        self._session = aiohttp.ClientSession()
        return self.webhook_url

    async def _hook(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        if request.headers.get("X-Routing-Key") == RESULT_TYPE:
            self.results.append(body)
        else:
            self._reply(request.headers.get("X-Correlation-ID") or body.get("correlationid"),
                        body)
        return web.json_response({})

    async def _post(self, doc: dict[str, Any]) -> None:
        assert self._session is not None
        async with self._session.post(
            self.messages_url, data=json.dumps(doc).encode(),
            headers={"Content-Type": CLOUDEVENTS},
        ) as response:
            text = await response.text()
            assert response.status == 202, f"{response.status}: {text}"

    async def send(self, doc: dict[str, Any]) -> str:
        await self._post(doc)
        return str(doc["id"])

    async def _send_request(self, doc: dict[str, Any]) -> None:
        await self._post(doc)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()


class EndToEnd:
    """A connector between the backend and the simulator."""

    def __init__(self, kind: str, config: Config, simulator: Simulator,
                 backend: Backend) -> None:
        self.kind = kind
        self.config = config
        self.simulator = simulator
        self.backend = backend
        self.connector: Connector | None = None

    def requests(self, operation: str) -> list[RecordedRequest]:
        """What the simulator received for ``operation``."""
        return self.simulator.requests_of(operation)

    def write_config(self, path: Path) -> Path:
        """The connector's bus settings as a TOML file, for the ``dlq`` command."""
        bus = self.config.bus
        rabbit = bus.rabbitmq
        delays = ", ".join(str(d) for d in bus.retry_delays_seconds)
        flows = self.config.flows
        path.write_text(
            f'[bus]\nkind = "{bus.kind}"\nretry_delays_seconds = [{delays}]\n'
            f'[bus.embedded]\npath = "{bus.embedded.path}"\nhttp_port = 0\n'
            f'[bus.rabbitmq]\nurl = "{rabbit.url}"\nexchange = "{rabbit.exchange}"\n'
            f'queue_prefix = "{rabbit.queue_prefix}"\n'
            f'dead_letter_exchange = "{rabbit.dead_letter_exchange}"\n'
            f"[flows]\ncdr_retry_for_seconds = {flows.cdr_retry_for_seconds}\n"
            f"cdr_retry_initial_delay_seconds = {flows.cdr_retry_initial_delay_seconds}\n"
            f"cdr_retry_max_delay_seconds = {flows.cdr_retry_max_delay_seconds}\n",
            encoding="utf-8",
        )
        return path


async def hubject_connector(*args: str) -> tuple[int, str, str]:
    """Run the ``hubject-connector`` command as an operator would."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HUBJECT_CONNECTOR_")}
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT), "--log-level", "error", *args, env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def conforms(spec: Spec, record: RecordedRequest) -> list[str]:
    """How the recorded request breaks Hubject's official OpenAPI (empty: it conforms)."""
    payload = json.loads(record.raw_body)
    schema = spec.request_schema(find_operation(record.operation))
    ref = schema.get("$ref")
    if ref is None:
        # The notifications' oneOf cannot tell the types apart: the Type's own schema.
        ref = component_ref(type(record.message).OICP_NAME)  # type: ignore[attr-defined]
    return spec.errors(str(ref), payload)


@pytest.fixture
async def launched() -> AsyncIterator[list[ServeProcess]]:
    """``serve`` processes a test launched; any still running at its end is killed."""
    async with serve_processes() as made:
        yield made


@pytest.fixture(scope="session")
def spec(cpo_openapi: dict[str, Any]) -> Spec:
    """The official CPO OpenAPI of OICP 2.3 as the oracle."""
    return Spec(cpo_openapi)


@pytest.fixture(params=["embedded", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
async def e2e(request: pytest.FixtureRequest, tmp_path: Path, dev_pki: DevPki,
              simulator: Simulator) -> AsyncIterator[EndToEnd]:
    """The backend, a started connector and the simulator, on each bus."""
    kind: str = request.param
    url = request.getfixturevalue("rabbitmq_url") if kind == "rabbitmq" else None
    config = flow_config(kind, tmp_path, dev_pki, simulator, url=url)
    backend: Backend
    if kind == "embedded":
        http = HttpBackend()
        webhook = await http.start_webhook()
        config = replace(config, bus=replace(
            config.bus, embedded=replace(config.bus.embedded, webhook_url=webhook)))
        backend = http
    else:
        backend = RabbitBackend(config)
    made = EndToEnd(kind, config, simulator, backend)
    connector = Connector(config)
    try:
        await connector.start()
        made.connector = connector
        if isinstance(backend, HttpBackend):
            assert connector.bus is not None
            http_url = getattr(connector.bus, "http_url", None)
            assert http_url, "the embedded bus serves its HTTP API"
            backend.messages_url = f"{http_url}/v1/messages"
        else:
            assert isinstance(backend, RabbitBackend)
            await backend.start()
        yield made
    finally:
        await connector.stop(0.0)
        await backend.close()
        if kind == "rabbitmq":
            await delete_topology(
                config.bus, {s.name for s in connector_queues(config.flows)} | {RESULTS.name})
