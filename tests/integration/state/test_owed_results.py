"""The owed status results (an outbox): each test runs on SQLite and on PostgreSQL.

A status message's delivery result becomes owed in the very transaction that decides it
(a pending status replaced: ``superseded``; statuses marked pushed: ``accepted``, or
refused: ``rejected``) and stays owed, across a restart, until it is crossed off as
published. A crash between the decision and the publication can then lose nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from hubject_connector.errors import StateError
from hubject_connector.state.base import OwedResult, Refusal, ResultKind, StateStore
from tests.integration.state.conftest import StoreKit, status

E1, E2, E3 = "DE*ABC*E1", "DE*ABC*E2", "DE*ABC*E3"

#: A later release's migration that refuses every owed result: the write that owes one
#: fails inside the transaction, as a full disk or a lost connection would.
REFUSE_OWED = {
    "sqlite": (
        "CREATE TRIGGER refuse_owed BEFORE INSERT ON status_results "
        "BEGIN SELECT RAISE(ABORT, 'owed results refused'); END",
    ),
    "postgresql": (
        "CREATE FUNCTION refuse_owed() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'owed results refused'; END $$",
        "CREATE TRIGGER refuse_owed BEFORE INSERT ON status_results "
        "FOR EACH ROW EXECUTE FUNCTION refuse_owed()",
    ),
}


def owed_ids(owed: list[OwedResult]) -> list[tuple[str, ResultKind]]:
    """(message id, kind) of each owed result."""
    return [(o.message_id, o.kind) for o in owed]


async def test_a_replaced_pending_status_is_owed_superseded(store: StateStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    first = status(E1, datetime(2024, 5, 1, 14, 0, tzinfo=plus_two), "m1")
    await store.record_statuses([first, status(E2, 0, "n1"), status(E3, 0, "p1")])
    await store.mark_statuses_sent([status(E2, 0, "n1")])
    assert owed_ids(await store.owed_status_results(10)) == [("n1", ResultKind.ACCEPTED)]
    await store.status_results_published(["n1"])

    results = await store.record_statuses(
        [status(E1, 60, "m2"), status(E2, 60, "n2"), status(E3, -5, "p0")])

    # m1 was pending: replaced, its result owed. n1 was pushed: nothing owed about it.
    # p0 is older than p1 and not stored: its own result is the intake's to give.
    (owed,) = await store.owed_status_results(10)
    assert owed == OwedResult("m1", E1, first.time, ResultKind.SUPERSEDED)
    assert [r.owed for r in results] == [owed, None, None]
    assert owed.time.utcoffset() is not None


async def test_in_one_batch_each_overtaken_change_is_owed_once(store: StateStore) -> None:
    results = await store.record_statuses(
        [status(E1, 0, "a"), status(E1, 10, "b"), status(E1, 20, "c"), status(E1, 20, "c")])
    assert [r.replaced for r in results] == [None, "a", "b", None]
    assert [r.repeat for r in results] == [False, False, False, True]
    assert owed_ids(await store.owed_status_results(10)) == [
        ("a", ResultKind.SUPERSEDED), ("b", ResultKind.SUPERSEDED)]
    assert [s.message_id for s in await store.pending_statuses(10)] == ["c"]


async def test_statuses_marked_sent_are_owed_accepted_once(store: StateStore) -> None:
    await store.record_statuses([status(E1, 0, "m1"), status(E2, 0, "n1")])
    pushed = await store.pending_statuses(10)

    marked = await store.mark_statuses_sent(pushed)
    again = await store.mark_statuses_sent(pushed)

    assert [s.message_id for s in marked] == ["m1", "n1"]
    # Already marked: not pending any more, nothing newly owed (a fullLoad marks every
    # latest status, most of them pushed long ago).
    assert again == []
    owed = await store.owed_status_results(10)
    assert sorted(owed_ids(owed)) == [("m1", ResultKind.ACCEPTED), ("n1", ResultKind.ACCEPTED)]
    assert {o.evse_id for o in owed} == {E1, E2}
    assert all(o.refusal is None for o in owed)


async def test_a_status_replaced_during_its_push_is_owed_superseded_not_accepted(
    store: StateStore,
) -> None:
    await store.record_statuses([status(E1, 0, "m1")])
    pushing = await store.pending_statuses(10)
    await store.record_statuses([status(E1, 5, "m2")])

    assert await store.mark_statuses_sent(pushing) == []
    assert owed_ids(await store.owed_status_results(10)) == [("m1", ResultKind.SUPERSEDED)]


async def test_statuses_refused_are_owed_rejected_with_the_refusal(store: StateStore) -> None:
    await store.record_statuses([status(E1, 0, "m1"), status(E2, 0, "n1")])
    refusal = Refusal("018", "Hubject refused the EVSE status push: «EvseID» of another "
                      "operator", "EvseID inconsistent", None)
    unsendable = Refusal("022", "the EVSE status cannot be sent to Hubject: /x: too long",
                         by_hubject=False)

    await store.mark_statuses_sent([status(E1, 0, "m1")], refusal)
    await store.mark_statuses_sent([status(E2, 0, "n1")], unsendable)

    owed = {o.message_id: o for o in await store.owed_status_results(10)}
    assert owed["m1"].kind is ResultKind.REJECTED
    assert owed["m1"].refusal == refusal
    assert owed["n1"].refusal == unsendable
    assert await store.pending_statuses(10) == []


async def test_owed_results_survive_a_restart_until_published(kit: StoreKit) -> None:
    store = await kit.opened()
    await store.record_statuses([status(E1, 0, "m1"), status(E2, 0, "n1")])
    await store.record_statuses([status(E1, 1, "m2")])
    await store.mark_statuses_sent([status(E2, 0, "n1")],
                                   Refusal("400", "session invalid", "Session is invalid"))
    before = await store.owed_status_results(10)
    await store.close()

    again = await kit.opened()
    assert await again.owed_status_results(10) == before
    assert owed_ids(before) == [("m1", ResultKind.SUPERSEDED), ("n1", ResultKind.REJECTED)]

    await again.status_results_published(["m1", "unknown"])
    await again.status_results_published([])
    assert owed_ids(await again.owed_status_results(10)) == [("n1", ResultKind.REJECTED)]
    await again.close()

    last = await kit.opened()
    assert owed_ids(await last.owed_status_results(10)) == [("n1", ResultKind.REJECTED)]
    await last.status_results_published(["n1"])
    assert await last.owed_status_results(10) == []


async def test_owed_results_come_longest_owed_first_and_by_age(store: StateStore) -> None:
    await store.record_statuses([status(E3, 0, "p1")])
    await store.mark_statuses_sent([status(E3, 0, "p1")])
    between = datetime.now(UTC)
    await store.record_statuses([status(E1, 0, "m1"), status(E2, 0, "n1")])
    await store.mark_statuses_sent([status(E2, 0, "n1"), status(E1, 0, "m1")])

    assert owed_ids(await store.owed_status_results(1)) == [("p1", ResultKind.ACCEPTED)]
    assert [o.message_id for o in await store.owed_status_results(10)] == ["p1", "m1", "n1"]
    # Only what was owed before a moment: what others owe now is on its way already.
    assert [o.message_id for o in await store.owed_status_results(
        10, created_before=between)] == ["p1"]
    assert await store.owed_status_results(10, created_before=between - timedelta(days=1)) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.owed_status_results(10, created_before=datetime(2024, 5, 1))  # naive


async def test_no_status_change_is_kept_without_the_result_it_makes_owed(
    kit: StoreKit,
) -> None:
    store = await kit.opened(migrations=(*kit.migrations, REFUSE_OWED[kit.kind]))
    # Owing nothing works as before.
    await store.record_statuses([status(E1, 0, "m1"), status(E2, 0, "n1")])

    with pytest.raises(StateError, match="owed results refused"):
        await store.record_statuses([status(E1, 5, "m2"), status(E3, 0, "p1")])
    with pytest.raises(StateError, match="owed results refused"):
        await store.mark_statuses_sent([status(E2, 0, "n1")])

    # Neither the replacement (nor the change beside it) nor the marking was kept.
    assert [s.message_id for s in await store.latest_statuses()] == ["m1", "n1"]
    assert [s.message_id for s in await store.pending_statuses(10)] == ["m1", "n1"]
    assert await store.owed_status_results(10) == []


async def test_a_store_of_the_previous_schema_is_migrated_and_owes_results(
    kit: StoreKit,
) -> None:
    old = await kit.opened(migrations=kit.migrations[:1])
    await old.record_statuses([status(E1, 0, "m1"), status(E2, 0, "n1")])
    await old.close()

    store = await kit.opened()
    assert await store.schema_version() == kit.latest
    await store.record_statuses([status(E1, 1, "m2")])
    await store.mark_statuses_sent([status(E2, 0, "n1")])
    assert owed_ids(await store.owed_status_results(10)) == [
        ("m1", ResultKind.SUPERSEDED), ("n1", ResultKind.ACCEPTED)]


async def test_pending_status_summary_counts_pending_statuses_and_owed_results(
    store: StateStore,
) -> None:
    empty = await store.pending_status_summary()
    assert (empty.pending, empty.oldest, empty.results_owed) == (0, None, 0)

    # E1's first status is replaced before its push (one result owed: superseded); E2's
    # is pushed (one owed: accepted); E1's newer one and E3's wait for a push.
    later = datetime(2024, 1, 1, 11, 30, tzinfo=timezone(timedelta(hours=1)))
    await store.record_statuses([status(E1, 0, "m1"), status(E2, 0, "n1")])
    await store.record_statuses([status(E1, 60, "m2"), status(E3, later, "p1")])
    await store.mark_statuses_sent([status(E2, 0, "n1")])

    summary = await store.pending_status_summary()
    assert summary.pending == 2
    # The oldest pending change is E3's (10:30Z), not E1's newer one nor E2's pushed one.
    assert summary.oldest == datetime(2024, 1, 1, 10, 30, tzinfo=UTC)
    assert summary.results_owed == 2

    await store.status_results_published(["m1", "n1"])
    await store.mark_statuses_sent([status(E1, 60, "m2"), status(E3, later, "p1")])
    summary = await store.pending_status_summary()
    assert (summary.pending, summary.oldest, summary.results_owed) == (0, None, 2)
