"""What the fake Hubject holds: EVSE data and status per operator, pricing, sessions, CDRs.

Pushes follow the four ActionTypes as the text spec describes them (OICP 2.3 CPO,
eRoamingPushEvseData; the EMP spec's eRoamingPushAuthenticationData spells them out, and
eRoamingPushEvseStatus "works in the same way"):

* ``fullLoad`` replaces the operator's whole set (an empty list deletes everything);
* ``insert`` adds records; if one of them already exists, the whole push is refused and
  nothing is stored, "Error details will be provided with the AdditionalInfo field";
* ``update`` changes records; if one of them does not exist, the whole push is refused;
* ``delete`` removes the records named; a record that is not there is no error (the text
  sets no condition for delete).

The spec names no status code for a refused insert or update; the simulator answers
``Result`` false with 022 (data error) and AdditionalInfo naming the records, as that code
is the spec's general code for a request whose data cannot be accepted.

EVSE status records are a set of their own: the text spec ties a status push to no data
record (only the EvseID/OperatorID consistency, 018), so a status for an EVSE whose data was
never pushed is accepted; an ``update`` for an EVSE without a *status* record is refused
like any update of a missing record (``SimulatorConfig.status_update_upserts`` relaxes that).

Records are keyed by the EvseID exactly as pushed.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Literal, TypeVar

from hubject_connector.oicp import patterns
from hubject_connector.oicp.cdr import ChargeDetailRecord
from hubject_connector.oicp.common import Identification
from hubject_connector.oicp.evse import ActionType, EvseDataRecord
from hubject_connector.oicp.pricing import PricingProductDataRecord
from hubject_connector.simulator.config import Card

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RecordSet(Generic[K, V]):
    """One operator's records of one kind, changed by the push ActionTypes."""

    def __init__(self) -> None:
        self.records: dict[K, V] = {}

    def apply(self, action: ActionType, items: Iterable[tuple[K, V]], *,
              upsert: bool = False) -> str | None:
        """Apply a push; returns None, or why it was refused (then nothing changed)."""
        pairs = list(items)
        if action is ActionType.FULL_LOAD:
            self.records = dict(pairs)
        elif action is ActionType.INSERT:
            existing = [key for key, _ in pairs if key in self.records]
            if existing:
                return f"insert refused, records already exist: {_names(existing)}"
            self.records.update(pairs)
        elif action is ActionType.UPDATE:
            missing = [key for key, _ in pairs if key not in self.records]
            if missing and not upsert:
                return f"update refused, records do not exist: {_names(missing)}"
            self.records.update(pairs)
        else:
            for key, _ in pairs:
                self.records.pop(key, None)
        return None


def _names(keys: list[K]) -> str:
    def one(key: K) -> str:
        return "/".join(key) if isinstance(key, tuple) else str(key)

    shown = ", ".join(one(k) for k in keys[:20])
    return shown + (f" and {len(keys) - 20} more" if len(keys) > 20 else "")


def operator_key(operator_id: str) -> str:
    """How an OperatorID is compared: without separators, upper case ("DE*ABC" = "DEABC")."""
    return patterns.normalise_operator_id(operator_id)


@dataclass(slots=True)
class Session:
    """A charging session Hubject knows, by the SessionID it handed out."""

    session_id: str
    origin: Literal["authorize-start", "remote-start", "reservation"]
    provider_id: str
    operator_id: str | None = None
    evse_id: str | None = None
    identification: Identification | None = None
    cpo_partner_session_id: str | None = None
    emp_partner_session_id: str | None = None
    stopped: bool = False


@dataclass(slots=True)
class Notification:
    """A charging notification as received, with the time it arrived."""

    received_at: datetime
    message: object

    @property
    def type(self) -> str:
        """Start, Progress, End or Error."""
        return str(getattr(self.message, "type", ""))

    @property
    def session_id(self) -> str:
        """The SessionID it is about."""
        return str(getattr(self.message, "session_id", ""))


