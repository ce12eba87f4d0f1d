"""What only the SQLite store promises: a durable local file, never blocking the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from hubject_connector.config import SqliteStateConfig
from hubject_connector.errors import StateError
from hubject_connector.state.sqlite import SqliteStateStore
from tests.integration.state.conftest import WAIT, StoreKit, status


async def test_the_file_and_its_folders_are_created_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "var" / "lib" / "connector" / "state.sqlite3"
    store = SqliteStateStore(SqliteStateConfig(path), registry=CollectorRegistry())
    await store.open()
    try:
        await store.record_statuses([status()])
    finally:
        await store.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT count(*) FROM statuses").fetchone()[0] == 1
    finally:
        db.close()


async def test_a_file_that_cannot_be_opened_is_a_state_error(tmp_path: Path) -> None:
    taken = tmp_path / "a-directory"
    taken.mkdir()
    store = SqliteStateStore(SqliteStateConfig(taken), registry=CollectorRegistry())
    with pytest.raises(StateError, match="a-directory"):
        await store.open()
    assert not store.is_open


async def test_a_not_sqlite_file_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"this is not a database, but it is long enough to be read" * 20)
    store = SqliteStateStore(SqliteStateConfig(path), registry=CollectorRegistry())
    with pytest.raises(StateError, match=r"state\.sqlite3"):
        await store.open()
    assert not store.is_open


async def test_the_event_loop_runs_on_while_the_file_is_locked(sqlite_kit: StoreKit) -> None:
    store = await sqlite_kit.opened()
    # Another writer (a backup tool, say) holds the write lock for a while.
    other = sqlite3.connect(sqlite_kit.config.sqlite.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        recording = asyncio.create_task(store.record_statuses([status()]))
        ticks = 0
        for _ in range(5):
            await asyncio.sleep(0.01)
            ticks += 1
        assert (ticks, recording.done()) == (5, False)
        other.execute("COMMIT")
        async with asyncio.timeout(WAIT):
            [result] = await recording
        assert result.stored
    finally:
        other.close()
