"""Fixtures of the bus suite: one ``kit`` per adapter, with unique names torn down after.

RabbitMQ tests need the broker at 127.0.0.1:5672 (guest/guest). They fail when it is not
there, with a message saying how to start it, unless CI is unset and
HUBJECT_CONNECTOR_SKIP_RABBITMQ=1, where they are skipped.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aio_pika
import aio_pika.exceptions
import aiohttp
import pytest

from hubject_connector.bus.base import Bus, DeadLetter, IncomingMessage, QueueSpec
from hubject_connector.bus.contract import (
    MESSAGE_SPECS,
    Envelope,
    MessageType,
    make_envelope,
    make_reply,
)
from hubject_connector.bus.embedded import EmbeddedBus
from hubject_connector.bus.embedded_api import HttpApi
from hubject_connector.bus.rabbitmq import RabbitMQBus, RabbitMQNames, backend_queues
from hubject_connector.config import BusConfig, EmbeddedBusConfig, RabbitMQConfig

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
REPO = Path(__file__).resolve().parents[3]
#: Upper bound of every wait in this suite: a broken bus fails instead of hanging.
WAIT = 30.0

T = TypeVar("T")

EVSE_STATUS = str(MessageType.EVSE_STATUS)
REMOTE_START = str(MessageType.REMOTE_START_COMMAND)
#: The backend's command queue (docs/contract.md); on RabbitMQ the bus declares it itself.
COMMANDS = MESSAGE_SPECS[MessageType.REMOTE_START_COMMAND].queue or ""


def status_event(evse: str = "DE*ABC*E123456*1", status: str = "Available") -> Envelope:
    """A valid EVSE status change."""
    return make_envelope(MessageType.EVSE_STATUS, {"evse_id": evse, "status": status})


def remote_start(timeout: float = 8.0) -> Envelope:
    """A valid remote start command."""
    return make_envelope(
        MessageType.REMOTE_START_COMMAND,
        {
            "session_id": str(uuid.uuid4()),
            "provider_id": "DE-8PS",
            "evse_id": "DE*ABC*E123456*1",
            "identification": {"kind": "remote", "evco_id": "DE-8PS-C12345678-1"},
        },
        deadline=datetime.now(UTC) + timedelta(seconds=timeout),
    )


def remote_start_reply(command: Envelope, *, result: bool = True) -> Envelope:
    """A valid reply to ``command``."""
    data: dict[str, Any] = {"result": result, "status_code": "000" if result else "400"}
    if result:
        data["session_id"] = command.data["session_id"]
    return make_reply(command, data)


def status_dict(**changes: Any) -> dict[str, Any]:
    """A valid status change as a JSON object, to break on purpose."""
    document = status_event().to_dict()
    document.update(changes)
    return document


def encode(value: dict[str, Any]) -> bytes:
    """JSON bytes of a JSON object."""
    return json.dumps(value).encode()


async def eventually(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Poll ``check`` until it returns something truthy; fail after WAIT seconds."""
    async with asyncio.timeout(WAIT):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.05)
    raise AssertionError(what)  # pragma: no cover - asyncio.timeout raises first


async def dead_letters_where(
    bus: Bus, what: str, count: int = 1, queue: str | None = None
) -> list[DeadLetter]:
    """Wait until ``count`` dead letters (of ``queue``) exist; return them."""

    async def check() -> list[DeadLetter] | None:
        letters = [
            d for d in await bus.list_dead_letters() if queue is None or d.queue == queue
        ]
        return letters if len(letters) >= count else None

    try:
        return await eventually(check, what)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def publish_as_backend(kit: BusKit, bus: Bus, message: Envelope) -> str:
    """Send ``message`` as a backend does (docs/contract.md): "stored" or "refused".

    On RabbitMQ: a plain AMQP client publishing to the exchange with publisher confirms and
    ``mandatory=True``; "refused" is the broker returning it (no queue bound). On the
    embedded bus: POST /v1/messages; "refused" is the 503 of a type no queue takes.
    """
    if kit.kind == "rabbitmq":
        names = RabbitMQNames(kit.config.rabbitmq)
        connection = await aio_pika.connect(kit.config.rabbitmq.url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            exchange = await channel.get_exchange(names.exchange, ensure=True)
            try:
                await exchange.publish(
                    aio_pika.Message(
                        message.to_bytes(),
                        content_type="application/cloudevents+json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        message_id=message.id,
                        type=str(message.type),
                    ),
                    routing_key=str(message.type),
                    mandatory=True,
                )
            except aio_pika.exceptions.PublishError:
                return "refused"
        return "stored"
    url = getattr(bus, "http_url", None)
    assert url, "the embedded bus must serve its HTTP API (serve=True)"
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/v1/messages",
            data=message.to_bytes(),
            headers={"Content-Type": "application/cloudevents+json"},
        ) as response,
    ):
        assert response.status in (202, 503), await response.text()
        return "stored" if response.status == 202 else "refused"


