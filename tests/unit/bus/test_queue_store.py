"""The embedded bus's SQLite store, statement by statement (synchronous, no event loop)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubject_connector.bus.base import (
    ORIGINAL_QUEUE_HEADER,
    REASON_HEADER,
    DeadLetterNotFound,
    QueueSpec,
    Unroutable,
)
from hubject_connector.bus.embedded_store import QueueStore
from hubject_connector.errors import BusError

STATUS = "com.hubject-connector.evse.status.v1"
HOUR = 3600.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[QueueStore]:
    """An open store with a status queue and an ordered queue."""
    made = QueueStore(tmp_path / "sub" / "bus.sqlite3")
    made.open()
    made.declare(QueueSpec("status", bindings=(STATUS,)))
    made.declare(QueueSpec("ordered", bindings=("ordered",), ordered=True))
    yield made
    made.close()


def test_file_is_durable_by_configuration(store: QueueStore) -> None:
    assert store.db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert store.db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL


def test_publish_fans_out_to_bound_queues_and_refuses_unbound_keys(store: QueueStore) -> None:
    store.declare(QueueSpec("audit", bindings=("com.hubject-connector.#",)))
    assert store.publish(STATUS, b"{}", {}, "m1") == ["audit", "status"]
    with pytest.raises(Unroutable):
        store.publish("nobody.listens", b"{}", {}, "m2")
    assert store.db.execute("SELECT count(*) FROM messages").fetchone() == (2,)


def test_a_leased_message_is_hidden_until_acked_or_its_lease_runs_out(store: QueueStore) -> None:
    store.publish(STATUS, b"a", {"h": "1"}, "m1")
    [claimed], _ = store.claim("status", "owner-1", 10, HOUR, ordered=False)
    assert (claimed.id, claimed.body, claimed.headers, claimed.deliveries) == (
        "m1", b"a", {"h": "1"}, 1
    )
    assert store.claim("status", "owner-2", 10, HOUR, ordered=False)[0] == []
    # Another consumer can't ack what it does not hold; the holder can.
    assert not store.ack(claimed.seq, "owner-2")
    assert store.ack(claimed.seq, "owner-1")
    assert store.claim("status", "owner-2", 10, HOUR, ordered=False)[0] == []


def test_an_expired_lease_delivers_again(store: QueueStore) -> None:
    store.publish(STATUS, b"a", {}, "m1")
    [first], _ = store.claim("status", "dead-owner", 10, 0.0, ordered=False)
    [again], _ = store.claim("status", "new-owner", 10, HOUR, ordered=False)
    assert again.id == first.id
    assert again.deliveries == 2
    assert not store.ack(first.seq, "dead-owner")  # its lease was taken over


def test_retry_hides_the_message_for_the_delay_and_counts(store: QueueStore) -> None:
    store.publish(STATUS, b"a", {}, "m1")
    store.publish(STATUS, b"b", {}, "m2")
    [first], _ = store.claim("status", "o", 1, HOUR, ordered=False)
    assert store.retry(first.seq, "o", HOUR)
    [second], next_visible = store.claim("status", "o", 10, HOUR, ordered=False)
    assert second.id == "m2"
    assert next_visible is not None
    assert next_visible > time.time() + HOUR / 2
    row = store.db.execute("SELECT retries FROM messages WHERE id = 'm1'").fetchone()
    assert row == (1,)


def test_ordered_queue_hands_out_one_message_at_a_time_in_order(store: QueueStore) -> None:
    for n in range(3):
        store.publish("ordered", b"x", {}, f"m{n}")
    [first], _ = store.claim("ordered", "a", 10, HOUR, ordered=True)
    assert first.id == "m0"
    assert store.claim("ordered", "b", 10, HOUR, ordered=True)[0] == []
    store.ack(first.seq, "a")
    [second], _ = store.claim("ordered", "b", 10, HOUR, ordered=True)
    assert second.id == "m1"


def test_dead_letter_replay_and_delete(store: QueueStore) -> None:
    store.publish(STATUS, b"bad", {"x-tenant": "eu", REASON_HEADER: "old"}, "m1")
    [claimed], _ = store.claim("status", "o", 10, HOUR, ordered=False)
    assert store.dead_letter(claimed.seq, "o", "ValueError: no", "builtins.ValueError")
    assert store.db.execute("SELECT count(*) FROM messages").fetchone() == (0,)
    [letter] = store.list_dead_letters(10)
    assert (letter.queue, letter.routing_key, letter.reason, letter.error, letter.body) == (
        "status", STATUS, "ValueError: no", "builtins.ValueError", b"bad"
    )
    assert store.get_dead_letter(letter.id) == letter

    assert store.replay_dead_letter(letter.id, b"fixed") == "status"
    assert store.list_dead_letters(10) == []
    [replayed], _ = store.claim("status", "o", 10, HOUR, ordered=False)
    assert (replayed.id, replayed.body, replayed.retries) == ("m1", b"fixed", 0)
    # The bus's own dead-letter headers do not travel back.
    assert replayed.headers == {"x-tenant": "eu"}

    kept = store.add_dead_letter(
        queue="http-api", routing_key="", body=b"{", headers={ORIGINAL_QUEUE_HEADER: "q"},
        reason="not JSON", error=None,
    )
    with pytest.raises(BusError, match="not a queue"):
        store.replay_dead_letter(kept, None)
    store.delete_dead_letter(kept)
    with pytest.raises(DeadLetterNotFound):
        store.delete_dead_letter(kept)
    with pytest.raises(DeadLetterNotFound):
        store.get_dead_letter(kept)


def test_request_nobody_took_before_its_deadline_is_dead_lettered(store: QueueStore) -> None:
    store.publish(STATUS, b"stale", {}, "old", correlation_id="c", reply_to="r",
                  expires_at=time.time() - 1)
    store.publish(STATUS, b"fresh", {}, "new")
    claimed, _ = store.claim("status", "o", 10, HOUR, ordered=False)
    assert [m.id for m in claimed] == ["new"]
    [letter] = store.list_dead_letters(10)
    assert letter.message_id == "old"
    assert letter.reason.startswith("expired")


def test_replies_are_taken_once_by_their_address(store: QueueStore) -> None:
    store.put_reply("me", "c1", b"one")
    store.put_reply("someone-else", "c2", b"two")
    assert store.take_replies("me") == [("c1", b"one")]
    assert store.take_replies("me") == []
    assert store.take_replies("someone-else") == [("c2", b"two")]


def test_the_same_message_id_is_stored_once_per_queue(store: QueueStore) -> None:
    store.declare(QueueSpec("audit", bindings=("com.hubject-connector.#",)))
    assert store.publish(STATUS, b"a", {}, "m1") == ["audit", "status"]
    # Sent again (the answer to the first was lost): still one per queue.
    assert store.publish(STATUS, b"a", {}, "m1") == ["audit", "status"]
    rows = store.db.execute("SELECT queue, id FROM messages ORDER BY queue").fetchall()
    assert rows == [("audit", "m1"), ("status", "m1")]


def dead(store: QueueStore, n: int) -> str:
    """Add the dead letter number ``n``; its id."""
    return store.add_dead_letter(
        queue="http-api", routing_key="", body=b"x" * n, headers={}, reason=f"#{n}", error=None
    )


def test_dead_letters_are_capped_by_count_oldest_first(tmp_path: Path) -> None:
    capped = QueueStore(tmp_path / "bus.sqlite3", max_dead_letters=2)
    capped.open()
    try:
        for n in range(1, 5):
            dead(capped, n)
        assert [d.reason for d in capped.list_dead_letters(10)] == ["#3", "#4"]
    finally:
        capped.close()


def test_dead_letter_pages_follow_a_cursor_that_is_never_reused(store: QueueStore) -> None:
    ids = [dead(store, n) for n in range(1, 4)]
    page = store.dead_letter_page(0, 2)
    assert [d.id for d in page.letters] == ids[:2]
    assert [d.size for d in page.letters] == [1, 2]
    assert page.more
    rest = store.dead_letter_page(page.next, 2)
    assert ([d.id for d in rest.letters], rest.more) == (ids[2:], False)
    # The newest one is deleted and another comes: it is after the cursor, not at it.
    store.delete_dead_letter(ids[2])
    newer = dead(store, 4)
    assert [d.id for d in store.dead_letter_page(rest.next, 10).letters] == [newer]
    assert store.dead_letter_page(rest.next + 1, 10).next == rest.next + 1


def test_dead_letters_past_their_age_are_hidden_then_pruned(tmp_path: Path) -> None:
    path = tmp_path / "bus.sqlite3"
    keeper, strict = QueueStore(path), QueueStore(path, dead_letter_max_age=0.0)
    keeper.open()
    strict.open()
    try:
        kept = dead(keeper, 1)
        assert strict.list_dead_letters(10) == []
        assert strict.dead_letter_page(0, 10).letters == []
        with pytest.raises(DeadLetterNotFound):
            strict.get_dead_letter(kept)
        assert keeper.get_dead_letter(kept).reason == "#1"
        assert strict.prune() == (1, 0)
        assert keeper.list_dead_letters(10) == []
    finally:
        keeper.close()
        strict.close()


RESULT = "com.hubject-connector.delivery.result.v1"


def test_results_are_kept_without_a_queue_and_read_after_a_cursor(store: QueueStore) -> None:
    with pytest.raises(Unroutable):
        store.publish(RESULT, b"r0", {}, "r0")
    for n in range(1, 4):
        assert store.publish(RESULT, f"r{n}".encode(), {}, f"r{n}", correlation_id=f"c{n}",
                             keep_result=True) == []
    store.publish(RESULT, b"r1", {}, "r1", keep_result=True)  # again: kept once
    page = store.results_after(0, 2)
    assert [(r.id, r.correlation_id, r.body) for r in page.results] == [
        ("r1", "c1", b"r1"), ("r2", "c2", b"r2")
    ]
    assert (page.more, page.gap) == (True, False)
    rest = store.results_after(page.next, 10)
    assert ([r.id for r in rest.results], rest.more) == (["r3"], False)
    assert store.results_after(rest.next, 10).results == []


def test_results_past_retention_are_hidden_then_pruned_and_the_gap_is_said(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bus.sqlite3"
    keeper, strict = QueueStore(path), QueueStore(path, results_retention=0.0)
    keeper.open()
    strict.open()
    try:
        keeper.publish(RESULT, b"r1", {}, "r1", keep_result=True)
        assert [r.id for r in keeper.results_after(0, 10).results] == ["r1"]
        hidden = strict.results_after(0, 10)
        assert (hidden.results, hidden.gap) == ([], True)
        assert strict.prune() == (0, 1)
        gone = keeper.results_after(0, 10)
        assert (gone.results, gone.gap) == ([], True)
        # From the cursor it hands out, nothing is missing any more.
        assert keeper.results_after(gone.next, 10).gap is False
        keeper.publish(RESULT, b"r2", {}, "r2", keep_result=True)
        assert [r.id for r in keeper.results_after(gone.next, 10).results] == ["r2"]
    finally:
        keeper.close()
        strict.close()


#: The tables as the previous release wrote them (no dead-letter cursor, no uniqueness).
_OLD_SCHEMA = """
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, queue TEXT NOT NULL,
    routing_key TEXT NOT NULL, body BLOB NOT NULL, headers TEXT NOT NULL,
    correlation_id TEXT, reply_to TEXT, retries INTEGER NOT NULL DEFAULT 0,
    deliveries INTEGER NOT NULL DEFAULT 0, visible_at REAL NOT NULL, lease_owner TEXT,
    expires_at REAL, created_at REAL NOT NULL
);
CREATE TABLE dead_letters (
    id TEXT PRIMARY KEY, message_id TEXT NOT NULL, queue TEXT NOT NULL,
    routing_key TEXT NOT NULL, reason TEXT NOT NULL, error TEXT, body BLOB NOT NULL,
    headers TEXT NOT NULL, retries INTEGER NOT NULL, dead_lettered_at REAL NOT NULL
);
"""


def test_a_file_of_the_previous_release_is_brought_up_to_date(tmp_path: Path) -> None:
    path = tmp_path / "bus.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(_OLD_SCHEMA)
        now = time.time()
        db.executemany(
            "INSERT INTO messages (id, queue, routing_key, body, headers, visible_at,"
            " created_at) VALUES (?, 'status', ?, ?, '{}', ?, ?)",
            [("m1", STATUS, b"first", now, now), ("m1", STATUS, b"again", now, now),
             ("m2", STATUS, b"other", now, now)],
        )
        db.executemany(
            "INSERT INTO dead_letters VALUES (?, ?, 'q', 'k', ?, NULL, x'00', '{}', 0, ?)",
            [("d1", "m7", "old", now - 10), ("d2", "m8", "older", now - 5)],
        )
    db.close()
    upgraded = QueueStore(path)
    upgraded.open()
    try:
        upgraded.declare(QueueSpec("status", bindings=(STATUS,)))
        claimed, _ = upgraded.claim("status", "o", 10, HOUR, ordered=False)
        assert [(m.id, m.body) for m in claimed] == [("m1", b"first"), ("m2", b"other")]
        page = upgraded.dead_letter_page(0, 10)
        assert [d.id for d in page.letters] == ["d1", "d2"]
        newer = dead(upgraded, 1)
        assert [d.id for d in upgraded.dead_letter_page(page.next, 10).letters] == [newer]
    finally:
        upgraded.close()
    again = QueueStore(path)  # opening twice changes nothing
    again.open()
    try:
        assert [d.id for d in again.dead_letter_page(0, 10).letters] == ["d1", "d2", newer]
    finally:
        again.close()
