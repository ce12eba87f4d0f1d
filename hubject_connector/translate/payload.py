"""Contract data to OICP payloads, remembering where each part came from.

The bus contract's ``data`` is the OICP message in snake_case with a few simplifications
(docs/contract.md). A ``Payload`` walks a contract object along the fields of an OICP model
(``oicp.model.fields_of``), so the model's one declaration drives the mapping too:

* a field's contract name is its Python name, unless ``RENAMED`` says otherwise;
* nested models are walked the same way, lists item by item;
* decimal strings become ``Decimal`` (never a float), times get the charge point's local
  offset (``times.local_time``);
* the shapes the contract simplifies have a step of their own: an identification names its
  OICP option by ``kind``, geo coordinates are latitude/longitude (OICP ``DecimalDegree``),
  meter values in between are a plain list (OICP ``MeterValueInBetween.meterValues``).

Every OICP pointer written is noted with the contract pointer it came from, so that the
model's verdict (``codec.load``) can be told in the backend's terms: ``/data/evse/plugs/0``,
not ``/EvseDataRecord/0/Plugs/0``. A contract field that no OICP field takes is an error:
nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Final, TypeVar

from hubject_connector.bus.contract import ContractIssue
from hubject_connector.oicp import codec
from hubject_connector.oicp.cdr import ChargeDetailRecord, MeterValueInBetween
from hubject_connector.oicp.common import Identification, RFIDIdentification
from hubject_connector.oicp.evse import (
    EvseDataRecord,
    GeoCoordinates,
    GeoCoordinatesDecimalDegree,
    OpeningTimes,
)
from hubject_connector.oicp.model import FieldInfo, fields_of, format_date_time, parse_date_time
from hubject_connector.oicp.notifications import (
    ChargingNotificationEnd,
    ChargingNotificationProgress,
)
from hubject_connector.translate.errors import TranslationError
from hubject_connector.translate.times import local_time

T = TypeVar("T")

#: (model, field) → the contract's name of the field, where it is not the field's own name.
RENAMED: Final[Mapping[tuple[type, str], str]] = {
    # docs/contract.md, evse.upsert.v1: "opening_times[].periods (OICP: Period)".
    (OpeningTimes, "period"): "periods",
    (RFIDIdentification, "rfid"): "rfid_type",
    # The unit in the name: OICP's ChargingDuration is in milliseconds.
    (ChargingNotificationProgress, "charging_duration"): "charging_duration_ms",
    # OICP's MeterValueInBetween object holding a list is the list itself in the contract.
    (ChargingNotificationProgress, "meter_value_in_between"): "meter_values_in_between",
    (ChargingNotificationEnd, "meter_value_in_between"): "meter_values_in_between",
    (ChargeDetailRecord, "meter_value_in_between"): "meter_values_in_between",
}

#: OICP fields the contract leaves out: Hubject sets them on pulls, a CPO never sends them.
NOT_IN_CONTRACT: Final[frozenset[tuple[type, str]]] = frozenset(
    {(EvseDataRecord, "delta_type"), (EvseDataRecord, "last_update")}
)

#: The identification kinds: each is the name of its option's field in ``Identification``.
KINDS: Final[Mapping[str, FieldInfo]] = {info.name: info for info in fields_of(Identification)}

# A decimal as the contract writes it (the schema's Energy and Amount): no exponent, no
# underscores, no "NaN", all of which Python's Decimal() would otherwise take.
_DECIMAL: Final = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?", re.ASCII)

# The model's wording where the contract has its own: (the model's start, the contract's).
_REWORDED: Final = (
    ("is mandatory and missing", "is required"),
    ("is mandatory and may not be null", "must not be null"),
    ("is mandatory when", "is required when"),
)
# "does not match the EvseID pattern" names the pattern, not a field: left as it is.
_PATTERN_MESSAGE: Final = re.compile(r"does not match the .+ pattern")


def escape(token: str) -> str:
    """A JSON pointer token (RFC 6901: "~" and "/" are written "~0" and "~1")."""
    return token.replace("~", "~0").replace("/", "~1")


def _parent(pointer: str) -> str:
    return pointer.rsplit("/", 1)[0]


class Payload:
    """One OICP payload under construction from contract data, and the origin of each part.

    ``zone`` is where times given in UTC are moved to. Problems found while walking (a
    field no OICP field takes, a decimal that is not one) are collected in ``issues``;
    ``load`` raises them, or builds the model and tells its refusals in contract terms.
    """

    def __init__(self, zone: tzinfo, *, root: str = "/data") -> None:
        self.zone = zone
        #: OICP pointer → contract pointer (from the envelope's root).
        self.origins: dict[str, str] = {"": root}
        #: OICP pointer of an object → {OICP key: its contract name}, to reword messages.
        self.names: dict[str, dict[str, str]] = {}
        #: OICP pointer of an identification option → its contract kind.
        self.kinds: dict[str, str] = {}
        self.issues: list[ContractIssue] = []

    def note(self, oicp: str, contract: str) -> None:
        """Record that the OICP pointer ``oicp`` holds what the contract had at ``contract``."""
        self.origins[oicp] = contract

    def refuse(self, contract: str, message: str) -> None:
        """Record a problem of the contract field at ``contract``."""
        self.issues.append(ContractIssue(contract, message))

    # --- contract → OICP JSON ------------------------------------------------------------

    def model(
        self,
        model: type,
        source: Any,
        at: str,
        to: str,
        *,
        fixed: Mapping[str, Any] | None = None,
        skip: Iterable[str] = (),
    ) -> Any:
        """The OICP JSON object of ``model`` from the contract object ``source``.

        ``at`` is the contract pointer of ``source``, ``to`` the OICP pointer of the result.
        ``fixed`` gives values by field name that do not come from ``source`` (a ``None``
        leaves the field out); ``skip`` names contract fields taken care of elsewhere (such
        as the ``operator_id`` a fixed OperatorID was made from).
        """
        self.note(to, at)
        if not isinstance(source, Mapping):
            self.refuse(at, "must be a JSON object")
            return source
        fixed = fixed or {}
        out: dict[str, Any] = {}
        names: dict[str, str] = {}
        taken = set(skip)
        for info in fields_of(model):
            if (model, info.name) in NOT_IN_CONTRACT:
                continue
            name = RENAMED.get((model, info.name), info.name)
            here, there = f"{at}/{escape(name)}", f"{to}/{escape(info.rule.key)}"
            self.note(there, here)
            names[info.rule.key] = name
            if info.name in fixed:
                if fixed[info.name] is not None:
                    out[info.rule.key] = fixed[info.name]
                continue
            taken.add(name)
            if name in source:
                value = source[name]
                if info.is_list and isinstance(value, list):
                    out[info.rule.key] = [
                        self.value(info.base, item, f"{here}/{i}", f"{there}/{i}")
                        for i, item in enumerate(value)
                    ]
                else:
                    out[info.rule.key] = self.value(info.base, value, here, there)
        self.names[to] = names
        for key in source:
            if key not in taken:
                self.refuse(f"{at}/{escape(str(key))}", "is not allowed here")
        return out

    def value(self, base: Any, value: Any, at: str, to: str) -> Any:
        """One contract value as the OICP JSON value of type ``base``."""
        self.note(to, at)
        if base is Identification:
            return self._identification(value, at, to)
        if base is GeoCoordinates:
            return self._geo_coordinates(value, at, to)
        if base is MeterValueInBetween:
            return self._meter_values(value, at, to)
        if isinstance(base, type) and dataclasses.is_dataclass(base):
            return self.model(base, value, at, to)
        if base is Decimal:
            return self._decimal(value, at)
        if base is datetime:
            return self._time(value)
        # Strings, integers, booleans and enumerations are the same in both: the model
        # judges them.
        return value

    def _identification(self, value: Any, at: str, to: str) -> Any:
        # docs/contract.md, "Identification": one object whose kind names the OICP option.
        if not isinstance(value, Mapping):
            self.refuse(at, "must be a JSON object")
            return value
        kind = value.get("kind")
        option = KINDS.get(kind) if isinstance(kind, str) else None
        if option is None:
            if kind is None:
                self.refuse(f"{at}/kind", "is required")
            else:
                allowed = ", ".join(f'"{k}"' for k in KINDS)
                self.refuse(f"{at}/kind", f"must be one of: {allowed}")
            return {}
        key = option.rule.key
        self.names[to] = {info.rule.key: f'kind "{name}"' for name, info in KINDS.items()}
        self.kinds[f"{to}/{key}"] = option.name
        return {key: self.model(option.base, value, at, f"{to}/{key}", skip=("kind",))}

    def _geo_coordinates(self, value: Any, at: str, to: str) -> Any:
        # docs/contract.md, evse.upsert.v1: latitude/longitude in decimal degrees, sent as
        # OICP's DecimalDegree option (GeoCoordinatesType takes exactly one format).
        key = next(i.rule.key for i in fields_of(GeoCoordinates) if i.name == "decimal_degree")
        if not isinstance(value, Mapping):
            self.refuse(at, "must be a JSON object")
            return value
        return {key: self.model(GeoCoordinatesDecimalDegree, value, at, f"{to}/{key}")}

    def _meter_values(self, value: Any, at: str, to: str) -> Any:
        # The contract's meter_values_in_between is OICP's MeterValueInBetween.meterValues.
        if not isinstance(value, list):
            self.refuse(at, "must be an array")
            return value
        (info,) = fields_of(MeterValueInBetween)
        there = f"{to}/{info.rule.key}"
        self.note(there, at)
        self.names[to] = {info.rule.key: at.rsplit("/", 1)[-1]}
        return {
            info.rule.key: [
                self.value(Decimal, item, f"{at}/{i}", f"{there}/{i}")
                for i, item in enumerate(value)
            ]
        }

    def _decimal(self, value: Any, at: str) -> Any:
        # docs/contract.md: "Decimals are strings"; a float would have lost the exact value.
        if isinstance(value, Decimal):
            return value
        if isinstance(value, str) and _DECIMAL.fullmatch(value):
            try:
                return Decimal(value)
            except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
                pass
        self.refuse(at, 'must be a string holding a decimal number (e.g. "12.345")')
        return value

    def _time(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = parse_date_time(value)
            except ValueError:
                # Not a time: the model refuses it with its rule.
                return value
        if isinstance(value, datetime) and value.utcoffset() is not None:
            return format_date_time(local_time(value, self.zone))
        return value

    # --- the model's verdict -------------------------------------------------------------

    def load(self, model: type[T], payload: Any) -> T:
        """Build ``model`` from the payload; raise ``TranslationError`` in contract terms."""
        if self.issues:
            raise TranslationError(self.issues)
        try:
            return codec.load(model, payload)
        except codec.OicpValidationError as exc:
            raise TranslationError(self.explain(exc.issues)) from exc

    def explain(self, issues: Iterable[codec.Issue]) -> list[ContractIssue]:
        """OICP issues as contract issues: the contract pointer and the contract's names."""
        explained = []
        for issue in issues:
            message = self.reword(issue.pointer, issue.message)
            kind = self.kinds.get(issue.pointer)
            if kind is not None:
                # A rule on the option as a whole: the contract has no object of its own for
                # it, so the message names the kind ('kind "rfid" must not be used ...').
                message = f'kind "{kind}" {message}'
            explained.append(ContractIssue(self.origin(issue.pointer), message))
        return explained

    def origin(self, pointer: str) -> str:
        """The contract pointer of an OICP pointer, or of its nearest noted ancestor."""
        while pointer not in self.origins:
            pointer = _parent(pointer)
        return self.origins[pointer]

    def reword(self, pointer: str, message: str) -> str:
        """``message`` with the contract's wording and field names instead of OICP's.

        A rule across fields names its fields ("must not be before ChargingStart"); the
        names come from the object the issue is on, its parent and its children.
        """
        for model_words, contract_words in _REWORDED:
            if message.startswith(model_words):
                message = contract_words + message[len(model_words):]
                break
        if _PATTERN_MESSAGE.fullmatch(message):
            return message
        vocabulary: dict[str, str] = {}
        for where, names in self.names.items():
            if where in (pointer, _parent(pointer)) or (where and _parent(where) == pointer):
                vocabulary.update(names)
        words = sorted((k for k, v in vocabulary.items() if k != v), key=len, reverse=True)
        if not words:
            return message
        regex = re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b")
        return regex.sub(lambda m: vocabulary[m.group(1)], message)


