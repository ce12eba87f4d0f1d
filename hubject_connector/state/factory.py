"""Builds the state store the ``[state]`` settings describe."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from hubject_connector.config import StateConfig
from hubject_connector.errors import ConfigError
from hubject_connector.state.base import StateStore
from hubject_connector.state.postgres import PostgresStateStore
from hubject_connector.state.sqlite import SqliteStateStore


def build_store(config: StateConfig, *, registry: CollectorRegistry | None = None) -> StateStore:
    """The store of kind ``config.kind``, not opened yet (``await store.open()``).

    Its metrics go to ``registry`` (prometheus_client's default registry when None).
    """
    if config.kind == "sqlite":
        return SqliteStateStore(config.sqlite, registry=registry)
    if config.kind == "postgresql":
        return PostgresStateStore(config.postgresql, registry=registry)
    raise ConfigError("state.kind", f"must be sqlite or postgresql (got {config.kind!r})")
