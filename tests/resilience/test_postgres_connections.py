"""PostgreSQL ends the state store's sessions in the middle of a burst.

``pg_terminate_backend`` is what an administrator, a failover or a restart of the server
does to a session: the connection closes under the store. The store runs as a role of
its own (so that only its sessions are ended, not those of other tests on the server);
the connector must carry on with new connections, send no CDR twice and lose nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from hubject_connector.config import PostgresStateConfig, StateConfig
from hubject_connector.simulator import Simulator
from hubject_connector.state.postgres import quote_identifier
from tests.resilience.conftest import (
    WAIT,
    Burst,
    Envs,
    assert_nothing_lost,
    send_all,
    settled,
)

pytestmark = [pytest.mark.postgresql, pytest.mark.slow]


class Role:
    """A login role of one test, whose sessions can be ended without touching others."""

    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn = admin_dsn
        self.name = f"hc_resilience_{uuid.uuid4().hex[:10]}"

    @property
    def dsn(self) -> str:
        """The DSN of the state store, as this role (trust authentication)."""
        return self.admin_dsn.replace("://postgres@", f"://{self.name}@")

    async def _admin(self) -> asyncpg.Connection[asyncpg.Record]:
        return await asyncpg.connect(self.admin_dsn)

    async def create(self) -> None:
        """Create the role; it may create its schema in the database."""
        admin = await self._admin()
        try:
            quoted = quote_identifier(self.name)
            database = await admin.fetchval("SELECT current_database()")
            await admin.execute(f"CREATE ROLE {quoted} LOGIN")
            await admin.execute(f"GRANT CREATE ON DATABASE {quote_identifier(database)} "
                                f"TO {quoted}")
        finally:
            await admin.close()

    async def end_sessions(self) -> int:
        """End every session of the role now; how many there were."""
        admin = await self._admin()
        try:
            ended = await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                self.name)
        finally:
            await admin.close()
        return len(ended)

    async def drop(self) -> None:
        """Drop what the role owns (its schema) and the role."""
        admin = await self._admin()
        try:
            quoted = quote_identifier(self.name)
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                self.name)
            with contextlib.suppress(asyncpg.UndefinedObjectError):
                await admin.execute(f"DROP OWNED BY {quoted} CASCADE")
                await admin.execute(f"DROP ROLE {quoted}")
        finally:
            await admin.close()


@pytest.fixture
async def role(postgres_dsn: str) -> AsyncIterator[Role]:
    """A role of this test's own, dropped (with its schema) at its end."""
    made = Role(postgres_dsn)
    await made.create()
    try:
        yield made
    finally:
        await made.drop()


async def test_sessions_ended_by_the_server_mid_burst_send_no_cdr_twice(
    role: Role, envs: Envs, simulator: Simulator,
) -> None:
    state = StateConfig(kind="postgresql", postgresql=PostgresStateConfig(
        dsn=role.dsn, schema=f"resilience_{uuid.uuid4().hex[:10]}", pool_size=4))
    env = await envs.make("embedded", simulator, state=state)
    await env.connector()
    burst = Burst.make(cdrs=20, evses=5, changes=40)
    docs = burst.interleaved()
    # Hubject holds three CDRs: their sessions end between counting the call and
    # recording Hubject's answer, the moment that decides whether a CDR goes twice.
    held = [simulator.faults.hold(operation="ChargeDetailRecord") for _ in range(3)]

    await send_all(env.backend, docs[: len(docs) // 2])
    for hold in held:
        async with asyncio.timeout(WAIT):
            await hold.arrived.wait()
    assert await role.end_sessions() > 0
    for hold in held:
        hold.release()
    await send_all(env.backend, docs[len(docs) // 2 :])
    # And again while the second half flows.
    await role.end_sessions()

    await settled(env.backend, burst)
    assert_nothing_lost(env, burst, exactly_one_call=True)
