"""The embedded bus: a durable queue in one SQLite file, the default when there is no broker.

Durability: the file is in WAL mode with ``synchronous=FULL``, so a publish returns only
once its row is on disk, and an acknowledgement deletes the row in a committed
transaction; a ``kill -9`` loses neither. A message being handled is *leased*: hidden
until ``lease_seconds`` from now, a lease renewed while the handler runs. When the
process dies, the lease runs out and the message is delivered again (at least once).

Several processes may share the file (SQLite's write lock serialises claims). Each bus
runs its SQLite calls on one dedicated thread, so the event loop never waits on the disk.

Requests go to the configured webhook (the backend's HTTP endpoint; the response body is
the reply) or, with no webhook, through the queue to a :meth:`Bus.serve` responder whose
reply is stored in the ``replies`` table. Late replies become dead letters. Requests the
backend POSTs (authorization) carry the reply address :data:`WEBHOOK_REPLY_TO`: their
replies are queued in ``backend.replies`` and POSTed to the webhook like delivery results.

The HTTP API for the backend (:mod:`hubject_connector.bus.embedded_api`) runs on its own
port while the bus is connected, and the connector's other messages for the backend
(delivery results) are POSTed to the webhook from their queue (``webhook_queues``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar

import aiohttp
import structlog
from aiohttp import web

from hubject_connector.bus.base import (
    DEAD_LETTER_HEADERS,
    DEADLINE_HEADER,
    LATE_REPLIES,
    Bus,
    Consumer,
    DeadLetter,
    DeadLetterNotFound,
    Handler,
    IncomingMessage,
    NotConnected,
    QueueSpec,
    RequestFailed,
    RequestTimeout,
    RetryLater,
    Unroutable,
    correlation_id_for,
    message_id_for,
    parse_reply,
    to_body,
    topic_matches,
)
from hubject_connector.bus.contract import (
    CLOUDEVENTS_CONTENT_TYPE,
    MESSAGE_SPECS,
    Direction,
    Envelope,
    Kind,
    parse_envelope,
)
from hubject_connector.config import BusConfig, EmbeddedBusConfig
from hubject_connector.errors import BusError

log = structlog.get_logger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

#: How long a webhook call may go on after its deadline, so that a late reply is kept.
LATE_REPLY_GRACE_SECONDS: Final = 60.0
#: How long close() lets handlers in flight finish before handing their messages back.
CLOSE_GRACE_SECONDS: Final = 10.0

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
    dead_lettered_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS replies (
    correlation_id TEXT PRIMARY KEY,
    reply_to TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS replies_by_address ON replies (reply_to);
"""


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


#: The reply address of requests the backend POSTed to the HTTP API: the reply is queued
#: in BACKEND_REPLIES and POSTed to the webhook (on RabbitMQ it goes to the AMQP reply_to).
WEBHOOK_REPLY_TO: Final = "webhook"
BACKEND_REPLIES: Final = "backend.replies"


def webhook_queues() -> list[QueueSpec]:
    """The queues of connector-to-backend messages that are not commands.

    On RabbitMQ the backend consumes them itself (replies go to its reply_to); on the
    embedded bus they are POSTed to the webhook, one by one, retried on any answer but 2xx
    or none, then dead-lettered. The replies to the backend's requests are among them.
    """
    bindings: dict[str, list[str]] = {}
    for spec in MESSAGE_SPECS.values():
        outgoing = spec.direction is Direction.TO_BACKEND
        if outgoing and spec.kind in (Kind.EVENT, Kind.RESULT) and spec.queue is not None:
            bindings.setdefault(spec.queue, []).append(str(spec.type))
        if outgoing and spec.kind is Kind.REPLY:
            bindings.setdefault(BACKEND_REPLIES, []).append(str(spec.type))
    return [QueueSpec(queue, bindings=tuple(types)) for queue, types in bindings.items()]


async def _sleep_or_wake(event: asyncio.Event, seconds: float) -> None:
    """Wait until ``event`` is set or ``seconds`` passed, whichever is first.

    Not ``asyncio.wait_for(event.wait(), ...)``: on Python 3.11 that can swallow a
    cancellation arriving as the event is set, and a consumer would never stop.
    """
    timer = asyncio.get_running_loop().call_later(seconds, event.set)
    try:
        await event.wait()
    finally:
        timer.cancel()