# --- OICP → contract ---------------------------------------------------------------------


def contract_object(model: type, instance: Any) -> dict[str, Any]:
    """An OICP model instance as a contract object (the reverse of ``Payload.model``).

    Absent fields and empty strings are left out (the contract's texts are never empty);
    enumerations become their values, decimals strings, times strings with their offset.
    """
    out: dict[str, Any] = {}
    for info in fields_of(model):
        value = getattr(instance, info.name)
        if value is None or value == "" or (model, info.name) in NOT_IN_CONTRACT:
            continue
        out[RENAMED.get((model, info.name), info.name)] = _contract_value(value)
    return out


def _contract_value(value: Any) -> Any:
    if isinstance(value, Identification):
        return identification_data(value)
    if isinstance(value, list):
        return [_contract_value(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return contract_object(type(value), value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return format_date_time(value)
    return value


def identification_data(identification: Identification) -> dict[str, Any]:
    """An OICP identification as the contract's: ``kind`` and the option's fields.

    Raises ``ValueError`` for an identification without an option (the model refuses one
    when it reads it, so only a hand-built one can be empty).
    """
    for kind in KINDS:
        chosen = getattr(identification, kind)
        if chosen is not None:
            return {"kind": kind, **contract_object(type(chosen), chosen)}
    raise ValueError("the identification has no option")
