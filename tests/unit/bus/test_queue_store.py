"""The embedded bus's SQLite store, statement by statement (synchronous, no event loop)."""

from __future__ import annotations

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
