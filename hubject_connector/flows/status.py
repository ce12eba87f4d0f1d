"""EVSE status: changes coalesced per EVSE, pushed in batches, one push in flight.

What passes through: ``evse.status.v1`` from the ``evse-status`` queue; what goes to
Hubject is PushEvseStatus (eRoamingEvseStatus 2.1) calls carrying many EVSEs each; what
the backend hears is one delivery result per status change.

Three rooms, joined by the state store, so that nothing is lost and a restart changes
nothing:

* the intake (:class:`StatusIntake`): handlers put their change in; one task commits
  whatever has gathered in one transaction (``store.record_statuses``, a group commit)
  and only then are the messages acknowledged. The store keeps per EVSE the change with
  the latest ``time``: an older one is not stored (result ``dropped``, "a newer status of
  this EVSE is known", published before the ack), and a pending change overtaken before
  its push is dropped too ("superseded by a newer status", owed by the store from that
  same transaction on), so one EVSE is pushed once with its latest status;
* the batcher (:class:`StatusBatcher`): pushes the pending statuses
  (``store.pending_statuses``) per operator when a batch is full (``flows.status_batch_size``)
  or the oldest change waited ``flows.status_max_wait_seconds``, holding
  ``store.exclusive("PushEvseStatus")`` so that one push is in flight across every process:
  as an ``insert`` those of EVSEs Hubject holds no status record of (``at_hubject`` false),
  then as an ``update`` the others; then marks them sent, which makes their ``accepted``
  results owed in the same transaction, for those still current (and the EVSEs held).
  A transient failure leaves them pending (they are durable) and the push is tried again
  after a growing pause. Changes found pending at start are pushed at once;
* the owed results (:class:`~.owed.OwedResults`): what the store owes is published after
  each commit, crossed off once the bus confirmed it, and swept up at start and
  periodically (what a process killed before publishing left owed, on any replica).

The text spec (eRoamingPushEvseStatus works as eRoamingPushEvseData: an insert of a record
that exists, or an update of one that does not, refuses the whole push) is why the store
remembers which EVSEs Hubject holds. Where that memory is wrong, 022 comes back: an
``insert`` refused so (Hubject held some already, e.g. a new state store) is sent again as
an ``update``; an ``update`` refused so (Hubject lacks some) makes the operator's latest
statuses go as one ``fullLoad``, which also heals any other difference, as the last
resort. The optional periodic refresh (``flows.status_full_refresh_seconds``) sends that
same fullLoad on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Sequence
from typing import Final

import structlog

from hubject_connector.bus.base import IncomingMessage
from hubject_connector.bus.contract import Envelope, MessageType
from hubject_connector.flows.delivery import Flow, FlowParts, connector_refusal, refusal_reason
from hubject_connector.flows.owed import OwedResults, refusal_of
from hubject_connector.flows.results import Origin, Verdict
from hubject_connector.hubject.errors import OicpStatusError
from hubject_connector.oicp.codec import OicpValidationError
from hubject_connector.state.base import (
    OwedResult,
    Refusal,
    StateStore,
    StatusChange,
    StatusRecorded,
)
from hubject_connector.translate import outbound
from hubject_connector.translate.errors import TranslationError

_log = structlog.get_logger(__name__)

OPERATION: Final = "PushEvseStatus"
#: Hubject's code for an insert of a record it holds, or an update of one it does not
#: (see the module doc).
DATA_ERROR: Final = "022"
#: Pauses after failed pushes: doubling from the first to the longest.
FIRST_BACKOFF_SECONDS: Final = 0.5
LONGEST_BACKOFF_SECONDS: Final = 60.0
#: With nothing known to be pending, the store is still looked at this often (changes
#: left by a process that died, when this one gets no traffic).
IDLE_POLL_SECONDS: Final = 5.0

OLDER: Final = "a newer status of this EVSE is known"
#: For a message delivered again (after a crash): its own change may be the one stored.
OLDER_OR_REPEAT: Final = (
    "a status of this EVSE at the same time or newer is recorded (this message delivered "
    "again, or an older status)"
)
#: Most combinations remembered as checked (``StatusFlow._check_alone``), a few MB at most.
CHECKED_LIMIT: Final = 20_000


def origin_of(change: StatusChange) -> Origin:
    """The message a status change came in."""
    return Origin(change.message_id, str(MessageType.EVSE_STATUS), change.evse_id, change.time)


def by_operator(changes: Iterable[StatusChange]) -> dict[str, list[StatusChange]]:
    """Changes grouped by OperatorID (one push per operator), in the order given."""
    groups: dict[str, list[StatusChange]] = {}
    for change in changes:
        groups.setdefault(change.operator_id, []).append(change)
    return groups


class StatusIntake:
    """Group commit of status changes: many handlers, one transaction per round."""

    def __init__(self, store: StateStore, on_stored: StatusBatcher, owed: OwedResults) -> None:
        self._store = store
        self._batcher = on_stored
        self._owed = owed
        self._waiting: list[tuple[StatusChange, asyncio.Future[StatusRecorded]]] = []
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the committing task runs."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start committing."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="flows-status-intake")

    async def record(self, change: StatusChange) -> StatusRecorded:
        """Store ``change`` with the others gathered meanwhile; what the store did with it."""
        if self._task is None or self._task.done():
            # Not running (stopped): commit alone rather than lose the change.
            (recorded,) = await self._store.record_statuses([change])
            self._batcher.notify(1 if recorded.stored else 0)
            self._owed.hand([recorded.owed] if recorded.owed is not None else [])
            return recorded
        future: asyncio.Future[StatusRecorded] = asyncio.get_running_loop().create_future()
        self._waiting.append((change, future))
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        while True:
            while self._waiting:
                await self._commit()
            if self._stopping:
                return
            await self._wakeup.wait()
            self._wakeup.clear()

    async def _commit(self) -> None:
        batch, self._waiting = self._waiting, []
        try:
            recorded = await self._store.record_statuses([change for change, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # each handler fails with it (and its message is retried)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, recorded, strict=True):
            if not future.done():
                future.set_result(result)
        self._batcher.notify(sum(1 for r in recorded if r.stored))
        # Owed since the commit (superseded): published now, crossed off once confirmed.
        self._owed.hand(r.owed for r in recorded if r.owed is not None)

    async def stop(self) -> None:
        """Commit what has gathered, then stop (later changes are committed one by one)."""
        task = self._task
        if task is None:
            return
        self._stopping = True
        self._wakeup.set()
        try:
            await task
        finally:
            self._task = None


class StatusBatcher:
    """Pushes pending statuses in batches, one push in flight (module doc)."""

    def __init__(self, flow: StatusFlow, *, batch_size: int, max_wait: float,
                 full_refresh: float | None) -> None:
        self._flow = flow
        self._parts = flow.parts
        self.batch_size = max(1, batch_size)
        self.max_wait = max(0.0, max_wait)
        self.refresh_every = full_refresh if full_refresh and full_refresh > 0 else None
        #: Changes stored since the last push took the pending ones, and when the first was.
        self._count = 0
        self._oldest: float | None = None
        self._wakeup = asyncio.Event()
        self._failures = 0
        self._task: asyncio.Task[None] | None = None
        self._refresh_task: asyncio.Task[None] | None = None

    def notify(self, stored: int) -> None:
        """``stored`` changes were committed as pending just now."""
        if stored <= 0:
            return
        first = self._oldest is None
        if first:
            self._oldest = time.monotonic()
        self._count += stored
        if first or self._count >= self.batch_size:
            # A new deadline (the oldest change's) or a full batch: look again now.
            self._wakeup.set()

    @property
    def running(self) -> bool:
        """Whether the pushing task runs."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start pushing (at once: changes left pending by a previous run go first)."""
        if self._task is None:
            self._oldest = time.monotonic() - self.max_wait
            self._task = asyncio.create_task(self._run(), name="flows-status-batcher")
        if self.refresh_every is not None and self._refresh_task is None:
            self._refresh_task = asyncio.create_task(self._refresh(), name="flows-status-refresh")

    def _due_in(self) -> float:
        """Seconds until the next push is due."""
        if self._count >= self.batch_size:
            return 0.0
        if self._oldest is None:
            return IDLE_POLL_SECONDS
        return max(0.0, self._oldest + self.max_wait - time.monotonic())

    async def _sleep(self, seconds: float) -> None:
        self._wakeup.clear()
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wakeup.wait()

    async def _wait_until_due(self) -> None:
        """Until a batch is full, the oldest change waited long enough, or the idle poll."""
        while True:
            due = self._due_in()
            if due <= 0:
                return
            idle = self._oldest is None
            await self._sleep(due)
            if idle and self._oldest is None:
                # Nothing came in: look at the store anyway (changes of a process that died).
                return

    async def _run(self) -> None:
        while True:
            if self._failures:
                delay = min(LONGEST_BACKOFF_SECONDS,
                            FIRST_BACKOFF_SECONDS * 2 ** (self._failures - 1))
                await asyncio.sleep(delay)
            else:
                await self._wait_until_due()
            try:
                await self.push_pending()
            except Exception as exc:  # transient (or unexpected): pending stays, try later
                self._failures += 1
                self._parts.metrics.status_push_failures.inc()
                self._parts.metrics.retried.labels(self._flow.name).inc()
                _log.warning("flows.status_push_failed", error=str(exc),
                             failures=self._failures)
            else:
                self._failures = 0

    async def push_pending(self) -> int:
        """Push one batch of pending statuses (under the lock); how many were taken.

        Their results, owed from the marking on, are handed to the owed results' task:
        the next push need not wait for a thousand results to reach the bus.
        """
        store = self._parts.store
        # Changes stored from here on wait for the next round.
        count, oldest = self._count, self._oldest
        self._count, self._oldest = 0, None
        try:
            async with store.exclusive(OPERATION):
                batch = await store.pending_statuses(self.batch_size)
                for operator_id, changes in by_operator(batch).items():
                    await self._push_operator(operator_id, changes)
        except BaseException:
            # Not pushed: the changes are still due (and with them, those since).
            self._count += count
            self._oldest = oldest if oldest is not None else self._oldest
            raise
        if len(batch) >= self.batch_size:
            # A full batch: more may be waiting; go again at once.
            self._count = max(self._count, self.batch_size)
            self._oldest = self._oldest or time.monotonic()
        return len(batch)

    async def _mark_done(
        self, changes: Sequence[StatusChange], refusal: Refusal | None = None,
        *, full_load_of: str | None = None,
    ) -> None:
        """Mark ``changes`` done; hand the results that makes owed (``accepted``, or
        ``rejected`` with ``refusal``) for publication."""
        done = await self._parts.store.mark_statuses_sent(changes, refusal,
                                                          full_load_of=full_load_of)
        self._flow.owed.hand(OwedResult.of(change, refusal) for change in done)

    async def _push_operator(self, operator_id: str, changes: Sequence[StatusChange]) -> None:
        """Push one operator's ``changes`` (lock held): EVSEs new to Hubject as an insert,
        the others as an update; each marked done."""
        new = [c for c in changes if not c.at_hubject]
        held = [c for c in changes if c.at_hubject]
        for action, group in (("insert", new), ("update", held)):
            if group and not await self._push_group(action, operator_id, group):
                # A fullLoad carried every latest status of the operator: nothing is left.
                return

    async def _push(self, action: str, operator_id: str,
                    changes: Sequence[StatusChange]) -> None:
        """One PushEvseStatus of ``changes`` with ``action``; marked done if accepted."""
        request = outbound.push_evse_status(
            action, operator_id, self._flow.context.operator_name,
            [(c.evse_id, c.status) for c in changes])
        await self._flow.call(OPERATION, request, operator_id)
        self._parts.metrics.status_batch_size.observe(len(changes))
        await self._mark_done(changes)

    async def _push_group(self, action: str, operator_id: str,
                          changes: Sequence[StatusChange]) -> bool:
        """Push ``changes`` as ``action`` (insert or update), falling back on 022 (module
        doc); False when the operator's whole set went as a fullLoad instead."""
        try:
            await self._push(action, operator_id, changes)
            return True
        except (TranslationError, OicpValidationError) as exc:
            # Checked at the intake, so not expected; but a pending change that can never
            # be sent must not hold up every later push.
            await self._unsendable(changes, exc)
            return True
        except OicpStatusError as exc:
            if exc.transient:
                raise
            if exc.code != DATA_ERROR:
                await self._refused(changes, exc)
                return True
            refused = exc
        if action == "insert":
            # Hubject holds some already (the state store is newer than Hubject's data).
            _log.info("flows.status_insert_refused", operator_id=operator_id,
                      status_code=refused.code, additional_info=refused.additional_info,
                      then="update")
            try:
                await self._push("update", operator_id, changes)
                return True
            except OicpStatusError as exc:
                if exc.transient:
                    raise
                if exc.code != DATA_ERROR:
                    await self._refused(changes, exc)
                    return True
                refused = exc
        _log.info("flows.status_update_refused", operator_id=operator_id,
                  status_code=refused.code, additional_info=refused.additional_info,
                  then="fullLoad")
        try:
            await self._push_full_load(operator_id)
        except OicpStatusError as second:
            if second.transient:
                raise
            await self._refused(changes, second)
            return True
        return False

    async def _refused(self, changes: Sequence[StatusChange], exc: OicpStatusError) -> None:
        """Hubject refused the statuses for good: mark them done; ``rejected`` results."""
        reason = refusal_reason(exc, "EVSE status push")
        await self._mark_done(changes, refusal_of(Verdict.refused_by_hubject(exc, reason=reason)))

    async def _unsendable(
        self, changes: Sequence[StatusChange], exc: TranslationError | OicpValidationError
    ) -> None:
        """Statuses that cannot become a valid push: mark them done; ``rejected`` results."""
        _log.error("flows.status_unsendable", error=str(exc), count=len(changes))
        verdict = Verdict.refused_by_connector(connector_refusal(exc, "EVSE status"))
        await self._mark_done(changes, refusal_of(verdict))

    async def _push_full_load(self, operator_id: str | None) -> None:
        """Send every latest status (of one operator, or all) as fullLoad (lock held).

        Those that were pending until then are marked done (``accepted`` owed); the others
        were marked (and their results owed) when first pushed.
        """
        latest = await self._parts.store.latest_statuses()
        for operator, changes in by_operator(latest).items():
            if operator_id is not None and operator != operator_id:
                continue
            request = outbound.push_evse_status(
                "fullLoad", operator, self._flow.context.operator_name,
                [(c.evse_id, c.status) for c in changes])
            await self._flow.call(OPERATION, request, operator)
            self._parts.metrics.status_batch_size.observe(len(changes))
            # A fullLoad replaces the operator's whole set: Hubject holds exactly these.
            await self._mark_done(changes, full_load_of=operator)

    async def full_refresh(self) -> None:
        """Send every known status again as one fullLoad per operator."""
        _log.info("flows.status_full_refresh")
        async with self._parts.store.exclusive(OPERATION):
            await self._push_full_load(None)

    async def _refresh(self) -> None:
        assert self.refresh_every is not None
        while True:
            await asyncio.sleep(self.refresh_every)
            try:
                await self.full_refresh()
            except Exception as exc:  # the next period tries again
                self._parts.metrics.status_push_failures.inc()
                _log.warning("flows.status_refresh_failed", error=str(exc))

    async def stop(self, grace: float) -> None:
        """Stop; push what is pending within ``grace`` seconds (it stays durable anyway)."""
        for task in (self._refresh_task, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._refresh_task = self._task = None
        if grace <= 0:
            return
        try:
            async with asyncio.timeout(grace):
                while await self.push_pending() >= self.batch_size:
                    pass
        except TimeoutError:
            _log.info("flows.status_pending_at_stop")
        except Exception as exc:  # pushed at the next start
            _log.info("flows.status_pending_at_stop", error=str(exc))


class StatusFlow(Flow):
    """EVSE status changes from the ``evse-status`` queue to Hubject (module doc)."""

    name = "evse-status"
    what = "EVSE status"

    def __init__(self, parts: FlowParts) -> None:
        super().__init__(parts)
        settings = parts.config.flows
        self.batcher = StatusBatcher(
            self, batch_size=settings.status_batch_size,
            max_wait=settings.status_max_wait_seconds,
            full_refresh=settings.status_full_refresh_seconds)
        #: The status results the store owes, on their way to the bus.
        self.owed = OwedResults(parts, self.name)
        self.intake = StatusIntake(parts.store, self.batcher, self.owed)
        #: (OperatorID, OperatorName, EvseID, status) combinations that passed the check.
        self._checked: set[tuple[str, str, str, str]] = set()

    @property
    def healthy(self) -> bool:
        """Whether the intake, the batcher and the owed results run (readiness)."""
        return self.intake.running and self.batcher.running and self.owed.running

    async def start(self) -> None:
        """Start the owed results (what is owed from before first), the intake's group
        commit and the batcher."""
        self.owed.start()
        self.intake.start()
        self.batcher.start()

    async def stop(self, grace: float) -> None:
        """Commit what was taken, push what is pending, then publish the results owed,
        within ``grace`` (what is left stays in the store for the next start)."""
        deadline = time.monotonic() + max(0.0, grace)
        await self.intake.stop()
        await self.batcher.stop(max(0.0, deadline - time.monotonic()))
        await self.owed.stop(max(0.0, deadline - time.monotonic()))

    def _check_alone(self, operator_id: str, operator_name: str, evse_id: str,
                     status: str) -> None:
        """Translate and check a one-record push of this change (raises as ``check``).

        Both depend on these four values alone (no clock, no state, fixed settings), so
        a combination that passed once passes again: remembered, it is not translated
        again (about 75 µs of every status message, most of its own work).
        """
        key = (operator_id, operator_name, evse_id, status)
        if key in self._checked:
            return
        single = outbound.push_evse_status("update", operator_id, operator_name,
                                           [(evse_id, status)])
        self.check(OPERATION, single, operator_id)
        if len(self._checked) >= CHECKED_LIMIT:
            self._checked.clear()
        self._checked.add(key)

    async def handle(self, message: IncomingMessage, envelope: Envelope) -> Verdict | None:
        """Record one change (acknowledged once stored); its result comes with the push."""
        if envelope.type is not MessageType.EVSE_STATUS:
            return Verdict.dropped(f"{envelope.type} is not handled by the EVSE status flow")
        data = envelope.data
        ctx = self.context
        operator_id = outbound.operator_of(data, ctx)
        evse_id, status = str(data["evse_id"]), str(data["status"])
        # Checked now, alone: one EVSE of another operator would make Hubject refuse the
        # whole batch it is pushed in (018).
        self._check_alone(operator_id, ctx.operator_name, evse_id, status)
        change = StatusChange(evse_id, operator_id, status, envelope.time, envelope.id)
        # The result of a status it replaced is owed by the store from the commit on, and
        # published by ``self.owed``.
        recorded = await self.intake.record(change)
        if recorded.repeat:
            # This very change is the one stored (delivered again after a crash or a lost
            # ack): its result is owed from its push on (the store wrote it with the
            # marking), or will be. A "dropped" now would contradict that "accepted".
            _log.info("flows.status_repeat", message_id=envelope.id, evse_id=evse_id)
            return None
        if not recorded.stored:
            # Published before the ack: a crash first delivers the message again, and
            # this again. Its origin carries no content, as the owed results' do, so that
            # a "dropped" about a message already superseded has that result's id.
            repeat = message.redelivered or message.retries > 0
            await self.publish(origin_of(change),
                               Verdict.dropped(OLDER_OR_REPEAT if repeat else OLDER))
        return None
