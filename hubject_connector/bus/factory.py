"""Building the configured bus from the ``[bus]`` section."""

from __future__ import annotations

from hubject_connector.bus.base import Bus
from hubject_connector.bus.embedded import EmbeddedBus
from hubject_connector.bus.rabbitmq import RabbitMQBus
from hubject_connector.config import BusConfig
from hubject_connector.errors import ConfigError


def build_bus(config: BusConfig, *, serve: bool = True) -> Bus:
    """The bus ``config.kind`` names, not yet connected.

    ``serve`` makes the embedded bus run its HTTP API and its deliveries to the webhook
    while connected; a command-line tool that only reads dead letters turns it off.
    The RabbitMQ bus has neither.
    """
    if config.kind == "embedded":
        return EmbeddedBus.from_config(config, serve=serve)
    if config.kind == "rabbitmq":
        return RabbitMQBus.from_config(config)
    raise ConfigError("bus.kind", f"unknown bus {config.kind!r}: use embedded or rabbitmq")
