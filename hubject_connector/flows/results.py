"""Delivery results: what became of each backend message, put on the bus for the backend.

Every event the backend sends gets exactly one ``delivery.result.v1`` (docs/contract.md):
``accepted`` (Hubject said 000), ``rejected`` (Hubject refused it for good, with its
StatusCode and AdditionalInfo, or the connector did with 022 because the data cannot
become a valid OICP message), ``dead_lettered`` or ``dropped``, each with the reason.
Handled again after a crash or a lost acknowledgement, a message gets its result again
with the same id (``result_id``), which the backend drops as a duplicate.
A flow decides a :class:`Verdict` about an :class:`Origin` (the message it answers) and
hands both to :class:`Results`, which builds the envelope, counts the outcome and
publishes it with the routing key the contract gives (the result's type).

A result is information for the backend, not the message itself: when the bus refuses
it for a moment (reconnecting), it waits in a small in-memory outbox and is published
again in the background, so that a handler need not fail (and repeat a call to Hubject)
because of it. Only a crash while results wait there loses them; that is logged. Results
kept durably elsewhere (the status results the state store owes, flows/owed.py) go
through ``publish_confirmed`` instead, which says which ones the bus confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

import structlog

from hubject_connector.bus.base import Bus
from hubject_connector.bus.contract import (
    ContractError,
    Envelope,
    MessageType,
    Outcome,
    make_delivery_result,
)
from hubject_connector.flows.metrics import FlowMetrics
from hubject_connector.hubject.errors import OicpStatusError
from hubject_connector.oicp import status

_log = structlog.get_logger(__name__)

#: The routing key of every delivery result: its type (docs/contract.md).
RESULT_ROUTING_KEY: Final = str(MessageType.DELIVERY_RESULT)
#: Results kept while the bus refuses them; the oldest is given up beyond this.
OUTBOX_LIMIT: Final = 10_000
#: Results of one batch put on the bus at the same time (each waits for its confirm).
PUBLISH_CONCURRENCY: Final = 64
#: Longest pause between two attempts to publish what waits in the outbox.
OUTBOX_MAX_DELAY_SECONDS: Final = 30.0

# Limits of the delivery result's fields (bus/schemas/delivery.result.v1.json, common.json).
_DESCRIPTION_MAX: Final = 200
_INFO_MAX: Final = 1000
_REASON_MAX: Final = 2000
_STATUS_CODE = re.compile(r"[0-9]{3}")
_SESSION_ID = re.compile(r"[A-Za-z0-9]{8}(-[A-Za-z0-9]{4}){3}-[A-Za-z0-9]{12}")

#: The code a result carries when the connector itself refuses the data (contract).
DATA_ERROR: Final = "022"
#: Namespace of the results' ids (uuid5 of what the result is about, see ``result_id``).
RESULT_ID_NAMESPACE: Final = uuid.UUID("5b0f6a8e-2d1c-4b7e-9a43-0e8c61f2d7b9")


def _fit(text: str | None, limit: int) -> str | None:
    """``text`` shortened to ``limit`` characters (with an ellipsis); None when empty."""
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Origin:
    """The backend message a result answers."""

    message_id: str
    message_type: str | None = None
    subject: str | None = None
    #: When the thing happened (the envelope's ``time``), for the end-to-end delay.
    time: datetime | None = None
    #: The message's ``data``, when known: a corrected message sent again under the same id
    #: gets a result of its own (``result_id``).
    data: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, envelope: Envelope) -> Origin:
        """The origin of an envelope."""
        return cls(envelope.id, str(envelope.type), envelope.subject, envelope.time,
                   envelope.data)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What became of one message, as a delivery result says it."""

    outcome: Outcome
    status_code: str | None = None
    status_description: str | None = None
    additional_info: str | None = None
    reason: str | None = None
    session_id: str | None = None
    attempts: int | None = None
    #: Whether Hubject answered (the end-to-end delay is measured to that answer).
    answered: bool = False

    @classmethod
    def accepted(
        cls,
        *,
        attempts: int | None = None,
        session_id: str | None = None,
        reason: str | None = None,
        additional_info: str | None = None,
    ) -> Verdict:
        """Hubject accepted it (000)."""
        return cls(
            Outcome.ACCEPTED,
            status_code=status.SUCCESS,
            status_description=status.describe(status.SUCCESS).meaning.rstrip("."),
            additional_info=additional_info,
            reason=reason,
            session_id=session_id,
            attempts=attempts,
            answered=True,
        )

    @classmethod
    def refused_by_hubject(
        cls, exc: OicpStatusError, *, reason: str, attempts: int | None = None,
        session_id: str | None = None,
    ) -> Verdict:
        """Hubject refused it for good: its StatusCode, description and AdditionalInfo."""
        return cls(
            Outcome.REJECTED,
            status_code=exc.code,
            status_description=exc.description or status.describe(exc.code).meaning,
            additional_info=exc.additional_info,
            reason=reason,
            session_id=session_id,
            attempts=attempts,
            answered=True,
        )

    @classmethod
    def refused_by_connector(cls, reason: str, *, code: str = DATA_ERROR) -> Verdict:
        """The connector refused it (022: the data cannot become a valid OICP message)."""
        return cls(
            Outcome.REJECTED,
            status_code=code,
            status_description=status.describe(code).meaning.rstrip("."),
            reason=reason,
        )

    @classmethod
    def dead_lettered(cls, reason: str, *, attempts: int | None = None) -> Verdict:
        """It sits in the dead-letter queue, for ``reason``."""
        return cls(Outcome.DEAD_LETTERED, reason=reason, attempts=attempts)

    @classmethod
    def dropped(cls, reason: str) -> Verdict:
        """It was deliberately not sent, for ``reason``."""
        return cls(Outcome.DROPPED, reason=reason)