class CardList:
    """The EMPs' cards the simulator authorizes or refuses (changeable while it runs)."""

    def __init__(self, cards: Iterable[Card] = ()) -> None:
        self._cards = list(cards)

    def __iter__(self) -> Iterator[Card]:
        return iter(list(self._cards))

    def __len__(self) -> int:
        return len(self._cards)

    def add(self, card: Card | None = None, *, uid: str | None = None,
            evco_id: str | None = None, provider_id: str | None = None,
            authorized: bool = True) -> Card:
        """Put a card on the list (a ``Card``, or its fields)."""
        if card is None:
            card = Card(uid=uid, evco_id=evco_id, provider_id=provider_id, authorized=authorized)
        self._cards.append(card)
        return card

    def remove(self, card: Card) -> None:
        """Take a card off the list."""
        self._cards.remove(card)

    def clear(self) -> None:
        """Empty the list."""
        self._cards.clear()

    def find(self, identification: Identification) -> Card | None:
        """The card presented by ``identification`` (by its UID or EvcoID), if listed."""
        uid, evco_id = identification.uid(), identification.evco_id()
        for card in self._cards:
            if card.matches(uid=uid, evco_id=evco_id):
                return card
        return None


@dataclass(slots=True)
class SimulatorState:
    """Everything the simulator stores, for the simulator and for tests to inspect."""

    cards: CardList = field(default_factory=CardList)
    #: Operator key (``operator_key``) → EvseID → data record.
    evse_data: dict[str, RecordSet[str, EvseDataRecord]] = field(default_factory=dict)
    #: Operator key → EvseID → status (e.g. "Available").
    evse_status: dict[str, RecordSet[str, str]] = field(default_factory=dict)
    #: (operator key, ProviderID or "*") → ProductID → pricing product.
    pricing_products: dict[tuple[str, str], RecordSet[str, PricingProductDataRecord]] = field(
        default_factory=dict
    )
    #: Operator key → (EvseID, ProviderID or "*") → ProductIDs.
    evse_pricing: dict[str, RecordSet[tuple[str, str], tuple[str, ...]]] = field(
        default_factory=dict
    )
    sessions: dict[str, Session] = field(default_factory=dict)
    #: SessionID → the one CDR accepted for it.
    cdrs: dict[str, ChargeDetailRecord] = field(default_factory=dict)
    notifications: list[Notification] = field(default_factory=list)

    def evse_data_of(self, operator_id: str) -> Mapping[str, EvseDataRecord]:
        """The EVSE data records an operator has pushed, by EvseID."""
        found = self.evse_data.get(operator_key(operator_id))
        return dict(found.records) if found is not None else {}

    def evse_status_of(self, operator_id: str) -> Mapping[str, str]:
        """The EVSE statuses an operator has pushed, by EvseID."""
        found = self.evse_status.get(operator_key(operator_id))
        return dict(found.records) if found is not None else {}

    def pricing_products_of(self, operator_id: str,
                            provider_id: str = "*") -> Mapping[str, PricingProductDataRecord]:
        """The pricing products an operator has pushed for an EMP (or "*"), by ProductID."""
        found = self.pricing_products.get((operator_key(operator_id), provider_id))
        return dict(found.records) if found is not None else {}

    def evse_pricing_of(self, operator_id: str) -> Mapping[tuple[str, str], tuple[str, ...]]:
        """The product assignments an operator has pushed, by (EvseID, ProviderID)."""
        found = self.evse_pricing.get(operator_key(operator_id))
        return dict(found.records) if found is not None else {}

    def notifications_of(self, session_id: str) -> list[Notification]:
        """The charging notifications received for one session, in order."""
        return [n for n in self.notifications if n.session_id == session_id]

    def clear(self) -> None:
        """Forget everything stored (the card list stays)."""
        self.evse_data.clear()
        self.evse_status.clear()
        self.pricing_products.clear()
        self.evse_pricing.clear()
        self.sessions.clear()
        self.cdrs.clear()
        self.notifications.clear()
