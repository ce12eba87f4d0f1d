"""Backend messages for the flow tests: the documented examples of docs/contract.md, fresh.

Every message starts as the example docs/contract.md gives for its type (so the tests
send what the contract tells a backend to send) with a new ``id`` and ``time``; the
helpers change what a test needs (an EvseID, a status, a SessionID).
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Final

from hubject_connector.bus.contract import Envelope, MessageType, envelope_from_dict
from tests.unit.bus_contract.documents import fenced_blocks

OPERATOR_ID: Final = "DE*ABC"
CARD_UID: Final = "1234ABCD"
#: A fixed moment the status tests count from (times carry an offset, as the contract wants).
T0: Final = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@cache
def _examples() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for body in fenced_blocks("json"):
        document = json.loads(body)
        found.setdefault(document["type"], document)
    return found


def document(message_type: MessageType, **data: Any) -> dict[str, Any]:
    """The documented example of ``message_type`` with a new id and time, ``data`` merged in.

    A ``data`` value of ``None`` removes that field.
    """
    doc = copy.deepcopy(_examples()[str(message_type)])
    doc["id"] = str(uuid.uuid4())
    doc["time"] = datetime.now(UTC).isoformat()
    for key, value in data.items():
        if value is None:
            doc["data"].pop(key, None)
        else:
            doc["data"][key] = value
    return doc


def envelope(doc: dict[str, Any]) -> Envelope:
    """The envelope of a document (checked against the contract)."""
    return envelope_from_dict(doc)


def new_session_id() -> str:
    """A fresh Hubject-style SessionID."""
    return str(uuid.uuid4())


def status(evse_id: str, state: str, at: float = 0.0) -> dict[str, Any]:
    """An ``evse.status.v1`` of ``evse_id`` changed to ``state`` at T0 + ``at`` seconds."""
    doc = document(MessageType.EVSE_STATUS, evse_id=evse_id, status=state)
    doc["subject"] = evse_id
    doc["time"] = (T0 + timedelta(seconds=at)).isoformat()
    return doc


def upsert(evse_id: str = "DE*ABC*E123456*1", **evse: Any) -> dict[str, Any]:
    """An ``evse.upsert.v1`` of the documented EVSE with ``evse_id`` (and changes)."""
    doc = document(MessageType.EVSE_UPSERT)
    doc["data"]["evse"].update(evse_id=evse_id, **evse)
    doc["subject"] = evse_id
    return doc


def delete(evse_id: str) -> dict[str, Any]:
    """An ``evse.delete.v1`` of ``evse_id``."""
    doc = document(MessageType.EVSE_DELETE, evse_id=evse_id)
    doc["subject"] = evse_id
    return doc


def full_load(*evse_ids: str) -> dict[str, Any]:
    """An ``evse.full-load.v1`` of copies of the documented EVSE with these EvseIDs."""
    doc = document(MessageType.EVSE_FULL_LOAD)
    template = doc["data"]["evses"][0]
    doc["data"]["evses"] = [dict(copy.deepcopy(template), evse_id=e) for e in evse_ids]
    return doc


def cdr(session_id: str | None = None, **data: Any) -> dict[str, Any]:
    """A ``cdr.v1`` of ``session_id`` (a new one by default)."""
    session = session_id or new_session_id()
    doc = document(MessageType.CDR, session_id=session, **data)
    doc["subject"] = session
    return doc


def notification(message_type: MessageType, session_id: str, **data: Any) -> dict[str, Any]:
    """A charging notification of ``session_id``."""
    doc = document(message_type, session_id=session_id, **data)
    doc["subject"] = session_id
    return doc


def authorize_start(uid: str = CARD_UID, deadline_seconds: float | None = 8.0,
                    **data: Any) -> dict[str, Any]:
    """An ``authorization.start.request.v1`` for the card ``uid``."""
    doc = document(MessageType.AUTHORIZATION_START_REQUEST,
                   identification={"kind": "rfid_mifare_family", "uid": uid}, **data)
    if deadline_seconds is None:
        doc.pop("deadline", None)
    else:
        doc["deadline"] = (datetime.now(UTC) + timedelta(seconds=deadline_seconds)).isoformat()
    return doc


def authorize_stop(session_id: str, uid: str = CARD_UID, **data: Any) -> dict[str, Any]:
    """An ``authorization.stop.request.v1`` of ``session_id`` with the card ``uid``."""
    doc = document(MessageType.AUTHORIZATION_STOP_REQUEST, session_id=session_id,
                   identification={"kind": "rfid_mifare_family", "uid": uid}, **data)
    doc["subject"] = session_id
    return doc
