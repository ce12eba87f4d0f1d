"""The conformance rules: every rule the connector checks beyond the OpenAPI, by id.

A rule is declared once, as a ``SpecRule``, beside the model it guards (``cdr.py``,
``evse.py``, ...): its id, the section of Hubject's specification it comes from, and the
wording of its error. The model reports it from ``oicp_issues`` (rules within one message)
or ``oicp_context_issues`` (rules that need to know who sends, or when: see ``CheckContext``),
and range rules are the ``wire(...)`` bounds whose wording ``model`` writes. This module holds
only the type, the registry that docs/conformance.md and its test read, and the context
those rules are given; it checks nothing itself.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

from hubject_connector.oicp import patterns


class Severity(StrEnum):
    """What breaking a rule does."""

    #: The request is refused before it is sent (Hubject would refuse it, or the EMP
    #: would be misinformed).
    ERROR = "error"
    #: The request goes out; the user is told (``oicp validate``, ``send``).
    WARNING = "warning"
    #: An answer from Hubject broke it: it gets a defined outcome, logged and counted.
    ANSWER = "answer"


class Needs(StrEnum):
    """What a rule needs besides the message itself."""

    NOTHING = "message"
    OPERATOR = "operator"
    CLOCK = "clock"
    EVSE_DATA = "EVSE data"
    RAW_JSON = "raw JSON"


@dataclass(frozen=True, slots=True)
class SpecRule:
    """One rule: ``id`` (stable, used in docs and metrics), ``source`` (the section of the
    specification, or Hubject's own support text, it comes from) and ``wording`` (the error
    message; ``{name}`` placeholders are filled per issue)."""

    id: str
    source: str
    wording: str
    severity: Severity = Severity.ERROR
    needs: Needs = Needs.NOTHING

    def message(self, **values: object) -> str:
        """The wording with its placeholders filled."""
        return self.wording.format(**values)

    def at(self, key: str = "", **values: object) -> tuple[str, str]:
        """An ``oicp_issues`` pair: the JSON key (``"A/B"`` for a nested one, ``""`` for the
        object itself) and the filled wording."""
        return (key, self.message(**values))

    def matches(self, message: str) -> bool:
        """Whether ``message`` is this rule's wording with some values filled in."""
        return _template_regex(self.wording).fullmatch(message) is not None


#: Every rule, by id, in the order declared.
RULES: Final[dict[str, SpecRule]] = {}

_ID: Final = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


def spec_rule(
    rule_id: str,
    *,
    source: str,
    wording: str,
    severity: Severity = Severity.ERROR,
    needs: Needs = Needs.NOTHING,
) -> SpecRule:
    """Declare a rule and add it to ``RULES``. An id is declared once (else ``ValueError``)."""
    if _ID.fullmatch(rule_id) is None:
        raise ValueError(f"rule id {rule_id!r} must be lower-case words joined by '-'")
    if rule_id in RULES:
        raise ValueError(f"rule {rule_id!r} is declared twice")
    rule = SpecRule(rule_id, source, wording, severity, needs)
    RULES[rule_id] = rule
    return rule


def _template_regex(wording: str) -> re.Pattern[str]:
    parts = []
    for literal, name, _spec, _conv in string.Formatter().parse(wording):
        parts.append(re.escape(literal))
        if name is not None:
            parts.append(".+?")
    return re.compile("".join(parts), re.DOTALL)


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What rules beyond the message need: who sends it, when, and what Hubject holds.

    ``operator_id``: the OperatorID the request is sent as (the one in the path, or the
    configured one where the path has none); None skips the operator rules.
    ``sub_operator_ids``: further operators whose EVSEs it may carry.
    ``now``: the current time for rules about the future; None (pure validation) skips them.
    ``calibration_law``: each EVSE's CalibrationLawDataAvailability as pushed, by EvseID
    (kept with the EvseIDs in the form ``evse_key`` gives, so each look-up is one).
    """

    operator_id: str | None = None
    sub_operator_ids: tuple[str, ...] = ()
    now: datetime | None = None
    calibration_law: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.now is not None and self.now.tzinfo is None:
            raise ValueError("CheckContext.now must carry a time zone")
        keyed = {evse_key(evse_id): value for evse_id, value in self.calibration_law.items()}
        object.__setattr__(self, "calibration_law", keyed)

    def owners(self) -> frozenset[str]:
        """The operators (normalised) whose EvseIDs may be sent."""
        ids = (self.operator_id, *self.sub_operator_ids) if self.operator_id else ()
        return frozenset(patterns.normalise_operator_id(i) for i in ids)

    def owns(self, evse_id: str) -> bool:
        """Whether ``evse_id`` belongs to the operator or one of its sub-operators."""
        return patterns.operator_of_evse(evse_id) in self.owners()

    def calibration_law_of(self, evse_id: str) -> str | None:
        """The CalibrationLawDataAvailability known for ``evse_id``, if any.

        EvseIDs are compared as Hubject does: without separators, upper case.
        """
        return self.calibration_law.get(evse_key(evse_id))


def evse_key(evse_id: str) -> str:
    """An EvseID in a form where spellings of the same EVSE compare equal.

    Spec: EvseIDType, the "*" separators are optional (ISO) and the letters are upper case;
    the DIN form's leading "+" is optional too.
    """
    return evse_id.replace("*", "").lstrip("+").upper()


# --- rules of the model machinery (model.py writes their wording) ------------------------

LENGTH_LIMIT: Final = spec_rule(
    "length-limit",
    source="03 CPO Data Types, the \"Field Length\" column of each table (the OpenAPI "
    "writes it as `maximum`, which a JSON-schema validator ignores on strings)",
    wording="is {length} characters long, over the limit of {limit}",
)
DECIMAL_PLACES: Final = spec_rule(
    "energy-decimal-places",
    source="02 CPO Services and Operations, eRoamingChargeDetailRecord and "
    "eRoamingChargingNotifications: energy and meter values are \"Decimal (,3)\"",
    wording="has more than 3 decimal places",
)