def _broker_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """The broker's URL; fails (or skips, locally and on request) when it is unreachable."""
    if _broker_reachable():
        return RABBITMQ_URL
    if not os.environ.get("CI") and os.environ.get("HUBJECT_CONNECTOR_SKIP_RABBITMQ") == "1":
        pytest.skip("RabbitMQ unreachable and HUBJECT_CONNECTOR_SKIP_RABBITMQ=1")
    pytest.fail(
        "RabbitMQ is not reachable at 127.0.0.1:5672 (guest/guest). Start it with "
        "`rabbitmq-server -detached` (CI's .ci/run does), or, outside CI, set "
        "HUBJECT_CONNECTOR_SKIP_RABBITMQ=1 to skip the RabbitMQ tests."
    )


@dataclass
class BusKit:
    """Makes buses of one kind that share a queue file or broker names unique to a test."""

    kind: str
    config: BusConfig
    made: list[Bus] = field(default_factory=list)
    queues: set[str] = field(default_factory=set)
    #: Retry delays of queues declared in the test (their retry queues are deleted too).
    delays: set[float] = field(default_factory=set)

    def queue(self, name: str = "work") -> str:
        """A queue name unique to this test (deleted afterwards on the broker)."""
        unique = f"{name}-{uuid.uuid4().hex[:8]}"
        self.queues.add(unique)
        return unique

    def spec(self, spec: QueueSpec) -> QueueSpec:
        """Note a queue declared in the test, for teardown; the spec as it is."""
        self.queues.add(spec.name)
        self.delays.update(spec.retry_delays or ())
        return spec

    def bus(
        self, *, serve: bool = False, queues: Iterable[QueueSpec] = (), **embedded: Any
    ) -> Bus:
        """A new, unconnected bus (``embedded`` overrides EmbeddedBusConfig fields).

        ``serve`` runs the embedded bus's HTTP API and webhook deliveries, as
        ``build_bus`` makes it; ``queues`` are declared at connect().
        """
        queues = [self.spec(spec) for spec in queues]
        made: Bus
        if self.kind == "embedded":
            config = replace(self.config.embedded, **embedded)
            made = EmbeddedBus(
                config,
                retry_delays=self.config.retry_delays_seconds,
                request_timeout=self.config.request_timeout_seconds,
                serve=serve,
                queues=queues,
                http_api=HttpApi if serve else None,
            )
        else:
            made = RabbitMQBus.from_config(self.config, queues=queues)
        self.made.append(made)
        return made

    async def connected(
        self, *, serve: bool = False, queues: Iterable[QueueSpec] = (), **embedded: Any
    ) -> Bus:
        """A new bus, connected (closed at teardown)."""
        made = self.bus(serve=serve, queues=queues, **embedded)
        await made.connect()
        return made

    def subprocess_config(self) -> str:
        """The configuration as JSON, for a helper process (tests/integration/bus/worker)."""
        return json.dumps({"kind": self.kind, "config": asdict(self.config)}, default=str)

    async def close(self) -> None:
        """Close every bus made; on RabbitMQ delete every exchange and queue used."""
        for made in self.made:
            await made.close()
        if self.kind == "rabbitmq":
            await delete_topology(self.config, self.queues, self.delays)


async def delete_topology(
    config: BusConfig, queues: set[str], delays: Iterable[float] = ()
) -> None:
    """Delete the test's exchanges and queues from the broker."""
    names = RabbitMQNames(config.rabbitmq)
    all_delays = {*config.retry_delays_seconds, *delays}
    connection = await aio_pika.connect(config.rabbitmq.url)
    try:
        for queue in [
            *(names.queue(q) for q in queues),
            *(names.queue(spec.name) for spec in backend_queues()),
            names.dead_letter_queue,
            *(names.retry_queue(d) for d in all_delays),
        ]:
            channel = await connection.channel()
            await channel.queue_delete(queue, if_unused=False, if_empty=False)
            await channel.close()
        for exchange in [
            names.exchange,
            names.dead_letter_exchange,
            *(names.retry_exchange(d) for d in all_delays),
        ]:
            channel = await connection.channel()
            await channel.exchange_delete(exchange)
            await channel.close()
    finally:
        await connection.close()