class QueueStore:
    """The SQLite file and every statement on it. Synchronous: call it on one thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection."""
        if self._db is None:
            raise NotConnected("the embedded bus store is closed")
        return self._db

    def open(self) -> None:
        """Open (and create) the file with the durability settings."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE) below.
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout = 10000")
        db.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is fsynced before it returns, so an acked publish survives power loss.
        db.execute("PRAGMA synchronous = FULL")
        db.executescript(_SCHEMA)
        self._db = db

    def close(self) -> None:
        """Close the file."""
        if self._db is not None:
            self._db.close()
            self._db = None

    @contextlib.contextmanager
    def _transaction(self) -> Any:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

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
    ) -> list[str]:
        """Insert one row per queue bound to ``routing_key``; the queues' names."""
        now = time.time()
        with self._transaction() as db:
            queues = sorted(
                {
                    queue
                    for queue, pattern in db.execute("SELECT queue, pattern FROM bindings")
                    if topic_matches(pattern, routing_key)
                }
            )
            if not queues:
                raise Unroutable(routing_key)
            db.executemany(
                "INSERT INTO messages (id, queue, routing_key, body, headers, correlation_id,"
                " reply_to, visible_at, expires_at, created_at)"
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

    def renew(self, owner: str, lease_seconds: float) -> None:
        """Extend every lease ``owner`` holds."""
        with self._transaction() as db:
            db.execute(
                "UPDATE messages SET visible_at = ? WHERE lease_owner = ?",
                (time.time() + lease_seconds, owner),
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

    def _move_to_dead_letters(
        self, db: sqlite3.Connection, seq: int, reason: str, error: str | None, now: float
    ) -> None:
        db.execute(
            "INSERT INTO dead_letters (id, message_id, queue, routing_key, reason, error, body,"
            " headers, retries, dead_lettered_at)"
            " SELECT ?, id, queue, routing_key, ?, ?, body, headers, retries, ?"
            " FROM messages WHERE seq = ?",
            (str(uuid.uuid4()), reason, error, now, seq),
        )
        db.execute("DELETE FROM messages WHERE seq = ?", (seq,))

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
                " body, headers, retries, dead_lettered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
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
                ),
            )
        return dead_letter_id

    _DEAD_LETTER_COLUMNS: Final = (
        "id, queue, routing_key, reason, error, body, headers, message_id, retries,"
        " dead_lettered_at"
    )

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

    def list_dead_letters(self, limit: int) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters."""
        rows = self.db.execute(
            f"SELECT {self._DEAD_LETTER_COLUMNS} FROM dead_letters"  # noqa: S608 - constant
            " ORDER BY dead_lettered_at, rowid LIMIT ?",
            (limit,),
        ).fetchall()
        return [self._dead_letter_from(row) for row in rows]

    def get_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        """One dead letter by id."""
        row = self.db.execute(
            f"SELECT {self._DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id = ?",  # noqa: S608
            (dead_letter_id,),
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
            db.execute(
                "INSERT INTO messages (id, queue, routing_key, body, headers, visible_at,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
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

    def queue_spec(self, name: str) -> QueueSpec | None:
        """The declared queue called ``name``."""
        row = self.db.execute("SELECT ordered FROM queues WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        patterns = tuple(
            p for (p,) in self.db.execute("SELECT pattern FROM bindings WHERE queue = ?", (name,))
        )
        return QueueSpec(name, patterns, ordered=bool(row[0]))


class EmbeddedMessage(IncomingMessage):
    """A message leased from the SQLite file."""

    def __init__(self, bus: EmbeddedBus, stored: StoredMessage) -> None:
        super().__init__(
            body=stored.body,
            headers=stored.headers,
            message_id=stored.id,
            queue=stored.queue,
            routing_key=stored.routing_key,
            retries=stored.retries,
            retry_delays=bus.retry_delays,
            redelivered=stored.deliveries > 1,
            correlation_id=stored.correlation_id,
            reply_to=stored.reply_to,
        )
        self._bus = bus
        self._seq = stored.seq

    async def _ack(self) -> None:
        if not await self._bus._run(self._bus.store.ack, self._seq, self._bus.owner):
            log.warning("bus.lease_lost", queue=self.queue, message_id=self.message_id)

    async def _retry(self, delay: float) -> None:
        await self._bus._run(self._bus.store.retry, self._seq, self._bus.owner, delay)
        self._bus._wake(self.queue)

    async def _dead_letter(self, reason: str, error: str | None) -> None:
        await self._bus._run(self._bus.store.dead_letter, self._seq, self._bus.owner, reason, error)

    async def _release(self) -> None:
        await self._bus._run(self._bus.store.release, self._seq, self._bus.owner)
        self._bus._wake(self.queue)

    async def _reply(self, reply: Envelope | bytes) -> None:
        assert self.reply_to is not None
        assert self.correlation_id is not None
        if self.reply_to == WEBHOOK_REPLY_TO:
            await self._bus._reply_to_webhook(self.routing_key, reply)
            return
        await self._bus._run(
            self._bus.store.put_reply, self.reply_to, self.correlation_id, to_body(reply)
        )
        self._bus._replies_wakeup.set()


class _EmbeddedConsumer(Consumer):
    def __init__(
        self, bus: EmbeddedBus, spec: QueueSpec, handler: Handler, limit: int, validate: bool
    ) -> None:
        super().__init__(spec, handler, validate)
        self._bus = bus
        self._limit = 1 if spec.ordered else max(1, limit)
        self._task = asyncio.create_task(self._run(), name=f"bus-consumer-{spec.name}")

    async def _run(self) -> None:
        bus = self._bus
        wakeup = bus._wakeup(self._spec.name)
        while True:
            wakeup.clear()
            free = self._limit - len(self._inflight)
            next_visible: float | None = None
            if free > 0:
                try:
                    claimed, next_visible = await bus._run(
                        bus.store.claim,
                        self._spec.name,
                        bus.owner,
                        free,
                        bus.config.lease_seconds,
                        ordered=self._spec.ordered,
                    )
                except sqlite3.Error as exc:  # a locked or full disk: try again shortly
                    log.error("bus.claim_failed", queue=self._spec.name, error=str(exc))
                    claimed = []
                for stored in claimed:
                    self._start_handling(EmbeddedMessage(bus, stored))
                if len(claimed) == free:
                    continue
            wait = bus.config.poll_interval_seconds
            until_visible = None if next_visible is None else next_visible - time.time()
            if until_visible is not None and until_visible > 0:
                # A delayed retry or a lease ends sooner than the next poll: wake for it.
                # (Visible now but not claimed means another process holds an ordered
                # queue: poll, do not spin.)
                wait = min(wait, until_visible)
            await _sleep_or_wake(wakeup, wait)

    def _handled(self, task: asyncio.Task[None]) -> None:
        super()._handled(task)
        self._bus._wake(self._spec.name)  # a slot is free: claim the next one

    async def cancel(self, grace: float = CLOSE_GRACE_SECONDS) -> None:
        """Stop claiming; let handlers finish for ``grace`` seconds, then hand theirs back."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._drain(grace)
        self._bus._consumers.discard(self)


