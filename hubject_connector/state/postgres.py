"""The PostgreSQL state store: one database shared by every replica of the connector.

What passes through: the calls of ``StateStore``. What it hands back: the base module's
dataclasses. Statements run on an asyncpg pool of ``pool_size`` connections whose
``search_path`` is the configured schema. The password comes from ``password_file`` (it is
never logged) and the DSN appears in errors with its password masked.

The store creates the schema and migrates it (``schema_version`` table; ``MIGRATIONS[n]``
brings version ``n`` to ``n + 1``) inside one transaction holding a transaction-level
advisory lock, so replicas starting together take turns and the later ones find the work
done. A schema newer than this code knows is refused (StateError).

``exclusive(name)`` takes a session-level advisory lock on a connection of its own, outside
the pool, held for the whole block: pushes of one operation never overlap across processes,
and the block can still use the pool. Lock keys are 64-bit BLAKE2b hashes of the schema and
the name, the same in every process and release. Were the lock's connection to be left in
doubt (an error or a cancellation while locking or unlocking), it is closed: PostgreSQL
frees a session's locks when the session ends. (A session closed while it waited stays in
the server's queue until the lock comes to it, and then ends at once, freeing it.)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import asyncpg
import structlog
from prometheus_client import REGISTRY, CollectorRegistry
from yarl import URL

from hubject_connector.config import PostgresStateConfig
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

#: Statements of each migration; ``MIGRATIONS[n]`` brings version n to n + 1. They run with
#: the configured schema as ``search_path``.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        # COLLATE "C": sorted by code point, as Python and SQLite sort, whatever the
        # database's locale.
        """CREATE TABLE evses (
            evse_id text COLLATE "C" PRIMARY KEY,
            operator_id text COLLATE "C" NOT NULL,
            record jsonb NOT NULL
        )""",
        "CREATE INDEX evses_by_operator ON evses (operator_id, evse_id)",
        # The offset given is kept beside the instant, to hand the time back as it came.
        """CREATE TABLE statuses (
            evse_id text COLLATE "C" PRIMARY KEY,
            operator_id text NOT NULL,
            status text NOT NULL,
            changed_at timestamptz NOT NULL,
            utc_offset_us bigint NOT NULL,
            message_id text NOT NULL,
            sent boolean NOT NULL DEFAULT false
        )""",
        "CREATE INDEX statuses_pending ON statuses (changed_at, evse_id) WHERE NOT sent",
        """CREATE TABLE cdrs (
            session_id text PRIMARY KEY,
            digest text NOT NULL,
            message_id text NOT NULL,
            state text NOT NULL CHECK (state IN ('pending', 'accepted', 'rejected')),
            attempts integer NOT NULL DEFAULT 0,
            status_code text,
            additional_info text,
            first_seen timestamptz NOT NULL,
            updated timestamptz NOT NULL
        )""",
        """CREATE TABLE progress (
            session_id text PRIMARY KEY,
            last_at timestamptz NOT NULL
        )""",
    ),
    (
        # The delivery results owed about status messages (state/base.py): written in the
        # transaction that makes them owed, deleted once the bus confirmed them.
        """CREATE TABLE status_results (
            message_id text COLLATE "C" PRIMARY KEY,
            evse_id text NOT NULL,
            changed_at timestamptz NOT NULL,
            kind text NOT NULL CHECK (kind IN ('accepted', 'rejected', 'superseded')),
            refusal jsonb,
            created timestamptz NOT NULL
        )""",
        "CREATE INDEX status_results_by_age ON status_results (created, message_id)",
    ),
    (
        # Whether Hubject holds a status record of the EVSE (state/base.py): a push is an
        # insert for a new EVSE, an update for a known one. A status pushed before this
        # version was most probably accepted (a refused one is healed by the flow).
        "ALTER TABLE statuses ADD COLUMN at_hubject boolean NOT NULL DEFAULT false",
        "UPDATE statuses SET at_hubject = true WHERE sent",
    ),
)

#: Errors of the database or of the way to it; they become StateError. InternalClientError
#: is what asyncpg raises on a connection left mid-operation by a session the server ended
#: ("cannot switch to state ...; another operation is in progress").
_DATABASE_ERRORS: Final = (
    asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError,
    TimeoutError,
)
#: Longest wait for a new connection.
_CONNECT_TIMEOUT_SECONDS: Final = 10.0
#: Longest wait for the connections in use when closing; then they are cut.
_CLOSE_TIMEOUT_SECONDS: Final = 10.0
_MICROSECOND: Final = timedelta(microseconds=1)

#: What record_statuses reads (the rule needs no more).
_STATUS_SELECT: Final = (
    "SELECT evse_id, operator_id, status, changed_at, utc_offset_us, message_id, sent "
    "FROM statuses "
)
#: What the flows read: with whether Hubject holds the EVSE's status record.
_STATUS_SELECT_HUBJECT: Final = (
    "SELECT evse_id, operator_id, status, changed_at, utc_offset_us, message_id, sent, "
    "at_hubject FROM statuses "
)
_CDR_SELECT: Final = (
    "SELECT session_id, digest, message_id, state, attempts, status_code, additional_info, "
    "first_seen, updated FROM cdrs "
)


def quote_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def redacted_dsn(dsn: str) -> str:
    """The DSN with its password (if any) masked, fit for errors and logs."""
    try:
        url = URL(dsn)
    except (TypeError, ValueError):
        return "<unparsable DSN>"
    return str(url.with_password("***")) if url.password else str(url)


def lock_key(schema: str, kind: str, name: str) -> int:
    """The advisory lock key (signed 64-bit) of ``name``, stable across processes."""
    digest = hashlib.blake2b(
        "\0".join(("hubject-connector", schema, kind, name)).encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


def _offset_micros(moment: datetime) -> int:
    offset = moment.utcoffset()
    assert offset is not None  # require_aware() was called
    return offset // _MICROSECOND


def _status(row: asyncpg.Record) -> StatusChange:
    changed: datetime = row["changed_at"]
    offset: int = row["utc_offset_us"]
    return StatusChange(
        evse_id=row["evse_id"],
        operator_id=row["operator_id"],
        status=row["status"],
        time=changed.astimezone(timezone(timedelta(microseconds=offset))) if offset else changed,
        message_id=row["message_id"],
        # Not read where the rule does not need it (record_statuses).
        at_hubject=bool(row.get("at_hubject", False)),
    )


def _owed(row: asyncpg.Record) -> OwedResult:
    refusal = row["refusal"]
    return OwedResult(
        message_id=row["message_id"],
        evse_id=row["evse_id"],
        time=row["changed_at"],
        kind=ResultKind(row["kind"]),
        refusal=None if refusal is None else Refusal.from_json(refusal),
    )


def _cdr(row: asyncpg.Record) -> CdrRecord:
    return CdrRecord(
        session_id=row["session_id"],
        digest=row["digest"],
        message_id=row["message_id"],
        state=CdrState(row["state"]),
        attempts=row["attempts"],
        status_code=row["status_code"],
        additional_info=row["additional_info"],
        first_seen=row["first_seen"],
        updated=row["updated"],
    )


def _json(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    # A pooled connection (generic in the stubs only).
    Connection: TypeAlias = PoolConnectionProxy[asyncpg.Record]


class PostgresStateStore(StateStore):
    """The state store in a PostgreSQL schema (``[state.postgresql]``), for many replicas."""

    #: Label of the store in metrics.
    kind: Final = "postgresql"
    #: The schema's migrations (a subclass may add some, as a newer release would).
    migrations: Sequence[Sequence[str]] = MIGRATIONS

    def __init__(
        self, config: PostgresStateConfig, *, registry: CollectorRegistry | None = None
    ) -> None:
        self.config = config
        self._where = f"{redacted_dsn(config.dsn)} schema {config.schema}"
        self._password: str | None = None
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._local_locks: dict[str, asyncio.Lock] = {}
        self._lock_connections: dict[str, asyncpg.Connection[asyncpg.Record]] = {}
        self._seconds = StateMetrics.for_registry(
            REGISTRY if registry is None else registry
        ).operation_seconds

    @property
    def is_open(self) -> bool:
        """Whether the pool is open."""
        return self._pool is not None

    # Connections ---------------------------------------------------------------------------

    def _secrets(self) -> list[str]:
        try:
            in_dsn = URL(self.config.dsn).password
        except (TypeError, ValueError):
            in_dsn = None
        return [s for s in (self._password, in_dsn) if s]

    def _clean(self, exc: BaseException) -> str:
        """The error's text without any password in it."""
        text = str(exc) or type(exc).__name__
        for secret in self._secrets():
            text = text.replace(secret, "***")
        return text

    def _error(self, what: str, exc: BaseException) -> StateError:
        """StateError "what: why"; its ``__cause__`` is ``exc`` unless that held a password."""
        clean = self._clean(exc)
        error = StateError(f"{what}: {clean}")
        error.__cause__ = exc if clean == (str(exc) or type(exc).__name__) else None
        return error

    def _read_password(self) -> str | None:
        path = self.config.password_file
        if path is None:
            return None
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise StateError(
                f"cannot read state.postgresql.password_file {path}: {exc.strerror or exc}"
            ) from None

    def _connect_options(self) -> dict[str, Any]:
        return {
            "password": self._password,
            "timeout": _CONNECT_TIMEOUT_SECONDS,
            "server_settings": {
                "search_path": quote_identifier(self.config.schema),
                "application_name": "hubject-connector",
            },
        }

    @contextlib.asynccontextmanager
    async def _connection(self, operation: str) -> AsyncIterator[Connection]:
        """A pooled connection for ``operation``, timed; database errors become StateError."""
        pool = self._pool
        if pool is None:
            raise StateError(f"the PostgreSQL state store ({self._where}) is not open")
        started = time.perf_counter()
        try:
            async with pool.acquire() as connection:
                yield connection
        except _DATABASE_ERRORS as exc:
            error = self._error(
                f"the PostgreSQL state store ({self._where}) failed in {operation}", exc
            )
            raise error from error.__cause__
        finally:
            self._seconds.labels(self.kind, operation).observe(time.perf_counter() - started)

    async def open(self) -> None:
        """Connect the pool; create or migrate the schema. Raises StateError."""
        if self._pool is not None:
            return
        self._password = self._read_password()
        try:
            pool = await asyncpg.create_pool(
                self.config.dsn,
                min_size=1,
                max_size=self.config.pool_size,
                **self._connect_options(),
            )
        except (*_DATABASE_ERRORS, ValueError) as exc:
            error = self._error(
                f"cannot connect to the PostgreSQL state store at {self._where}", exc
            )
            raise error from error.__cause__
        self._pool = pool
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise
        log.info("state.opened", store=self.kind, dsn=redacted_dsn(self.config.dsn),
                 schema=self.config.schema)

    async def _migrate(self) -> None:
        schema = self.config.schema
        async with self._connection("open") as connection, connection.transaction():
            await connection.execute(
                "SELECT pg_advisory_xact_lock($1)", lock_key(schema, "internal", "migrate")
            )
            exists = await connection.fetchval(
                "SELECT true FROM pg_namespace WHERE nspname = $1", schema
            )
            # Only when missing: CREATE SCHEMA IF NOT EXISTS would still need the right to
            # create schemas, which a role given a ready schema may lack.
            if not exists:
                await connection.execute(f"CREATE SCHEMA {quote_identifier(schema)}")
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            version: int = await connection.fetchval(
                "SELECT coalesce(max(version), 0) FROM schema_version"
            )
            latest = len(self.migrations)
            if version > latest:
                raise StateError(
                    f"the PostgreSQL state store ({self._where}) has schema version {version}, "
                    f"newer than this release of hubject-connector knows ({latest}): run the "
                    "release that wrote it, or a newer one"
                )
            for target, statements in enumerate(self.migrations[version:], start=version + 1):
                for statement in statements:
                    await connection.execute(statement)
                await connection.execute(
                    "INSERT INTO schema_version (version) VALUES ($1)", target
                )
                log.info("state.migrated", store=self.kind, schema=schema, version=target)

    async def close(self) -> None:
        """Close the lock connections (freeing their locks) and the pool. Idempotent."""
        connections = list(self._lock_connections.values())
        self._lock_connections.clear()
        for connection in connections:
            await self._close_connection(connection)
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), _CLOSE_TIMEOUT_SECONDS)
            except _DATABASE_ERRORS as exc:
                # Connections still in use after the wait, or a server gone: cut them.
                pool.terminate()
                log.warning("state.close_forced", store=self.kind, error=self._clean(exc))
            except BaseException:
                pool.terminate()
                raise

    async def _close_connection(self, connection: asyncpg.Connection[asyncpg.Record]) -> None:
        try:
            await asyncio.wait_for(connection.close(), _CLOSE_TIMEOUT_SECONDS)
        except _DATABASE_ERRORS:
            connection.terminate()
        except BaseException:
            connection.terminate()
            raise

    async def schema_version(self) -> int:
        """The highest version in ``schema_version``."""
        async with self._connection("schema_version") as connection:
            version: int = await connection.fetchval(
                "SELECT coalesce(max(version), 0) FROM schema_version"
            )
            return version

    # EVSE data -------------------------------------------------------------------------

    async def get_evse(self, evse_id: str) -> EvseEntry | None:
        """What Hubject holds of ``evse_id``, or None."""
        async with self._connection("get_evse") as connection:
            row = await connection.fetchrow(
                "SELECT evse_id, operator_id, record FROM evses WHERE evse_id = $1", evse_id
            )
        if row is None:
            return None
        return EvseEntry(row["evse_id"], row["operator_id"], json.loads(row["record"]))

    async def _upsert_evses(self, connection: Connection, entries: Sequence[EvseEntry]) -> None:
        # One row per EvseID: ON CONFLICT cannot touch a row twice in one statement.
        unique = list({e.evse_id: e for e in entries}.values())
        await connection.execute(
            "INSERT INTO evses (evse_id, operator_id, record) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[]) "
            "ON CONFLICT (evse_id) DO UPDATE SET "
            "operator_id = excluded.operator_id, record = excluded.record",
            [e.evse_id for e in unique],
            [e.operator_id for e in unique],
            [_json(e.record) for e in unique],
        )

    async def put_evse(self, entry: EvseEntry) -> None:
        """Remember ``entry`` as held by Hubject."""
        async with self._connection("put_evse") as connection:
            await connection.execute(
                "INSERT INTO evses (evse_id, operator_id, record) VALUES ($1, $2, $3::jsonb) "
                "ON CONFLICT (evse_id) DO UPDATE SET "
                "operator_id = excluded.operator_id, record = excluded.record",
                entry.evse_id,
                entry.operator_id,
                _json(entry.record),
            )

    async def delete_evse(self, evse_id: str) -> None:
        """Forget ``evse_id``."""
        async with self._connection("delete_evse") as connection:
            await connection.execute("DELETE FROM evses WHERE evse_id = $1", evse_id)

    async def replace_evses(self, operator_id: str, entries: Sequence[EvseEntry]) -> None:
        """The operator's EVSEs become exactly ``entries``."""
        check_replacement(operator_id, entries)
        key = lock_key(self.config.schema, "internal", f"evses:{operator_id}")
        async with self._connection("replace_evses") as connection, connection.transaction():
            # Two replacements of one operator at once would each keep the other's rows.
            await connection.execute("SELECT pg_advisory_xact_lock($1)", key)
            await connection.execute(
                "DELETE FROM evses WHERE operator_id = $1 AND NOT (evse_id = ANY($2::text[]))",
                operator_id,
                [e.evse_id for e in entries],
            )
            if entries:
                await self._upsert_evses(connection, entries)

    async def evse_ids(self, operator_id: str | None = None) -> list[str]:
        """Every known EvseID (of one operator), sorted."""
        async with self._connection("evse_ids") as connection:
            if operator_id is None:
                rows = await connection.fetch("SELECT evse_id FROM evses ORDER BY evse_id")
            else:
                rows = await connection.fetch(
                    "SELECT evse_id FROM evses WHERE operator_id = $1 ORDER BY evse_id",
                    operator_id,
                )
        return [row["evse_id"] for row in rows]

    # Statuses --------------------------------------------------------------------------

    async def record_statuses(self, changes: Sequence[StatusChange]) -> list[StatusRecorded]:
        """Store the changes newer than the stored ones (``plan_statuses``), as pending."""
        for change in changes:
            require_aware(change.time, f"the time of {change.evse_id}'s status")
        if not changes:
            return []
        ids = list(dict.fromkeys(c.evse_id for c in changes))
        key = lock_key(self.config.schema, "internal", "statuses")
        async with self._connection("record_statuses") as connection, connection.transaction():
            # Rows of EVSEs not seen yet cannot be locked with FOR UPDATE: batches take
            # turns, so that what plan_statuses reads is what it overwrites.
            await connection.execute("SELECT pg_advisory_xact_lock($1)", key)
            rows = await connection.fetch(
                _STATUS_SELECT + "WHERE evse_id = ANY($1::text[]) FOR UPDATE", ids
            )
            stored = {row["evse_id"]: StoredStatus(_status(row), row["sent"]) for row in rows}
            results, writes = plan_statuses(stored, changes)
            if writes:
                # The WHERE repeats the rule as a guard: a stored row never goes back in time.
                await connection.execute(
                    "INSERT INTO statuses (evse_id, operator_id, status, changed_at, "
                    "utc_offset_us, message_id, sent) "
                    "SELECT e, o, s, t, u, m, false FROM unnest($1::text[], $2::text[], "
                    "$3::text[], $4::timestamptz[], $5::bigint[], $6::text[]) "
                    "AS x(e, o, s, t, u, m) "
                    "ON CONFLICT (evse_id) DO UPDATE SET operator_id = excluded.operator_id, "
                    "status = excluded.status, changed_at = excluded.changed_at, "
                    "utc_offset_us = excluded.utc_offset_us, message_id = excluded.message_id, "
                    "sent = false WHERE statuses.changed_at < excluded.changed_at",
                    [c.evse_id for c in writes],
                    [c.operator_id for c in writes],
                    [c.status for c in writes],
                    [c.time for c in writes],
                    [_offset_micros(c.time) for c in writes],
                    [c.message_id for c in writes],
                )
            owed = [r.owed for r in results if r.owed is not None]
            if owed:
                await connection.execute(
                    "INSERT INTO status_results (message_id, evse_id, changed_at, kind, "
                    "refusal, created) SELECT m, e, t, k, r, $6 FROM unnest($1::text[], "
                    "$2::text[], $3::timestamptz[], $4::text[], $5::jsonb[]) "
                    "AS x(m, e, t, k, r) ON CONFLICT (message_id) DO NOTHING",
                    [o.message_id for o in owed],
                    [o.evse_id for o in owed],
                    [o.time for o in owed],
                    [str(o.kind) for o in owed],
                    [None if o.refusal is None else o.refusal.to_json() for o in owed],
                    datetime.now(UTC),
                )
        return results

    async def pending_statuses(self, limit: int) -> list[StatusChange]:
        """Up to ``limit`` statuses not yet pushed, oldest first."""
        async with self._connection("pending_statuses") as connection:
            rows = await connection.fetch(
                _STATUS_SELECT_HUBJECT + "WHERE NOT sent ORDER BY changed_at, evse_id LIMIT $1",
                limit,
            )
        return [_status(row) for row in rows]

    async def pending_status_summary(self) -> PendingSummary:
        """Statuses pending, the oldest one's time, results owed (one statement)."""
        async with self._connection("pending_status_summary") as connection:
            row = await connection.fetchrow(
                "SELECT count(*) AS pending, min(changed_at) AS oldest, "
                "(SELECT count(*) FROM status_results) AS owed FROM statuses WHERE NOT sent"
            )
        assert row is not None  # an aggregate always gives one row
        oldest = row["oldest"]
        return PendingSummary(int(row["pending"]),
                              None if oldest is None else oldest.astimezone(UTC),
                              int(row["owed"]))

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
        kind = ResultKind.ACCEPTED if refusal is None else ResultKind.REJECTED
        async with (
            self._connection("mark_statuses_sent") as connection,
            connection.transaction(),
        ):
            # A row that record_statuses is replacing is locked: this waits for it and then
            # sees the new message id, so a status pushed too late is not marked. One
            # statement: the rows marked and the results they are owed, or neither.
            rows = await connection.fetch(
                "WITH marked AS (UPDATE statuses AS s SET sent = true "
                "FROM unnest($1::text[], $2::text[]) AS u(evse_id, message_id) "
                "WHERE s.evse_id = u.evse_id AND s.message_id = u.message_id AND NOT s.sent "
                "RETURNING s.evse_id, s.message_id, s.changed_at), "
                "owed AS (INSERT INTO status_results (message_id, evse_id, changed_at, kind, "
                "refusal, created) SELECT message_id, evse_id, changed_at, $3, $4::jsonb, $5 "
                "FROM marked ON CONFLICT (message_id) DO NOTHING) "
                "SELECT evse_id, message_id FROM marked",
                [c.evse_id for c in changes],
                [c.message_id for c in changes],
                str(kind),
                None if refusal is None else refusal.to_json(),
                datetime.now(UTC),
            )
            if refusal is None:
                # Statements of their own: one statement must not update a row twice.
                pushed = list(dict.fromkeys(c.evse_id for c in changes))
                if full_load_of is not None:
                    await connection.execute(
                        "UPDATE statuses SET at_hubject = false WHERE operator_id = $1 "
                        "AND at_hubject AND NOT (evse_id = ANY($2::text[]))",
                        full_load_of, pushed,
                    )
                await connection.execute(
                    "UPDATE statuses SET at_hubject = true "
                    "WHERE evse_id = ANY($1::text[]) AND NOT at_hubject",
                    pushed,
                )
        current = {(row["evse_id"], row["message_id"]) for row in rows}
        return [c for c in changes if (c.evse_id, c.message_id) in current]

    async def latest_statuses(self) -> list[StatusChange]:
        """Every EVSE's latest status, by EvseID."""
        async with self._connection("latest_statuses") as connection:
            rows = await connection.fetch(_STATUS_SELECT_HUBJECT + "ORDER BY evse_id")
        return [_status(row) for row in rows]

    # Owed status results -----------------------------------------------------------------

    async def owed_status_results(
        self, limit: int, *, created_before: datetime | None = None
    ) -> list[OwedResult]:
        """Up to ``limit`` owed status results, the longest owed first."""
        if created_before is not None:
            require_aware(created_before, "created_before")
        async with self._connection("owed_status_results") as connection:
            rows = await connection.fetch(
                "SELECT message_id, evse_id, changed_at, kind, refusal FROM status_results "
                "WHERE $2::timestamptz IS NULL OR created < $2 "
                "ORDER BY created, message_id LIMIT $1",
                limit,
                created_before,
            )
        return [_owed(row) for row in rows]

    async def status_results_published(self, message_ids: Sequence[str]) -> None:
        """Cross off the owed results of ``message_ids``."""
        if not message_ids:
            return
        async with self._connection("status_results_published") as connection:
            await connection.execute(
                "DELETE FROM status_results WHERE message_id = ANY($1::text[])",
                list(message_ids),
            )

    # CDRs --------------------------------------------------------------------------------

    async def get_cdr(self, session_id: str) -> CdrRecord | None:
        """The CDR record of ``session_id``, or None."""
        async with self._connection("get_cdr") as connection:
            row = await connection.fetchrow(_CDR_SELECT + "WHERE session_id = $1", session_id)
        return None if row is None else _cdr(row)

    async def begin_cdr(self, session_id: str, digest: str, message_id: str) -> CdrRecord:
        """Register a CDR before its first call; the record as it now stands."""
        now = datetime.now(UTC)
        async with self._connection("begin_cdr") as connection, connection.transaction():
            row = await connection.fetchrow(
                "INSERT INTO cdrs (session_id, digest, message_id, state, attempts, "
                "first_seen, updated) VALUES ($1, $2, $3, 'pending', 0, $4, $4) "
                "ON CONFLICT (session_id) DO UPDATE SET digest = excluded.digest, "
                "message_id = excluded.message_id, state = 'pending', attempts = 0, "
                "status_code = NULL, additional_info = NULL, updated = excluded.updated "
                "WHERE cdrs.state = 'rejected' AND cdrs.digest <> excluded.digest "
                "RETURNING session_id, digest, message_id, state, attempts, status_code, "
                "additional_info, first_seen, updated",
                session_id,
                digest,
                message_id,
                now,
            )
            if row is None:
                row = await connection.fetchrow(
                    _CDR_SELECT + "WHERE session_id = $1", session_id
                )
        assert row is not None
        return _cdr(row)

    async def cdr_attempted(self, session_id: str) -> None:
        """Count one call to Hubject for the CDR."""
        async with self._connection("cdr_attempted") as connection:
            found = await connection.fetchval(
                "UPDATE cdrs SET attempts = attempts + 1, updated = $2 WHERE session_id = $1 "
                "RETURNING true",
                session_id,
                datetime.now(UTC),
            )
        if not found:
            raise KeyError(session_id)

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
        async with self._connection("finish_cdr") as connection, connection.transaction():
            current = await connection.fetchval(
                "SELECT state FROM cdrs WHERE session_id = $1 FOR UPDATE", session_id
            )
            if current is None:
                raise KeyError(session_id)
            if current == CdrState.ACCEPTED:
                return
            await connection.execute(
                "UPDATE cdrs SET state = $2, status_code = $3, additional_info = $4, "
                "updated = $5 WHERE session_id = $1",
                session_id,
                str(state),
                status_code,
                additional_info,
                datetime.now(UTC),
            )

    # Notifications ------------------------------------------------------------------------

    async def claim_progress(self, session_id: str, at: datetime, interval_seconds: float) -> bool:
        """Whether a progress notification of ``session_id`` may go out at ``at``."""
        require_aware(at, "at")
        async with self._connection("claim_progress") as connection:
            # One statement: the insert, or the update of a row locked by it, is atomic; a
            # second claimant waits for the first and then sees its time.
            claimed = await connection.fetchval(
                "INSERT INTO progress (session_id, last_at) VALUES ($1, $2) "
                "ON CONFLICT (session_id) DO UPDATE SET last_at = excluded.last_at "
                "WHERE progress.last_at <= excluded.last_at - make_interval(secs => $3) "
                "RETURNING true",
                session_id,
                at,
                float(interval_seconds),
            )
        return bool(claimed)

    # Coordination ---------------------------------------------------------------------------

    def exclusive(self, name: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold the advisory lock ``name`` against every process sharing the schema."""
        return self._exclusive(name)

    async def _lock_connection(self, name: str) -> asyncpg.Connection[asyncpg.Record]:
        connection = self._lock_connections.get(name)
        if connection is None or connection.is_closed():
            connection = await asyncpg.connect(self.config.dsn, **self._connect_options())
            self._lock_connections[name] = connection
        return connection

    def _drop_lock_connection(self, name: str) -> None:
        connection = self._lock_connections.pop(name, None)
        if connection is not None:
            # Closing the session frees every lock it holds, granted or about to be.
            connection.terminate()

    @contextlib.asynccontextmanager
    async def _exclusive(self, name: str) -> AsyncIterator[None]:
        if self._pool is None:
            raise StateError(f"the PostgreSQL state store ({self._where}) is not open")
        key = lock_key(self.config.schema, "exclusive", name)
        # Tasks of this process queue here, each lock connection serving one at a time.
        local = self._local_locks.setdefault(name, asyncio.Lock())
        started = time.perf_counter()
        async with local:
            try:
                connection = await self._lock_connection(name)
                await connection.execute("SELECT pg_advisory_lock($1)", key)
            except BaseException as exc:
                # Cancelled while waiting, the lock may have been granted all the same.
                self._drop_lock_connection(name)
                if isinstance(exc, _DATABASE_ERRORS):
                    error = self._error(
                        f"the PostgreSQL state store ({self._where}) could not lock {name!r}",
                        exc,
                    )
                    raise error from error.__cause__
                raise
            finally:
                self._seconds.labels(self.kind, "exclusive").observe(
                    time.perf_counter() - started
                )
            try:
                yield
            finally:
                await self._unlock(name, connection, key)

    async def _unlock(
        self, name: str, connection: asyncpg.Connection[asyncpg.Record], key: int
    ) -> None:
        try:
            held = await connection.fetchval("SELECT pg_advisory_unlock($1)", key)
        except _DATABASE_ERRORS as exc:
            # Whatever happened, ending the session frees the lock.
            self._drop_lock_connection(name)
            log.warning("state.unlock_failed", lock=name, error=self._clean(exc))
            return
        except BaseException:
            self._drop_lock_connection(name)
            raise
        if not held:
            # The session was lost during the block: another process may have pushed too.
            log.warning("state.lock_was_lost", lock=name)
