"""The SQLite state store: one file on local disk, for a connector running as one process.

What passes through: the calls of ``StateStore``. What it hands back: the base module's
dataclasses. One worker thread owns the sqlite3 connection and runs every statement, so the
event loop never waits on the disk and the connection is never shared between threads.

Durability: WAL journal with ``synchronous=FULL``, so a committed transaction (a stored
status, a CDR outcome) survives a power cut. Several statements that must agree run in one
``BEGIN IMMEDIATE`` transaction, which also holds SQLite's write lock across processes.

One process only: ``exclusive(name)`` is an asyncio lock of this store object. Two
connectors on one file would each push on their own; several replicas need PostgreSQL.

The schema is versioned with ``PRAGMA user_version``: ``MIGRATIONS[n]`` brings version ``n``
to ``n + 1``. A file of a newer version than this code knows is refused (StateError).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar

import structlog
from prometheus_client import REGISTRY, CollectorRegistry

from hubject_connector.config import SqliteStateConfig
from hubject_connector.errors import StateError
from hubject_connector.state.base import (
    CdrRecord,
    CdrState,
    EvseEntry,
    OwedResult,
    PendingSummary,
    Refusal,
    ResultKind,
    StateStore,
    StatusChange,
    StatusRecorded,
    StoredStatus,
    check_final,
    check_replacement,
    plan_statuses,
    require_aware,
)
from hubject_connector.state.metrics import StateMetrics

log = structlog.get_logger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

#: Statements of each migration; ``MIGRATIONS[n]`` brings version n to n + 1.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE evses (
            evse_id TEXT PRIMARY KEY,
            operator_id TEXT NOT NULL,
            record TEXT NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX evses_by_operator ON evses (operator_id, evse_id)",
        # Times as microseconds since the epoch (UTC) so that they compare as instants, and
        # the offset given, to hand the time back as it came.
        """CREATE TABLE statuses (
            evse_id TEXT PRIMARY KEY,
            operator_id TEXT NOT NULL,
            status TEXT NOT NULL,
            changed_us INTEGER NOT NULL,
            utc_offset_us INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            sent INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID""",
        "CREATE INDEX statuses_pending ON statuses (changed_us, evse_id) WHERE sent = 0",
        """CREATE TABLE cdrs (
            session_id TEXT PRIMARY KEY,
            digest TEXT NOT NULL,
            message_id TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'accepted', 'rejected')),
            attempts INTEGER NOT NULL DEFAULT 0,
            status_code TEXT,
            additional_info TEXT,
            first_seen_us INTEGER NOT NULL,
            updated_us INTEGER NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE progress (
            session_id TEXT PRIMARY KEY,
            last_us INTEGER NOT NULL
        ) WITHOUT ROWID""",
    ),
    (
        # The delivery results owed about status messages (state/base.py): written in the
        # transaction that makes them owed, deleted once the bus confirmed them.
        """CREATE TABLE status_results (
            message_id TEXT PRIMARY KEY,
            evse_id TEXT NOT NULL,
            changed_us INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('accepted', 'rejected', 'superseded')),
            refusal TEXT,
            created_us INTEGER NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX status_results_by_age ON status_results (created_us, message_id)",
    ),
    (
        # Whether Hubject holds a status record of the EVSE (state/base.py): a push is an
        # insert for a new EVSE, an update for a known one. A status pushed before this
        # version was most probably accepted (a refused one is healed by the flow).
        "ALTER TABLE statuses ADD COLUMN at_hubject INTEGER NOT NULL DEFAULT 0",
        "UPDATE statuses SET at_hubject = 1 WHERE sent = 1",
    ),
)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)



def _micros(moment: datetime) -> int:
    """Microseconds since the epoch: the instant, whatever the offset."""
    return (moment - _EPOCH) // _MICROSECOND


def _offset_micros(moment: datetime) -> int:
    offset = moment.utcoffset()
    assert offset is not None  # require_aware() was called
    return offset // _MICROSECOND


def _moment(micros: int, offset_micros: int = 0) -> datetime:
    utc = _EPOCH + timedelta(microseconds=micros)
    return utc.astimezone(timezone(timedelta(microseconds=offset_micros))) if offset_micros else utc


