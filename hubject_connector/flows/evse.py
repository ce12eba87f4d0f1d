"""EVSE data: upserts, deletes and full loads to Hubject (eRoamingPushEvseData 2.3).

What passes through: ``evse.upsert.v1``, ``evse.delete.v1`` and ``evse.full-load.v1`` from
the ``evse`` queue (ordered: one at a time across replicas), each sent as one
PushEvseData; what it hands back is one delivery result per message.

The state store remembers what Hubject holds of each EVSE (the record last accepted), so:

* an upsert becomes an ``insert`` when Hubject holds nothing of the EVSE and an
  ``update`` when it does: the text spec refuses the whole push for an insert of an
  existing record or an update of a missing one (eRoamingPushEvseData, ActionType). Should
  Hubject still answer 022 (the store was lost, the EVSE was pushed before the connector
  was in place), the other action is tried once: Hubject's answer shows the state was
  out of date, and the state is corrected by the outcome;
* a delete carries the record last pushed (or the one the message gives);
* a full load is one ``fullLoad`` call, after which the operator's EVSEs in the store are
  exactly the ones sent.

Order: the queue is handled one message at a time, but a message retried after a
transient failure goes to the back of it. The store's copy of each record keeps the
``time`` of the message it came in (as ``lastUpdate``), and an upsert or delete older than
that is not sent (result ``dropped``), so that a late retry never undoes a newer change.

The state changes only after Hubject accepted. Every push holds ``store.exclusive`` for
the operation, so no two processes sharing the store push EVSE data at the same time
(OICP 2.3, "Data push operations": sequentially, never in parallel).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import structlog

from hubject_connector.bus.base import IncomingMessage
from hubject_connector.bus.contract import Envelope, MessageType
from hubject_connector.flows.delivery import Flow, attempts_of, refusal_reason
from hubject_connector.flows.results import Verdict
from hubject_connector.hubject.errors import OicpStatusError
from hubject_connector.oicp import codec
from hubject_connector.oicp.evse import EvseDataRecord
from hubject_connector.state.base import EvseEntry
from hubject_connector.translate import outbound
from hubject_connector.translate.errors import TranslationError

_log = structlog.get_logger(__name__)

OPERATION: Final = "PushEvseData"
#: Hubject's code for data it cannot accept, also for an insert or update that does not fit.
DATA_ERROR: Final = "022"
#: Where the store's copy of a record keeps the time of the message it came in.
LAST_UPDATE: Final = "lastUpdate"
#: Fields of the stored copy that are never sent (Hubject fills them on pulls).
NOT_SENT: Final = frozenset({LAST_UPDATE, "deltaType"})
STALE: Final = (
    "a newer message about this EVSE was already sent (this one was retried or arrived "
    "late); it is not sent, so that it cannot undo the newer one"
)


def record_json(record: EvseDataRecord, changed: datetime) -> dict[str, Any]:
    """The OICP JSON of a record as the store keeps it (plain JSON: numbers, no Decimal).

    ``lastUpdate`` (an OICP field Hubject fills on pulls and a CPO never sends) holds the
    time of the message it came in, so that an older message is known as such.
    """
    stored: dict[str, Any] = json.loads(codec.encode(record))
    stored[LAST_UPDATE] = changed.isoformat()
    return stored


def stored_record(record: Mapping[str, Any]) -> EvseDataRecord:
    """A record from the store, as sent (decimals read back exactly, never as floats)."""
    sent = {key: value for key, value in record.items() if key not in NOT_SENT}
    return codec.decode(EvseDataRecord, json.dumps(sent))


def stored_time(entry: EvseEntry | None) -> datetime | None:
    """The time of the message whose record the store holds, if known."""
    value = entry.record.get(LAST_UPDATE) if entry is not None else None
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class EvseFlow(Flow):
    """EVSE data from the ``evse`` queue to Hubject (module doc)."""

    name = "evse"
    what = "EVSE data"

    async def handle(self, message: IncomingMessage, envelope: Envelope) -> Verdict | None:
        """Push one upsert, delete or full load; the verdict."""
        if envelope.type is MessageType.EVSE_UPSERT:
            return await self._upsert(message, envelope)
        if envelope.type is MessageType.EVSE_DELETE:
            return await self._delete(message, envelope)
        if envelope.type is MessageType.EVSE_FULL_LOAD:
            return await self._full_load(message, envelope)
        return Verdict.dropped(f"{envelope.type} is not handled by the EVSE data flow")

    async def _push(self, action: str, operator_id: str, operator_name: str,
                    records: Sequence[EvseDataRecord]) -> None:
        request = outbound.push_evse_data(action, operator_id, operator_name, records)
        await self.call(OPERATION, request, operator_id)

    async def _upsert(self, message: IncomingMessage, envelope: Envelope) -> Verdict:
        ctx = self.context
        data = envelope.data
        operator_id = outbound.operator_of(data, ctx)
        operator_name = outbound.operator_name_of(data, ctx)
        record = outbound.evse_record(data["evse"], ctx)
        store = self.parts.store
        async with store.exclusive(OPERATION):
            entry = await store.get_evse(record.evse_id)
            if _older(envelope, entry):
                # A retry goes to the back of the ordered queue: a newer upsert may have
                # been sent meanwhile.
                return Verdict.dropped(STALE)
            known = entry is not None
            action = "update" if known else "insert"
            try:
                await self._push(action, operator_id, operator_name, [record])
            except OicpStatusError as exc:
                if exc.transient:
                    raise
                if exc.code != DATA_ERROR:
                    return Verdict.refused_by_hubject(
                        exc, attempts=attempts_of(message),
                        reason=refusal_reason(exc, f"EVSE data ({action})"))
                other = "insert" if known else "update"
                _log.info("flows.evse_state_out_of_date", evse_id=record.evse_id,
                          refused=action, trying=other, status_code=exc.code)
                try:
                    await self._push(other, operator_id, operator_name, [record])
                except OicpStatusError as second:
                    if second.transient:
                        raise
                    return Verdict.refused_by_hubject(
                        exc, attempts=attempts_of(message) + 1,
                        reason=refusal_reason(exc, f"EVSE data ({action})")
                        + f"; an {other} was refused too ({second.code})")
                action = other
            await store.put_evse(
                EvseEntry(record.evse_id, operator_id, record_json(record, envelope.time)))
        return Verdict.accepted(attempts=attempts_of(message),
                                reason=f"sent as {action} of EvseID {record.evse_id}")

    async def _delete(self, message: IncomingMessage, envelope: Envelope) -> Verdict:
        ctx = self.context
        data = envelope.data
        evse_id = str(data["evse_id"])
        store = self.parts.store
        async with store.exclusive(OPERATION):
            entry = await store.get_evse(evse_id)
            if _older(envelope, entry):
                return Verdict.dropped(STALE)
            if entry is not None:
                record = stored_record(entry.record)
            elif data.get("evse") is not None:
                record = outbound.evse_record(data["evse"], ctx)
                if record.evse_id != evse_id:
                    raise TranslationError.at(
                        "/data/evse/evse_id", f"must be the EvseID to delete, {evse_id}")
            else:
                raise TranslationError.at(
                    "/data/evse",
                    f"is required: the connector holds no record of EvseID {evse_id} to "
                    "send with the delete (OICP sends the whole record)")
            operator_id = (
                str(data["operator_id"]) if data.get("operator_id")
                else entry.operator_id if entry is not None
                else outbound.operator_of(data, ctx)
            )
            try:
                await self._push("delete", operator_id, outbound.operator_name_of(data, ctx),
                                 [record])
            except OicpStatusError as exc:
                if exc.transient:
                    raise
                return Verdict.refused_by_hubject(
                    exc, attempts=attempts_of(message),
                    reason=refusal_reason(exc, "EVSE delete"))
            await store.delete_evse(evse_id)
        return Verdict.accepted(attempts=attempts_of(message),
                                reason=f"EvseID {evse_id} deleted")

    async def _full_load(self, message: IncomingMessage, envelope: Envelope) -> Verdict:
        ctx = self.context
        data = envelope.data
        operator_id = outbound.operator_of(data, ctx)
        operator_name = outbound.operator_name_of(data, ctx)
        records = [outbound.evse_record(evse, ctx, at=f"/data/evses/{i}")
                   for i, evse in enumerate(data["evses"])]
        store = self.parts.store
        async with store.exclusive(OPERATION):
            try:
                await self._push("fullLoad", operator_id, operator_name, records)
            except OicpStatusError as exc:
                if exc.transient:
                    raise
                return Verdict.refused_by_hubject(
                    exc, attempts=attempts_of(message),
                    reason=refusal_reason(exc, "EVSE full load"))
            await store.replace_evses(operator_id, [
                EvseEntry(r.evse_id, operator_id, record_json(r, envelope.time))
                for r in records
            ])
        return Verdict.accepted(attempts=attempts_of(message),
                                reason=f"full load of {len(records)} EVSEs")


def _older(envelope: Envelope, entry: EvseEntry | None) -> bool:
    """Whether the message is older than the one whose record the store holds."""
    held = stored_time(entry)
    return held is not None and envelope.time < held
