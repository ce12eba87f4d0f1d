"""eRoamingChargeDetailRecord (service version 2.2): the record of one finished session.

The CPO sends exactly one CDR per SessionID after the session ended; the EMP bills its
customer from it. Energy values are ``Decimal`` with at most 3 places ("Decimal (,3)").
Spec: OICP 2.3 CPO, "Services and Operations", eRoamingChargeDetailRecord, and the data
types SignedMeteringValuesType and CalibrationLawVerificationType.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar

from hubject_connector.oicp.common import (
    PARTNER_SESSION_ID_MAX,
    PRODUCT_ID_MAX,
    Identification,
    hashed_pin_issues,
)
from hubject_connector.oicp.conformance import CheckContext, Needs, spec_rule
from hubject_connector.oicp.evse import CalibrationLawDataAvailability
from hubject_connector.oicp.model import wire

#: Spec: meter values and energy are "Decimal (,3)", in kWh.
ENERGY_PLACES = 3
#: Spec: "In total you can provide maximum 10 metering signature values".
SIGNED_METERING_VALUES_MAX = 10
#: Hubject refuses (022) a CDR whose ConsumedEnergy is over 1000 kWh as implausible: most
#: likely it was given in Wh.
CONSUMED_ENERGY_MAX = 1000

#: Where Hubject lists the causes of status 022 for a CDR.
_HUBJECT_CDR_022 = (
    "Hubject support, \"I am having problems sending ChargeDetailRecord requests\", "
    "status 022"
)

ENERGY_NOT_NEGATIVE = spec_rule(
    "energy-not-negative",
    source=f"{_HUBJECT_CDR_022}: \"It is not possible to include a negative value for "
    "consumption\"; meter values are readings in kWh (02, eRoamingChargeDetailRecord)",
    wording="must be at least 0",
)
CONSUMED_ENERGY_LIMIT = spec_rule(
    "cdr-consumed-energy-limit",
    source=f"{_HUBJECT_CDR_022}: \"Please check the ConsumedEnergy value\" (consumption "
    "greater than 1000 kWh is unusual, likely given in watts)",
    wording=f"must be at most {CONSUMED_ENERGY_MAX}",
)
SIGNED_VALUES_LIMIT = spec_rule(
    "cdr-signed-values-limit",
    source="02 CPO Services and Operations, eRoamingChargeDetailRecord, SignedMeteringValues: "
    "\"In total you can provide maximum 10 metering signature values\" (the OpenAPI sets no "
    "maxItems)",
    wording=f"has {{count}} items, allows at most {SIGNED_METERING_VALUES_MAX}",
)
TIME_ORDER = spec_rule(
    "time-order",
    source="02 CPO Services and Operations, eRoamingChargeDetailRecord and "
    "eRoamingChargingNotifications: the session (swipe or plug-in to unplug) encloses the "
    "charging (energy flow), ChargingDuration = EventOccurred - ChargingStart; "
    f"{_HUBJECT_CDR_022}: \"The timestamp in ChargingEnd is before ChargingStart\"",
    wording="must not be before {earlier}",
)
CONSUMED_ENERGY_DIFFERENCE = spec_rule(
    "consumed-energy-difference",
    source="02 CPO Services and Operations, eRoamingChargeDetailRecord: ConsumedEnergy is "
    "\"The difference between MeterValueEnd and MeterValueStart in kWh\"",
    wording="must be MeterValueEnd - MeterValueStart = {expected} (got {consumed})",
)
METER_VALUE_ORDER = spec_rule(
    "meter-value-order",
    source=f"{_HUBJECT_CDR_022}: \"If MeterValueStart and MeterValueEnd are provided, the "
    "difference between the two cannot be less than 0\"",
    wording="must not be below MeterValueStart ({start})",
)
SESSION_END_NOT_IN_FUTURE = spec_rule(
    "cdr-session-end-not-in-future",
    source=f"{_HUBJECT_CDR_022}: \"Session timestamp of the CDR is in the future\"; 02 CPO "
    "Services and Operations, Charge Detail Records Best Practices: \"ensure 'Time of "
    "request' is later than 'Session end time'\"",
    wording="lies in the future (now: {now}): a CDR is sent after the session ended",
    needs=Needs.CLOCK,
)
SIGNED_VALUES_FOR_EXTERNAL_CALIBRATION = spec_rule(
    "cdr-signed-values-for-external-calibration",
    source="03 CPO Data Types, SignedMeteringValuesType, note 1: \"This field MUST be provided "
    "when the EVSEID in the ChargeDetailRecord contains the External value in the "
    "CalibrationLawDataAvailability field\"",
    wording="is mandatory: EVSE {evse_id} gives its calibration law data as External",
    needs=Needs.EVSE_DATA,
)


class MeteringStatus(StrEnum):
    """Spec: "MeteringStatusType"."""

    START = "Start"
    PROGRESS = "Progress"
    END = "End"


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterValueInBetween:
    """Meter values taken during the session (kWh).

    The text spec only says "List Meter Value"; the OpenAPI, Hubject's JSON examples and its
    earlier Swagger all name the list ``meterValues`` (lower case), so that is what is
    written. ``MeterValues`` is read too.
    """

    # ENERGY_NOT_NEGATIVE.
    meter_values: list[Decimal] = wire(
        "meterValues", aliases=("MeterValues",), places=ENERGY_PLACES, minimum=0
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedMeteringValue:
    """Spec: "SignedMeteringValuesType": one signed meter reading (Transparency format)."""

    signed_metering_value: str | None = wire("SignedMeteringValue", default=None, max_length=3000)
    metering_status: MeteringStatus | None = wire("MeteringStatus", default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrationLawVerificationInfo:
    """Spec: "CalibrationLawVerificationType": how to verify the signed meter values.

    Relevant where German calibration law (Eichrecht) applies.
    """

    calibration_law_certificate_id: str | None = wire(
        "CalibrationLawCertificateID", default=None, max_length=100
    )
    public_key: str | None = wire("PublicKey", default=None, max_length=1000)
    # The withdrawn 2021 Swagger said 100; the text spec and the OpenAPI say 200.
    metering_signature_url: str | None = wire("MeteringSignatureUrl", default=None, max_length=200)
    metering_signature_encoding_format: str | None = wire(
        "MeteringSignatureEncodingFormat", default=None, max_length=50
    )
    signed_metering_values_verification_instruction: str | None = wire(
        "SignedMeteringValuesVerificationInstruction", default=None, max_length=400
    )


#: A time given by its JSON key, or None where absent.
Timed = tuple[str, datetime | None]


def time_order_issues(*pairs: tuple[Timed, Timed]) -> list[tuple[str, str]]:
    """TIME_ORDER: an issue on the later key of each ``(earlier, later)`` pair of given times
    where the later lies before the earlier; one issue per key, the first pair that names it
    winning (so list the pairs that define a field, Start/End, before the enclosing ones).

    Both carry offsets, so the comparison is between instants, whatever the time zones.
    """
    issues: list[tuple[str, str]] = []
    flagged: set[str] = set()
    for (earlier_key, earlier), (later_key, later) in pairs:
        if earlier is None or later is None or later_key in flagged:
            continue
        if later < earlier:
            flagged.add(later_key)
            issues.append(TIME_ORDER.at(later_key, earlier=earlier_key))
    return issues


def session_time_issues(
    session_start: datetime | None,
    charging_start: datetime | None,
    charging_end: datetime | None,
    session_end: datetime | None,
) -> list[tuple[str, str]]:
    """TIME_ORDER for SessionStart <= ChargingStart <= ChargingEnd <= SessionEnd.

    The charging (energy flow) lies within the session (from the swipe or plug-in to the
    swipe or unplugging); each pair is checked where both times are given.
    """
    return time_order_issues(
        (("ChargingStart", charging_start), ("ChargingEnd", charging_end)),
        (("SessionStart", session_start), ("SessionEnd", session_end)),
        (("SessionStart", session_start), ("ChargingStart", charging_start)),
        (("ChargingEnd", charging_end), ("SessionEnd", session_end)),
    )


def consumed_energy_issues(
    consumed: Decimal | None, meter_start: Decimal | None, meter_end: Decimal | None
) -> list[tuple[str, str]]:
    """METER_VALUE_ORDER and CONSUMED_ENERGY_DIFFERENCE.

    Spec: ConsumedEnergy is "The difference between MeterValueEnd and MeterValueStart in
    kWh"; the EMP bills by it, so a record that contradicts its own meter values is refused.
    A meter that ran backwards is reported as such (and not also as a wrong difference).
    """
    if meter_start is not None and meter_end is not None and meter_end < meter_start:
        return [METER_VALUE_ORDER.at("MeterValueEnd", start=meter_start)]
    if consumed is None or meter_start is None or meter_end is None:
        return []
    expected = meter_end - meter_start
    if consumed != expected:
        return [CONSUMED_ENERGY_DIFFERENCE.at("ConsumedEnergy", expected=expected,
                                              consumed=consumed)]
    return []


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargeDetailRecord:
    """Spec: "eRoamingChargeDetailRecord"."""

    OICP_NAME: ClassVar[str] = "eRoamingChargeDetailRecord"

    session_id: str = wire("SessionID", pattern="SessionID")
    cpo_partner_session_id: str | None = wire(
        "CPOPartnerSessionID", default=None, max_length=PARTNER_SESSION_ID_MAX
    )
    emp_partner_session_id: str | None = wire(
        "EMPPartnerSessionID", default=None, max_length=PARTNER_SESSION_ID_MAX
    )
    partner_product_id: str | None = wire(
        "PartnerProductID", default=None, max_length=PRODUCT_ID_MAX
    )
    evse_id: str = wire("EvseID", pattern="EvseID")
    identification: Identification = wire("Identification")
    charging_start: datetime = wire("ChargingStart")
    charging_end: datetime = wire("ChargingEnd")
    session_start: datetime = wire("SessionStart")
    session_end: datetime = wire("SessionEnd")
    meter_value_start: Decimal | None = wire(
        "MeterValueStart", default=None, places=ENERGY_PLACES, minimum=0
    )
    meter_value_end: Decimal | None = wire(
        "MeterValueEnd", default=None, places=ENERGY_PLACES, minimum=0
    )
    meter_value_in_between: MeterValueInBetween | None = wire("MeterValueInBetween", default=None)
    # ENERGY_NOT_NEGATIVE, CONSUMED_ENERGY_LIMIT.
    consumed_energy: Decimal = wire(
        "ConsumedEnergy", places=ENERGY_PLACES, minimum=0, maximum=CONSUMED_ENERGY_MAX
    )
    # SIGNED_VALUES_LIMIT.
    signed_metering_values: list[SignedMeteringValue] | None = wire(
        "SignedMeteringValues", default=None, max_items=SIGNED_METERING_VALUES_MAX
    )
    calibration_law_verification_info: CalibrationLawVerificationInfo | None = wire(
        "CalibrationLawVerificationInfo", default=None
    )
    # The OpenAPI spelled these "HubOperatorId"/"HubProviderId" until January 2024.
    hub_operator_id: str | None = wire(
        "HubOperatorID", default=None, pattern="OperatorID", aliases=("HubOperatorId",)
    )
    hub_provider_id: str | None = wire(
        "HubProviderID", default=None, pattern="ProviderID", aliases=("HubProviderId",)
    )

    def oicp_issues(self) -> list[tuple[str, str]]:
        # Times: an end before its start is impossible, and the EMP prices by these times.
        return [
            *session_time_issues(
                self.session_start, self.charging_start, self.charging_end, self.session_end
            ),
            *consumed_energy_issues(
                self.consumed_energy, self.meter_value_start, self.meter_value_end
            ),
            *hashed_pin_issues(self.identification, "a CDR"),
        ]

    def oicp_context_issues(self, context: CheckContext) -> list[tuple[str, str]]:
        """Rules that need the clock or what Hubject holds of the EVSE."""
        issues = []
        # Hubject compares SessionEnd with the time the CDR arrives (022); the other times
        # lie before SessionEnd (TIME_ORDER).
        if context.now is not None and self.session_end > context.now:
            issues.append(SESSION_END_NOT_IN_FUTURE.at(
                "SessionEnd", now=context.now.isoformat(timespec="seconds")))
        external = CalibrationLawDataAvailability.EXTERNAL.value
        if context.calibration_law_of(self.evse_id) == external and not self.signed_metering_values:
            issues.append(SIGNED_VALUES_FOR_EXTERNAL_CALIBRATION.at(
                "SignedMeteringValues", evse_id=self.evse_id))
        return issues
