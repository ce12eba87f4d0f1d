"""The behaviour every state store shows: each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from prometheus_client import CollectorRegistry

from hubject_connector.errors import StateError
from hubject_connector.state.base import (
    CdrState,
    EvseEntry,
    StateStore,
    StatusChange,
    StatusRecorded,
)
from tests.integration.state.conftest import OPERATOR, T0, WAIT, Overlap, StoreKit, status

E1, E2, E3 = "DE*ABC*E1", "DE*ABC*E2", "DE*ABC*E3"


def entry(evse: str, operator: str = OPERATOR, **record: object) -> EvseEntry:
    """An EVSE entry with a small record."""
    return EvseEntry(evse, operator, {"EvseID": evse, "ChargingStationNames": [], **record})


def stored_flags(results: list[StatusRecorded]) -> list[tuple[bool, str | None]]:
    """(stored, replaced) of each result."""
    return [(r.stored, r.replaced) for r in results]


# Schema and lifecycle -------------------------------------------------------------------------


async def test_an_empty_database_gets_the_current_schema(kit: StoreKit) -> None:
    store = kit.store()
    seen = [store.is_open]
    await store.open()
    seen.append(store.is_open)
    assert await store.schema_version() == kit.latest
    assert await store.evse_ids() == []
    await store.close()
    await store.close()
    seen.append(store.is_open)
    assert seen == [False, True, False]


async def test_a_store_not_open_refuses_work(kit: StoreKit) -> None:
    store = kit.store()
    with pytest.raises(StateError, match="not open"):
        await store.get_evse(E1)
    await store.open()
    await store.close()
    with pytest.raises(StateError, match="not open"):
        await store.record_statuses([status()])


async def test_a_schema_newer_than_the_code_is_refused(kit: StoreKit) -> None:
    first = await kit.opened()
    await first.put_evse(entry(E1))
    await first.close()
    await kit.force_schema_version(kit.latest + 1)

    store = kit.store()
    with pytest.raises(StateError) as raised:
        await store.open()
    message = str(raised.value)
    assert f"schema version {kit.latest + 1}" in message
    assert f"knows ({kit.latest})" in message
    assert not store.is_open


async def test_a_newer_release_migrates_the_schema_and_keeps_the_data(kit: StoreKit) -> None:
    old = await kit.opened()
    await old.put_evse(entry(E1))
    await old.record_statuses([status(E1, 0, "m1")])
    await old.close()

    extra = ("CREATE TABLE later_addition (note text)",)
    newer_release = (*kit.migrations, extra)
    newer = await kit.opened(migrations=newer_release)
    assert await newer.schema_version() == kit.latest + 1
    assert await newer.get_evse(E1) == entry(E1)
    assert [s.message_id for s in await newer.pending_statuses(10)] == ["m1"]
    await newer.close()

    with pytest.raises(StateError, match="newer than this release"):
        await kit.opened()


async def test_everything_survives_a_restart(kit: StoreKit) -> None:
    store = await kit.opened()
    await store.put_evse(entry(E1, Power=22))
    await store.record_statuses([status(E1, 60, "m1"), status(E2, 30, "m2")])
    await store.mark_statuses_sent([status(E2, 30, "m2")])
    await store.begin_cdr("S1", "digest-1", "cdr-1")
    await store.cdr_attempted("S1")
    await store.finish_cdr("S1", CdrState.ACCEPTED, status_code="000")
    assert await store.claim_progress("S1", T0, 300)
    await store.close()

    again = await kit.opened()
    assert await again.get_evse(E1) == entry(E1, Power=22)
    assert [s.message_id for s in await again.pending_statuses(10)] == ["m1"]
    assert [s.message_id for s in await again.latest_statuses()] == ["m1", "m2"]
    # An older status is still refused: the stored time came back with the row.
    late = await again.record_statuses([status(E1, 59, "late")])
    assert not late[0].stored
    cdr = await again.get_cdr("S1")
    assert cdr is not None
    assert (cdr.state, cdr.attempts, cdr.status_code) == (CdrState.ACCEPTED, 1, "000")
    assert (await again.begin_cdr("S1", "digest-2", "cdr-2")).digest == "digest-1"
    assert not await again.claim_progress("S1", T0 + timedelta(seconds=299), 300)


# EVSE data -------------------------------------------------------------------------------


async def test_an_evse_is_put_replaced_and_deleted(store: StateStore) -> None:
    assert await store.get_evse(E1) is None
    first = EvseEntry(E1, OPERATOR, {"EvseID": E1, "Address": {"City": "Köln"}, "Plugs": [1]})
    await store.put_evse(first)
    assert await store.get_evse(E1) == first

    moved = EvseEntry(E1, "DE*XYZ", {"EvseID": E1, "Address": {"City": "Düren"}})
    await store.put_evse(moved)
    assert await store.get_evse(E1) == moved
    assert await store.evse_ids(OPERATOR) == []
    assert await store.evse_ids("DE*XYZ") == [E1]

    await store.delete_evse(E1)
    await store.delete_evse(E1)
    assert await store.get_evse(E1) is None


async def test_evse_ids_are_sorted_and_filtered_by_operator(store: StateStore) -> None:
    ids = ["DE*ABC*E2", "DE*ABC*E10", "DE*ABC*EA1", "DE*ABC*E1*1", "DE*ABC*Ez9"]
    for evse in ids:
        await store.put_evse(entry(evse))
    await store.put_evse(entry("DE*XYZ*E1", "DE*XYZ"))
    assert await store.evse_ids(OPERATOR) == sorted(ids)
    assert await store.evse_ids() == sorted([*ids, "DE*XYZ*E1"])
    assert await store.evse_ids("DE*NOP") == []


async def test_replace_evses_leaves_exactly_the_entries_given(store: StateStore) -> None:
    for evse in (E1, E2, E3):
        await store.put_evse(entry(evse))
    other = entry("DE*XYZ*E9", "DE*XYZ")
    await store.put_evse(other)

    await store.replace_evses(OPERATOR, [entry(E2, Power=11), entry("DE*ABC*E4")])
    assert await store.evse_ids(OPERATOR) == [E2, "DE*ABC*E4"]
    assert await store.get_evse(E2) == entry(E2, Power=11)
    assert await store.get_evse(other.evse_id) == other

    await store.replace_evses(OPERATOR, [])
    assert await store.evse_ids() == [other.evse_id]


async def test_a_replacement_that_fails_changes_nothing(store: StateStore) -> None:
    for evse in (E1, E2):
        await store.put_evse(entry(evse))
    with pytest.raises(ValueError, match="DE\\*XYZ\\*E9"):
        await store.replace_evses(OPERATOR, [entry(E3), entry("DE*XYZ*E9", "DE*XYZ")])
    # A record that cannot be written fails after the old rows were deleted: rolled back.
    unwritable = EvseEntry(E3, OPERATOR, {"EvseID": E3, "Power": object()})
    with pytest.raises(TypeError):
        await store.replace_evses(OPERATOR, [entry("DE*ABC*E4"), unwritable])
    assert await store.evse_ids() == [E1, E2]


# Statuses --------------------------------------------------------------------------------


async def test_only_a_newer_status_is_stored(store: StateStore) -> None:
    plus_one = timezone(timedelta(hours=1))
    first = status(E1, datetime(2024, 5, 1, 12, 0, tzinfo=plus_one), "m1")  # 11:00Z
    assert stored_flags(await store.record_statuses([first])) == [(True, None)]

    same_instant = status(E1, datetime(2024, 5, 1, 11, 0, tzinfo=UTC), "tie")
    older = status(E1, datetime(2024, 5, 1, 12, 59, tzinfo=timezone(timedelta(hours=2))), "old")
    # Earlier on the wall clock, later as an instant (11:30Z).
    newer = status(E1, datetime(2024, 5, 1, 6, 30, tzinfo=timezone(timedelta(hours=-5))), "m2")
    results = await store.record_statuses([same_instant])
    results += await store.record_statuses([older])
    results += await store.record_statuses([newer])
    assert stored_flags(results) == [(False, None), (False, None), (True, "m1")]
    assert [r.change for r in results] == [same_instant, older, newer]
    assert await store.latest_statuses() == [newer]


async def test_in_one_batch_the_newest_change_of_an_evse_wins(store: StateStore) -> None:
    await store.record_statuses([status(E2, 0, "e2-old")])
    batch = [
        status(E1, 20, "a", "Occupied"),
        status(E1, 10, "b"),  # older than "a"
        status(E2, 5, "e2"),
        status(E1, 30, "c", "Reserved"),
        status(E1, 30, "d"),  # a tie with "c"
        status(E3, 1, "e3"),
    ]
    results = await store.record_statuses(batch)
    assert [r.change for r in results] == batch
    assert stored_flags(results) == [
        (True, None),
        (False, None),
        (True, "e2-old"),
        (True, "a"),
        (False, None),
        (True, None),
    ]
    latest = await store.latest_statuses()
    assert [(s.evse_id, s.message_id, s.status) for s in latest] == [
        (E1, "c", "Reserved"),
        (E2, "e2", "Available"),
        (E3, "e3", "Available"),
    ]
    assert len(await store.pending_statuses(10)) == 3


async def test_replaced_names_only_a_status_never_pushed(store: StateStore) -> None:
    await store.record_statuses([status(E1, 0, "m1"), status(E2, 0, "n1")])
    await store.mark_statuses_sent([status(E1, 0, "m1")])
    results = await store.record_statuses([status(E1, 1, "m2"), status(E2, 1, "n2")])
    assert stored_flags(results) == [(True, None), (True, "n1")]


async def test_pending_statuses_come_oldest_first_up_to_the_limit(store: StateStore) -> None:
    await store.record_statuses(
        [status(E1, 30, "m30"), status(E2, 10, "m10"), status(E3, 20, "m20"),
         status("DE*ABC*E4", 5, "m5")]
    )
    await store.mark_statuses_sent([status("DE*ABC*E4", 5, "m5")])
    assert [s.message_id for s in await store.pending_statuses(2)] == ["m10", "m20"]
    assert [s.message_id for s in await store.pending_statuses(10)] == ["m10", "m20", "m30"]


async def test_a_status_replaced_during_its_push_stays_pending(store: StateStore) -> None:
    await store.record_statuses([status(E1, 0, "m1"), status(E2, 0, "n1")])
    pushing = await store.pending_statuses(10)
    # While the push is on its way, E1 changes again.
    await store.record_statuses([status(E1, 5, "m2")])
    marked = await store.mark_statuses_sent(pushing)
    assert [s.message_id for s in marked] == ["n1"]
    assert [s.message_id for s in await store.pending_statuses(10)] == ["m2"]
    assert [s.message_id for s in await store.mark_statuses_sent([status(E1, 5, "m2")])] == [
        "m2"
    ]
    assert await store.pending_statuses(10) == []
    assert [s.message_id for s in await store.latest_statuses()] == ["m2", "n1"]


async def test_statuses_come_back_with_the_offset_they_were_given(store: StateStore) -> None:
    zone = timezone(timedelta(hours=5, minutes=30))
    given = status(E1, datetime(2024, 5, 1, 17, 45, 12, 345678, tzinfo=zone), "m1")
    await store.record_statuses([given, status(E2, T0, "m2")])
    back = (await store.latest_statuses())[0]
    assert back == given
    assert back.time.utcoffset() == timedelta(hours=5, minutes=30)
    assert back.time.isoformat() == "2024-05-01T17:45:12.345678+05:30"


async def test_a_naive_time_is_refused_and_nothing_is_stored(store: StateStore) -> None:
    naive = status(E2, datetime(2024, 5, 1, 12, 0), "naive")  # naive on purpose
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.record_statuses([status(E1, 0, "m1"), naive])
    assert await store.latest_statuses() == []
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.claim_progress("S1", datetime(2024, 5, 1, 12, 0), 300)


async def test_nothing_to_record_or_mark_is_fine(store: StateStore) -> None:
    assert await store.record_statuses([]) == []
    assert await store.mark_statuses_sent([]) == []
    assert await store.mark_statuses_sent([status(E1, 0, "unknown")]) == []


async def test_a_batch_as_large_as_the_flows_send_is_recorded_at_once(store: StateStore) -> None:
    # More EVSEs than SQLite's historic limit of 999 bound parameters per statement.
    first = [status(f"DE*ABC*E{n:05}", n, f"a{n}") for n in range(1200)]
    second = [status(f"DE*ABC*E{n:05}", 600, f"b{n}") for n in range(1200)]
    assert all(r.stored for r in await store.record_statuses(first))
    results = await store.record_statuses(second)
    # Changes after second 600 were newer than the second batch; the others get replaced.
    assert [r.stored for r in results] == [n < 600 for n in range(1200)]
    assert [r.replaced for r in results[:3]] == ["a0", "a1", "a2"]
    pending = await store.pending_statuses(2000)
    assert len(pending) == 1200
    assert {s.message_id for s in pending} == {f"b{n}" for n in range(600)} | {
        f"a{n}" for n in range(600, 1200)
    }


# CDRs --------------------------------------------------------------------------------------


async def test_a_cdr_is_registered_counted_and_finished(store: StateStore) -> None:
    assert await store.get_cdr("S1") is None
    begun = await store.begin_cdr("S1", "digest-1", "cdr-1")
    assert (begun.state, begun.attempts, begun.digest, begun.message_id) == (
        CdrState.PENDING, 0, "digest-1", "cdr-1",
    )
    assert begun.status_code is None
    assert begun.first_seen.utcoffset() == timedelta(0)
    assert await store.begin_cdr("S1", "digest-1", "cdr-1-again") == begun

    await store.cdr_attempted("S1")
    await store.cdr_attempted("S1")
    await store.finish_cdr("S1", CdrState.ACCEPTED, status_code="000", additional_info="ok")
    done = await store.get_cdr("S1")
    assert done is not None
    assert (done.state, done.attempts, done.status_code, done.additional_info) == (
        CdrState.ACCEPTED, 2, "000", "ok",
    )
    assert done.first_seen == begun.first_seen
    assert done.updated >= begun.updated


async def test_an_accepted_or_pending_cdr_is_never_reset(store: StateStore) -> None:
    pending = await store.begin_cdr("S1", "digest-1", "cdr-1")
    await store.cdr_attempted("S1")
    again = await store.begin_cdr("S1", "digest-2", "cdr-2")
    assert (again.state, again.digest, again.message_id, again.attempts) == (
        CdrState.PENDING, "digest-1", "cdr-1", 1,
    )
    assert again.first_seen == pending.first_seen

    await store.finish_cdr("S1", CdrState.ACCEPTED, status_code="000")
    accepted = await store.begin_cdr("S1", "digest-3", "cdr-3")
    assert (accepted.state, accepted.digest) == (CdrState.ACCEPTED, "digest-1")
    # Accepted is final: a later answer cannot open the way to a second CDR.
    await store.finish_cdr("S1", CdrState.REJECTED, status_code="022")
    still = await store.get_cdr("S1")
    assert still is not None
    assert (still.state, still.status_code) == (CdrState.ACCEPTED, "000")


async def test_a_rejected_cdr_may_begin_again_only_when_corrected(store: StateStore) -> None:
    first = await store.begin_cdr("S1", "digest-1", "cdr-1")
    await store.cdr_attempted("S1")
    await store.finish_cdr("S1", CdrState.REJECTED, status_code="022", additional_info="bad")

    same = await store.begin_cdr("S1", "digest-1", "cdr-1-again")
    assert (same.state, same.message_id, same.status_code) == (CdrState.REJECTED, "cdr-1", "022")

    corrected = await store.begin_cdr("S1", "digest-2", "cdr-2")
    assert (corrected.state, corrected.digest, corrected.message_id) == (
        CdrState.PENDING, "digest-2", "cdr-2",
    )
    assert (corrected.attempts, corrected.status_code, corrected.additional_info) == (0, None, None)
    assert corrected.first_seen == first.first_seen
    assert await store.get_cdr("S1") == corrected


async def test_cdr_misuse_is_refused(store: StateStore) -> None:
    with pytest.raises(KeyError):
        await store.cdr_attempted("unknown")
    with pytest.raises(KeyError):
        await store.finish_cdr("unknown", CdrState.ACCEPTED)
    await store.begin_cdr("S1", "digest-1", "cdr-1")
    with pytest.raises(ValueError, match="final state"):
        await store.finish_cdr("S1", CdrState.PENDING)
    assert await store.get_cdr("unknown") is None


# Progress notifications -------------------------------------------------------------------


async def test_one_progress_notification_per_interval(store: StateStore) -> None:
    def at(seconds: float) -> datetime:
        return T0 + timedelta(seconds=seconds)

    assert await store.claim_progress("S1", at(0), 300)
    assert not await store.claim_progress("S1", at(0), 300)
    # A refused claim does not move the window.
    assert not await store.claim_progress("S1", at(299.999999), 300)
    assert await store.claim_progress("S1", at(300), 300)
    # A time before the last claim (another process's clock) is refused.
    assert not await store.claim_progress("S1", at(100), 300)
    assert await store.claim_progress("S2", at(100), 300)
    # The same instant in another offset is the same instant.
    same = (T0 + timedelta(seconds=600)).astimezone(timezone(timedelta(hours=-3)))
    assert await store.claim_progress("S1", same, 300)


async def test_concurrent_progress_claims_grant_exactly_one(store: StateStore) -> None:
    claims = await asyncio.gather(*(store.claim_progress("S1", T0, 300) for _ in range(10)))
    assert claims.count(True) == 1


# Coordination ------------------------------------------------------------------------------


async def test_exclusive_lets_one_block_run_at_a_time(store: StateStore) -> None:
    overlap = Overlap()
    async with asyncio.timeout(WAIT):
        await asyncio.gather(*(overlap.run(store, "PushEvseStatus") for _ in range(6)))
    assert (overlap.most, overlap.runs) == (1, 6)


async def test_exclusive_locks_of_different_names_are_independent(store: StateStore) -> None:
    inside_b = asyncio.Event()

    async def hold_b() -> None:
        async with store.exclusive("PushEvseData"):
            inside_b.set()

    async with asyncio.timeout(WAIT), store.exclusive("PushEvseStatus"):
        await hold_b()
    assert inside_b.is_set()


async def test_exclusive_is_released_after_an_error(store: StateStore) -> None:
    with pytest.raises(RuntimeError, match="push failed"):
        async with store.exclusive("PushEvseStatus"):
            raise RuntimeError("push failed")
    async with asyncio.timeout(WAIT), store.exclusive("PushEvseStatus"):
        pass


async def test_exclusive_is_released_when_its_holder_is_cancelled(store: StateStore) -> None:
    holding = asyncio.Event()

    async def hold() -> None:
        async with store.exclusive("PushEvseStatus"):
            holding.set()
            await asyncio.Event().wait()

    holder = asyncio.create_task(hold())
    async with asyncio.timeout(WAIT):
        await holding.wait()
    holder.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await holder
    async with asyncio.timeout(WAIT), store.exclusive("PushEvseStatus"):
        pass


# Metrics ------------------------------------------------------------------------------------


async def test_operations_are_timed_per_store_kind_and_operation(kit: StoreKit) -> None:
    registry = CollectorRegistry()
    first = await kit.opened(registry=registry)
    second = await kit.opened(registry=registry)  # the same registry: no duplicate metric
    await first.record_statuses([status(E1, 0)])
    await second.record_statuses([status(E1, 1)])
    await second.get_evse(E1)
    async with first.exclusive("PushEvseStatus"):
        pass

    def count(operation: str) -> float | None:
        return registry.get_sample_value(
            "hubject_connector_state_operation_seconds_count",
            {"store": kit.kind, "operation": operation},
        )

    assert count("record_statuses") == 2
    assert count("get_evse") == 1
    assert count("exclusive") == 1
    assert count("delete_evse") is None


async def test_a_status_change_equals_itself_after_storage(store: StateStore) -> None:
    # Guards the dataclass round trip the flows rely on to match pushed changes.
    change = StatusChange(E1, OPERATOR, "Occupied", T0, "m1")
    await store.record_statuses([change])
    assert await store.pending_statuses(1) == [change]
