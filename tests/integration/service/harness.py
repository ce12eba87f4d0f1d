"""The running service's test harness: a webhook backend, configurations, ``serve`` as a
process, a TCP proxy to cut. Shared by tests/integration/service and tests/e2e/test_serve*.

Hubject is the simulator (mutual TLS, dev PKI); the backend is a webhook server on
127.0.0.1 that answers commands after a chosen delay (the embedded bus POSTs commands to
it); the bus is embedded (SQLite in tmp_path) or RabbitMQ through a TCP proxy the test can
cut; the state store is SQLite in tmp_path. Every port is 0 (the OS picks), and the started
service logs its addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aio_pika
import aio_pika.exceptions
from aiohttp import web

from hubject_connector.bus.contract import Envelope, make_reply, parse_envelope
from hubject_connector.bus.rabbitmq import RabbitMQNames, backend_queues
from hubject_connector.bus.topology import connector_queues
from hubject_connector.certs import DevPki
from hubject_connector.cli.config import to_toml
from hubject_connector.config import Config, FlowsConfig, RabbitMQConfig, load_config
from hubject_connector.simulator import Card, SimulatorConfig

PROG: Final = "hubject-connector"
OPERATOR_ID: Final = "DE*ABC"
EVSE_ID: Final = "DE*ABC*E1234*1"
EVCO_ID: Final = "DE-8PS-C12345678-1"
#: The one card the simulator knows (authorized).
CARD_UID: Final = "04A1B2C3"
#: Upper bound of every wait here: a broken service fails the test instead of hanging it.
WAIT: Final = 30.0


@dataclass
class Backend:
    """A CPO backend on the embedded bus's webhook: answers each command after ``delay``.

    ``commands`` holds each command envelope received; ``received`` is set at the first.
    ``answer`` False makes it refuse with status 400; ``None`` makes it never answer.
    ``hold``, when given, keeps every answer back until the test sets it.
    """

    delay: float = 0.0
    answer: bool | None = True
    hold: asyncio.Event | None = None
    commands: list[Envelope] = field(default_factory=list)
    received: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""
    runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        envelope = parse_envelope(await request.read())
        if envelope.spec.reply_type is None:
            # A delivery result or another notice: acknowledged, nothing to answer.
            return web.Response(status=204)
        self.commands.append(envelope)
        self.received.set()
        if self.answer is None:
            await asyncio.sleep(3600)
        if self.hold is not None:
            await self.hold.wait()
        await asyncio.sleep(self.delay)
        data: dict[str, Any] = {"result": bool(self.answer),
                                "status_code": "000" if self.answer else "400"}
        if self.answer and "session_id" in envelope.data:
            data["session_id"] = envelope.data["session_id"]
        reply = make_reply(envelope, data)
        return web.Response(body=reply.to_bytes(), content_type="application/cloudevents+json")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/connector", self.handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/hooks/connector"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def __aenter__(self) -> Backend:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def simulator_config(pki: DevPki) -> SimulatorConfig:
    """The simulator as Hubject (and as the EMP calling the connector): one card, CARD_UID."""
    return SimulatorConfig.from_dev_pki(pki, cards=(Card(uid=CARD_UID),))


def settings(
    pki: DevPki,
    tmp_path: Path,
    *,
    hubject_url: str,
    webhook_url: str | None = None,
    grace: float = 15.0,
) -> dict[str, Any]:
    """A configuration (as TOML data) for the whole service on 127.0.0.1, free ports."""
    embedded: dict[str, Any] = {
        "path": str(tmp_path / "bus.sqlite3"),
        "http_host": "127.0.0.1",
        "http_port": 0,
        "poll_interval_seconds": 0.1,
    }
    if webhook_url is not None:
        embedded["webhook_url"] = webhook_url
    return {
        "hubject": {
            "operator_id": OPERATOR_ID,
            "operator_name": "ABC Charging",
            "base_url": hubject_url,
            "client_cert": str(pki.cpo_client_cert),
            "client_key": str(pki.cpo_client_key),
            "ca_bundle": str(pki.ca_cert),
            "timeout_seconds": 10.0,
            "retry": {"attempts": 2, "initial_delay_seconds": 0.05, "max_delay_seconds": 0.1},
        },
        "bus": {
            "kind": "embedded",
            "embedded": embedded,
            "retry_delays_seconds": [0.2, 0.2],
        },
        "inbound": {
            "host": "127.0.0.1",
            "port": 0,
            "tls_cert": str(pki.server_cert),
            "tls_key": str(pki.server_key),
            "client_ca": str(pki.ca_cert),
        },
        "ops": {"host": "127.0.0.1", "port": 0},
        "state": {"kind": "sqlite", "sqlite": {"path": str(tmp_path / "state.sqlite3")}},
        "flows": {"cdr_retry_for_seconds": 60.0, "cdr_retry_initial_delay_seconds": 1.0,
                  "cdr_retry_max_delay_seconds": 10.0},
        "service": {"shutdown_grace_seconds": grace},
        "logging": {"format": "json", "level": "info"},
    }


def write_config(path: Path, data: dict[str, Any]) -> Path:
    """``data`` as a TOML configuration file at ``path``."""
    path.write_text(to_toml(data), encoding="utf-8")
    return path


def config_of(tmp_path: Path, data: dict[str, Any]) -> Config:
    """``data`` loaded as ``serve`` loads it (files checked), without the environment."""
    return load_config(write_config(tmp_path / "connector.toml", data), {}, check_files=True)


def free_port() -> int:
    """A port nothing listens on now (for an address that must refuse connections)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_environment() -> dict[str, str]:
    # The child reads HUBJECT_CONNECTOR_* settings: none from the test's environment.
    return {k: v for k, v in os.environ.items() if not k.startswith("HUBJECT_CONNECTOR_")}