def _now_micros() -> int:
    return _micros(datetime.now(UTC))


def _status(row: sqlite3.Row) -> StatusChange:
    return StatusChange(
        evse_id=row["evse_id"],
        operator_id=row["operator_id"],
        status=row["status"],
        time=_moment(row["changed_us"], row["utc_offset_us"]),
        message_id=row["message_id"],
        # Not read where the rule does not need it (record_statuses). A Row's ``in``
        # looks at its values, hence keys().
        at_hubject="at_hubject" in row.keys() and bool(row["at_hubject"]),  # noqa: SIM118
    )


def _owed(row: sqlite3.Row) -> OwedResult:
    refusal = row["refusal"]
    return OwedResult(
        message_id=row["message_id"],
        evse_id=row["evse_id"],
        time=_moment(row["changed_us"]),
        kind=ResultKind(row["kind"]),
        refusal=None if refusal is None else Refusal.from_json(refusal),
    )


def _cdr(row: sqlite3.Row) -> CdrRecord:
    return CdrRecord(
        session_id=row["session_id"],
        digest=row["digest"],
        message_id=row["message_id"],
        state=CdrState(row["state"]),
        attempts=row["attempts"],
        status_code=row["status_code"],
        additional_info=row["additional_info"],
        first_seen=_moment(row["first_seen_us"]),
        updated=_moment(row["updated_us"]),
    )


