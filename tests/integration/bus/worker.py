"""A bus client in a child process, for tests that kill -9 it.

    python -m tests.integration.bus.worker CONFIG_JSON hold QUEUE [ordered]
        consume QUEUE (with "ordered": the status queue QUEUE, ordered); print
        "HOLDING <message id>" for the first message and never finish handling it (it
        stays unacked / leased until the process dies).
    python -m tests.integration.bus.worker CONFIG_JSON serve QUEUE
        embedded bus only: declare QUEUE for status changes, run the HTTP API and print
        "LISTENING <url>"; consume nothing (what the API stored stays in the file).
    python -m tests.integration.bus.worker CONFIG_JSON stream QUEUE COUNT
        publish COUNT status messages, printing "PUBLISHED <id>" once each is durable,
        while consuming QUEUE one message at a time, printing "HANDLED <id>" in the
        handler (so every earlier HANDLED message has been acknowledged).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from hubject_connector.bus.base import Bus, IncomingMessage, QueueSpec
from hubject_connector.bus.embedded import EmbeddedBus
from hubject_connector.bus.factory import build_bus
from hubject_connector.bus.rabbitmq import RabbitMQBus
from hubject_connector.config import BusConfig, EmbeddedBusConfig, RabbitMQConfig
from tests.integration.bus.conftest import EVSE_STATUS, status_event


def _config(raw: dict[str, Any]) -> BusConfig:
    embedded = dict(raw["embedded"])
    embedded["path"] = Path(embedded["path"])
    return BusConfig(
        kind=raw["kind"],
        rabbitmq=RabbitMQConfig(**{**raw["rabbitmq"], "password_file": None}),
        embedded=EmbeddedBusConfig(**embedded),
        retry_delays_seconds=tuple(raw["retry_delays_seconds"]),
        request_timeout_seconds=raw["request_timeout_seconds"],
    )


def _bus(kind: str, config: BusConfig) -> Bus:
    if kind == "embedded":
        return EmbeddedBus.from_config(config, serve=False)
    return RabbitMQBus.from_config(config)


def say(line: str) -> None:
    """One line to the test, at once."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def hold(bus: Bus, queue: str, ordered: bool = False) -> None:
    """Take one message and never let go of it."""

    async def handler(message: IncomingMessage) -> None:
        say(f"HOLDING {message.message_id}")
        await asyncio.Event().wait()

    spec = QueueSpec(queue, bindings=(EVSE_STATUS,), ordered=True) if ordered else queue
    await bus.consume(spec, handler, prefetch=1)
    say("READY")
    await asyncio.Event().wait()


async def stream(bus: Bus, queue: str, count: int) -> None:
    """Publish and consume at the same time until killed."""

    async def handler(message: IncomingMessage) -> None:
        say(f"HANDLED {message.message_id}")

    await bus.consume(QueueSpec(queue, bindings=(EVSE_STATUS,)), handler, prefetch=1)
    say("READY")
    for _ in range(count):
        message_id = await bus.publish(EVSE_STATUS, status_event())
        say(f"PUBLISHED {message_id}")
    await asyncio.Event().wait()


async def serve(bus: EmbeddedBus, queue: str) -> None:
    """Take messages on the HTTP API until killed."""
    await bus.declare(QueueSpec(queue, bindings=(EVSE_STATUS,)))
    say(f"LISTENING {bus.http_url}")
    await asyncio.Event().wait()


async def main(argv: list[str]) -> None:
    """Run the mode named on the command line."""
    raw = json.loads(argv[0])
    mode = argv[1]
    config = _config(raw["config"])
    bus = build_bus(config) if mode == "serve" else _bus(raw["kind"], config)
    await bus.connect()
    if mode == "hold":
        await hold(bus, argv[2], ordered=argv[3:] == ["ordered"])
    elif mode == "serve":
        assert isinstance(bus, EmbeddedBus)
        await serve(bus, argv[2])
    elif mode == "stream":
        await stream(bus, argv[2], int(argv[3]))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