@dataclass
class ServeProcess:
    """``python -m hubject_connector serve --config FILE`` and what it wrote."""

    process: asyncio.subprocess.Process
    stderr_lines: list[str] = field(default_factory=list)
    stdout: bytes = b""
    started: dict[str, Any] | None = None
    _started: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def launch(cls, config_file: Path) -> ServeProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hubject_connector", "serve", "--config", str(config_file),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=_clean_environment(),
        )
        made = cls(process)
        made._reader = asyncio.create_task(made._read())
        return made

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stderr_lines.append(line)
            event = log_event(line)
            if event is not None and event.get("event") == "service.started":
                self.started = event
                self._started.set()

    async def wait_started(self) -> dict[str, Any]:
        """The ``service.started`` log line (fails if the process ends first)."""
        ended = asyncio.create_task(self.process.wait())
        started = asyncio.create_task(self._started.wait())
        try:
            await asyncio.wait({ended, started}, timeout=WAIT,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            started.cancel()
        if self.started is None:
            await self.finish()
            raise AssertionError("serve did not start:\n" + "\n".join(self.stderr_lines))
        return self.started

    def signal(self, signum: signal.Signals = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    async def finish(self) -> int:
        """Wait for the exit (at most WAIT seconds, then kill); the exit code."""
        try:
            async with asyncio.timeout(WAIT):
                code = await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError("serve did not exit:\n" + "\n".join(self.stderr_lines)) \
                from None
        if self._reader is not None:
            await self._reader
        assert self.process.stdout is not None
        self.stdout = await self.process.stdout.read()
        return code

    def plain_stderr(self) -> list[str]:
        """The lines of stderr that are not JSON log lines (what a person reads first)."""
        return [line for line in self.stderr_lines if line and log_event(line) is None]

    def messages(self) -> list[str]:
        """``plain_stderr`` without the command's name in front (``hubject-connector: ``)."""
        return [line.removeprefix(f"{PROG}: ") for line in self.plain_stderr()]

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader


@contextlib.asynccontextmanager
async def serve_processes() -> AsyncIterator[list[ServeProcess]]:
    """A list for the ``serve`` processes a test launches; any still running at the end is
    killed."""
    made: list[ServeProcess] = []
    try:
        yield made
    finally:
        for process in made:
            await process.kill()


def log_event(line: str) -> dict[str, Any] | None:
    """The JSON log line's fields, or None for any other line."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) and "event" in value else None


class TcpProxy:
    """A TCP forwarder the test can cut (every connection dropped, new ones refused)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def cut(self) -> None:
        """Stop listening and drop every connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        for task in list(self._pipes):
            task.cancel()
        if self._pipes:
            await asyncio.wait(set(self._pipes))
        if server is not None:
            await server.wait_closed()

    async def restore(self) -> None:
        """Listen again on the same port."""
        await self.start()

    @property
    def url_host(self) -> str:
        return f"127.0.0.1:{self.port}"


async def delete_rabbitmq_topology(
    config: RabbitMQConfig, flows: FlowsConfig, retry_delays: Iterable[float]
) -> None:
    """Delete every queue and exchange a service with these names declared on the broker."""
    names = RabbitMQNames(config)
    specs = [*connector_queues(flows), *backend_queues()]
    delays = set(retry_delays)
    for spec in specs:
        delays.update(spec.retry_delays or ())
    queues = [*(names.queue(spec.name) for spec in specs), names.dead_letter_queue,
              *(names.retry_queue(delay) for delay in delays)]
    exchanges = [names.exchange, names.dead_letter_exchange,
                 *(names.retry_exchange(delay) for delay in delays)]
    connection = await aio_pika.connect(config.url)
    try:
        for queue in queues:
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.queue_delete(queue, if_unused=False, if_empty=False)
            if not channel.is_closed:
                await channel.close()
        for exchange in exchanges:
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.exchange_delete(exchange)
            if not channel.is_closed:
                await channel.close()
    finally:
        await connection.close()


def unique_rabbitmq_names() -> dict[str, str]:
    """Exchange, queue and connection names no other test uses (``[bus.rabbitmq]`` keys)."""
    unique = f"test-service-{uuid.uuid4().hex[:10]}"
    return {
        "exchange": f"{unique}.events",
        "queue_prefix": unique,
        "dead_letter_exchange": f"{unique}.dlx",
        "connection_name": unique,
    }


def rabbitmq_reachable(host: str = "127.0.0.1", port: int = 5672) -> bool:
    """Whether something listens where the broker should."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False
