"""Building the configured bus from the ``[bus]`` section."""

from __future__ import annotations

from collections.abc import Iterable

from hubject_connector.bus.base import Bus, QueueSpec
from hubject_connector.bus.embedded import EmbeddedBus
from hubject_connector.bus.embedded_api import HttpApi
from hubject_connector.bus.rabbitmq import RabbitMQBus
from hubject_connector.config import BusConfig
from hubject_connector.errors import ConfigError


def build_bus(
    config: BusConfig, *, serve: bool = True, queues: Iterable[QueueSpec] = ()
) -> Bus:
    """The bus ``config.kind`` names, not yet connected.

    ``queues`` (the connector's: ``topology.connector_queues(config.flows)``) are declared
    by ``connect()``, with their bindings and retry arguments, before it returns.
    ``serve`` makes the embedded bus run its HTTP API and its deliveries to the webhook
    while connected; a command-line tool that only reads dead letters turns it off.
    The RabbitMQ bus has neither.
    """
    queues = tuple(queues)
    if config.kind == "embedded":
        return EmbeddedBus.from_config(
            config, serve=serve, queues=queues, http_api=HttpApi if serve else None
        )
    if config.kind == "rabbitmq":
        return RabbitMQBus.from_config(config, queues=queues)
    raise ConfigError("bus.kind", f"unknown bus {config.kind!r}: use embedded or rabbitmq")
