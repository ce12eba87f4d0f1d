"""The embedded bus's store: one SQLite file holding queues, dead letters and results.

What passes through: rows. :class:`QueueStore` is synchronous and does no networking; the
bus (:mod:`hubject_connector.bus.embedded`) calls it on one dedicated thread. It hands back
:class:`StoredMessage` (a claimed message), :class:`~hubject_connector.bus.base.DeadLetter`
and the pages of the HTTP API's listings (:class:`DeadLetterPage`, :class:`ResultPage`).

Durability: the file is in WAL mode with ``synchronous=FULL``, so a publish returns only
once its row is on disk, and an acknowledgement deletes the row in a committed
transaction; a ``kill -9`` loses neither. A message being handled is *leased*: hidden
until the lease ends, a lease the bus renews while the handler runs. Several processes
may share the file (SQLite's write lock serialises claims).

Tables: ``queues`` and ``bindings`` (the topology, outliving the process as on a broker);
``messages`` (one row per message and queue: the same id twice for one queue is stored
once); ``dead_letters`` (capped by count and age); ``replies`` (request/reply inside the
file); ``results`` (what the backend reads through ``GET /v1/results``: delivery results
and replies, kept for a retention time, read by an increasing cursor); ``counters``.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from hubject_connector.bus.base import (
    DEAD_LETTER_HEADERS,
    DeadLetter,
    DeadLetterNotFound,
    NotConnected,
    QueueSpec,
    Unroutable,
    topic_matches,
)
from hubject_connector.errors import BusError

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY,
    ordered INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS bindings (
    queue TEXT NOT NULL,
    pattern TEXT NOT NULL,
    PRIMARY KEY (queue, pattern)
);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    queue TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    body BLOB NOT NULL,
    headers TEXT NOT NULL,
    correlation_id TEXT,
    reply_to TEXT,
    retries INTEGER NOT NULL DEFAULT 0,
    deliveries INTEGER NOT NULL DEFAULT 0,
    -- Not delivered before this Unix time: a delayed retry, or the end of a lease.
    visible_at REAL NOT NULL,
    lease_owner TEXT,
    -- A request nobody took before this time is dead-lettered instead of delivered.
    expires_at REAL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, visible_at, seq);
CREATE INDEX IF NOT EXISTS messages_by_owner ON messages (lease_owner);
CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    queue TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    reason TEXT NOT NULL,
    error TEXT,
    body BLOB NOT NULL,
    headers TEXT NOT NULL,
    retries INTEGER NOT NULL,
    dead_lettered_at REAL NOT NULL,
    -- The listing's cursor: increasing, never reused (from counters, not the rowid).
    seq INTEGER
);
CREATE INDEX IF NOT EXISTS dead_letters_by_age ON dead_letters (dead_lettered_at);
CREATE TABLE IF NOT EXISTS replies (
    correlation_id TEXT PRIMARY KEY,
    reply_to TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS replies_by_address ON replies (reply_to);
CREATE TABLE IF NOT EXISTS results (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    routing_key TEXT NOT NULL,
    correlation_id TEXT,
    body BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_by_age ON results (created_at);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

#: Counter names in ``counters``.
_DEAD_LETTER_SEQ: Final = "dead_letter_seq"
_RESULTS_PRUNED_THROUGH: Final = "results_pruned_through"

_DEAD_LETTER_COLUMNS: Final = (
    "id, queue, routing_key, reason, error, body, headers, message_id, retries,"
    " dead_lettered_at"
)
_SUMMARY_COLUMNS: Final = (
    "id, queue, routing_key, reason, error, length(body), headers, message_id, retries,"
    " dead_lettered_at, seq"
)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message row as claimed from the store."""

    seq: int
    id: str
    queue: str
    routing_key: str
    body: bytes
    headers: dict[str, str]
    correlation_id: str | None
    reply_to: str | None
    retries: int
    deliveries: int


