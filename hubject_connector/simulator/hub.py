"""The fake Hubject's rules: from a request body to the answer Hubject would give.

No I/O here: the HTTPS layer (``app.py``) hands over the operation, the path parameters,
the body bytes and the verified client certificate, and sends back the ``Reply``. The
checks run in the order Hubject describes them:

1. Security (OICP 2.3, "Security"): the OperatorID of the path, and any OperatorID in the
   body, must be the one in the client certificate's subject, else 017.
2. The body must be a valid message of the operation (the ``oicp`` models), else 022 with
   every broken rule and its JSON pointer in AdditionalInfo.
3. EVSE consistency (eRoamingPushEvseData, eRoamingPushEVSEPricing): every EvseID must
   belong to the operator (or a configured sub-operator), else 018.
4. The operation itself (``state.py`` for the push semantics).

A duplicate CDR: the text spec says only "Hubject will accept only one CDR per SessionID"
and names no code; the simulator answers ``Result`` false, 022 (data error), AdditionalInfo
"CDR already exists for SessionID ...". A client should treat it as permanent: sending the
same CDR again cannot succeed.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from hubject_connector.oicp import codec, patterns, status
from hubject_connector.oicp.authorization import AuthorizeStart, AuthorizeStop
from hubject_connector.oicp.cdr import ChargeDetailRecord
from hubject_connector.oicp.evse import PushEvseData, PushEvseStatus
from hubject_connector.oicp.messages import decode_message
from hubject_connector.oicp.model import fields_of
from hubject_connector.oicp.notifications import ChargingNotificationType
from hubject_connector.oicp.operations import Operation
from hubject_connector.oicp.pricing import PushEVSEPricing, PushPricingProductData
from hubject_connector.simulator import answers
from hubject_connector.simulator.recording import ClientCertificate
from hubject_connector.simulator.state import (
    Notification,
    RecordSet,
    Session,
    SimulatorState,
    operator_key,
)

#: Spec: eRoamingChargingNotifications: "The frequency between two progress notifications
#: for one charging session should be at least 5 minutes."
PROGRESS_INTERVAL: Final = timedelta(minutes=5)

DATA_ERROR: Final = "022"
UNAUTHORIZED: Final = "017"
INCONSISTENT_EVSE_ID: Final = "018"
SESSION_INVALID: Final = "400"
RFID_INVALID_UID: Final = "102"
NO_POSITIVE_RESPONSE: Final = "106"
NO_VALID_CONTRACT: Final = "210"


@dataclass(frozen=True, slots=True)
class Reply:
    """What to send back: HTTP status, the answer model, headers; and what was decoded."""

    http_status: int
    answer: object
    message: object | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> bytes:
        """The answer as UTF-8 JSON."""
        return codec.encode(self.answer)


@dataclass(frozen=True, slots=True)
class HubRules:
    """The behaviour a simulator instance was configured with."""

    sub_operators: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    status_update_upserts: bool = False
    cdr_requires_known_session: bool = False


@dataclass(frozen=True, slots=True)
class ProgressTooSoon:
    """A progress notification sent less than 5 minutes after the previous one."""

    session_id: str
    gap: timedelta


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (JSON key, value) in a decoded model, nested models and lists included."""
    if isinstance(value, list):
        for item in value:
            yield from _walk(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for info in fields_of(type(value)):
            item = getattr(value, info.name)
            if item is not None:
                yield info.rule.key, item
                yield from _walk(item)


def _values(message: object, key: str) -> list[str]:
    return [v for k, v in _walk(message) if k == key and isinstance(v, str)]


class Hub:
    """Answers requests as Hubject would, keeping what they change in ``state``."""

    def __init__(
        self,
        state: SimulatorState,
        rules: HubRules | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_session_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.state = state
        self.rules = rules or HubRules()
        self.clock = clock
        self.new_session_id = new_session_id
        self.progress_too_soon: list[ProgressTooSoon] = []
        self._operations: dict[str, Callable[[Operation, Any, str], object]] = {
            "PushEvseData": self._push_evse_data,
            "PushEvseStatus": self._push_evse_status,
            "PushPricingProductData": self._push_pricing_products,
            "PushEVSEPricing": self._push_evse_pricing,
            "AuthorizeStart": self._authorize_start,
            "AuthorizeStop": self._authorize_stop,
            "ChargeDetailRecord": self._charge_detail_record,
            "ChargingNotifications": self._charging_notification,
        }

    def handle(
        self,
        operation: Operation,
        path_params: Mapping[str, str],
        body: bytes,
        client: ClientCertificate | None,
    ) -> Reply:
        """The answer to one request. ``client`` is the verified client certificate."""
        path_operator = path_params.get("operatorID")
        if path_operator is not None:
            if not patterns.matches("OperatorID", path_operator):
                return self._refuse(operation, DATA_ERROR,
                                    f"path operatorID {path_operator!r} does not match the "
                                    "OperatorID pattern")
            refused = self._check_certificate(operation, client, [path_operator], "path")
            if refused is not None:
                return refused
        try:
            message = decode_message(operation.request, body)
        except codec.OicpValidationError as exc:
            return self._refuse(operation, DATA_ERROR, "; ".join(str(i) for i in exc.issues))
        body_operators = _values(message, "OperatorID")
        refused = self._check_certificate(operation, client, body_operators, "body", message)
        if refused is not None:
            return refused
        owners = [path_operator] if path_operator is not None else body_operators
        if not owners:
            # Every operation names its operator in the path or the body; this is a guard.
            return self._refuse(operation, DATA_ERROR, "no OperatorID given", message)
        refused = self._check_evse_ids(operation, message, owners)
        if refused is not None:
            return refused
        answer = self._operations[operation.name](operation, message, operator_key(owners[0]))
        return Reply(200, answer, message)

    # --- checks ---------------------------------------------------------------------------

    def _refuse(self, operation: Operation, code: str, info: str,
                message: object | None = None) -> Reply:
        return Reply(200, answers.refusal(operation, code, info, request=message), message)

    def _check_certificate(
        self, operation: Operation, client: ClientCertificate | None, operator_ids: list[str],
        where: str, message: object | None = None,
    ) -> Reply | None:
        # Spec: OICP 2.3 "Security": Hubject compares the OperatorID given with the
        # partner's client certificate and answers 017 "Unauthorized Access" on a mismatch.
        for operator_id in operator_ids:
            if client is None or not client.carries_operator_id(operator_id):
                subject = client.subject if client is not None else "no client certificate"
                return self._refuse(
                    operation, UNAUTHORIZED,
                    f"OperatorID {operator_id} ({where}) does not match the client "
                    f"certificate ({subject})", message,
                )
        return None

    def _check_evse_ids(self, operation: Operation, message: object,
                        owners: list[str]) -> Reply | None:
        # Spec: eRoamingPushEvseData, "EVSE consistency": every EvseID must carry the
        # CPO's OperatorID (or a sub-operator's), else Hubject refuses with 018.
        allowed = {operator_key(o) for o in owners}
        for owner in owners:
            for configured, subs in self.rules.sub_operators.items():
                if operator_key(configured) == operator_key(owner):
                    allowed.update(operator_key(s) for s in subs)
        for evse_id in _values(message, "EvseID"):
            if patterns.operator_of_evse(evse_id) not in allowed:
                return self._refuse(
                    operation, INCONSISTENT_EVSE_ID,
                    f"EvseID {evse_id} does not belong to operator {', '.join(owners)}",
                    message,
                )
        return None

    # --- pushes ---------------------------------------------------------------------------

    def _push_result(self, operation: Operation, message: object,
                     refused: str | None) -> object:
        if refused is not None:
            return answers.refusal(operation, DATA_ERROR, refused, request=message)
        return answers.acknowledgement(True, status.SUCCESS, request=message)

    def _push_evse_data(self, operation: Operation, message: PushEvseData,
                        owner: str) -> object:
        data = message.operator_evse_data
        records = self.state.evse_data.setdefault(owner, RecordSet())
        refused = records.apply(message.action_type,
                                ((r.evse_id, r) for r in data.evse_data_records))
        return self._push_result(operation, message, refused)

    def _push_evse_status(self, operation: Operation, message: PushEvseStatus,
                          owner: str) -> object:
        data = message.operator_evse_status
        records = self.state.evse_status.setdefault(owner, RecordSet())
        refused = records.apply(
            message.action_type,
            ((r.evse_id, str(r.evse_status)) for r in data.evse_status_records),
            upsert=self.rules.status_update_upserts,
        )
        return self._push_result(operation, message, refused)

    def _push_pricing_products(self, operation: Operation, message: PushPricingProductData,
                               owner: str) -> object:
        data = message.pricing_product_data
        key = (owner, data.provider_id)
        records = self.state.pricing_products.setdefault(key, RecordSet())
        refused = records.apply(message.action_type,
                                ((r.product_id, r) for r in data.pricing_product_data_records))
        return self._push_result(operation, message, refused)

    def _push_evse_pricing(self, operation: Operation, message: PushEVSEPricing,
                           owner: str) -> object:
        # The body names no OperatorID: the EVSE pricing belongs to the path's operator,
        # whose EvseIDs were checked above.
        records = self.state.evse_pricing.setdefault(owner, RecordSet())
        refused = records.apply(
            message.action_type,
            (((p.evse_id, p.provider_id), tuple(p.evse_id_product_list))
             for p in message.evse_pricing),
        )
        return self._push_result(operation, message, refused)

    # --- sessions -------------------------------------------------------------------------

    def _authorize_start(self, operation: Operation, message: AuthorizeStart,
                         owner: str) -> object:
        identification = message.identification
        card = self.state.cards.find(identification)
        if card is None:
            code = RFID_INVALID_UID if identification.uid() is not None else NO_VALID_CONTRACT
            return answers.authorization_start(
                False, code, "card not on the simulator's card list", request=message)
        if not card.authorized:
            return answers.authorization_start(
                False, NO_POSITIVE_RESPONSE, "card refused by its EMP", request=message,
                provider_id=card.provider)
        # Spec: eRoamingAuthorizeStart: on a positive answer Hubject creates the SessionID
        # and names the authorizing EMP's ProviderID.
        session_id = self.new_session_id()
        self.state.sessions[session_id] = Session(
            session_id=session_id, origin="authorize-start", provider_id=card.provider,
            operator_id=message.operator_id, evse_id=message.evse_id,
            identification=identification,
            cpo_partner_session_id=message.cpo_partner_session_id,
            emp_partner_session_id=message.emp_partner_session_id,
        )
        return answers.authorization_start(
            True, status.SUCCESS, request=message, session_id=session_id,
            provider_id=card.provider, stop_identifications=[identification],
        )

    def _authorize_stop(self, operation: Operation, message: AuthorizeStop,
                        owner: str) -> object:
        session = self.state.sessions.get(message.session_id)
        if session is None or (
            session.operator_id is not None and operator_key(session.operator_id) != owner
        ):
            # OICP 2.3 "Session handling": a SessionID not created by Hubject, or not valid,
            # gets a negative answer: 400 "Session is invalid".
            return answers.authorization_stop(
                False, SESSION_INVALID, f"unknown SessionID {message.session_id}",
                request=message, session_id=message.session_id)
        card = self.state.cards.find(message.identification)
        same_medium = session.identification is not None and (
            session.identification == message.identification
        )
        same_emp = card is not None and card.authorized and card.provider == session.provider_id
        if not (same_medium or same_emp):
            return answers.authorization_stop(
                False, NO_POSITIVE_RESPONSE,
                "identification does not belong to the session's customer or EMP",
                request=message, session_id=session.session_id,
                provider_id=session.provider_id)
        session.stopped = True
        return answers.authorization_stop(
            True, status.SUCCESS, request=message, session_id=session.session_id,
            provider_id=session.provider_id)

    def _charge_detail_record(self, operation: Operation, message: ChargeDetailRecord,
                              owner: str) -> object:
        if message.session_id in self.state.cdrs:
            # Spec: eRoamingChargeDetailRecord: "Hubject will accept only one CDR per
            # SessionID." The code is the simulator's choice (module docstring).
            return answers.acknowledgement(
                False, DATA_ERROR, f"CDR already exists for SessionID {message.session_id}",
                request=message)
        if self.rules.cdr_requires_known_session and message.session_id not in self.state.sessions:
            return answers.acknowledgement(
                False, SESSION_INVALID, f"unknown SessionID {message.session_id}",
                request=message)
        self.state.cdrs[message.session_id] = message
        return answers.acknowledgement(True, status.SUCCESS, request=message)

    def _charging_notification(self, operation: Operation, message: object,
                               owner: str) -> object:
        now = self.clock()
        session_id = str(getattr(message, "session_id", ""))
        if getattr(message, "type", None) is ChargingNotificationType.PROGRESS:
            previous = [n for n in self.state.notifications_of(session_id)
                        if n.type == ChargingNotificationType.PROGRESS.value]
            if previous and now - previous[-1].received_at < PROGRESS_INTERVAL:
                # A "should" of the spec: accepted, but noted for tests of throttling.
                self.progress_too_soon.append(
                    ProgressTooSoon(session_id, now - previous[-1].received_at))
        self.state.notifications.append(Notification(now, message))
        return answers.acknowledgement(True, status.SUCCESS, request=message)

    # --- sessions made elsewhere ----------------------------------------------------------

    def register_session(self, session: Session) -> None:
        """Remember a session Hubject created outside AuthorizeStart (remote start)."""
        self.state.sessions[session.session_id] = session

