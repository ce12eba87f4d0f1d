"""build_store picks the adapter the settings name and leaves it closed."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from hubject_connector.state.factory import build_store
from hubject_connector.state.postgres import PostgresStateStore
from hubject_connector.state.sqlite import SqliteStateStore
from tests.integration.state.conftest import make_config


def test_each_kind_builds_its_store_unopened(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    sqlite = build_store(make_config("sqlite", tmp_path), registry=registry)
    postgres = build_store(make_config("postgresql", tmp_path), registry=registry)
    assert isinstance(sqlite, SqliteStateStore)
    assert isinstance(postgres, PostgresStateStore)
    assert (sqlite.is_open, postgres.is_open) == (False, False)
    assert not (tmp_path / "state").exists()