@dataclass(frozen=True, slots=True)
class DeadLetterSummary:
    """A dead letter without its body, as the paged listing shows it."""

    id: str
    queue: str
    routing_key: str
    reason: str
    error: str | None
    #: The body's size in bytes (fetch the letter by id for the body itself).
    size: int
    headers: Mapping[str, str]
    message_id: str
    retries: int
    dead_lettered_at: datetime
    #: Where this letter stands in the listing (pass it as ``after`` for the next page).
    cursor: int


@dataclass(frozen=True, slots=True)
class DeadLetterPage:
    """One page of dead letters, oldest first."""

    letters: list[DeadLetterSummary]
    #: The cursor to ask for the page after this one (the given one when it is empty).
    next: int
    #: Whether more letters follow this page.
    more: bool


@dataclass(frozen=True, slots=True)
class StoredResult:
    """A message for the backend (delivery result, reply) kept for GET /v1/results."""

    cursor: int
    id: str
    routing_key: str
    correlation_id: str | None
    body: bytes
    stored_at: datetime


@dataclass(frozen=True, slots=True)
class ResultPage:
    """One page of results after a cursor, oldest first."""

    results: list[StoredResult]
    #: The cursor to ask for what comes after this page.
    next: int
    #: Whether more results follow this page.
    more: bool
    #: Whether results after the given cursor were removed (retention) before being read.
    gap: bool