class EmbeddedBus(Bus):
    """The bus on a local SQLite file, with an HTTP API for the backend."""

    def __init__(
        self,
        config: EmbeddedBusConfig,
        *,
        retry_delays: Iterable[float] = (5.0, 30.0, 300.0),
        request_timeout: float = 8.0,
        serve: bool = True,
        prefetch: int = 32,
    ) -> None:
        super().__init__(retry_delays=tuple(retry_delays), request_timeout=request_timeout)
        self.config = config
        self.store = QueueStore(config.path)
        #: This instance's lease owner and reply address (unique per process start).
        self.owner = f"embedded:{uuid.uuid4()}"
        self.prefetch = prefetch
        self._serve = serve
        self._executor: ThreadPoolExecutor | None = None
        self._connected = False
        self._consumers: set[_EmbeddedConsumer] = set()
        self._wakeups: dict[str, asyncio.Event] = {}
        self._replies_wakeup = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._http_url: str | None = None

    @classmethod
    def from_config(cls, config: BusConfig, *, serve: bool = True) -> EmbeddedBus:
        """The embedded bus described by the ``[bus]`` section."""
        return cls(
            config.embedded,
            retry_delays=config.retry_delays_seconds,
            request_timeout=config.request_timeout_seconds,
            serve=serve,
        )

    @property
    def is_connected(self) -> bool:
        """Whether the file is open."""
        return self._connected

    @property
    def http_url(self) -> str | None:
        """Where the HTTP API listens (``http://host:port``), once connected."""
        return self._http_url

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if self._executor is None:
            raise NotConnected("the embedded bus is not connected")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args, **kwargs))

    def _wakeup(self, queue: str) -> asyncio.Event:
        return self._wakeups.setdefault(queue, asyncio.Event())

    def _wake(self, queue: str) -> None:
        self._wakeup(queue).set()

    async def _store(
        self, routing_key: str, body: bytes, headers: Mapping[str, str], message_id: str,
        **options: Any,
    ) -> None:
        """Commit one row per bound queue and wake this process's consumers of them."""
        queues = await self._run(
            self.store.publish, routing_key, body, headers, message_id, **options
        )
        for queue in queues:
            self._wake(queue)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def connect(self) -> None:
        """Open the file; start lease renewal, reply pickup and the HTTP API."""
        if self._connected:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bus-sqlite")
        try:
            await self._run(self.store.open)
        except sqlite3.Error as exc:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise BusError(f"cannot open the embedded bus at {self.config.path}: {exc}") from exc
        self._connected = True
        self._spawn(self._renew_leases(), "bus-lease-renewal")
        self._spawn(self._pick_up_replies(), "bus-replies")
        if self.config.webhook_url:
            self._session = aiohttp.ClientSession()
        if self._serve:
            try:
                await self._start_http_api()
                if self.config.webhook_url:
                    for spec in webhook_queues():
                        await self.consume(spec, self._forward_to_webhook)
            except BaseException:
                await self.close()
                raise
        log.info("bus.connected", kind="embedded", path=str(self.config.path), http=self._http_url)

    async def _start_http_api(self) -> None:
        from hubject_connector.bus.embedded_api import http_api  # imports this module

        self._runner = web.AppRunner(http_api(self), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.http_host, self.config.http_port)
        try:
            await site.start()
        except OSError as exc:
            raise BusError(
                f"the embedded bus's HTTP API cannot listen on {self.config.http_host}:"
                f"{self.config.http_port}: {exc.strerror or exc}"
            ) from exc
        host, port = self._runner.addresses[0][:2]
        self._http_url = f"http://{host}:{port}"

    async def _forward_to_webhook(self, message: IncomingMessage) -> None:
        """Deliver one connector-to-backend message (a delivery result) to the webhook."""
        assert self._session is not None
        assert self.config.webhook_url is not None
        headers = {
            "Content-Type": CLOUDEVENTS_CONTENT_TYPE,
            "X-Routing-Key": message.routing_key,
        }
        if message.envelope.correlation_id is not None:
            headers["X-Correlation-ID"] = message.envelope.correlation_id
        try:
            async with self._session.post(
                self.config.webhook_url,
                data=message.body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=LATE_REPLY_GRACE_SECONDS),
            ) as response:
                status = response.status
                text = (await response.read())[:200].decode("utf-8", "replace")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryLater(f"the webhook at {self.config.webhook_url} failed: {exc!r}") from exc
        if status >= 300:
            # docs/contract.md promises the backend: any answer but 2xx is retried later
            # (then, the delays used up, the message waits in the dead letters).
            raise RetryLater(f"the webhook answered HTTP {status}: {text}")

    async def close(self) -> None:
        """Stop the HTTP API and consumers, fail waiting requests, close the file."""
        if not self._connected:
            return
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._http_url = None
        for consumer in list(self._consumers):
            await consumer.cancel()
        self._pending.fail_all(NotConnected("the bus was closed while waiting for a reply"))
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.wait(set(self._background))
        if self._session is not None:
            await self._session.close()
            self._session = None
        with contextlib.suppress(sqlite3.Error):
            await self._run(self.store.release_all, self.owner)
        await self._run(self.store.close)
        self._connected = False
        assert self._executor is not None
        self._executor.shutdown(wait=True)
        self._executor = None

    async def _renew_leases(self) -> None:
        interval = self.config.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self._run(self.store.renew, self.owner, self.config.lease_seconds)
            except sqlite3.Error as exc:
                log.error("bus.lease_renewal_failed", error=str(exc))

    async def _pick_up_replies(self) -> None:
        while True:
            await _sleep_or_wake(self._replies_wakeup, self.config.poll_interval_seconds)
            self._replies_wakeup.clear()
            try:
                replies = await self._run(self.store.take_replies, self.owner)
            except sqlite3.Error as exc:
                log.error("bus.reply_pickup_failed", error=str(exc))
                continue
            for correlation_id, body in replies:
                if not self._pending.resolve(correlation_id, body):
                    await self._keep_late_reply(correlation_id, body, "")

    async def _keep_late_reply(self, correlation_id: str, body: bytes, routing_key: str) -> None:
        late = self._late_reply(correlation_id, body, routing_key)
        try:
            await self._run(
                self.store.add_dead_letter,
                queue=LATE_REPLIES,
                routing_key=late.routing_key,
                body=body,
                headers={"correlation-id": correlation_id},
                reason=late.reason,
                error=None,
            )
        except (sqlite3.Error, NotConnected) as exc:
            # Raised on, this would end the reply pickup loop (or die unseen in a
            # background task): every later request would time out.
            log.error(
                "bus.late_reply_not_kept",
                correlation_id=correlation_id,
                reason=late.reason,
                error=repr(exc),
            )
            return
        await self._report_late_reply(late)

    async def accept_request(self, routing_key: str, body: bytes, envelope: Envelope) -> str:
        """Store a request the backend POSTed; its reply will be POSTed to the webhook.

        A request with a ``deadline`` nobody took by then is dead-lettered, not handled.
        """
        await self._store(
            routing_key,
            body,
            {},
            envelope.id,
            correlation_id=envelope.id,
            reply_to=WEBHOOK_REPLY_TO,
            expires_at=envelope.deadline.timestamp() if envelope.deadline else None,
        )
        return envelope.id

    async def _reply_to_webhook(self, request_key: str, reply: Envelope | bytes) -> None:
        envelope = reply if isinstance(reply, Envelope) else parse_envelope(reply)
        body, kind = to_body(reply), str(envelope.type)
        try:
            await self._store(kind, body, {}, envelope.id)
        except Unroutable:
            # No webhook to deliver it (none configured): keep it, never drop it.
            await self._run(
                self.store.add_dead_letter,
                queue=BACKEND_REPLIES,
                routing_key=kind,
                body=body,
                headers={},
                reason=f"no webhook to deliver the reply to {request_key!r} to",
                error=None,
            )

    async def declare(self, queue: QueueSpec | str) -> None:
        """Record the queue and its bindings in the file."""
        spec = queue if isinstance(queue, QueueSpec) else QueueSpec(queue)
        await self._run(self.store.declare, spec)

    async def publish(
        self,
        routing_key: str,
        message: Envelope | bytes,
        *,
        headers: Mapping[str, str] | None = None,
        message_id: str | None = None,
    ) -> str:
        """Commit one row per bound queue; returns the message id."""
        message_id = message_id or message_id_for(message)
        await self._store(routing_key, to_body(message), headers or {}, message_id)
        return message_id

    async def consume(
        self,
        queue: QueueSpec | str,
        handler: Handler,
        *,
        prefetch: int | None = None,
        validate: bool = True,
    ) -> Consumer:
        """Declare the queue and start handing its messages to ``handler``."""
        if not self._connected:
            raise NotConnected("connect() the bus before consuming")
        spec = queue if isinstance(queue, QueueSpec) else QueueSpec(queue)
        if not spec.bindings and not spec.ordered:
            # A bare name may refer to a queue declared with bindings or ordering elsewhere.
            spec = await self._run(self.store.queue_spec, spec.name) or spec
        await self.declare(spec)
        consumer = _EmbeddedConsumer(self, spec, handler, prefetch or self.prefetch, validate)
        self._consumers.add(consumer)
        return consumer

    async def request(
        self,
        routing_key: str,
        message: Envelope | bytes,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the deadline also goes with the message
    ) -> Envelope:
        """Ask the webhook, or with none configured, a responder on the queue."""
        if not self._connected:
            raise NotConnected("connect() the bus before sending requests")
        timeout = self.request_timeout if timeout is None else timeout
        correlation_id = correlation_id_for(message)
        if self.config.webhook_url:
            body = await self._request_webhook(routing_key, message, timeout, correlation_id)
        else:
            body = await self._request_queue(routing_key, message, timeout, correlation_id)
        return parse_reply(message, body)

    async def _request_queue(
        self,
        routing_key: str,
        message: Envelope | bytes,
        timeout: float,  # noqa: ASYNC109 - the deadline also goes with the message
        correlation_id: str,
    ) -> bytes:
        deadline = time.time() + timeout

        return await self._send_and_wait(
            routing_key,
            correlation_id,
            timeout,
            lambda: self._store(
                routing_key,
                to_body(message),
                {DEADLINE_HEADER: f"{deadline:.3f}"},
                message_id_for(message),
                correlation_id=correlation_id,
                reply_to=self.owner,
                expires_at=deadline,
            ),
        )

    async def _request_webhook(
        self,
        routing_key: str,
        message: Envelope | bytes,
        timeout: float,  # noqa: ASYNC109 - the deadline also goes with the message
        correlation_id: str,
    ) -> bytes:
        assert self._session is not None
        assert self.config.webhook_url is not None
        deadline = time.time() + timeout
        call = asyncio.create_task(
            self._call_webhook(routing_key, to_body(message), correlation_id, deadline),
            name=f"bus-webhook-{correlation_id}",
        )
        try:
            # At the deadline the caller gets its answer, but the call goes on, so that
            # a late reply is still received and kept as a dead letter.
            await asyncio.wait({call}, timeout=timeout)
            if call.done():
                return call.result()
            raise TimeoutError
        except asyncio.CancelledError:
            call.cancel()
            raise
        except TimeoutError:
            self._remember_expired(correlation_id, routing_key)
            self._background.add(call)
            call.add_done_callback(partial(self._late_webhook_reply, correlation_id, routing_key))
            raise RequestTimeout(routing_key, timeout, correlation_id) from None

    async def _call_webhook(
        self, routing_key: str, body: bytes, correlation_id: str, deadline: float
    ) -> bytes:
        assert self._session is not None
        assert self.config.webhook_url is not None
        headers = {
            "Content-Type": CLOUDEVENTS_CONTENT_TYPE,
            "X-Correlation-ID": correlation_id,
            "X-Routing-Key": routing_key,
            # Unix time after which the connector no longer waits for this answer.
            "X-Deadline": f"{deadline:.3f}",
        }
        client_timeout = aiohttp.ClientTimeout(
            total=max(0.0, deadline - time.time()) + LATE_REPLY_GRACE_SECONDS
        )
        try:
            async with self._session.post(
                self.config.webhook_url, data=body, headers=headers, timeout=client_timeout
            ) as response:
                reply = await response.read()
                if response.status >= 300 or not reply:
                    raise RequestFailed(
                        f"the webhook answered HTTP {response.status} without a reply"
                        + (f": {reply[:200].decode('utf-8', 'replace')}" if reply else "")
                    )
                return reply
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BusError(f"the webhook at {self.config.webhook_url} failed: {exc!r}") from exc

    def _late_webhook_reply(
        self, correlation_id: str, routing_key: str, call: asyncio.Task[bytes]
    ) -> None:
        self._background.discard(call)
        if call.cancelled() or not self._connected:
            return
        exc = call.exception()
        if exc is not None:
            log.warning("bus.webhook_failed_after_deadline", error=str(exc))
            return
        self._spawn(
            self._keep_late_reply(correlation_id, call.result(), routing_key), "bus-late-reply"
        )

    async def list_dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters."""
        result: list[DeadLetter] = await self._run(self.store.list_dead_letters, limit)
        return result

    async def get_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        """One dead letter by id."""
        result: DeadLetter = await self._run(self.store.get_dead_letter, dead_letter_id)
        return result

    async def replay_dead_letter(self, dead_letter_id: str, *, body: bytes | None = None) -> str:
        """Put the dead letter back on its queue; returns its message id."""
        letter = await self.get_dead_letter(dead_letter_id)
        queue = await self._run(self.store.replay_dead_letter, dead_letter_id, body)
        self._wake(queue)
        return letter.message_id

    async def delete_dead_letter(self, dead_letter_id: str) -> None:
        """Remove a dead letter."""
        await self._run(self.store.delete_dead_letter, dead_letter_id)

    async def keep_invalid(
        self, body: bytes, headers: Mapping[str, str], reason: str, error: str | None
    ) -> str:
        """Keep a message the HTTP API refused as a dead letter, so nothing is lost."""
        result: str = await self._run(
            self.store.add_dead_letter,
            queue="http-api",
            routing_key="",
            body=body,
            headers=headers,
            reason=reason,
            error=error,
        )
        return result