def result_id(origin: Origin, outcome: Outcome, status_code: str | None) -> str:
    """The id of the result about ``origin`` with this outcome: the same every time.

    A message handled again (delivered again after a crash or a lost acknowledgement, or
    sent twice by the backend) gets its result again with the first one's id: the same
    CloudEvent (same source and id), which the backend drops as a duplicate
    (docs/contract.md). An outcome that changes (dead-lettered, then replayed and
    accepted), or a corrected message replayed under the same id, makes a new id.
    """
    content = ""
    if origin.data is not None:
        canonical = json.dumps(origin.data, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False, default=str)
        content = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    seed = "\x1f".join((origin.message_id, str(outcome), status_code or "", content))
    return str(uuid.uuid5(RESULT_ID_NAMESPACE, seed))


def result_envelope(origin: Origin, verdict: Verdict) -> Envelope:
    """The ``delivery.result.v1`` for ``origin``, its fields fitted to the contract's limits.

    A status code that is not three digits (no OICP code) is moved into the reason, so
    that an odd answer from Hubject cannot make the result itself invalid.
    """
    code = verdict.status_code
    reason = verdict.reason
    if code is not None and not _STATUS_CODE.fullmatch(code):
        reason = f"{reason or 'refused'} (status code {code!r})"
        code = DATA_ERROR if verdict.outcome is Outcome.REJECTED else None
    session_id = verdict.session_id
    if session_id is not None and not _SESSION_ID.fullmatch(session_id):
        session_id = None
    attempts = verdict.attempts if verdict.attempts is not None and verdict.attempts >= 1 else None
    envelope = make_delivery_result(
        origin.message_id,
        verdict.outcome,
        message_type=_fit(origin.message_type, 200),
        subject=origin.subject,
        status_code=code,
        status_description=_fit(verdict.status_description, _DESCRIPTION_MAX),
        additional_info=_fit(verdict.additional_info, _INFO_MAX),
        reason=_fit(reason, _REASON_MAX),
        session_id=session_id,
        attempts=attempts,
    )
    return replace(envelope, id=result_id(origin, verdict.outcome, code))


