"""What only the PostgreSQL store promises: several processes share it safely.

Two store objects stand for two replicas: each has its own pool and lock connections, so
the database sees them as two clients exactly as it would see two processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from hubject_connector.errors import StateError
from hubject_connector.state.base import StateStore
from hubject_connector.state.postgres import (
    PostgresStateStore,
    lock_key,
    quote_identifier,
    redacted_dsn,
)
from tests.integration.state.conftest import WAIT, Overlap, StoreKit, status

pytestmark = pytest.mark.postgresql

NAME = "PushEvseStatus"


async def lock_sessions(kit: StoreKit, name: str, *, granted: bool) -> list[int]:
    """Backend pids holding (or waiting for) the advisory lock of ``name`` in the kit's schema."""
    key = lock_key(kit.config.postgresql.schema, "exclusive", name)
    # A bigint advisory key shows in pg_locks as classid (high half) and objid (low half).
    high, low = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    connection = await kit.connect()
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 "
            "AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND granted = $3",
            high,
            low,
            granted,
        )
    finally:
        await connection.close()
    return [row["pid"] for row in rows]


async def until_waiting(kit: StoreKit, name: str, count: int = 1) -> None:
    """Wait until ``count`` sessions wait on the server for the lock ``name``."""
    async with asyncio.timeout(WAIT):
        while True:
            if len(await lock_sessions(kit, name, granted=False)) >= count:
                return
            # Polled: the server tells no one when a session starts waiting.
            await asyncio.sleep(0.02)


async def test_exclusive_holds_other_processes_off(pg_kit: StoreKit) -> None:
    first, second = await pg_kit.opened(), await pg_kit.opened()
    events: list[str] = []

    async def second_push() -> None:
        async with second.exclusive(NAME):
            events.append("second in")

    async with asyncio.timeout(WAIT):
        async with first.exclusive(NAME):
            waiting = asyncio.create_task(second_push())
            await until_waiting(pg_kit, NAME)
            events.append("first out")
        await waiting
    assert events == ["first out", "second in"]
    assert await lock_sessions(pg_kit, NAME, granted=True) == []


async def test_blocks_of_two_processes_never_overlap(pg_kit: StoreKit) -> None:
    stores = [await pg_kit.opened(), await pg_kit.opened()]
    overlap = Overlap()
    async with asyncio.timeout(WAIT):
        await asyncio.gather(*(overlap.run(stores[n % 2], NAME) for n in range(8)))
    assert (overlap.most, overlap.runs) == (1, 8)


async def test_a_cancelled_wait_leaves_no_lock_behind(pg_kit: StoreKit) -> None:
    first, second, third = [await pg_kit.opened() for _ in range(3)]

    async def wait_for_lock(store: StateStore) -> None:
        async with store.exclusive(NAME):
            pytest.fail("entered while the first store held the lock")

    async with asyncio.timeout(WAIT):
        async with first.exclusive(NAME):
            waiter = asyncio.create_task(wait_for_lock(second))
            await until_waiting(pg_kit, NAME)
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
        # Neither the cancelled store nor anyone else is kept out now (the abandoned
        # session, still queued on the server, ends as soon as it is granted the lock).
        async with third.exclusive(NAME):
            pass
        async with second.exclusive(NAME):
            pass


async def test_a_lock_session_lost_mid_block_frees_the_lock_and_heals(pg_kit: StoreKit) -> None:
    first, second = await pg_kit.opened(), await pg_kit.opened()
    admin = await pg_kit.connect()
    try:
        async with asyncio.timeout(WAIT):
            async with first.exclusive(NAME):
                [pid] = await lock_sessions(pg_kit, NAME, granted=True)
                # The first process's lock session dies (a network cut, a server restart).
                await admin.execute("SELECT pg_terminate_backend($1)", pid)
                async with second.exclusive(NAME):
                    pass
            # The block ended without an error; the next one gets a new session.
            async with first.exclusive(NAME):
                assert len(await lock_sessions(pg_kit, NAME, granted=True)) == 1
    finally:
        await admin.close()


async def test_closing_a_store_frees_its_locks(pg_kit: StoreKit) -> None:
    first, second = await pg_kit.opened(), await pg_kit.opened()
    holding = asyncio.Event()

    async def hold() -> None:
        async with first.exclusive(NAME):
            holding.set()
            await asyncio.Event().wait()

    holder = asyncio.create_task(hold())
    try:
        async with asyncio.timeout(WAIT):
            await holding.wait()
            await first.close()
            async with second.exclusive(NAME):
                pass
    finally:
        holder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await holder