def _json(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


class _Database:
    """The file and every statement on it. Synchronous: called on the worker thread only."""

    def __init__(self, path: Path, migrations: Sequence[Sequence[str]]) -> None:
        self.path = path
        self.migrations = migrations
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError("the state store file is closed")
        return self._db

    def open(self) -> None:
        """Open (create) the file with the durability settings; migrate it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE) below.
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA busy_timeout = 10000")
            db.execute("PRAGMA journal_mode = WAL")
            # FULL: a commit is fsynced before it returns, so what was stored stays stored.
            db.execute("PRAGMA synchronous = FULL")
            self._db = db
            self._migrate()
        except BaseException:
            self._db = None
            db.close()
            raise

    def close(self) -> None:
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

    def _migrate(self) -> None:
        # Read the version inside the write transaction: a second process opening the same
        # file at the same moment waits and then finds the work done.
        with self._transaction() as db:
            version = self._version(db)
            latest = len(self.migrations)
            if version > latest:
                raise _NewerSchema(version, latest)
            for target, statements in enumerate(self.migrations[version:], start=version + 1):
                for statement in statements:
                    db.execute(statement)
                # A pragma takes no parameters; target is an int.
                db.execute(f"PRAGMA user_version = {int(target)}")
                log.info("state.migrated", store="sqlite", path=str(self.path), version=target)

    @staticmethod
    def _version(db: sqlite3.Connection) -> int:
        version: int = db.execute("PRAGMA user_version").fetchone()[0]
        return version

    def schema_version(self) -> int:
        return self._version(self.db)

    # EVSE data -------------------------------------------------------------------------

    def get_evse(self, evse_id: str) -> EvseEntry | None:
        row = self.db.execute(
            "SELECT evse_id, operator_id, record FROM evses WHERE evse_id = ?", (evse_id,)
        ).fetchone()
        if row is None:
            return None
        return EvseEntry(row["evse_id"], row["operator_id"], json.loads(row["record"]))

    def _upsert_evses(self, db: sqlite3.Connection, entries: Sequence[EvseEntry]) -> None:
        db.executemany(
            "INSERT INTO evses (evse_id, operator_id, record) VALUES (?, ?, ?) "
            "ON CONFLICT (evse_id) DO UPDATE SET "
            "operator_id = excluded.operator_id, record = excluded.record",
            [(e.evse_id, e.operator_id, _json(e.record)) for e in entries],
        )

    def put_evse(self, entry: EvseEntry) -> None:
        with self._transaction() as db:
            self._upsert_evses(db, [entry])

    def delete_evse(self, evse_id: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM evses WHERE evse_id = ?", (evse_id,))

    def replace_evses(self, operator_id: str, entries: Sequence[EvseEntry]) -> None:
        keep = json.dumps([e.evse_id for e in entries])
        with self._transaction() as db:
            db.execute(
                "DELETE FROM evses WHERE operator_id = ? "
                "AND evse_id NOT IN (SELECT value FROM json_each(?))",
                (operator_id, keep),
            )
            self._upsert_evses(db, entries)

    def evse_ids(self, operator_id: str | None) -> list[str]:
        if operator_id is None:
            rows = self.db.execute("SELECT evse_id FROM evses ORDER BY evse_id").fetchall()
        else:
            rows = self.db.execute(
                "SELECT evse_id FROM evses WHERE operator_id = ? ORDER BY evse_id",
                (operator_id,),
            ).fetchall()
        return [row[0] for row in rows]

    # Statuses --------------------------------------------------------------------------

    def record_statuses(self, changes: Sequence[StatusChange]) -> list[StatusRecorded]:
        ids = json.dumps(list(dict.fromkeys(c.evse_id for c in changes)))
        with self._transaction() as db:
            stored = {
                row["evse_id"]: StoredStatus(_status(row), bool(row["sent"]))
                for row in db.execute(
                    "SELECT evse_id, operator_id, status, changed_us, utc_offset_us, "
                    "message_id, sent FROM statuses "
                    "WHERE evse_id IN (SELECT value FROM json_each(?))",
                    (ids,),
                )
            }
            results, writes = plan_statuses(stored, changes)
            # The WHERE repeats the rule as a guard: a stored row never goes back in time.
            db.executemany(
                "INSERT INTO statuses (evse_id, operator_id, status, changed_us, "
                "utc_offset_us, message_id, sent) VALUES (?, ?, ?, ?, ?, ?, 0) "
                "ON CONFLICT (evse_id) DO UPDATE SET operator_id = excluded.operator_id, "
                "status = excluded.status, changed_us = excluded.changed_us, "
                "utc_offset_us = excluded.utc_offset_us, message_id = excluded.message_id, "
                "sent = 0 WHERE statuses.changed_us < excluded.changed_us",
                [
                    (c.evse_id, c.operator_id, c.status, _micros(c.time),
                     _offset_micros(c.time), c.message_id)
                    for c in writes
                ],
            )
            self._owe(db, [r.owed for r in results if r.owed is not None])
        return results

    @staticmethod
    def _owe(db: sqlite3.Connection, owed: Sequence[OwedResult]) -> None:
        """Write owed results (in the caller's transaction); one already owed stays."""
        if not owed:
            return
        now = _now_micros()
        db.executemany(
            "INSERT INTO status_results (message_id, evse_id, changed_us, kind, refusal, "
            "created_us) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
            [
                (o.message_id, o.evse_id, _micros(o.time), str(o.kind),
                 None if o.refusal is None else o.refusal.to_json(), now)
                for o in owed
            ],
        )

    def pending_statuses(self, limit: int) -> list[StatusChange]:
        rows = self.db.execute(
            "SELECT evse_id, operator_id, status, changed_us, utc_offset_us, message_id, "
            "at_hubject FROM statuses WHERE sent = 0 ORDER BY changed_us, evse_id LIMIT ?",
            (limit,),
        ).fetchall()
        return [_status(row) for row in rows]

    def pending_status_summary(self) -> PendingSummary:
        pending, oldest, owed = self.db.execute(
            "SELECT count(*), min(changed_us), (SELECT count(*) FROM status_results) "
            "FROM statuses WHERE sent = 0"
        ).fetchone()
        return PendingSummary(int(pending), None if oldest is None else _moment(oldest),
                              int(owed))

    def mark_statuses_sent(
        self, changes: Sequence[StatusChange], refusal: Refusal | None,
        full_load_of: str | None,
    ) -> list[StatusChange]:
        marked: dict[tuple[str, str], StatusChange] = {}
        with self._transaction() as db:
            for change in changes:
                key = (change.evse_id, change.message_id)
                if key in marked:
                    continue
                cursor = db.execute(
                    "UPDATE statuses SET sent = 1 "
                    "WHERE evse_id = ? AND message_id = ? AND sent = 0", key
                )
                if cursor.rowcount:
                    marked[key] = change
            self._owe(db, [OwedResult.of(c, refusal) for c in marked.values()])
            if refusal is None:
                pushed = json.dumps(list(dict.fromkeys(c.evse_id for c in changes)))
                if full_load_of is not None:
                    db.execute(
                        "UPDATE statuses SET at_hubject = 0 WHERE operator_id = ? "
                        "AND at_hubject = 1 "
                        "AND evse_id NOT IN (SELECT value FROM json_each(?))",
                        (full_load_of, pushed),
                    )
                db.execute(
                    "UPDATE statuses SET at_hubject = 1 WHERE at_hubject = 0 "
                    "AND evse_id IN (SELECT value FROM json_each(?))",
                    (pushed,),
                )
        return [c for c in changes if (c.evse_id, c.message_id) in marked]

    def latest_statuses(self) -> list[StatusChange]:
        rows = self.db.execute(
            "SELECT evse_id, operator_id, status, changed_us, utc_offset_us, message_id, "
            "at_hubject FROM statuses ORDER BY evse_id"
        ).fetchall()
        return [_status(row) for row in rows]

    def owed_status_results(self, limit: int, created_before: datetime | None) -> list[OwedResult]:
        before = _micros(created_before) if created_before is not None else 2**62
        rows = self.db.execute(
            "SELECT message_id, evse_id, changed_us, kind, refusal FROM status_results "
            "WHERE created_us < ? ORDER BY created_us, message_id LIMIT ?",
            (before, limit),
        ).fetchall()
        return [_owed(row) for row in rows]

    def status_results_published(self, message_ids: Sequence[str]) -> None:
        with self._transaction() as db:
            db.execute(
                "DELETE FROM status_results WHERE message_id IN (SELECT value FROM json_each(?))",
                (json.dumps(list(message_ids)),),
            )

    # CDRs --------------------------------------------------------------------------------

    def _get_cdr(self, db: sqlite3.Connection, session_id: str) -> CdrRecord | None:
        row = db.execute(
            "SELECT session_id, digest, message_id, state, attempts, status_code, "
            "additional_info, first_seen_us, updated_us FROM cdrs WHERE session_id = ?",
            (session_id,),
        ).fetchone()
        return None if row is None else _cdr(row)

    def get_cdr(self, session_id: str) -> CdrRecord | None:
        return self._get_cdr(self.db, session_id)

    def begin_cdr(self, session_id: str, digest: str, message_id: str) -> CdrRecord:
        now = _now_micros()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO cdrs (session_id, digest, message_id, state, attempts, "
                "first_seen_us, updated_us) VALUES (?, ?, ?, 'pending', 0, ?, ?) "
                "ON CONFLICT (session_id) DO UPDATE SET digest = excluded.digest, "
                "message_id = excluded.message_id, state = 'pending', attempts = 0, "
                "status_code = NULL, additional_info = NULL, updated_us = excluded.updated_us "
                "WHERE cdrs.state = 'rejected' AND cdrs.digest <> excluded.digest",
                (session_id, digest, message_id, now, now),
            )
            record = self._get_cdr(db, session_id)
        assert record is not None
        return record

    def cdr_attempted(self, session_id: str) -> None:
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE cdrs SET attempts = attempts + 1, updated_us = ? WHERE session_id = ?",
                (_now_micros(), session_id),
            )
            if not cursor.rowcount:
                raise KeyError(session_id)

    def finish_cdr(
        self, session_id: str, state: CdrState, status_code: str | None,
        additional_info: str | None,
    ) -> None:
        with self._transaction() as db:
            record = self._get_cdr(db, session_id)
            if record is None:
                raise KeyError(session_id)
            if record.state is CdrState.ACCEPTED:
                return
            db.execute(
                "UPDATE cdrs SET state = ?, status_code = ?, additional_info = ?, "
                "updated_us = ? WHERE session_id = ?",
                (str(state), status_code, additional_info, _now_micros(), session_id),
            )

    # Notifications ------------------------------------------------------------------------

    def claim_progress(self, session_id: str, at: datetime, interval_seconds: float) -> bool:
        interval = round(interval_seconds * 1_000_000)
        rows = self.db.execute(
            "INSERT INTO progress (session_id, last_us) VALUES (?, ?) "
            "ON CONFLICT (session_id) DO UPDATE SET last_us = excluded.last_us "
            "WHERE progress.last_us <= excluded.last_us - ? RETURNING session_id",
            (session_id, _micros(at), interval),
        ).fetchall()
        return bool(rows)


class _NewerSchema(Exception):
    """The file is of a newer schema version than this code knows."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(found, known)
        self.found = found
        self.known = known


class SqliteStateStore(StateStore):
    """The state store in one SQLite file (``[state.sqlite] path``), for one process."""

    #: Label of the store in metrics.
    kind: Final = "sqlite"
    #: The schema's migrations (a subclass may add some, as a newer release would).
    migrations: Sequence[Sequence[str]] = MIGRATIONS

    def __init__(
        self, config: SqliteStateConfig, *, registry: CollectorRegistry | None = None
    ) -> None:
        self.config = config
        self._database = _Database(config.path, self.migrations)
        self._executor: ThreadPoolExecutor | None = None
        self._open = False
        self._locks: dict[str, asyncio.Lock] = {}
        self._seconds = StateMetrics.for_registry(
            REGISTRY if registry is None else registry
        ).operation_seconds

    @property
    def is_open(self) -> bool:
        """Whether the file is open (and migrated)."""
        return self._open

    async def _call(
        self, operation: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``fn`` on the worker thread, timed; sqlite3 errors become StateError."""
        executor = self._executor
        if executor is None:
            raise StateError(f"the SQLite state store {self.config.path} is not open")
        started = time.perf_counter()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                executor, partial(fn, *args, **kwargs)
            )
        except sqlite3.Error as exc:
            raise StateError(
                f"the SQLite state store {self.config.path} failed in {operation}: {exc}"
            ) from exc
        finally:
            self._seconds.labels(self.kind, operation).observe(time.perf_counter() - started)

    async def open(self) -> None:
        """Open (create, migrate) the file. Raises StateError."""
        if self._executor is not None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-sqlite")
        self._executor = executor
        try:
            await self._call("open", self._database.open)
        except _NewerSchema as exc:
            await self._stop(executor)
            raise StateError(
                f"the SQLite state store {self.config.path} has schema version {exc.found}, "
                f"newer than this release of hubject-connector knows ({exc.known}): run the "
                "release that wrote it, or a newer one"
            ) from None
        except (StateError, OSError) as exc:
            await self._stop(executor)
            if isinstance(exc, StateError):
                raise
            raise StateError(
                f"cannot open the SQLite state store {self.config.path}: {exc}"
            ) from exc
        except BaseException:
            await self._stop(executor)
            raise
        self._open = True
        log.info("state.opened", store=self.kind, path=str(self.config.path))

    async def _stop(self, executor: ThreadPoolExecutor) -> None:
        self._open = False
        self._executor = None
        # Queued after every call already submitted, so none of them finds the file closed.
        await asyncio.get_running_loop().run_in_executor(executor, self._database.close)
        executor.shutdown(wait=True)

    async def close(self) -> None:
        """Close the file (after the calls in flight). Idempotent."""
        executor = self._executor
        if executor is not None:
            await self._stop(executor)

    async def schema_version(self) -> int:
        """The file's ``user_version``."""
        return await self._call("schema_version", self._database.schema_version)

    async def get_evse(self, evse_id: str) -> EvseEntry | None:
        """What Hubject holds of ``evse_id``, or None."""
        return await self._call("get_evse", self._database.get_evse, evse_id)

    async def put_evse(self, entry: EvseEntry) -> None:
        """Remember ``entry`` as held by Hubject."""
        await self._call("put_evse", self._database.put_evse, entry)

    async def delete_evse(self, evse_id: str) -> None:
        """Forget ``evse_id``."""
        await self._call("delete_evse", self._database.delete_evse, evse_id)

    async def replace_evses(self, operator_id: str, entries: Sequence[EvseEntry]) -> None:
        """The operator's EVSEs become exactly ``entries``."""
        check_replacement(operator_id, entries)
        await self._call("replace_evses", self._database.replace_evses, operator_id, entries)

    async def evse_ids(self, operator_id: str | None = None) -> list[str]:
        """Every known EvseID (of one operator), sorted."""
        return await self._call("evse_ids", self._database.evse_ids, operator_id)

    async def record_statuses(self, changes: Sequence[StatusChange]) -> list[StatusRecorded]:
        """Store the changes newer than the stored ones (``plan_statuses``), as pending."""
        for change in changes:
            require_aware(change.time, f"the time of {change.evse_id}'s status")
        if not changes:
            return []
        return await self._call("record_statuses", self._database.record_statuses, changes)

    async def pending_statuses(self, limit: int) -> list[StatusChange]:
        """Up to ``limit`` statuses not yet pushed, oldest first."""
        return await self._call("pending_statuses", self._database.pending_statuses, limit)

    async def pending_status_summary(self) -> PendingSummary:
        """Statuses pending, the oldest one's time, results owed (one statement)."""
        return await self._call("pending_status_summary", self._database.pending_status_summary)

    async def mark_statuses_sent(
        self,
        changes: Sequence[StatusChange],
        refusal: Refusal | None = None,
        *,
        full_load_of: str | None = None,
    ) -> list[StatusChange]:
        """Mark done those of ``changes`` still current and pending (owing their results);
        accepted: their EVSEs are ``at_hubject`` (a fullLoad's: only they, of its operator)."""
        if not changes and full_load_of is None:
            return []
        return await self._call(
            "mark_statuses_sent", self._database.mark_statuses_sent, changes, refusal,
            full_load_of,
        )

    async def latest_statuses(self) -> list[StatusChange]:
        """Every EVSE's latest status, by EvseID."""
        return await self._call("latest_statuses", self._database.latest_statuses)

    async def owed_status_results(
        self, limit: int, *, created_before: datetime | None = None
    ) -> list[OwedResult]:
        """Up to ``limit`` owed status results, the longest owed first."""
        if created_before is not None:
            require_aware(created_before, "created_before")
        return await self._call(
            "owed_status_results", self._database.owed_status_results, limit, created_before
        )

    async def status_results_published(self, message_ids: Sequence[str]) -> None:
        """Cross off the owed results of ``message_ids``."""
        if not message_ids:
            return
        await self._call(
            "status_results_published", self._database.status_results_published, message_ids
        )

    async def get_cdr(self, session_id: str) -> CdrRecord | None:
        """The CDR record of ``session_id``, or None."""
        return await self._call("get_cdr", self._database.get_cdr, session_id)

    async def begin_cdr(self, session_id: str, digest: str, message_id: str) -> CdrRecord:
        """Register a CDR before its first call; the record as it now stands."""
        return await self._call(
            "begin_cdr", self._database.begin_cdr, session_id, digest, message_id
        )

    async def cdr_attempted(self, session_id: str) -> None:
        """Count one call to Hubject for the CDR."""
        await self._call("cdr_attempted", self._database.cdr_attempted, session_id)

    async def finish_cdr(
        self,
        session_id: str,
        state: CdrState,
        *,
        status_code: str | None = None,
        additional_info: str | None = None,
    ) -> None:
        """Record Hubject's final answer (an ACCEPTED record stays so)."""
        check_final(state)
        await self._call(
            "finish_cdr", self._database.finish_cdr, session_id, state, status_code,
            additional_info,
        )

    async def claim_progress(self, session_id: str, at: datetime, interval_seconds: float) -> bool:
        """Whether a progress notification of ``session_id`` may go out at ``at``."""
        require_aware(at, "at")
        return await self._call(
            "claim_progress", self._database.claim_progress, session_id, at, interval_seconds
        )

    def exclusive(self, name: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold the lock ``name`` against the other tasks of this process."""
        return self._exclusive(name)

    @contextlib.asynccontextmanager
    async def _exclusive(self, name: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(name, asyncio.Lock())
        started = time.perf_counter()
        async with lock:
            self._seconds.labels(self.kind, "exclusive").observe(time.perf_counter() - started)
            yield