def make_config(kind: str, tmp_path: Path, url: str = RABBITMQ_URL) -> BusConfig:
    """A bus configuration unique to one test, with short delays for a fast suite."""
    unique = f"test-{uuid.uuid4().hex[:10]}"
    return BusConfig(
        kind="rabbitmq" if kind == "rabbitmq" else "embedded",
        rabbitmq=RabbitMQConfig(
            url=url,
            exchange=f"{unique}.events",
            queue_prefix=unique,
            dead_letter_exchange=f"{unique}.dlx",
            prefetch=8,
            reconnect_interval_seconds=0.5,
            connection_name=unique,
        ),
        embedded=EmbeddedBusConfig(
            path=tmp_path / "bus.sqlite3",
            http_host="127.0.0.1",
            http_port=0,
            lease_seconds=1.0,
            poll_interval_seconds=0.1,
        ),
        retry_delays_seconds=(0.2, 0.2, 0.2),
        request_timeout_seconds=5.0,
    )


@pytest.fixture(params=["embedded", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
async def kit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BusKit]:
    """The shared suite runs once on each adapter."""
    kind: str = request.param
    url = request.getfixturevalue("rabbitmq_url") if kind == "rabbitmq" else RABBITMQ_URL
    made = BusKit(kind, make_config(kind, tmp_path, url))
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def rabbit_kit(rabbitmq_url: str, tmp_path: Path) -> AsyncIterator[BusKit]:
    """A kit on RabbitMQ only."""
    made = BusKit("rabbitmq", make_config("rabbitmq", tmp_path, rabbitmq_url))
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def embedded_kit(tmp_path: Path) -> AsyncIterator[BusKit]:
    """A kit on the embedded bus only."""
    made = BusKit("embedded", make_config("embedded", tmp_path))
    try:
        yield made
    finally:
        await made.close()


async def start_worker(kit: BusKit, *args: str) -> asyncio.subprocess.Process:
    """Run tests/integration/bus/worker.py in a child process with the kit's config."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.bus.worker",
        kit.subprocess_config(),
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def read_line(process: asyncio.subprocess.Process, prefix: str) -> str:
    """The rest of the child's next stdout line starting with ``prefix``."""
    assert process.stdout is not None
    async with asyncio.timeout(WAIT):
        while True:
            line = (await process.stdout.readline()).decode()
            if not line:
                assert process.stderr is not None
                err = (await process.stderr.read()).decode()
                raise AssertionError(f"worker exited before {prefix!r}:\n{err}")
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
    raise AssertionError("unreachable")  # pragma: no cover


class Collector:
    """A handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[IncomingMessage] = []
        self._changed = asyncio.Event()

    async def __call__(self, message: IncomingMessage) -> None:
        self.messages.append(message)
        self._changed.set()

    @property
    def ids(self) -> list[str]:
        """The message ids, in the order they arrived."""
        return [m.message_id for m in self.messages]

    async def wait_for(self, count: int) -> list[IncomingMessage]:
        """Wait until ``count`` messages arrived (at most WAIT seconds)."""
        await self.wait_until(lambda: len(self.messages) >= count, f"{count} messages")
        return self.messages

    async def wait_until(self, done: Callable[[], bool], what: str) -> None:
        """Wait until ``done()`` holds, checked at each arrival (at most WAIT seconds)."""
        try:
            async with asyncio.timeout(WAIT):
                while not done():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"waited for {what}, got {len(self.messages)} messages"
            ) from None


def rabbitmqctl_path() -> str:
    """Where rabbitmqctl is (CI and this machine: /usr/sbin), or fail saying so."""
    found = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    if not Path(found).exists():
        pytest.fail("rabbitmqctl not found: it is needed to inspect and drop connections")
    return found


async def rabbitmqctl(*args: str, json_output: bool = True) -> Any:
    """Run ``rabbitmqctl ARGS``; its JSON answer, or its text with ``json_output=False``."""
    process = await asyncio.create_subprocess_exec(
        rabbitmqctl_path(),
        *(["--formatter", "json"] if json_output else ["-q"]),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise AssertionError(f"rabbitmqctl {' '.join(args)} failed: {err.decode()}")
    text = out.decode().strip()
    if not json_output:
        return text
    return json.loads(text) if text else None


async def connection_pids(connection_name: str) -> list[str]:
    """The broker's pids of the connections with that (unique) name."""
    # The text output, because the JSON one writes pids in a form close_connection refuses.
    listing = await rabbitmqctl(
        "list_connections", "--no-table-headers", "pid", "client_properties", json_output=False
    )
    pids = []
    for line in listing.splitlines():
        pid, _, properties = line.partition("\t")
        if f'"{connection_name}"' in properties:
            pids.append(pid.strip())
    return pids


async def close_connections(connection_name: str) -> list[str]:
    """Close, from the broker's side, every connection with that name; their pids."""
    pids = await connection_pids(connection_name)
    for pid in pids:
        await rabbitmqctl("close_connection", pid, "test", json_output=False)
    return pids