class QueueStore:
    """The SQLite file and every statement on it. Synchronous: call it on one thread.

    ``max_dead_letters`` and ``dead_letter_max_age`` bound the dead letters (the oldest go
    first); ``results_retention`` is how long results stay readable. Letters and results
    past their age are no longer shown at once, and deleted by :meth:`prune`.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_dead_letters: int = 10_000,
        dead_letter_max_age: float = 30 * 86400.0,
        results_retention: float = 7 * 86400.0,
    ) -> None:
        self.path = path
        self.max_dead_letters = max_dead_letters
        self.dead_letter_max_age = dead_letter_max_age
        self.results_retention = results_retention
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection."""
        if self._db is None:
            raise NotConnected("the embedded bus store is closed")
        return self._db

    def open(self) -> None:
        """Open (and create, or bring up to date) the file with the durability settings."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE) below.
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA busy_timeout = 10000")
            db.execute("PRAGMA journal_mode = WAL")
            # FULL: a commit is fsynced before it returns, so an acked publish survives
            # power loss.
            db.execute("PRAGMA synchronous = FULL")
            db.executescript(_SCHEMA)
            self._db = db
            self._migrate()
        except BaseException:
            self._db = None
            db.close()
            raise

    def _migrate(self) -> None:
        """Bring a file written by an earlier version up to date (idempotent)."""
        with self._transaction() as db:
            columns = {row[1] for row in db.execute("PRAGMA table_info(dead_letters)")}
            if "seq" not in columns:
                db.execute("ALTER TABLE dead_letters ADD COLUMN seq INTEGER")
            if db.execute("SELECT 1 FROM dead_letters WHERE seq IS NULL LIMIT 1").fetchone():
                start = self._counter(db, _DEAD_LETTER_SEQ)
                db.execute(
                    "UPDATE dead_letters SET seq = ? + rowid WHERE seq IS NULL", (start,)
                )
                (top,) = db.execute("SELECT coalesce(max(seq), 0) FROM dead_letters").fetchone()
                self._set_counter(db, _DEAD_LETTER_SEQ, int(top))
            db.execute(
                "CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_by_seq ON dead_letters (seq)"
            )
            once = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'messages_once'"
            ).fetchone()
            if once is None:
                # Earlier versions stored a message posted twice twice: keep the first.
                db.execute(
                    "DELETE FROM messages WHERE seq NOT IN"
                    " (SELECT min(seq) FROM messages GROUP BY queue, id)"
                )
                db.execute("CREATE UNIQUE INDEX messages_once ON messages (queue, id)")

    def close(self) -> None:
        """Close the file."""
        if self._db is not None:
            self._db.close()
            self._db = None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @staticmethod
    def _counter(db: sqlite3.Connection, name: str) -> int:
        row = db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _set_counter(db: sqlite3.Connection, name: str, value: int) -> None:
        db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    # --- topology and messages --------------------------------------------------------

    def declare(self, spec: QueueSpec) -> None:
        """Record the queue and its bindings (they outlive the process, as on a broker)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO queues (name, ordered) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET ordered = excluded.ordered",
                (spec.name, int(spec.ordered)),
            )
            db.executemany(
                "INSERT OR IGNORE INTO bindings (queue, pattern) VALUES (?, ?)",
                [(spec.name, pattern) for pattern in spec.patterns],
            )

    def queue_spec(self, name: str) -> QueueSpec | None:
        """The declared queue called ``name``."""
        row = self.db.execute("SELECT ordered FROM queues WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        patterns = tuple(
            p for (p,) in self.db.execute("SELECT pattern FROM bindings WHERE queue = ?", (name,))
        )
        return QueueSpec(name, patterns, ordered=bool(row[0]))

    def publish(
        self,
        routing_key: str,
        body: bytes,
        headers: Mapping[str, str],
        message_id: str,
        *,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        expires_at: float | None = None,
        keep_result: bool = False,
    ) -> list[str]:
        """Insert one row per queue bound to ``routing_key``; the queues' names.

        A message whose id that queue already holds is not stored again (a backend sending
        again after a lost answer). ``keep_result`` also keeps it for ``GET /v1/results``;
        then no bound queue is no error. Raises :class:`Unroutable` when nothing took it.
        """
        now = time.time()
        with self._transaction() as db:
            queues = sorted(
                {
                    queue
                    for queue, pattern in db.execute("SELECT queue, pattern FROM bindings")
                    if topic_matches(pattern, routing_key)
                }
            )
            if not queues and not keep_result:
                raise Unroutable(routing_key)
            db.executemany(
                "INSERT OR IGNORE INTO messages (id, queue, routing_key, body, headers,"
                " correlation_id, reply_to, visible_at, expires_at, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        message_id,
                        queue,
                        routing_key,
                        body,
                        json.dumps(dict(headers)),
                        correlation_id,
                        reply_to,
                        now,
                        expires_at,
                        now,
                    )
                    for queue in queues
                ],
            )
            if keep_result:
                db.execute(
                    "INSERT OR IGNORE INTO results (id, routing_key, correlation_id, body,"
                    " created_at) VALUES (?, ?, ?, ?, ?)",
                    (message_id, routing_key, correlation_id, body, now),
                )
        return queues

    def claim(
        self, queue: str, owner: str, limit: int, lease_seconds: float, *, ordered: bool
    ) -> tuple[list[StoredMessage], float | None]:
        """Lease up to ``limit`` visible messages; also when the next one becomes visible."""
        now = time.time()
        with self._transaction() as db:
            self._expire(db, queue, now)
            if ordered:
                # One message at a time across every process: none while one is leased.
                busy = db.execute(
                    "SELECT 1 FROM messages WHERE queue = ? AND lease_owner IS NOT NULL"
                    " AND visible_at > ? LIMIT 1",
                    (queue, now),
                ).fetchone()
                limit = 0 if busy else min(limit, 1)
            rows = db.execute(
                "SELECT seq, id, queue, routing_key, body, headers, correlation_id, reply_to,"
                " retries, deliveries FROM messages WHERE queue = ? AND visible_at <= ?"
                " ORDER BY seq LIMIT ?",
                (queue, now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE messages SET lease_owner = ?, visible_at = ?,"
                " deliveries = deliveries + 1 WHERE seq = ?",
                [(owner, now + lease_seconds, row[0]) for row in rows],
            )
            (next_visible,) = db.execute(
                "SELECT min(visible_at) FROM messages WHERE queue = ?", (queue,)
            ).fetchone()
        claimed = [
            StoredMessage(
                seq=row[0],
                id=row[1],
                queue=row[2],
                routing_key=row[3],
                body=bytes(row[4]),
                headers=json.loads(row[5]),
                correlation_id=row[6],
                reply_to=row[7],
                retries=row[8],
                deliveries=row[9] + 1,
            )
            for row in rows
        ]
        return claimed, next_visible

    def _expire(self, db: sqlite3.Connection, queue: str, now: float) -> None:
        expired = db.execute(
            "SELECT seq FROM messages WHERE queue = ? AND expires_at IS NOT NULL"
            " AND expires_at <= ? AND lease_owner IS NULL",
            (queue, now),
        ).fetchall()
        for (seq,) in expired:
            self._move_to_dead_letters(
                db, seq, "expired: no consumer took the request before its deadline", None, now
            )

    def renew(self, owner: str, lease_seconds: float, except_seqs: tuple[int, ...] = ()) -> None:
        """Extend every lease ``owner`` holds, but those of ``except_seqs`` (let them lapse)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE messages SET visible_at = ? WHERE lease_owner = ?"
                " AND seq NOT IN (SELECT value FROM json_each(?))",
                (time.time() + lease_seconds, owner, json.dumps(except_seqs)),
            )

    def ack(self, seq: int, owner: str) -> bool:
        """Delete a leased message; False if the lease was lost to another consumer."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM messages WHERE seq = ? AND lease_owner = ?", (seq, owner)
            )
        return bool(cursor.rowcount == 1)

    def retry(self, seq: int, owner: str, delay: float) -> bool:
        """Hide a leased message for ``delay`` seconds and count the retry."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE messages SET lease_owner = NULL, visible_at = ?, retries = retries + 1"
                " WHERE seq = ? AND lease_owner = ?",
                (time.time() + delay, seq, owner),
            )
        return bool(cursor.rowcount == 1)

    def release(self, seq: int, owner: str) -> None:
        """Make a leased message visible again at once."""
        with self._transaction() as db:
            db.execute(
                "UPDATE messages SET lease_owner = NULL, visible_at = ?"
                " WHERE seq = ? AND lease_owner = ?",
                (time.time(), seq, owner),
            )

    def release_all(self, owner: str) -> None:
        """Make every message ``owner`` still leases visible again (on close)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE messages SET lease_owner = NULL, visible_at = ? WHERE lease_owner = ?",
                (time.time(), owner),
            )

    # --- dead letters -----------------------------------------------------------------

    def dead_letter(self, seq: int, owner: str, reason: str, error: str | None) -> bool:
        """Move a leased message to the dead letters, in one transaction."""
        with self._transaction() as db:
            leased = db.execute(
                "SELECT 1 FROM messages WHERE seq = ? AND lease_owner = ?", (seq, owner)
            ).fetchone()
            if leased is None:
                return False
            self._move_to_dead_letters(db, seq, reason, error, time.time())
        return True

    def _next_dead_letter_seq(self, db: sqlite3.Connection) -> int:
        value = self._counter(db, _DEAD_LETTER_SEQ) + 1
        self._set_counter(db, _DEAD_LETTER_SEQ, value)
        return value

    def _move_to_dead_letters(
        self, db: sqlite3.Connection, seq: int, reason: str, error: str | None, now: float
    ) -> None:
        db.execute(
            "INSERT INTO dead_letters (id, message_id, queue, routing_key, reason, error, body,"
            " headers, retries, dead_lettered_at, seq)"
            " SELECT ?, id, queue, routing_key, ?, ?, body, headers, retries, ?, ?"
            " FROM messages WHERE seq = ?",
            (str(uuid.uuid4()), reason, error, now, self._next_dead_letter_seq(db), seq),
        )
        db.execute("DELETE FROM messages WHERE seq = ?", (seq,))
        self._cap_dead_letters(db)

    def _cap_dead_letters(self, db: sqlite3.Connection) -> None:
        """Remove the oldest dead letters beyond ``max_dead_letters``."""
        db.execute(
            "DELETE FROM dead_letters WHERE seq <= (SELECT seq FROM dead_letters"
            " ORDER BY seq DESC LIMIT 1 OFFSET ?)",
            (self.max_dead_letters,),
        )

    def add_dead_letter(
        self,
        *,
        queue: str,
        routing_key: str,
        body: bytes,
        headers: Mapping[str, str],
        reason: str,
        error: str | None,
        message_id: str | None = None,
    ) -> str:
        """Store a message that never made it into a queue as a dead letter; its id."""
        dead_letter_id = str(uuid.uuid4())
        with self._transaction() as db:
            db.execute(
                "INSERT INTO dead_letters (id, message_id, queue, routing_key, reason, error,"
                " body, headers, retries, dead_lettered_at, seq)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                (
                    dead_letter_id,
                    message_id or dead_letter_id,
                    queue,
                    routing_key,
                    reason,
                    error,
                    body,
                    json.dumps(dict(headers)),
                    time.time(),
                    self._next_dead_letter_seq(db),
                ),
            )
            self._cap_dead_letters(db)
        return dead_letter_id

    def _dead_letter_cutoff(self) -> float:
        return time.time() - self.dead_letter_max_age

    @staticmethod
    def _dead_letter_from(row: tuple[Any, ...]) -> DeadLetter:
        return DeadLetter(
            id=row[0],
            queue=row[1],
            routing_key=row[2],
            reason=row[3],
            error=row[4],
            body=bytes(row[5]),
            headers=json.loads(row[6]),
            message_id=row[7],
            retries=row[8],
            dead_lettered_at=datetime.fromtimestamp(row[9], UTC),
        )

    def dead_letter_count(self) -> int:
        """The dead letters ``list_dead_letters`` would show (those past their age too are
        left out: the next prune deletes them)."""
        (count,) = self.db.execute(
            "SELECT count(*) FROM dead_letters WHERE dead_lettered_at >= ?",
            (self._dead_letter_cutoff(),),
        ).fetchone()
        return int(count)

    def list_dead_letters(self, limit: int) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters, with their bodies."""
        rows = self.db.execute(
            f"SELECT {_DEAD_LETTER_COLUMNS} FROM dead_letters"  # noqa: S608 - constant
            " WHERE dead_lettered_at >= ? ORDER BY seq LIMIT ?",
            (self._dead_letter_cutoff(), limit),
        ).fetchall()
        return [self._dead_letter_from(row) for row in rows]

    def dead_letter_page(self, after: int, limit: int) -> DeadLetterPage:
        """The dead letters after the cursor ``after``, oldest first, without bodies."""
        rows = self.db.execute(
            f"SELECT {_SUMMARY_COLUMNS} FROM dead_letters"  # noqa: S608 - constant
            " WHERE seq > ? AND dead_lettered_at >= ? ORDER BY seq LIMIT ?",
            (after, self._dead_letter_cutoff(), limit + 1),
        ).fetchall()
        letters = [
            DeadLetterSummary(
                id=row[0],
                queue=row[1],
                routing_key=row[2],
                reason=row[3],
                error=row[4],
                size=int(row[5]),
                headers=json.loads(row[6]),
                message_id=row[7],
                retries=row[8],
                dead_lettered_at=datetime.fromtimestamp(row[9], UTC),
                cursor=int(row[10]),
            )
            for row in rows[:limit]
        ]
        return DeadLetterPage(
            letters, letters[-1].cursor if letters else after, more=len(rows) > limit
        )

    def get_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        """One dead letter by id."""
        row = self.db.execute(
            f"SELECT {_DEAD_LETTER_COLUMNS} FROM dead_letters"  # noqa: S608 - constant
            " WHERE id = ? AND dead_lettered_at >= ?",
            (dead_letter_id, self._dead_letter_cutoff()),
        ).fetchone()
        if row is None:
            raise DeadLetterNotFound(dead_letter_id)
        return self._dead_letter_from(row)

    def replay_dead_letter(self, dead_letter_id: str, body: bytes | None) -> str:
        """Move a dead letter back to its queue (retries reset), atomically."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute(
                "SELECT message_id, queue, routing_key, body, headers FROM dead_letters"
                " WHERE id = ?",
                (dead_letter_id,),
            ).fetchone()
            if row is None:
                raise DeadLetterNotFound(dead_letter_id)
            message_id, queue, routing_key, old_body, headers = row
            known = db.execute("SELECT 1 FROM queues WHERE name = ?", (queue,)).fetchone()
            if known is None:
                raise BusError(
                    f"dead letter {dead_letter_id} came from {queue!r}, which is not a queue;"
                    " publish its body again instead"
                )
            kept = {k: v for k, v in json.loads(headers).items() if k not in DEAD_LETTER_HEADERS}
            # OR IGNORE: the queue may hold the same message again already (sent anew).
            db.execute(
                "INSERT OR IGNORE INTO messages (id, queue, routing_key, body, headers,"
                " visible_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    message_id,
                    queue,
                    routing_key,
                    old_body if body is None else body,
                    json.dumps(kept),
                    now,
                    now,
                ),
            )
            db.execute("DELETE FROM dead_letters WHERE id = ?", (dead_letter_id,))
        return str(queue)

    def delete_dead_letter(self, dead_letter_id: str) -> None:
        """Remove a dead letter."""
        with self._transaction() as db:
            cursor = db.execute("DELETE FROM dead_letters WHERE id = ?", (dead_letter_id,))
        if cursor.rowcount != 1:
            raise DeadLetterNotFound(dead_letter_id)

    # --- replies and results -----------------------------------------------------------

    def put_reply(self, reply_to: str, correlation_id: str, body: bytes) -> None:
        """Store a reply for the requester at ``reply_to``."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO replies (correlation_id, reply_to, body, created_at)"
                " VALUES (?, ?, ?, ?)",
                (correlation_id, reply_to, body, time.time()),
            )

    def take_replies(self, reply_to: str) -> list[tuple[str, bytes]]:
        """Remove and return the replies waiting at ``reply_to``."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT correlation_id, body FROM replies WHERE reply_to = ?"
                " ORDER BY created_at",
                (reply_to,),
            ).fetchall()
            db.execute("DELETE FROM replies WHERE reply_to = ?", (reply_to,))
        return [(str(corr), bytes(body)) for corr, body in rows]

    def results_after(self, after: int, limit: int) -> ResultPage:
        """The results kept after the cursor ``after``, oldest first."""
        cutoff = time.time() - self.results_retention
        db = self.db
        rows = db.execute(
            "SELECT seq, id, routing_key, correlation_id, body, created_at FROM results"
            " WHERE seq > ? AND created_at >= ? ORDER BY seq LIMIT ?",
            (after, cutoff, limit + 1),
        ).fetchall()
        (expired_through,) = db.execute(
            "SELECT coalesce(max(seq), 0) FROM results WHERE created_at < ?", (cutoff,)
        ).fetchone()
        pruned_through = max(int(expired_through), self._counter(db, _RESULTS_PRUNED_THROUGH))
        results = [
            StoredResult(
                cursor=row[0],
                id=row[1],
                routing_key=row[2],
                correlation_id=row[3],
                body=bytes(row[4]),
                stored_at=datetime.fromtimestamp(row[5], UTC),
            )
            for row in rows[:limit]
        ]
        return ResultPage(
            results,
            results[-1].cursor if results else max(after, pruned_through),
            more=len(rows) > limit,
            gap=after < pruned_through,
        )

    def prune(self) -> tuple[int, int]:
        """Delete dead letters past their age or count and results past retention.

        Returns how many dead letters and results were deleted.
        """
        now = time.time()
        with self._transaction() as db:
            letters = db.execute(
                "DELETE FROM dead_letters WHERE dead_lettered_at < ?",
                (now - self.dead_letter_max_age,),
            ).rowcount
            self._cap_dead_letters(db)
            cutoff = now - self.results_retention
            (through,) = db.execute(
                "SELECT max(seq) FROM results WHERE created_at < ?", (cutoff,)
            ).fetchone()
            results = 0
            if through is not None:
                results = db.execute("DELETE FROM results WHERE seq <= ?", (through,)).rowcount
                pruned = max(int(through), self._counter(db, _RESULTS_PRUNED_THROUGH))
                self._set_counter(db, _RESULTS_PRUNED_THROUGH, pruned)
        return int(letters), int(results)