async def test_concurrent_claims_from_two_processes_grant_exactly_one(pg_kit: StoreKit) -> None:
    stores = [await pg_kit.opened(), await pg_kit.opened()]
    for session in ("S1", "S2", "S3"):
        at = status().time
        claims = await asyncio.gather(
            *(stores[n % 2].claim_progress(session, at, 300) for n in range(12))
        )
        assert claims.count(True) == 1


async def test_two_processes_recording_at_once_store_each_change_once(
    pg_kit: StoreKit,
) -> None:
    first, second = await pg_kit.opened(), await pg_kit.opened()
    evses = [f"DE*ABC*E{n}" for n in range(50)]
    for round_ in range(3):
        # The same EVSEs at the same instant, from two replicas: one of each pair wins.
        a, b = await asyncio.gather(
            first.record_statuses([status(e, round_, f"a{round_}-{e}") for e in evses]),
            second.record_statuses([status(e, round_, f"b{round_}-{e}") for e in evses]),
        )
        winners = {r.change.message_id for r in [*a, *b] if r.stored}
        assert len(winners) == len(evses)
        latest = await first.latest_statuses()
        assert {s.message_id for s in latest} == winners


async def test_replicas_starting_together_migrate_once(pg_kit: StoreKit) -> None:
    stores = [pg_kit.store() for _ in range(4)]
    async with asyncio.timeout(WAIT):
        await asyncio.gather(*(store.open() for store in stores))
    assert [await store.schema_version() for store in stores] == [pg_kit.latest] * 4
    connection = await pg_kit.connect()
    try:
        versions = await connection.fetch("SELECT version FROM schema_version ORDER BY version")
        tables = await connection.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 "
            "ORDER BY table_name",
            pg_kit.config.postgresql.schema,
        )
    finally:
        await connection.close()
    assert [row["version"] for row in versions] == list(range(1, pg_kit.latest + 1))
    assert [row["table_name"] for row in tables] == [
        "cdrs", "evses", "progress", "schema_version", "status_results", "statuses",
    ]


async def test_a_schema_prepared_by_the_dba_is_used(pg_kit: StoreKit) -> None:
    connection = await pg_kit.connect()
    try:
        schema = quote_identifier(pg_kit.config.postgresql.schema)
        await connection.execute(f"CREATE SCHEMA {schema}")
    finally:
        await connection.close()
    store = await pg_kit.opened()
    await store.record_statuses([status()])
    assert len(await store.latest_statuses()) == 1


def chained_texts(error: BaseException) -> list[str]:
    """The text of ``error`` and of every exception a traceback would show with it."""
    texts: list[str] = []
    current: BaseException | None = error
    while current is not None:
        texts.append(str(current))
        if current.__cause__ is None and current.__suppress_context__:
            break
        current = current.__cause__ or current.__context__
    return texts


# The second password also occurs in the driver's own error ("Connect call failed").
@pytest.mark.parametrize("secret", ["Secr3t-Passw0rd", "Connect"])
async def test_a_password_never_shows_in_errors(pg_kit: StoreKit, secret: str) -> None:
    nowhere = dataclasses.replace(
        pg_kit.config.postgresql, dsn=f"postgresql://postgres:{secret}@127.0.0.1:1/test"
    )
    store = PostgresStateStore(nowhere, registry=CollectorRegistry())
    with pytest.raises(StateError) as raised:
        await store.open()
    assert "postgresql://postgres:***@127.0.0.1:1/test" in str(raised.value)
    assert [text for text in chained_texts(raised.value) if secret in text] == []
    assert not store.is_open
    assert redacted_dsn(nowhere.dsn) == "postgresql://postgres:***@127.0.0.1:1/test"


async def test_a_password_file_is_accepted_and_a_missing_one_named(
    pg_kit: StoreKit, tmp_path: Path
) -> None:
    password_file = tmp_path / "pg-password"
    password_file.write_text("any-password-trust-auth-ignores\n", encoding="utf-8")
    with_file = dataclasses.replace(pg_kit.config.postgresql, password_file=password_file)
    store = PostgresStateStore(with_file, registry=CollectorRegistry())
    pg_kit.made.append(store)
    await store.open()
    assert store.is_open

    missing = dataclasses.replace(with_file, password_file=tmp_path / "absent")
    with pytest.raises(StateError, match=r"state\.postgresql\.password_file"):
        await PostgresStateStore(missing, registry=CollectorRegistry()).open()
