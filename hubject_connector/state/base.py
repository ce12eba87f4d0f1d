"""The state store: what must survive a restart, behind one small interface.

The flows keep four things here, and nothing else:

* what Hubject holds of each EVSE (the EvseDataRecord last accepted), so that an upsert
  becomes an ``insert`` or an ``update`` and a delete can carry the record;
* the latest status per EVSE with the time it changed and whether it was pushed, so that
  an older status never overwrites a newer one (also across restarts) and unsent changes
  are pushed after a crash; and whether Hubject holds a status record of the EVSE
  (``at_hubject``), so that a status push is an ``insert`` for a new EVSE and an
  ``update`` for a known one (Hubject refuses an update of a record it lacks);
* the outcome of every CDR per SessionID, so that a CDR reaches Hubject exactly once;
* when the last progress notification of a session went out (one per 5 minutes);
* the delivery results owed about status messages (an outbox): written in the transaction
  that makes them owed (a pending status replaced, statuses marked pushed or refused) and
  crossed off once the bus confirmed them, so that a crash in between loses none.

Adapters (``sqlite``, ``postgres``) only store: every rule that decides (newer time wins,
a rejected CDR may be sent again corrected) is stated here and checked by one behavioural
suite that runs on each adapter. ``exclusive(name)`` serialises pushes of one operation
across every process that shares the store (PostgreSQL: an advisory lock).

The rule deciding which status changes are stored is written once, as the pure function
``plan_statuses`` below; the adapters read the stored rows, ask it, and write its answer.
Times are compared as instants (``2024-01-01T10:00+01:00`` equals ``09:00Z``) and given
back with the offset they were stored with.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Self


@dataclass(frozen=True, slots=True)
class EvseEntry:
    """One EVSE as Hubject holds it: the OICP ``EvseDataRecord`` JSON last accepted."""

    evse_id: str
    operator_id: str
    record: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class StatusChange:
    """An EVSE's status as of ``time`` (when it changed), carried by bus message
    ``message_id``. ``time`` is timezone-aware."""

    evse_id: str
    operator_id: str
    status: str
    time: datetime
    message_id: str
    #: As read from the store: whether Hubject held a status record of the EVSE then (a
    #: push including it was accepted). A change coming in has not been stored: False.
    at_hubject: bool = False


class ResultKind(StrEnum):
    """What an owed status result says (the flow words it as a delivery result)."""

    #: Pushed, and Hubject accepted it.
    ACCEPTED = "accepted"
    #: Refused for good (by Hubject, or by the connector: it cannot become a valid push).
    REJECTED = "rejected"
    #: Dropped: replaced by a newer status of its EVSE before it was pushed.
    SUPERSEDED = "superseded"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why statuses were refused for good, as their ``rejected`` results say it."""

    status_code: str
    reason: str
    status_description: str | None = None
    additional_info: str | None = None
    #: Whether Hubject answered so (else the connector refused to send it).
    by_hubject: bool = True

    def to_json(self) -> str:
        """The refusal as the adapters store it."""
        return json.dumps(
            {"status_code": self.status_code, "reason": self.reason,
             "status_description": self.status_description,
             "additional_info": self.additional_info, "by_hubject": self.by_hubject},
            ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Refusal:
        """The refusal ``to_json`` wrote."""
        data = json.loads(text)
        return cls(str(data["status_code"]), str(data["reason"]),
                   data.get("status_description"), data.get("additional_info"),
                   bool(data.get("by_hubject", True)))


@dataclass(frozen=True, slots=True)
class OwedResult:
    """A delivery result the store owes the backend about one status message."""

    message_id: str
    evse_id: str
    #: The status change's time (timezone-aware; given back in UTC).
    time: datetime
    kind: ResultKind
    #: With ``REJECTED`` only.
    refusal: Refusal | None = None

    @classmethod
    def of(cls, change: StatusChange, refusal: Refusal | None = None) -> OwedResult:
        """The result owed about ``change`` once marked done (``refusal``: refused)."""
        kind = ResultKind.ACCEPTED if refusal is None else ResultKind.REJECTED
        return cls(change.message_id, change.evse_id, change.time, kind, refusal)


@dataclass(frozen=True, slots=True)
class PendingSummary:
    """How far status pushes and their results are behind (for the backlog gauges)."""

    #: Stored statuses not yet pushed.
    pending: int
    #: The time of the oldest change among them (timezone-aware, UTC); None: none pending.
    oldest: datetime | None
    #: Delivery results owed about status messages, not yet confirmed by the bus.
    results_owed: int


@dataclass(frozen=True, slots=True)
class StatusRecorded:
    """What ``record_statuses`` did with one change."""

    change: StatusChange
    #: True: newer than what was known, now pending a push. False: not newer; ignored.
    stored: bool
    #: The message id of a pending (never pushed) status this one replaced, if any.
    replaced: str | None = None
    #: Not stored because the EVSE's stored status is this very change (same message id):
    #: its message delivered again, after a crash or a lost acknowledgement.
    repeat: bool = False
    #: The result now owed about the replaced status (``SUPERSEDED``), written with it.
    owed: OwedResult | None = None


@dataclass(frozen=True, slots=True)
class StoredStatus:
    """A stored status row: the change and whether it was pushed (for adapters)."""

    change: StatusChange
    sent: bool


def require_aware(time: datetime, what: str = "time") -> None:
    """Refuse a naive datetime: it has no instant to compare (ValueError)."""
    if time.tzinfo is None or time.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (got {time.isoformat()})")


def plan_statuses(
    stored: Mapping[str, StoredStatus], changes: Sequence[StatusChange]
) -> tuple[list[StatusRecorded], list[StatusChange]]:
    """The rule of ``StateStore.record_statuses``, without storage.

    ``stored`` holds the rows of (at least) the EVSEs in ``changes``. The changes are taken
    in the order given, each compared with the EVSE's status as it stands after the ones
    before it: stored when its time is strictly after, ignored otherwise (a tie is not
    newer). So of several changes of one EVSE the newest wins; an earlier one of the same
    batch that was stored and then overtaken is named as ``replaced`` by the one that
    overtook it, exactly as if it had come in an earlier call. Returns the results, in the
    order given (``owed``: the ``SUPERSEDED`` result to write with the rows), and the new
    pending row of each EVSE that changed.
    """
    current: dict[str, StoredStatus] = {}
    results: list[StatusRecorded] = []
    for change in changes:
        require_aware(change.time, f"the time of {change.evse_id}'s status")
        before = current.get(change.evse_id)
        if before is None:
            before = stored.get(change.evse_id)
        if before is not None and change.time <= before.change.time:
            repeat = before.change.message_id == change.message_id
            results.append(StatusRecorded(change, stored=False, repeat=repeat))
            continue
        if before is None or before.sent:
            results.append(StatusRecorded(change, stored=True))
        else:
            gone = before.change
            owed = OwedResult(gone.message_id, gone.evse_id, gone.time, ResultKind.SUPERSEDED)
            results.append(StatusRecorded(change, stored=True, replaced=gone.message_id,
                                          owed=owed))
        current[change.evse_id] = StoredStatus(change, sent=False)
    return results, [row.change for row in current.values()]


def check_replacement(operator_id: str, entries: Sequence[EvseEntry]) -> None:
    """Refuse a ``replace_evses`` whose entries are not all of ``operator_id`` (ValueError)."""
    strangers = sorted({e.evse_id for e in entries if e.operator_id != operator_id})
    if strangers:
        raise ValueError(
            f"replace_evses({operator_id!r}) got EVSEs of other operators: "
            + ", ".join(strangers)
        )


class CdrState(StrEnum):
    """Where a CDR stands with Hubject."""

    #: Known, possibly sent (an answer may have been lost): never sent as new again.
    PENDING = "pending"
    ACCEPTED = "accepted"
    #: Refused for good; a corrected CDR (other content) may be sent again.
    REJECTED = "rejected"


def check_final(state: CdrState) -> None:
    """Refuse PENDING as a final answer of ``finish_cdr`` (ValueError)."""
    if state is CdrState.PENDING:
        raise ValueError("finish_cdr takes a final state (accepted or rejected), not pending")


@dataclass(frozen=True, slots=True)
class CdrRecord:
    """The outcome of one SessionID's CDR."""

    session_id: str
    #: Hash of the OICP body sent, to tell a repeat from a different CDR.
    digest: str
    #: The bus message that carried it.
    message_id: str
    state: CdrState
    #: Calls made to Hubject for it.
    attempts: int
    status_code: str | None
    additional_info: str | None
    first_seen: datetime
    updated: datetime


class StateStore(abc.ABC):
    """Durable state of the flows. Use as ``async with store:`` or open() and close()."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    @abc.abstractmethod
    def is_open(self) -> bool:
        """Whether the store can be used now (for readiness)."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, create or migrate the schema (versioned). Raises ``StateError``."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close connections. Idempotent."""

    @abc.abstractmethod
    async def schema_version(self) -> int:
        """The schema version in force."""

    # EVSE data -------------------------------------------------------------------------

    @abc.abstractmethod
    async def get_evse(self, evse_id: str) -> EvseEntry | None:
        """What Hubject holds of ``evse_id``, or None."""

    @abc.abstractmethod
    async def put_evse(self, entry: EvseEntry) -> None:
        """Remember ``entry`` as held by Hubject (insert or replace)."""

    @abc.abstractmethod
    async def delete_evse(self, evse_id: str) -> None:
        """Forget ``evse_id`` (no error when unknown)."""

    @abc.abstractmethod
    async def replace_evses(self, operator_id: str, entries: Sequence[EvseEntry]) -> None:
        """After a fullLoad: the operator's EVSEs are exactly ``entries`` (one transaction).

        Every entry must be of ``operator_id`` (ValueError otherwise, nothing changed).
        """

    @abc.abstractmethod
    async def evse_ids(self, operator_id: str | None = None) -> list[str]:
        """Every known EvseID (of one operator), sorted."""

    # Statuses --------------------------------------------------------------------------

    @abc.abstractmethod
    async def record_statuses(self, changes: Sequence[StatusChange]) -> list[StatusRecorded]:
        """Store each change that is newer than the EVSE's stored one, as pending.

        One transaction for the lot; results in the order given. A change whose ``time``
        is not after the stored time is not stored (``stored=False``); of several changes
        of one EVSE in ``changes``, the newest wins the same way. ``replaced`` names the
        message of a pending status that was overwritten before it was pushed; in the same
        transaction its ``SUPERSEDED`` result (``owed``) is written to the owed results
        (one per message: a result already owed about it stays as it is). The exact rule
        is ``plan_statuses``. A naive ``time`` raises ValueError.
        """

    @abc.abstractmethod
    async def pending_statuses(self, limit: int) -> list[StatusChange]:
        """Up to ``limit`` stored statuses not yet pushed, oldest change first (each with
        its EVSE's ``at_hubject``)."""

    @abc.abstractmethod
    async def pending_status_summary(self) -> PendingSummary:
        """How many statuses are pending, the oldest one's change time, and how many
        results are owed: one cheap statement (counts over indexed rows, no rows read)."""

    @abc.abstractmethod
    async def mark_statuses_sent(
        self,
        changes: Sequence[StatusChange],
        refusal: Refusal | None = None,
        *,
        full_load_of: str | None = None,
    ) -> list[StatusChange]:
        """Mark done those of ``changes`` still current and pending; return them.

        Still current: the EVSE's stored status is that message's. Pending: not marked
        before. In the same transaction, the result each one is now owed is written to the
        owed results: ``ACCEPTED``, or ``REJECTED`` with ``refusal`` (``OwedResult.of``).

        Without ``refusal`` (Hubject accepted the push), every EVSE of ``changes`` is then
        ``at_hubject``, current or not: Hubject holds a status record of it. With
        ``full_load_of`` (the push was a fullLoad of that operator, which replaces its
        whole set), the operator's other EVSEs are no longer ``at_hubject``.
        """

    @abc.abstractmethod
    async def latest_statuses(self) -> list[StatusChange]:
        """Every EVSE's latest status, pushed or not, by EvseID (for a full refresh), each
        with ``at_hubject``."""

    # Owed status results -----------------------------------------------------------------

    @abc.abstractmethod
    async def owed_status_results(
        self, limit: int, *, created_before: datetime | None = None
    ) -> list[OwedResult]:
        """Up to ``limit`` owed status results, the longest owed first.

        ``created_before`` (timezone-aware): only those owed since before then; a result
        another live process made owed just now is on its way to the bus already.
        """

    @abc.abstractmethod
    async def status_results_published(self, message_ids: Sequence[str]) -> None:
        """Cross off the owed results of ``message_ids``: the bus confirmed them."""

    # CDRs --------------------------------------------------------------------------------

    @abc.abstractmethod
    async def get_cdr(self, session_id: str) -> CdrRecord | None:
        """The CDR record of ``session_id``, or None."""

    @abc.abstractmethod
    async def begin_cdr(self, session_id: str, digest: str, message_id: str) -> CdrRecord:
        """Register a CDR before its first call; return the record as it now stands.

        Absent: inserted as PENDING with 0 attempts. REJECTED with another ``digest``
        (a corrected CDR): reset to PENDING with the new digest and message id, 0 attempts
        and no status code (``first_seen`` kept). Otherwise the existing record is returned
        unchanged (the caller compares digests).
        """

    @abc.abstractmethod
    async def cdr_attempted(self, session_id: str) -> None:
        """Count one call to Hubject for the CDR; made before each call.

        KeyError when no CDR of ``session_id`` was begun.
        """

    @abc.abstractmethod
    async def finish_cdr(
        self,
        session_id: str,
        state: CdrState,
        *,
        status_code: str | None = None,
        additional_info: str | None = None,
    ) -> None:
        """Record Hubject's final answer (ACCEPTED or REJECTED).

        ACCEPTED is final: a later answer does not change an accepted record, so that no
        second CDR of the session can ever begin. ``state`` PENDING raises ValueError; an
        unknown ``session_id`` KeyError.
        """

    # Notifications ------------------------------------------------------------------------

    @abc.abstractmethod
    async def claim_progress(self, session_id: str, at: datetime, interval_seconds: float) -> bool:
        """Whether a progress notification of ``session_id`` at ``at`` may go out.

        True, and ``at`` remembered, when none was claimed within ``interval_seconds``
        before it; False otherwise. Atomic across processes sharing the store. A claim
        made exactly ``interval_seconds`` before ``at`` no longer counts (one per 5 minutes
        allows one every 5 minutes); one made after ``at`` does; a refused claim changes
        nothing.
        """

    # Coordination ---------------------------------------------------------------------------

    @abc.abstractmethod
    def exclusive(self, name: str) -> AbstractAsyncContextManager[None]:
        """Hold the lock ``name`` (an operation name) against every process of this store.

        Released when the block ends, by an error or a cancellation too. Not re-entrant:
        a task holding ``name`` must not ask for it again.
        """
