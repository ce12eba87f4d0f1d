"""Charge detail records: at least once into the connector, exactly once at Hubject.

What passes through: ``cdr.v1`` from the ``cdr`` queue (competing consumers: one CDR
waiting for a retry never blocks another), each sent as one eRoamingChargeDetailRecord;
what it hands back is one delivery result per message, and the message is acknowledged
only once Hubject accepted the CDR or refused it for good.

Hubject takes one CDR per SessionID ("Hubject will accept only one CDR per SessionID",
eRoamingChargeDetailRecord). The state store keeps every SessionID's CDR with a digest
of the OICP body sent, so that:

* a CDR already accepted with the same content is not sent again: the backend gets
  ``accepted`` once more (its message came twice, e.g. redelivered after a crash);
* a CDR with other content than one accepted, or than one still being delivered, is
  refused by the connector (022), saying so, and kept in the dead letters;
* each call is counted before it is made (``cdr_attempted``), so that after a lost
  answer or a crash the connector knows it may already have reached Hubject; and
  Hubject's answer is recorded even when the store's connection was cut a moment
  before (tried again for a few seconds): unrecorded, the CDR would be sent again;
* Hubject answering that the CDR already exists (the simulator: 022 with AdditionalInfo
  "CDR already exists for SessionID ..."; matched on "already exist") counts as accepted
  when this connector had already sent this very content (an earlier answer was lost);
  otherwise it is a rejection that says Hubject holds another CDR of the session;
* a permanent refusal is recorded (REJECTED) and the message dead-lettered with
  Hubject's code and AdditionalInfo; a corrected CDR (other content, e.g. a dead letter
  replayed with a new body) may then be sent, as the store allows;
* a transient failure is retried by the bus, the ``cdr`` queue's delays spanning days
  (``flows.cdr_retry_*``), then dead-lettered; its record stays PENDING, so a replay
  continues where it stopped;
* a SessionEnd later than the connector's clock (rule ``cdr-session-end-not-in-future``,
  Hubject's 022 "Session timestamp of the CDR is in the future") is such a transient
  failure when it is the only rule broken: the charge point's clock runs ahead of ours,
  and the same CDR passes once that moment has passed. Any other broken rule refuses the
  CDR for good.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Final

import structlog

from hubject_connector.bus.base import IncomingMessage, RetryLater
from hubject_connector.bus.contract import Envelope, MessageType
from hubject_connector.errors import StateError
from hubject_connector.flows.delivery import DeliveryRefused, Flow, refusal_reason
from hubject_connector.flows.results import DATA_ERROR, Verdict
from hubject_connector.hubject.errors import OicpStatusError
from hubject_connector.oicp import codec
from hubject_connector.oicp.cdr import ChargeDetailRecord
from hubject_connector.oicp.codec import OicpValidationError
from hubject_connector.oicp.context import ALL_RULES
from hubject_connector.state.base import CdrRecord, CdrState
from hubject_connector.translate import outbound

_log = structlog.get_logger(__name__)

OPERATION: Final = "ChargeDetailRecord"
#: Tries to record Hubject's answer to a CDR when the state store fails (see ``_finish``),
#: the pauses between them doubling from the first: about 3 s in all.
RECORD_ATTEMPTS: Final = 6
RECORD_FIRST_PAUSE_SECONDS: Final = 0.1
#: The one conformance rule whose failure passes with time (clock skew, module doc).
SESSION_END_IN_FUTURE: Final = ALL_RULES["cdr-session-end-not-in-future"]


def cdr_digest(body: bytes) -> str:
    """The digest of an OICP CDR body, to tell a repeat from a different CDR."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def is_only_in_future(exc: OicpValidationError) -> bool:
    """Whether the only rule ``exc`` reports broken is "SessionEnd lies in the future".

    Matched by the rule (its id in the conformance registry and its wording's template),
    so that a CDR that breaks any other rule as well is still refused for good.
    """
    return bool(exc.issues) and all(
        SESSION_END_IN_FUTURE.matches(issue.message) for issue in exc.issues
    )


def is_duplicate_answer(exc: OicpStatusError) -> bool:
    """Whether Hubject's refusal says a CDR of the session exists already.

    The spec names no code for it; the simulator answers 022 with "CDR already exists for
    SessionID ..." (simulator/hub.py). Any permanent code whose texts say "already exist"
    is taken as that answer.
    """
    if exc.transient:
        return False
    texts = " ".join(t for t in (exc.description, exc.additional_info) if t).lower()
    return "already exist" in texts