class Results:
    """Publishes delivery results and counts outcomes per flow (see the module doc)."""

    def __init__(self, bus: Bus, metrics: FlowMetrics, *, outbox_limit: int = OUTBOX_LIMIT,
                 max_delay: float = OUTBOX_MAX_DELAY_SECONDS) -> None:
        self._bus = bus
        self._metrics = metrics
        self._outbox: deque[Envelope] = deque()
        self._outbox_limit = outbox_limit
        self._max_delay = max_delay
        self._flusher: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()

    @property
    def waiting(self) -> int:
        """Results in the outbox, not yet on the bus."""
        return len(self._outbox)

    def count(self, flow: str, outcome: Outcome) -> None:
        """Count one message's outcome (done by ``publish``; for outcomes without result)."""
        counters = {
            Outcome.ACCEPTED: self._metrics.delivered,
            Outcome.REJECTED: self._metrics.rejected,
            Outcome.DEAD_LETTERED: self._metrics.dead_lettered,
            Outcome.DROPPED: self._metrics.dropped,
        }
        counters[outcome].labels(flow).inc()

    def _observe(self, flow: str, origin: Origin, verdict: Verdict) -> None:
        """Count the outcome and measure the end-to-end delay of an answered one."""
        self.count(flow, verdict.outcome)
        if verdict.answered and origin.time is not None:
            delay = (datetime.now(UTC) - origin.time).total_seconds()
            self._metrics.delay.labels(flow).observe(max(0.0, delay))

    def _envelope(self, origin: Origin, verdict: Verdict) -> Envelope | None:
        """The result's envelope; None when none can be made (counted as unpublished)."""
        try:
            return result_envelope(origin, verdict)
        except ContractError as exc:
            # A bug of ours; the message itself was handled, so say it and go on.
            _log.error("flows.result_invalid", message_id=origin.message_id, error=str(exc))
            try:
                return result_envelope(
                    replace(origin, subject=None),
                    Verdict(verdict.outcome, status_code=verdict.status_code or None,
                            reason=verdict.reason or "see the connector's log"),
                )
            except ContractError:
                self._metrics.results_unpublished.inc()
                return None

    @staticmethod
    def _log_result(flow: str, origin: Origin, verdict: Verdict) -> None:
        # Accepted is the common case, counted in the metrics; a line per accepted status
        # costs a third of the status path's CPU (bench/status_throughput.py). Everything
        # that was not accepted stays visible at info.
        method = _log.debug if verdict.outcome is Outcome.ACCEPTED else _log.info
        method("flows.result", flow=flow, message_id=origin.message_id,
               outcome=str(verdict.outcome), status_code=verdict.status_code,
               reason=verdict.reason)

    async def publish(self, flow: str, origin: Origin, verdict: Verdict) -> None:
        """Count the outcome and put the result on the bus (or in the outbox, see above)."""
        self._observe(flow, origin, verdict)
        envelope = self._envelope(origin, verdict)
        if envelope is None:
            return
        self._log_result(flow, origin, verdict)
        if self._outbox:
            # Keep the order: results already waiting go first.
            self._enqueue(envelope)
            return
        try:
            await self._bus.publish(RESULT_ROUTING_KEY, envelope)
        except Exception as exc:  # the bus is down or reconnecting: keep it for later
            _log.warning("flows.result_deferred", message_id=origin.message_id, error=repr(exc))
            self._enqueue(envelope)

    async def publish_many(self, flow: str, items: Sequence[tuple[Origin, Verdict]]) -> None:
        """Publish many results, a bounded number at a time (a status batch's)."""
        for start in range(0, len(items), PUBLISH_CONCURRENCY):
            chunk = items[start:start + PUBLISH_CONCURRENCY]
            await asyncio.gather(*(self.publish(flow, origin, verdict)
                                   for origin, verdict in chunk))

    async def publish_confirmed(
        self, flow: str, items: Sequence[tuple[Origin, Verdict]]
    ) -> list[bool]:
        """Publish results kept durably elsewhere; whether the bus confirmed each one.

        No in-memory outbox: a result the bus refused stays the caller's to publish again.
        An outcome is counted once its result is confirmed (or cannot be made at all:
        logged, and True, so that it is not tried for ever). At most
        ``PUBLISH_CONCURRENCY`` wait for their confirms at once.
        """
        window = asyncio.Semaphore(PUBLISH_CONCURRENCY)

        async def one(origin: Origin, verdict: Verdict) -> bool:
            envelope = self._envelope(origin, verdict)
            if envelope is not None:
                async with window:
                    try:
                        await self._bus.publish(RESULT_ROUTING_KEY, envelope)
                    except Exception as exc:  # the bus is down or reconnecting
                        _log.debug("flows.result_unconfirmed", message_id=origin.message_id,
                                   error=repr(exc))
                        return False
                self._log_result(flow, origin, verdict)
            self._observe(flow, origin, verdict)
            return True

        return list(await asyncio.gather(*(one(origin, verdict) for origin, verdict in items)))

    def _enqueue(self, envelope: Envelope) -> None:
        if len(self._outbox) >= self._outbox_limit:
            lost = self._outbox.popleft()
            self._metrics.results_unpublished.inc()
            _log.error("flows.result_given_up", result_id=lost.id,
                       message_id=lost.correlation_id, reason="outbox full")
        self._outbox.append(envelope)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="flows-results-outbox")
        self._wakeup.set()

    async def _flush(self) -> None:
        delay = 0.2
        while self._outbox:
            envelope = self._outbox[0]
            try:
                await self._bus.publish(RESULT_ROUTING_KEY, envelope)
            except Exception as exc:  # still down: wait, doubling the pause
                _log.info("flows.result_retry", result_id=envelope.id, error=repr(exc),
                          delay_seconds=delay)
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wakeup.wait()
                delay = min(delay * 2, self._max_delay)
                continue
            delay = 0.2
            if self._outbox and self._outbox[0] is envelope:
                self._outbox.popleft()

    async def close(self, grace: float = 5.0) -> None:
        """Give the outbox ``grace`` seconds to empty, then give up what is left (logged)."""
        flusher = self._flusher
        if flusher is not None and not flusher.done():
            self._wakeup.set()
            done, _ = await asyncio.wait({flusher}, timeout=grace)
            if not done:
                flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flusher
        self._flusher = None
        for envelope in self._outbox:
            self._metrics.results_unpublished.inc()
            _log.error("flows.result_given_up", result_id=envelope.id,
                       message_id=envelope.correlation_id, reason="stopping")
        self._outbox.clear()
