"""Whether Hubject holds a status record of an EVSE: each test runs on SQLite and PostgreSQL.

The status flow pushes a new EVSE's status as ``insert`` and a known one's as ``update``
(Hubject refuses an update of a record it lacks, and an insert of one it holds), so the
store remembers per EVSE, durably, whether a push including it was accepted.
"""

from __future__ import annotations

import sqlite3

from hubject_connector.state.base import Refusal, StateStore
from tests.integration.state.conftest import StoreKit, status

E1, E2, E3 = "DE*ABC*E1", "DE*ABC*E2", "DE*ABC*E3"
OTHER = "DE*XYZ*E1"


async def mark_sent_by_hand(kit: StoreKit, message_ids: list[str]) -> None:
    """Set ``sent`` on the rows of ``message_ids`` with SQL of the kit's kind."""
    if kit.kind == "sqlite":
        db = sqlite3.connect(kit.config.sqlite.path)
        try:
            db.executemany("UPDATE statuses SET sent = 1 WHERE message_id = ?",
                           [(m,) for m in message_ids])
            db.commit()
        finally:
            db.close()
        return
    connection = await kit.connect()
    try:
        await connection.execute(
            "UPDATE statuses SET sent = true WHERE message_id = ANY($1::text[])", message_ids)
    finally:
        await connection.close()


async def at_hubject(store: StateStore) -> dict[str, bool]:
    """EvseID → at_hubject, as the latest statuses say."""
    return {s.evse_id: s.at_hubject for s in await store.latest_statuses()}


async def test_a_new_evse_is_at_hubject_once_a_push_of_it_was_accepted(
    store: StateStore,
) -> None:
    await store.record_statuses([status(E1, 0, "m1"), status(E2, 0, "n1")])
    assert [s.at_hubject for s in await store.pending_statuses(10)] == [False, False]

    await store.mark_statuses_sent([status(E1, 0, "m1")])
    await store.record_statuses([status(E1, 5, "m2")])

    assert await at_hubject(store) == {E1: True, E2: False}
    # The next change of E1 is read as one of an EVSE Hubject holds (an update).
    assert [(s.message_id, s.at_hubject) for s in await store.pending_statuses(10)] == [
        ("n1", False), ("m2", True)]


async def test_a_refused_push_leaves_the_evse_not_at_hubject(store: StateStore) -> None:
    await store.record_statuses([status(E1, 0, "m1")])
    await store.mark_statuses_sent([status(E1, 0, "m1")], Refusal("022", "data error"))
    assert await at_hubject(store) == {E1: False}


async def test_an_accepted_push_counts_even_when_its_status_was_replaced_meanwhile(
    store: StateStore,
) -> None:
    # The insert went through while a newer status came in: Hubject holds E1 now, so the
    # newer one must go as an update.
    await store.record_statuses([status(E1, 0, "m1")])
    pushing = await store.pending_statuses(10)
    await store.record_statuses([status(E1, 5, "m2")])

    assert await store.mark_statuses_sent(pushing) == []
    assert [(s.message_id, s.at_hubject) for s in await store.pending_statuses(10)] == [
        ("m2", True)]


async def test_a_full_load_leaves_at_hubject_exactly_the_evses_it_carried(
    store: StateStore,
) -> None:
    await store.record_statuses([status(E1, 0, "m1"), status(E2, 0, "n1"),
                                 status(OTHER, 0, "o1")])
    await store.mark_statuses_sent(await store.pending_statuses(10))
    await store.record_statuses([status(E3, 0, "p1")])
    assert await at_hubject(store) == {E1: True, E2: True, E3: False, OTHER: True}

    # A fullLoad of DE*ABC carrying E1 and E3 replaces DE*ABC's whole set at Hubject.
    marked = await store.mark_statuses_sent([status(E1, 0, "m1"), status(E3, 0, "p1")],
                                            full_load_of="DE*ABC")

    assert [s.message_id for s in marked] == ["p1"]
    assert await at_hubject(store) == {E1: True, E2: False, E3: True, OTHER: True}


async def test_at_hubject_survives_a_restart(kit: StoreKit) -> None:
    store = await kit.opened()
    await store.record_statuses([status(E1, 0, "m1"), status(E2, 0, "n1")])
    await store.mark_statuses_sent([status(E2, 0, "n1")])
    await store.close()

    again = await kit.opened()
    assert await at_hubject(again) == {E1: False, E2: True}


async def test_the_previous_schema_is_migrated_with_pushed_statuses_at_hubject(
    kit: StoreKit,
) -> None:
    previous = kit.migrations[:-1]
    old = await kit.opened(migrations=previous)
    await old.record_statuses([status(E1, 0, "m1"), status(E2, 0, "n1"), status(E3, 0, "p1")])
    await old.close()
    # Marked as the previous release did (its code had no at_hubject to write).
    await mark_sent_by_hand(kit, ["n1", "p1"])

    store = await kit.opened()
    assert await store.schema_version() == len(previous) + 1 == kit.latest
    # Pushed before (accepted or, as the old schema cannot tell, refused): held by
    # Hubject most probably; a wrong guess costs one refused update, which the flow heals.
    assert await at_hubject(store) == {E1: False, E2: True, E3: True}
    assert [s.message_id for s in await store.pending_statuses(10)] == ["m1"]
    await store.mark_statuses_sent([status(E1, 0, "m1")])
    assert await at_hubject(store) == {E1: True, E2: True, E3: True}
