"""The operation table: every OICP 2.3 operation on the CPO side, as data.

Each row says where the operation is sent, which messages go in and out, how it may be
retried, and Hubject's acceptable-use limits. The transport, the simulator, the inbound
server and the CLI all read this table; none of them hard-codes a path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from hubject_connector.oicp import patterns


class Direction(StrEnum):
    """Who calls whom."""

    CPO_TO_HUBJECT = "cpo->hubject"
    HUBJECT_TO_CPO = "hubject->cpo"


class RetryClass(StrEnum):
    """How a failed or unanswered call may be repeated."""

    #: Repeating the same request is harmless: retry transient failures automatically.
    SAFE = "safe"
    #: Repeating would act twice (AuthorizeStart opens a session at Hubject): never
    #: repeat automatically once the request may have reached Hubject.
    ONCE = "once"


@dataclass(frozen=True, slots=True)
class Operation:
    """One row of the operation table."""

    #: Short name, e.g. "PushEvseData".
    name: str
    #: OICP version of the operation, e.g. "2.3".
    version: str
    direction: Direction
    #: Path after the base URL ``.../api/oicp``, with ``{operatorID}`` or ``{providerID}``.
    path: str
    #: Message name of the request body, e.g. "eRoamingPushEvseData".
    request: str
    #: Message name of the answer body, e.g. "eRoamingAcknowledgement".
    response: str
    retry: RetryClass = RetryClass.SAFE
    #: Hubject's acceptable-use limit in calls per minute (None: not limited by Hubject).
    rate_per_minute: int | None = None
    #: Pushes of one operation must run strictly one after another.
    serialized: bool = False

    def url_path(self, **params: str) -> str:
        """The path with its parameters filled in and checked against their patterns."""

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in params:
                raise KeyError(f"{self.name}: path parameter {name!r} is missing")
            value = params[name]
            kind = _PARAM_PATTERNS[name]
            if not patterns.matches(kind, value):
                raise ValueError(f"{name} {value!r} does not match the {kind} pattern")
            return value

        return _PARAM.sub(fill, self.path)

    def path_regex(self) -> re.Pattern[str]:
        """A regex that matches this operation's concrete paths, capturing the parameter."""
        parts = _PARAM.split(self.path)
        # split() with one group alternates literal text and parameter names.
        regex = "".join(
            re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts)
        )
        return re.compile(regex)


#: Path parameter → the pattern its value must match.
_PARAM_PATTERNS: Final = {"operatorID": "OperatorID", "providerID": "ProviderID"}
_PARAM: Final = re.compile(r"\{(" + "|".join(_PARAM_PATTERNS) + r")\}")

ACK: Final = "eRoamingAcknowledgement"

_CPO = Direction.CPO_TO_HUBJECT
_HUB = Direction.HUBJECT_TO_CPO

#: Every operation, by short name.
OPERATIONS: Final[dict[str, Operation]] = {
    op.name: op
    for op in (
        Operation("PushEvseData", "2.3", _CPO,
                  "/evsepush/v23/operators/{operatorID}/data-records",
                  "eRoamingPushEvseData", ACK, rate_per_minute=375, serialized=True),
        Operation("PushEvseStatus", "2.1", _CPO,
                  "/evsepush/v21/operators/{operatorID}/status-records",
                  "eRoamingPushEvseStatus", ACK, rate_per_minute=2000, serialized=True),
        Operation("AuthorizeStart", "2.1", _CPO,
                  "/charging/v21/operators/{operatorID}/authorize/start",
                  "eRoamingAuthorizeStart", "eRoamingAuthorizationStart",
                  retry=RetryClass.ONCE, rate_per_minute=200),
        Operation("AuthorizeStop", "2.1", _CPO,
                  "/charging/v21/operators/{operatorID}/authorize/stop",
                  "eRoamingAuthorizeStop", "eRoamingAuthorizationStop", rate_per_minute=50),
        Operation("ChargeDetailRecord", "2.2", _CPO,
                  "/cdrmgmt/v22/operators/{operatorID}/charge-detail-record",
                  "eRoamingChargeDetailRecord", ACK, rate_per_minute=350),
        Operation("ChargingNotifications", "1.1", _CPO,
                  "/notificationmgmt/v11/charging-notifications",
                  "eRoamingChargingNotification", ACK, rate_per_minute=100),
        Operation("PushPricingProductData", "1.0", _CPO,
                  "/dynamicpricing/v10/operators/{operatorID}/pricing-products",
                  "eRoamingPushPricingProductData", ACK, rate_per_minute=6, serialized=True),
        Operation("PushEVSEPricing", "1.0", _CPO,
                  "/dynamicpricing/v10/operators/{operatorID}/evse-pricing",
                  "eRoamingPushEVSEPricing", ACK, rate_per_minute=6, serialized=True),
        Operation("AuthorizeRemoteStart", "2.1", _HUB,
                  "/charging/v21/providers/{providerID}/authorize-remote/start",
                  "eRoamingAuthorizeRemoteStart", ACK),
        Operation("AuthorizeRemoteStop", "2.1", _HUB,
                  "/charging/v21/providers/{providerID}/authorize-remote/stop",
                  "eRoamingAuthorizeRemoteStop", ACK),
        Operation("AuthorizeRemoteReservationStart", "1.1", _HUB,
                  "/reservation/v11/providers/{providerID}/reservation-start-request",
                  "eRoamingAuthorizeRemoteReservationStart", ACK),
        Operation("AuthorizeRemoteReservationStop", "1.1", _HUB,
                  "/reservation/v11/providers/{providerID}/reservation-stop-request",
                  "eRoamingAuthorizeRemoteReservationStop", ACK),
    )
}


def operation(name: str) -> Operation:
    """The operation called ``name``; also accepts its request message name."""
    if name in OPERATIONS:
        return OPERATIONS[name]
    for op in OPERATIONS.values():
        if op.request == name:
            return op
    raise KeyError(f"unknown OICP operation {name!r}; known: {', '.join(OPERATIONS)}")
