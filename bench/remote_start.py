"""Remote-start round trips through the connector, against the same RabbitMQ exchange without it.

Measured, in one run, on one machine, alternating in blocks so that both see the same load:

* **connector**: the simulator as EMP sends eRoamingAuthorizeRemoteStart over mutual TLS
  (keep-alive) to the inbound server, which decodes it, sends the command over RabbitMQ to
  an echo backend, waits for its reply and answers the eRoamingAcknowledgement;
* **baseline**: the same command envelope published straight to RabbitMQ with ``reply_to``
  and answered by the same echo backend: the request/reply the connector cannot avoid.

Prints p50, p99 and mean of both and their ratios, and appends them to bench/results.md
with the machine and the date. Needs RabbitMQ at ``--amqp`` (default 127.0.0.1:5672).

Run: ``.venv/bin/python -m bench.remote_start`` (or ``bench/remote_start.py``) ``[--count N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aio_pika
import aio_pika.abc
from prometheus_client import CollectorRegistry

from hubject_connector.bus.contract import MessageType, make_envelope
from hubject_connector.bus.factory import build_bus
from hubject_connector.certs import DevPki, make_dev_pki
from hubject_connector.config import BusConfig, Config, InboundConfig, RabbitMQConfig
from hubject_connector.inbound import InboundServer
from hubject_connector.logs import configure_logging
from hubject_connector.simulator import SimulatorEmp

RESULTS: Final = Path(__file__).resolve().parent / "results.md"
EVSE_ID: Final = "DE*ABC*E123456*1"
EVCO_ID: Final = "DE-8PS-C12345678-9"
PROVIDER_ID: Final = "DE-8PS"
COMMAND: Final = str(MessageType.REMOTE_START_COMMAND)


@dataclass(frozen=True)
class Figures:
    """Latencies of one kind of round trip, in seconds."""

    samples: list[float]

    @property
    def p50(self) -> float:
        """The median."""
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        """The 99th percentile (inclusive method)."""
        return statistics.quantiles(self.samples, n=100, method="inclusive")[98]

    @property
    def mean(self) -> float:
        """The mean."""
        return statistics.fmean(self.samples)


@contextlib.asynccontextmanager
async def echo_backend(url: str, prefix: str) -> AsyncIterator[None]:
    """A backend that carries out every command at once (raw aio-pika, as a CPO would)."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=64)
        queue = await channel.declare_queue(f"{prefix}.backend.commands", passive=True)

        async def on_command(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                command = json.loads(message.body)
                reply = {
                    "specversion": "1.0", "id": str(uuid.uuid4()), "source": "urn:bench-backend",
                    "type": command["type"].replace(".command.", ".reply."),
                    "time": dt.datetime.now(dt.UTC).isoformat(),
                    "datacontenttype": "application/json", "correlationid": command["id"],
                    "data": {"result": True, "status_code": "000",
                             "session_id": command["data"]["session_id"]},
                }
                await channel.default_exchange.publish(
                    aio_pika.Message(json.dumps(reply).encode(),
                                     correlation_id=message.correlation_id,
                                     content_type="application/cloudevents+json"),
                    routing_key=message.reply_to or "",
                )

        await queue.consume(on_command)
        yield
    finally:
        await connection.close()


class RawRequester:
    """The baseline: one command published to the exchange, its reply awaited, no connector."""

    def __init__(self, url: str, exchange: str) -> None:
        self._url = url
        self._exchange_name = exchange
        self._waiting: dict[str, asyncio.Future[bytes]] = {}

    async def __aenter__(self) -> RawRequester:
        self._connection = await aio_pika.connect(self._url)
        channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await channel.get_exchange(self._exchange_name)
        self._replies = await channel.declare_queue(exclusive=True, auto_delete=True)
        await self._replies.consume(self._on_reply, no_ack=True)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._connection.close()

    async def _on_reply(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        future = self._waiting.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(message.body)

    async def remote_start(self) -> None:
        """One command and its reply, as the connector's bus would send it."""
        command = make_envelope(
            COMMAND,
            {"session_id": str(uuid.uuid4()), "provider_id": PROVIDER_ID, "evse_id": EVSE_ID,
             "identification": {"kind": "remote", "evco_id": EVCO_ID}},
            deadline=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=8),
        )
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[command.id] = future
        await self._exchange.publish(
            aio_pika.Message(command.to_bytes(), correlation_id=command.id,
                             reply_to=self._replies.name, message_id=command.id,
                             content_type="application/cloudevents+json",
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=COMMAND,
        )
        async with asyncio.timeout(10):
            await future


async def measure(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    """``count`` sequential calls, each timed."""
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


async def run(count: int, amqp: str, blocks: int) -> tuple[Figures, Figures]:
    """Measure both kinds of round trip; (connector, baseline)."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    bus_config = BusConfig(
        kind="rabbitmq",
        rabbitmq=RabbitMQConfig(url=amqp, exchange=f"{prefix}.events", queue_prefix=prefix,
                                dead_letter_exchange=f"{prefix}.dlx", connection_name=prefix),
    )
    with tempfile.TemporaryDirectory(prefix="bench-remote-start-") as directory:
        pki: DevPki = make_dev_pki(Path(directory), operator_id="DE*ABC")
        inbound = InboundConfig(host="127.0.0.1", port=0, tls_cert=pki.server_cert,
                                tls_key=pki.server_key, client_ca=pki.ca_cert)
        bus = build_bus(bus_config)
        await bus.connect()
        server = InboundServer(Config(bus=bus_config, inbound=inbound), bus=bus,
                               registry=CollectorRegistry())
        try:
            await server.start()
            async with echo_backend(amqp, prefix), \
                    RawRequester(amqp, bus_config.rabbitmq.exchange) as raw, \
                    SimulatorEmp(server.url, cert=pki.hubject_client_cert,
                                 key=pki.hubject_client_key, ca=pki.ca_cert,
                                 provider_id=PROVIDER_ID) as emp:

                async def through_connector() -> None:
                    ack = await emp.remote_start(EVSE_ID, EVCO_ID)
                    if not ack.result:
                        raise RuntimeError(f"the remote start was refused: {ack}")

                # Warm up connections, caches and the broker's queues.
                await measure(through_connector, max(10, count // 20))
                await measure(raw.remote_start, max(10, count // 20))
                connector: list[float] = []
                baseline: list[float] = []
                per_block = max(1, count // blocks)
                for _ in range(blocks):
                    connector += await measure(through_connector, per_block)
                    baseline += await measure(raw.remote_start, per_block)
        finally:
            await server.stop(5.0)
            await bus.close()
            await _delete_topology(amqp, bus_config)
    return Figures(connector), Figures(baseline)


async def _delete_topology(amqp: str, config: BusConfig) -> None:
    """Remove the bench's queues and exchanges from the broker."""
    names = config.rabbitmq
    connection = await aio_pika.connect(amqp)
    try:
        channel = await connection.channel()
        queues = [f"{names.queue_prefix}.{suffix}" for suffix in
                  ("backend.commands", "backend.results", "dead-letters")]
        queues += [f"{names.queue_prefix}.retry.{round(d * 1000)}ms"
                   for d in config.retry_delays_seconds]
        for queue in queues:
            await channel.queue_delete(queue)
        exchanges = [names.exchange, names.dead_letter_exchange]
        exchanges += [f"{names.exchange}.retry.{round(d * 1000)}ms"
                      for d in config.retry_delays_seconds]
        for exchange in exchanges:
            await channel.exchange_delete(exchange)
    except aio_pika.exceptions.AMQPError as exc:
        print(f"note: could not delete every bench queue: {exc!r}", file=sys.stderr)
    finally:
        await connection.close()


def machine() -> str:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    return (f"{platform.node()}, {cpu}, {os.cpu_count()} CPUs, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


def report(connector: Figures, baseline: Figures, count: int) -> str:
    """The figures as a Markdown section."""
    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.2f}"

    when = dt.datetime.now(dt.UTC).astimezone().isoformat(timespec="seconds")
    lines = [
        f"## remote_start: {when}",
        "",
        f"Machine: {machine()}. {count} sequential round trips each, alternating in blocks; "
        "EMP, connector, backend and baseline client share one process and event loop.",
        "",
        "| round trip | p50 ms | p99 ms | mean ms |",
        "|---|---:|---:|---:|",
        f"| EMP → connector (mTLS) → RabbitMQ → echo backend → back | {ms(connector.p50)} | "
        f"{ms(connector.p99)} | {ms(connector.mean)} |",
        f"| RabbitMQ request/reply alone (baseline) | {ms(baseline.p50)} | {ms(baseline.p99)} | "
        f"{ms(baseline.mean)} |",
        f"| ratio connector / baseline | {connector.p50 / baseline.p50:.2f} | "
        f"{connector.p99 / baseline.p99:.2f} | {connector.mean / baseline.mean:.2f} |",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the figures, append them to bench/results.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=500, help="round trips of each kind")
    parser.add_argument("--blocks", type=int, default=5, help="alternations of the two kinds")
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/",
                        help="the RabbitMQ broker")
    parser.add_argument("--no-record", action="store_true",
                        help="print only; do not append to bench/results.md")
    args = parser.parse_args(argv)
    # As in service: every request logged as JSON, here to nowhere, so that the cost of
    # logging is measured but the terminal does not slow the run.
    with open(os.devnull, "w") as null:
        configure_logging("json", "info", stream=null)
        connector, baseline = asyncio.run(run(args.count, args.amqp, args.blocks))
    text = report(connector, baseline, len(connector.samples))
    print(text)
    if not args.no_record:
        with RESULTS.open("a", encoding="utf-8") as results:
            if results.tell() == 0:
                results.write("# Benchmark results\n\nAppended by each run of a benchmark.\n\n")
            results.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

