"""Rules that need context: who sends a message, when, and what Hubject already holds.

The models check what a message says on its own (``oicp_issues``). What only makes sense
against the sender is checked here, on a decoded message, before it leaves:

- the OperatorID in the body is the one the request is sent as (the path's, or for
  ChargingNotifications, whose path has none, the configured one);
- every EvseID belongs to that operator or to one of its configured sub-operators;
- rules a model declares in ``oicp_context_issues(context)``: a CDR's SessionEnd not in
  the future (``CheckContext.now``), its signed meter values where the EVSE's calibration
  law data is External (``CheckContext.calibration_law``).

The walk follows the models' own ``wire(...)`` declarations: an OperatorID is a field whose
JSON key is "OperatorID", an EvseID one declared with the EvseID pattern, so a new message
is covered without a list to keep in step. Pure: the clock is passed in.

``utc_time_warnings`` reads the JSON as sent (a decoded time no longer shows whether it
was written "Z" or "+00:00"); ``review`` runs every check at once (``oicp validate``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

from hubject_connector.oicp import codec, messages, patterns
from hubject_connector.oicp import status as _status  # noqa: F401 - declares a rule
from hubject_connector.oicp.codec import Issue, OicpValidationError
from hubject_connector.oicp.conformance import (
    RULES,
    CheckContext,
    Needs,
    Severity,
    SpecRule,
    spec_rule,
)
from hubject_connector.oicp.model import fields_of
from hubject_connector.oicp.operations import OPERATIONS, Direction, Operation
from hubject_connector.oicp.operations import operation as find_operation

OPERATOR_ID_MATCHES: Final = spec_rule(
    "operator-id-matches",
    source="01 CPO Communication Paradigms, Hub Provider and Hub Operator: \"The web service "
    "fields ProviderID and OperatorID MUST always provide the ID of the partner communicating "
    "directly with Hubject\"; Security: Hubject compares it with the client certificate (017)",
    wording="must be {operator}, the OperatorID the request is sent as (got {body})",
    needs=Needs.OPERATOR,
)
EVSE_ID_OWNED: Final = spec_rule(
    "evse-id-owned",
    source="02 CPO Services and Operations, eRoamingPushEvseData and eRoamingPushEVSEPricing, "
    "\"EVSE consistency\": the CPO's OperatorID or Sub-OperatorIDs must match every EvseID, "
    "else 018; Hubject support, ChargeDetailRecord status 018 INCONSISTENT_EVSEID",
    wording="belongs to operator {owner}, not to {operators}: Hubject refuses it (018)",
    needs=Needs.OPERATOR,
)
TIME_LOCAL_OFFSET: Final = spec_rule(
    "time-local-offset",
    source="01 CPO Communication Paradigms, Time zones: \"It is mandatory for CPO's to provide "
    "date/time values including a time zone offset which refers to the charge point "
    "location\" (TZD: \"+hh:mm or -hh:mm\")",
    wording="is written in UTC (Z): the spec asks for the charge point's local offset "
    "(+hh:mm or -hh:mm), by which the EMP prices the session",
    severity=Severity.WARNING,
    needs=Needs.RAW_JSON,
)

#: Every rule the connector checks, by id: those of the message models (imported through
#: ``messages``), of this module and of the status code table.
ALL_RULES: Final[Mapping[str, SpecRule]] = MappingProxyType(RULES)


def context_issues(message: object, context: CheckContext) -> list[Issue]:
    """The context rules ``message`` (a decoded model) breaks, with JSON pointers."""
    issues: list[Issue] = []
    _walk(message, "", context, issues)
    return sorted(issues, key=lambda i: (i.pointer, i.message))


def check_context(
    operation: str | Operation,
    request: object,
    *,
    operator_id: str,
    sub_operator_ids: Sequence[str] = (),
    now: datetime | None = None,
    calibration_law: Mapping[str, str] | None = None,
) -> list[Issue]:
    """The context rules a request of ``operation`` breaks when sent as ``operator_id``.

    ``operator_id`` is the OperatorID in the path (for ChargingNotifications, whose path has
    none, the configured one); ``sub_operator_ids`` the sub-operators Hubject has configured
    for it. ``now`` (timezone-aware) enables the rules about the future, and
    ``calibration_law`` (EvseID → CalibrationLawDataAvailability as pushed) the calibration
    law rule of CDRs. Raises ``TypeError`` when ``request`` is not that operation's request.
    """
    op = operation if isinstance(operation, Operation) else find_operation(operation)
    expected = messages.request_classes(op)
    if not isinstance(request, expected):
        names = ", ".join(c.__name__ for c in expected)
        raise TypeError(f"{op.name} sends {names}, not {type(request).__name__}")
    context = CheckContext(
        operator_id=operator_id,
        sub_operator_ids=tuple(sub_operator_ids),
        now=now,
        calibration_law=dict(calibration_law or {}),
    )
    return context_issues(request, context)


def ensure_context(
    operation: str | Operation,
    request: object,
    *,
    operator_id: str,
    sub_operator_ids: Sequence[str] = (),
    now: datetime | None = None,
    calibration_law: Mapping[str, str] | None = None,
) -> None:
    """Like ``check_context``, raising ``OicpValidationError`` (status 022) with the issues."""
    issues = check_context(
        operation, request, operator_id=operator_id, sub_operator_ids=sub_operator_ids,
        now=now, calibration_law=calibration_law,
    )
    if issues:
        raise OicpValidationError(issues)


def _walk(obj: Any, pointer: str, context: CheckContext, out: list[Issue]) -> None:
    check = getattr(obj, "oicp_context_issues", None)
    if check is not None:
        for key, message in check(context):
            out.append(Issue(f"{pointer}/{key}" if key else pointer, message))
    for info in fields_of(type(obj)):
        value = getattr(obj, info.name)
        if value is None:
            continue
        where = f"{pointer}/{info.rule.key}"
        items = list(enumerate(value)) if info.is_list else [(None, value)]
        for index, item in items:
            at = where if index is None else f"{where}/{index}"
            if dataclasses.is_dataclass(info.base):
                _walk(item, at, context, out)
            elif context.operator_id is not None and isinstance(item, str):
                out.extend(_operator_issues(info.rule.key, info.rule.pattern, item, at, context))


def _operator_issues(
    key: str, pattern: str | None, value: str, at: str, context: CheckContext
) -> list[Issue]:
    operator = context.operator_id
    assert operator is not None
    # Spec: the OperatorID fields name the partner talking to Hubject; a hub names itself,
    # its sub-operators appear only inside EvseIDs. (HubOperatorID is another field.)
    if key == "OperatorID" and pattern == "OperatorID" and not _same_operator(value, operator):
        return [Issue(at, OPERATOR_ID_MATCHES.message(operator=operator, body=value))]
    # Spec: EVSE consistency, Hubject answers 018 for an EvseID of another operator.
    if pattern == "EvseID" and not context.owns(value):
        operators = " or ".join((operator, *context.sub_operator_ids))
        owner = _display(patterns.operator_of_evse(value))
        return [Issue(at, EVSE_ID_OWNED.message(owner=owner, operators=operators))]
    return []


def _same_operator(one: str, other: str) -> bool:
    return patterns.normalise_operator_id(one) == patterns.normalise_operator_id(other)


def _display(normalised: str) -> str:
    # ISO operators compare without separators ("DEABC"); shown as usually written.
    return normalised if normalised.startswith("+") else f"{normalised[:2]}*{normalised[2:]}"


# --- times written in UTC ------------------------------------------------------------------


def is_cpo_request(message: object) -> bool:
    """Whether ``message`` is the request of an operation the CPO sends to Hubject."""
    return any(
        isinstance(message, messages.request_classes(op))
        for op in OPERATIONS.values()
        if op.direction is Direction.CPO_TO_HUBJECT
    )


def utc_time_warnings(message: object, payload: Any) -> list[Issue]:
    """TIME_LOCAL_OFFSET: a warning for every date-time written with "Z" in ``payload``.

    ``message`` is ``payload`` decoded (it tells the model that guides the walk). A warning,
    not an error: "Z" is a valid offset Hubject accepts (its own examples use it), and for a
    charge point on UTC it names the right instant; elsewhere the EMP would price by the
    wrong local time (day and night tariffs), which only the sender can correct.
    """
    warnings: list[Issue] = []
    _walk_json(type(message), payload, "", warnings)
    return warnings


def _walk_json(model: type, payload: Any, pointer: str, out: list[Issue]) -> None:
    if not isinstance(payload, Mapping):
        return
    for info in fields_of(model):
        key = next((k for k in (info.rule.key, *info.rule.aliases) if k in payload), None)
        if key is None:
            continue
        value = payload[key]
        where = f"{pointer}/{key}"
        items = list(enumerate(value)) if info.is_list and isinstance(value, list) else [
            (None, value)
        ]
        for index, item in items:
            at = where if index is None else f"{where}/{index}"
            if info.base is datetime and isinstance(item, str) and item.endswith("Z"):
                out.append(Issue(at, TIME_LOCAL_OFFSET.message()))
            elif dataclasses.is_dataclass(info.base) and isinstance(info.base, type):
                _walk_json(info.base, item, at, out)


# --- everything at once ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Review:
    """What ``review`` found: the decoded message (None if it did not decode), the errors
    that keep it from being sent, and warnings."""

    message: object | None
    errors: list[Issue]
    warnings: list[Issue]

    @property
    def ok(self) -> bool:
        """Whether the message may be sent (warnings allowed)."""
        return self.message is not None and not self.errors


def review(name: str, body: bytes | str | Mapping[str, Any], context: CheckContext) -> Review:
    """Decode ``body`` as message ``name`` and check it against every rule that applies.

    Errors: the schema and the models' rules, then the context rules (those whose context
    is given: ``operator_id``, ``now``, ``calibration_law``). Warnings: times in UTC, for a
    request the CPO sends. Raises ``KeyError`` for an unknown message name.
    """
    messages.message_classes(name)  # an unknown name is a KeyError, whatever the body
    try:
        payload = codec.parse_json(body) if isinstance(body, bytes | str) else body
        message = messages.decode_message(name, payload)
    except OicpValidationError as exc:
        return Review(None, list(exc.issues), [])
    warnings = utc_time_warnings(message, payload) if is_cpo_request(message) else []
    return Review(message, context_issues(message, context), warnings)