class CdrFlow(Flow):
    """CDRs from the ``cdr`` queue to Hubject, exactly once per SessionID (module doc)."""

    name = "cdr"
    what = "CDR"

    async def handle(self, message: IncomingMessage, envelope: Envelope) -> Verdict | None:
        """Deliver one CDR; the verdict (refusals raise ``DeliveryRefused``)."""
        if envelope.type is not MessageType.CDR:
            return Verdict.dropped(f"{envelope.type} is not handled by the CDR flow")
        ctx = self.context
        cdr = outbound.charge_detail_record(envelope.data, ctx)
        operator_id = outbound.operator_of(envelope.data, ctx)
        store = self.parts.store
        calibration_law = await self._calibration_law(cdr.evse_id)
        try:
            self.check(OPERATION, cdr, operator_id, calibration_law=calibration_law)
        except OicpValidationError as exc:
            if is_only_in_future(exc):
                raise self._too_early(message, cdr, exc) from exc
            raise
        session_id = cdr.session_id
        digest = cdr_digest(codec.encode(cdr))
        record = await store.begin_cdr(session_id, digest, message.message_id)
        if record.digest != digest:
            raise self._conflict(record)
        if record.state is CdrState.ACCEPTED:
            return Verdict.accepted(
                attempts=record.attempts or None, session_id=session_id,
                reason="Hubject accepted this CDR before; it was not sent again")
        # Calls made earlier for this very content whose outcome is unknown (begin_cdr
        # resets the count for a corrected CDR; a REJECTED record's calls were answered):
        # one of them may have reached Hubject without our knowing.
        earlier = record.attempts if record.state is CdrState.PENDING else 0
        await store.cdr_attempted(session_id)
        try:
            await self.parts.client.call(OPERATION, cdr, operator_id=operator_id)
        except OicpStatusError as exc:
            if exc.transient:
                raise
            attempts = earlier + 1
            if is_duplicate_answer(exc):
                if earlier > 0 or exc.attempts > 1 or await self._sent_meanwhile(record):
                    # An earlier attempt (ours) reached Hubject; only its answer was lost.
                    await self._finish(session_id, CdrState.ACCEPTED,
                                           status_code=exc.code,
                                           additional_info=exc.additional_info)
                    _log.info("flows.cdr_already_at_hubject", session_id=session_id,
                              attempts=attempts)
                    return Verdict.accepted(
                        attempts=attempts, session_id=session_id,
                        additional_info=exc.additional_info,
                        reason="Hubject already holds this CDR: an earlier attempt reached "
                               "it and only the answer was lost")
                await self._finish(session_id, CdrState.REJECTED, status_code=exc.code,
                                       additional_info=exc.additional_info)
                reason = ("Hubject already holds a CDR of this SessionID that this connector "
                          "did not send (other content, or sent by another system): "
                          + refusal_reason(exc, "CDR"))
                raise DeliveryRefused(reason, Verdict.refused_by_hubject(
                    exc, reason=reason, attempts=attempts, session_id=session_id)) from exc
            await self._finish(session_id, CdrState.REJECTED, status_code=exc.code,
                                   additional_info=exc.additional_info)
            reason = refusal_reason(exc, "CDR")
            raise DeliveryRefused(reason, Verdict.refused_by_hubject(
                exc, reason=reason, attempts=attempts, session_id=session_id)) from exc
        await self._finish(session_id, CdrState.ACCEPTED, status_code="000")
        return Verdict.accepted(attempts=earlier + 1, session_id=session_id)

    async def _finish(self, session_id: str, state: CdrState, *, status_code: str | None = None,
                      additional_info: str | None = None) -> None:
        """Record Hubject's final answer, trying again while the store fails for a moment.

        Hubject has answered: were the answer not recorded, the bus would deliver the CDR
        again and it would be sent again (Hubject then answers "already exists"). A state
        store whose connection was cut gets a new one within a moment, so wait for it.
        """
        pause = RECORD_FIRST_PAUSE_SECONDS
        for attempt in range(1, RECORD_ATTEMPTS + 1):
            try:
                await self.parts.store.finish_cdr(session_id, state, status_code=status_code,
                                                  additional_info=additional_info)
                return
            except StateError as exc:
                if attempt == RECORD_ATTEMPTS:
                    raise
                _log.warning("flows.cdr_outcome_not_recorded", session_id=session_id,
                             outcome=str(state), attempt=attempt, error=str(exc))
                await asyncio.sleep(pause)
                pause *= 2

    async def _sent_meanwhile(self, before: CdrRecord) -> bool:
        """Whether another handler of ours sent this CDR while this one did.

        The backend may send one CDR twice, and two consumers (two replicas) handle the
        copies at once: the second call is then answered "already exists" for the first.
        """
        now = await self.parts.store.get_cdr(before.session_id)
        if now is None or now.digest != before.digest:
            return False
        others = now.attempts - before.attempts - 1
        return now.state is CdrState.ACCEPTED or others > 0

    async def _calibration_law(self, evse_id: str) -> dict[str, str]:
        """The CalibrationLawDataAvailability pushed for ``evse_id``, if the store knows it."""
        entry = await self.parts.store.get_evse(evse_id)
        value = entry.record.get("CalibrationLawDataAvailability") if entry else None
        return {evse_id: value} if isinstance(value, str) else {}

    def _too_early(self, message: IncomingMessage, cdr: ChargeDetailRecord,
                   exc: OicpValidationError) -> RetryLater:
        """The retry of a CDR whose SessionEnd lies ahead of the connector's clock."""
        _log.info("flows.cdr_session_end_in_future", session_id=cdr.session_id,
                  message_id=message.message_id, session_end=cdr.session_end.isoformat(),
                  retry=message.retries + 1, rule=SESSION_END_IN_FUTURE.id)
        return RetryLater(f"{SESSION_END_IN_FUTURE.id}: {exc} (the charge point's clock is "
                          "ahead of the connector's; the CDR is sent once that time has "
                          "passed)")

    def _conflict(self, record: CdrRecord) -> DeliveryRefused:
        """The refusal of a CDR whose content differs from the session's CDR on record."""
        if record.state is CdrState.ACCEPTED:
            reason = (f"Hubject already accepted another CDR of SessionID {record.session_id} "
                      f"(message {record.message_id}) and takes one CDR per SessionID: "
                      "this one, with other content, is not sent")
        else:
            reason = (f"another CDR of SessionID {record.session_id} (message "
                      f"{record.message_id}, other content) is still being delivered; "
                      "Hubject takes one CDR per SessionID. Replay this one if that one is "
                      "refused")
        return DeliveryRefused(reason, Verdict.refused_by_connector(reason, code=DATA_ERROR))
