"""eRoamingChargingNotifications (service version 1.1): Start, Progress, End and Error.

All four go to the same path as one message, ``eRoamingChargingNotification``, told apart
only by ``Type``. The OpenAPI describes the body as a ``oneOf`` of the four, but a valid
Progress or End notification also satisfies the Start schema (none forbids extra fields),
so ``oneOf`` cannot tell them apart: ``decode_notification`` dispatches on ``Type``.
Spec: OICP 2.3 CPO, "Services and Operations", eRoamingChargingNotifications.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Final

from hubject_connector.oicp.cdr import (
    ENERGY_PLACES,
    MeterValueInBetween,
    consumed_energy_issues,
    session_time_issues,
    time_order_issues,
)
from hubject_connector.oicp.codec import Issue, OicpValidationError, load
from hubject_connector.oicp.common import (
    PARTNER_SESSION_ID_MAX,
    PRODUCT_ID_MAX,
    Identification,
    hashed_pin_issues,
)
from hubject_connector.oicp.conformance import spec_rule
from hubject_connector.oicp.model import wire

#: The message name of the request on the notifications path, whatever its Type.
NOTIFICATION_MESSAGE: Final = "eRoamingChargingNotification"
#: Spec: ErrorAdditionalInfo, field length 250.
ERROR_ADDITIONAL_INFO_MAX = 250
#: ChargingDuration is in milliseconds, the times it derives from usually in seconds: a
#: difference below one second is rounding.
_DURATION_TOLERANCE = timedelta(seconds=1)

NOTIFICATION_TYPE = spec_rule(
    "notification-type",
    source="02 CPO Services and Operations, eRoamingChargingNotifications, each message's "
    "Type: \"For this case only the notification type ... can be chosen\"",
    wording="must be {type} in a {model}",
)
PROGRESS_DURATION_OR_ENERGY = spec_rule(
    "progress-duration-or-energy",
    source="02 CPO Services and Operations, eRoamingChargingNotifications Progress, "
    "ChargingDuration (O/M): \"Either ChargingDuration or ConsumedEnergyProgress should be "
    "provided\"",
    wording="needs ChargingDuration or ConsumedEnergyProgress (or both)",
)
PROGRESS_DURATION_CONSISTENT = spec_rule(
    "progress-duration-consistent",
    source="02 CPO Services and Operations, eRoamingChargingNotifications Progress: "
    "\"Charging Duration = EventOccurred - ChargingStart. It is a time in millisecond\"",
    wording="must be EventOccurred - ChargingStart = {expected} ms to the second (got {got})",
)
DURATION_NOT_NEGATIVE = spec_rule(
    "duration-not-negative",
    source="02 CPO Services and Operations, eRoamingChargingNotifications Progress: "
    "ChargingDuration = EventOccurred - ChargingStart, a time span",
    wording="must be at least 0",
)


class ChargingNotificationType(StrEnum):
    """Spec: "ChargingNotificationType"."""

    START = "Start"
    PROGRESS = "Progress"
    END = "End"
    ERROR = "Error"


class ErrorType(StrEnum):
    """Spec: "ErrorClassType", the values of a notification's ``ErrorType``.

    The data-type table writes "Connector Error" and "Critical Error"; the OpenAPI enum and
    Hubject's JSON examples write them without the space. The OpenAPI's spelling is written
    (it is the only one its enum accepts); the table's is read as well.
    """

    CONNECTOR_ERROR = "ConnectorError"
    CRITICAL_ERROR = "CriticalError"

    @classmethod
    def _missing_(cls, value: object) -> ErrorType | None:
        # Only reached for values that are not a member's: "Connector Error" and the like.
        if isinstance(value, str):
            for member in cls:
                if value.replace(" ", "") == member.value:
                    return member
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class _ChargingNotification:
    """The fields every notification starts with; each subclass adds its Type's own."""

    TYPE: ClassVar[ChargingNotificationType]

    type: ChargingNotificationType = wire("Type")
    session_id: str = wire("SessionID", pattern="SessionID")
    cpo_partner_session_id: str | None = wire(
        "CPOPartnerSessionID", default=None, max_length=PARTNER_SESSION_ID_MAX
    )
    emp_partner_session_id: str | None = wire(
        "EMPPartnerSessionID", default=None, max_length=PARTNER_SESSION_ID_MAX
    )
    identification: Identification | None = wire("Identification", default=None)
    evse_id: str = wire("EvseID", pattern="EvseID")
    operator_id: str = wire("OperatorID", pattern="OperatorID")

    def _type_issues(self) -> list[tuple[str, str]]:
        # Spec: each message's Type row: "For this case only the notification type ... can
        # be chosen."
        if self.type is not self.TYPE:
            return [NOTIFICATION_TYPE.at("Type", type=self.TYPE.value, model=type(self).__name__)]
        return []

    def _identification_issues(self) -> list[tuple[str, str]]:
        return hashed_pin_issues(self.identification, "a charging notification")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargingNotificationStart(_ChargingNotification):
    """Spec: eRoamingChargingNotifications Start: energy has begun to flow."""

    OICP_NAME: ClassVar[str] = "eRoamingChargingNotificationStart"
    TYPE: ClassVar[ChargingNotificationType] = ChargingNotificationType.START

    charging_start: datetime = wire("ChargingStart")
    session_start: datetime | None = wire("SessionStart", default=None)
    meter_value_start: Decimal | None = wire(
        "MeterValueStart", default=None, places=ENERGY_PLACES, minimum=0
    )
    partner_product_id: str | None = wire(
        "PartnerProductID", default=None, max_length=PRODUCT_ID_MAX
    )

    def oicp_issues(self) -> list[tuple[str, str]]:
        return [
            *self._type_issues(),
            *time_order_issues((("SessionStart", self.session_start),
                                ("ChargingStart", self.charging_start))),
            *self._identification_issues(),
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargingNotificationProgress(_ChargingNotification):
    """Spec: eRoamingChargingNotifications Progress: energy or time so far.

    Spec: send at most one per session every 5 minutes (a flow's concern, not the model's).
    """

    OICP_NAME: ClassVar[str] = "eRoamingChargingNotificationProgress"
    TYPE: ClassVar[ChargingNotificationType] = ChargingNotificationType.PROGRESS

    charging_start: datetime = wire("ChargingStart")
    event_occurred: datetime = wire("EventOccurred")
    #: Milliseconds: EventOccurred - ChargingStart (DURATION_NOT_NEGATIVE).
    charging_duration: int | None = wire("ChargingDuration", default=None, minimum=0)
    session_start: datetime | None = wire("SessionStart", default=None)
    consumed_energy_progress: Decimal | None = wire(
        "ConsumedEnergyProgress", default=None, places=ENERGY_PLACES, minimum=0
    )
    meter_value_start: Decimal | None = wire(
        "MeterValueStart", default=None, places=ENERGY_PLACES, minimum=0
    )
    meter_value_in_between: MeterValueInBetween | None = wire("MeterValueInBetween", default=None)
    partner_product_id: str | None = wire(
        "PartnerProductID", default=None, max_length=PRODUCT_ID_MAX
    )

    def oicp_issues(self) -> list[tuple[str, str]]:
        issues = self._type_issues()
        # Spec: ChargingDuration is "O/M": "Either ChargingDuration or ConsumedEnergyProgress
        # should be provided. Both can also be provided" - a progress without either says
        # nothing.
        if self.charging_duration is None and self.consumed_energy_progress is None:
            issues.append(PROGRESS_DURATION_OR_ENERGY.at())
        # The duration is defined as EventOccurred - ChargingStart, so it cannot be negative.
        order = time_order_issues(
            (("ChargingStart", self.charging_start), ("EventOccurred", self.event_occurred)),
            (("SessionStart", self.session_start), ("ChargingStart", self.charging_start)),
        )
        issues += order
        elapsed = self.event_occurred - self.charging_start
        if (
            self.charging_duration is not None
            and elapsed >= timedelta(0)
            and abs(timedelta(milliseconds=self.charging_duration) - elapsed) >= _DURATION_TOLERANCE
        ):
            issues.append(PROGRESS_DURATION_CONSISTENT.at(
                "ChargingDuration", expected=elapsed // timedelta(milliseconds=1),
                got=self.charging_duration))
        issues += self._identification_issues()
        return issues


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargingNotificationEnd(_ChargingNotification):
    """Spec: eRoamingChargingNotifications End: energy stopped flowing, session still open."""

    OICP_NAME: ClassVar[str] = "eRoamingChargingNotificationEnd"
    TYPE: ClassVar[ChargingNotificationType] = ChargingNotificationType.END

    charging_start: datetime | None = wire("ChargingStart", default=None)
    charging_end: datetime = wire("ChargingEnd")
    session_start: datetime | None = wire("SessionStart", default=None)
    session_end: datetime | None = wire("SessionEnd", default=None)
    consumed_energy: Decimal | None = wire(
        "ConsumedEnergy", default=None, places=ENERGY_PLACES, minimum=0
    )
    meter_value_start: Decimal | None = wire(
        "MeterValueStart", default=None, places=ENERGY_PLACES, minimum=0
    )
    meter_value_end: Decimal | None = wire(
        "MeterValueEnd", default=None, places=ENERGY_PLACES, minimum=0
    )
    meter_value_in_between: MeterValueInBetween | None = wire("MeterValueInBetween", default=None)
    partner_product_id: str | None = wire(
        "PartnerProductID", default=None, max_length=PRODUCT_ID_MAX
    )
    penalty_time_start: datetime | None = wire("PenaltyTimeStart", default=None)

    def oicp_issues(self) -> list[tuple[str, str]]:
        return [
            *self._type_issues(),
            *session_time_issues(
                self.session_start, self.charging_start, self.charging_end, self.session_end
            ),
            *consumed_energy_issues(
                self.consumed_energy, self.meter_value_start, self.meter_value_end
            ),
            *self._identification_issues(),
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargingNotificationError(_ChargingNotification):
    """Spec: eRoamingChargingNotifications Error: charging failed to start or broke off."""

    OICP_NAME: ClassVar[str] = "eRoamingChargingNotificationError"
    TYPE: ClassVar[ChargingNotificationType] = ChargingNotificationType.ERROR

    error_type: ErrorType = wire("ErrorType")
    error_additional_info: str | None = wire(
        "ErrorAdditionalInfo", default=None, max_length=ERROR_ADDITIONAL_INFO_MAX
    )

    def oicp_issues(self) -> list[tuple[str, str]]:
        return [*self._type_issues(), *self._identification_issues()]


#: Any of the four notifications.
ChargingNotification = (
    ChargingNotificationStart
    | ChargingNotificationProgress
    | ChargingNotificationEnd
    | ChargingNotificationError
)

#: The model for each ``Type``.
NOTIFICATION_CLASSES: Final[Mapping[ChargingNotificationType, type[ChargingNotification]]] = {
    cls.TYPE: cls
    for cls in (
        ChargingNotificationStart,
        ChargingNotificationProgress,
        ChargingNotificationEnd,
        ChargingNotificationError,
    )
}


def decode_notification(payload: Mapping[str, Any]) -> ChargingNotification:
    """Build the notification model that the payload's ``Type`` names.

    Never tries the four schemas in turn (the OpenAPI's ``oneOf``): a Progress payload is
    also a valid Start. Raises ``OicpValidationError``; a missing or unknown ``Type`` is
    reported at ``/Type``.
    """
    if not isinstance(payload, Mapping):
        raise OicpValidationError([Issue("", "must be a JSON object")])
    if "Type" not in payload:
        raise OicpValidationError([Issue("/Type", "is mandatory and missing")])
    if payload["Type"] is None:
        raise OicpValidationError([Issue("/Type", "is mandatory and may not be null")])
    raw = payload["Type"]
    kind = next((t for t in ChargingNotificationType if t.value == raw), None)
    if kind is None:
        allowed = ", ".join(t.value for t in ChargingNotificationType)
        raise OicpValidationError([Issue("/Type", f"must be one of: {allowed}")])
    model: type[ChargingNotification] = NOTIFICATION_CLASSES[kind]
    return load(model, payload)
