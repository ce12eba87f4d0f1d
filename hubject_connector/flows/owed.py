"""Owed status results: from the state store's outbox onto the bus, then crossed off.

What passes through: the delivery results the state store owes about EVSE status
messages (``state.base.OwedResult``: ``superseded``, ``accepted``, ``rejected``), which the
store wrote in the very transaction that made them owed (a pending status replaced,
statuses marked pushed or refused). What goes out: one ``delivery.result.v1`` each; once
the bus confirmed a round of them, the store crosses them off in one statement
(``status_results_published``). A ``kill -9`` anywhere in between loses none.

Two ways in, one way out, all in one background task:

* ``hand``: what this process has just made owed (after the store's commit) is published
  at once, a round of up to ``ROUND`` results at a time;
* the sweep: at start, everything the store owes (left by a crash of this process or of
  another replica sharing the store); then every ``SWEEP_SECONDS``, what has been owed for
  longer than ``ORPHAN_SECONDS`` (a replica killed before it published; a round of this
  process the bus refused). Results handed and not yet published are left out.

A result may so reach the bus twice (a crash between the bus's confirm and the crossing
off; two replicas sweeping at once): with the same id each time (``results.result_id``),
which the backend drops as a duplicate (docs/contract.md). Never not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Final

import structlog

from hubject_connector.bus.contract import MessageType, Outcome
from hubject_connector.flows.delivery import FlowParts
from hubject_connector.flows.results import Origin, Verdict
from hubject_connector.state.base import OwedResult, Refusal, ResultKind

_log = structlog.get_logger(__name__)

#: The reason of a ``dropped`` result about a status overtaken before its push.
SUPERSEDED: Final = "superseded by a newer status of this EVSE before it was pushed"
#: Results published per round (then crossed off in one statement).
ROUND: Final = 1000
#: How often the store is swept for results nobody is publishing.
SWEEP_SECONDS: Final = 5.0
#: A result owed for longer than this is taken as nobody's (its maker died, or the bus
#: refused it); younger ones are on their way to the bus from the process that made them.
#: Longer than a busy replica's own backlog of results usually is, so that replicas
#: seldom publish each other's (a copy is harmless: same id), and short enough that the
#: results of a replica killed come within half a minute.
ORPHAN_SECONDS: Final = 15.0
#: Results handed and waiting, at most; beyond, they wait in the store for a sweep.
HANDED_LIMIT: Final = 100_000
#: Pauses after a failed round: doubling from the first to the longest.
FIRST_BACKOFF_SECONDS: Final = 0.5
LONGEST_BACKOFF_SECONDS: Final = 30.0


def origin_of(owed: OwedResult) -> Origin:
    """The status message an owed result answers."""
    return Origin(owed.message_id, str(MessageType.EVSE_STATUS), owed.evse_id, owed.time)


def verdict_of(owed: OwedResult) -> Verdict:
    """What an owed result says, as a delivery result says it."""
    if owed.kind is ResultKind.ACCEPTED:
        return Verdict.accepted()
    if owed.kind is ResultKind.SUPERSEDED:
        return Verdict.dropped(SUPERSEDED)
    refusal = owed.refusal
    if refusal is None:  # not written so by the store; still, a result must go out
        return Verdict(Outcome.REJECTED, reason="refused for good (no reason was kept)")
    return Verdict(
        Outcome.REJECTED,
        status_code=refusal.status_code,
        status_description=refusal.status_description,
        additional_info=refusal.additional_info,
        reason=refusal.reason,
        answered=refusal.by_hubject,
    )


def refusal_of(verdict: Verdict) -> Refusal:
    """The refusal to store for a ``rejected`` verdict (``verdict_of`` gives it back)."""
    return Refusal(
        status_code=verdict.status_code or "",
        reason=verdict.reason or "",
        status_description=verdict.status_description,
        additional_info=verdict.additional_info,
        by_hubject=verdict.answered,
    )


class Unconfirmed(Exception):
    """The bus did not confirm some results of a round (they stay owed)."""


class OwedResults:
    """Publishes the status results the store owes, then crosses them off (module doc)."""

    def __init__(self, parts: FlowParts, flow: str) -> None:
        self._parts = parts
        self._flow = flow
        #: Handed (or taken by a sweep) and not yet published, by message id, oldest first.
        self._waiting: dict[str, OwedResult] = {}
        self._wakeup = asyncio.Event()
        #: When the last sweep ended (monotonic); None: the first, of everything, is due.
        self._swept_at: float | None = None
        self._failures = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        """Whether the publishing task runs."""
        return self._task is not None and not self._task.done()

    @property
    def waiting(self) -> int:
        """Results handed and not yet published."""
        return len(self._waiting)

    def hand(self, owed: Iterable[OwedResult]) -> None:
        """Publish soon these results, just made owed (committed) by this process."""
        added = False
        for item in owed:
            if len(self._waiting) >= HANDED_LIMIT:
                # Kept in the store all the same: a sweep publishes them.
                break
            self._waiting.setdefault(item.message_id, item)
            added = True
        if added:
            self._wakeup.set()

    def start(self) -> None:
        """Start publishing: first whatever the store owes from before."""
        if self._task is None:
            self._swept_at = None
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="flows-status-results")

    async def _run(self) -> None:
        # Ended by the flag as well as by cancellation: a RabbitMQ publish cancelled
        # mid-way may surface as a channel error, which the loop below takes as a failure.
        while not self._stopping:
            try:
                if self._sweep_due() <= 0:
                    await self.sweep(everything=self._swept_at is None)
                    self._swept_at = time.monotonic()
                while self._waiting:
                    await self._publish(self._next_round())
            except Exception as exc:  # the bus or the store refused: still owed, later
                self._failures += 1
                delay = min(LONGEST_BACKOFF_SECONDS,
                            FIRST_BACKOFF_SECONDS * 2 ** (self._failures - 1))
                _log.warning("flows.status_results_deferred", error=str(exc),
                             failures=self._failures, delay_seconds=delay)
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wakeup.wait()  # set by stop(), or new results
                continue
            self._failures = 0
            await self._idle()

    def _sweep_due(self) -> float:
        """Seconds until the next sweep."""
        if self._swept_at is None:
            return 0.0
        return self._swept_at + SWEEP_SECONDS - time.monotonic()

    async def _idle(self) -> None:
        """Until results are handed or the next sweep is due."""
        self._wakeup.clear()
        if self._waiting or self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, self._sweep_due())):
                await self._wakeup.wait()

    def _next_round(self) -> list[OwedResult]:
        return list(islice(self._waiting.values(), ROUND))

    async def _publish(self, owed: list[OwedResult]) -> None:
        """Publish ``owed`` and cross off what the bus confirmed (Unconfirmed: not all)."""
        try:
            confirmed = await self._parts.results.publish_confirmed(
                self._flow, [(origin_of(o), verdict_of(o)) for o in owed])
            done = [o.message_id for o, ok in zip(owed, confirmed, strict=True) if ok]
            await self._parts.store.status_results_published(done)
        finally:
            # Whatever happened: what is still owed is the store's, for a later sweep.
            for item in owed:
                self._waiting.pop(item.message_id, None)
        if len(done) < len(owed):
            raise Unconfirmed(
                f"the bus confirmed {len(done)} of {len(owed)} status results; the others "
                "stay owed")

    async def sweep(self, *, everything: bool = False) -> int:
        """Publish what the store owes and nobody is publishing; how many were published.

        ``everything``: also what was made owed just now (at start). Otherwise only what
        has been owed for longer than ``ORPHAN_SECONDS``.
        """
        before = None if everything else datetime.now(UTC) - timedelta(seconds=ORPHAN_SECONDS)
        seen: set[str] = set()
        published = 0
        while True:
            page = await self._parts.store.owed_status_results(ROUND, created_before=before)
            fresh = [o for o in page if o.message_id not in self._waiting
                     and o.message_id not in seen]
            if not fresh:
                return published
            if published == 0:
                _log.info("flows.status_results_owed", count=len(page), everything=everything)
            seen.update(o.message_id for o in fresh)
            self._waiting.update((o.message_id, o) for o in fresh)
            await self._publish(fresh)
            published += len(fresh)
            if len(page) < ROUND:
                return published

    async def stop(self, grace: float) -> None:
        """Publish what was handed within ``grace`` seconds; the rest stays owed."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wakeup.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            if grace > 0:
                async with asyncio.timeout(grace):
                    while self._waiting:
                        await self._publish(self._next_round())
        except Exception as exc:  # a timeout too: owed in the store, the next start's
            _log.info("flows.status_results_owed_at_stop", error=repr(exc),
                      count=len(self._waiting))
        finally:
            self._waiting.clear()
