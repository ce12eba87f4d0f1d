"""Fixtures of the state store suite: one ``kit`` per adapter, on storage unique to a test.

SQLite stores live in the test's tmp_path. PostgreSQL stores live in a schema of their own
in database ``test`` at 127.0.0.1:5432 (user postgres, trust auth), dropped afterwards.
PostgreSQL tests fail when the server is not there, with a message saying how to start
it, unless CI is unset and HUBJECT_CONNECTOR_SKIP_POSTGRESQL=1, where they are skipped.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from hubject_connector.config import PostgresStateConfig, SqliteStateConfig, StateConfig
from hubject_connector.state.base import StateStore, StatusChange
from hubject_connector.state.factory import build_store
from hubject_connector.state.postgres import PostgresStateStore, quote_identifier
from hubject_connector.state.sqlite import SqliteStateStore

POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
#: Upper bound of every wait in this suite: a broken lock fails instead of hanging.
WAIT = 30.0
OPERATOR = "DE*ABC"
#: A moment to count from, in the charge point's local offset.
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def status(
    evse: str = "DE*ABC*E1",
    at: datetime | float = 0.0,
    message_id: str | None = None,
    state: str = "Available",
) -> StatusChange:
    """A status change of ``evse`` at ``at`` (a datetime, or seconds after T0)."""
    time = at if isinstance(at, datetime) else T0 + timedelta(seconds=at)
    return StatusChange(
        evse_id=evse,
        operator_id="*".join(evse.split("*")[:2]),
        status=state,
        time=time,
        message_id=message_id or f"msg-{uuid.uuid4().hex[:12]}",
    )


class Overlap:
    """Counts how many blocks run at once."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self.runs = 0

    async def run(self, store: StateStore, name: str) -> None:
        """Hold ``name`` while waiting for the store a few times, as a push waits for Hubject."""
        async with store.exclusive(name):
            self.inside += 1
            self.most = max(self.most, self.inside)
            for _ in range(3):
                await store.get_evse("DE*ABC*E0")
                await asyncio.sleep(0)
            self.inside -= 1
            self.runs += 1


def _postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The test database's DSN; fails (or skips, locally and on request) when unreachable."""
    if _postgres_reachable():
        return POSTGRES_DSN
    if not os.environ.get("CI") and os.environ.get("HUBJECT_CONNECTOR_SKIP_POSTGRESQL") == "1":
        pytest.skip("PostgreSQL unreachable and HUBJECT_CONNECTOR_SKIP_POSTGRESQL=1")
    pytest.fail(
        "PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres, database test). Start "
        "it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
        "(CI's .ci/run does), or, outside CI, set HUBJECT_CONNECTOR_SKIP_POSTGRESQL=1 to "
        "skip the PostgreSQL tests."
    )


@dataclass
class StoreKit:
    """Makes stores of one kind that share storage unique to one test."""

    kind: str
    config: StateConfig
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    made: list[StateStore] = field(default_factory=list)

    def store(
        self,
        *,
        migrations: Sequence[Sequence[str]] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> StateStore:
        """A new store on the kit's storage, not opened (closed at teardown).

        ``migrations`` replaces the adapter's list, as another release of the code would.
        """
        registry = registry or self.registry
        made: StateStore
        if migrations is None:
            made = build_store(self.config, registry=registry)
        elif self.kind == "sqlite":

            class OtherSqliteRelease(SqliteStateStore):
                pass

            OtherSqliteRelease.migrations = migrations
            made = OtherSqliteRelease(self.config.sqlite, registry=registry)
        else:

            class OtherPostgresRelease(PostgresStateStore):
                pass

            OtherPostgresRelease.migrations = migrations
            made = OtherPostgresRelease(self.config.postgresql, registry=registry)
        self.made.append(made)
        return made

    async def opened(
        self,
        *,
        migrations: Sequence[Sequence[str]] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> StateStore:
        """A new store, opened."""
        made = self.store(migrations=migrations, registry=registry)
        await made.open()
        return made

    @property
    def migrations(self) -> Sequence[Sequence[str]]:
        """The adapter's migrations."""
        if self.kind == "sqlite":
            return SqliteStateStore.migrations
        return PostgresStateStore.migrations

    @property
    def latest(self) -> int:
        """The schema version this code knows."""
        return len(self.migrations)

    async def force_schema_version(self, version: int) -> None:
        """Write ``version`` into the schema, as a newer release would have."""
        if self.kind == "sqlite":
            db = sqlite3.connect(self.config.sqlite.path)
            try:
                db.execute(f"PRAGMA user_version = {int(version)}")
            finally:
                db.close()
            return
        connection = await self.connect()
        try:
            await connection.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
        finally:
            await connection.close()

    async def connect(self) -> asyncpg.Connection[asyncpg.Record]:
        """A connection of its own to the test's PostgreSQL schema (the caller closes it)."""
        return await asyncpg.connect(
            self.config.postgresql.dsn,
            server_settings={"search_path": quote_identifier(self.config.postgresql.schema)},
        )

    async def close(self) -> None:
        """Close every store made; on PostgreSQL drop the test's schema."""
        for made in self.made:
            await made.close()
        if self.kind == "postgresql":
            connection = await asyncpg.connect(self.config.postgresql.dsn)
            try:
                await connection.execute(
                    "DROP SCHEMA IF EXISTS "
                    f"{quote_identifier(self.config.postgresql.schema)} CASCADE"
                )
            finally:
                await connection.close()


def make_config(kind: str, tmp_path: Path, dsn: str = POSTGRES_DSN) -> StateConfig:
    """A state configuration unique to one test."""
    return StateConfig(
        kind="postgresql" if kind == "postgresql" else "sqlite",
        sqlite=SqliteStateConfig(path=tmp_path / "state" / "state.sqlite3"),
        postgresql=PostgresStateConfig(
            dsn=dsn, schema=f"test_state_{uuid.uuid4().hex[:12]}", pool_size=4
        ),
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
async def kit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreKit]:
    """The shared suite runs once on each adapter."""
    kind: str = request.param
    dsn = request.getfixturevalue("postgres_dsn") if kind == "postgresql" else POSTGRES_DSN
    made = StoreKit(kind, make_config(kind, tmp_path, dsn))
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def store(kit: StoreKit) -> StateStore:
    """An open store of the kit (closed at teardown)."""
    return await kit.opened()


@pytest.fixture
async def pg_kit(postgres_dsn: str, tmp_path: Path) -> AsyncIterator[StoreKit]:
    """A kit on PostgreSQL only."""
    made = StoreKit("postgresql", make_config("postgresql", tmp_path, postgres_dsn))
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def sqlite_kit(tmp_path: Path) -> AsyncIterator[StoreKit]:
    """A kit on SQLite only."""
    made = StoreKit("sqlite", make_config("sqlite", tmp_path))
    try:
        yield made
    finally:
        await made.close()
