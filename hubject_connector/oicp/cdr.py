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

from hubject_connector.oicp.common import PARTNER_SESSION_ID_MAX, PRODUCT_ID_MAX, Identification
from hubject_connector.oicp.model import wire

#: Spec: meter values and energy are "Decimal (,3)", in kWh.
ENERGY_PLACES = 3
#: Spec: "In total you can provide maximum 10 metering signature values".
SIGNED_METERING_VALUES_MAX = 10


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


def time_order_issues(
    start: datetime | None, end: datetime | None, start_key: str, end_key: str
) -> list[tuple[str, str]]:
    """An issue on ``end_key`` when both times are given and ``end`` lies before ``start``.

    Both carry offsets, so the comparison is between instants, whatever the time zones.
    """
    if start is not None and end is not None and end < start:
        return [(end_key, f"must not be before {start_key}")]
    return []


def consumed_energy_issues(
    consumed: Decimal | None, meter_start: Decimal | None, meter_end: Decimal | None
) -> list[tuple[str, str]]:
    """An issue on ConsumedEnergy when it is not MeterValueEnd - MeterValueStart.

    Spec: ConsumedEnergy is "The difference between MeterValueEnd and MeterValueStart in
    kWh"; the EMP bills by it, so a record that contradicts its own meter values is refused.
    """
    if consumed is None or meter_start is None or meter_end is None:
        return []
    expected = meter_end - meter_start
    if consumed != expected:
        return [
            (
                "ConsumedEnergy",
                f"must be MeterValueEnd - MeterValueStart = {expected} (got {consumed})",
            )
        ]
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
    consumed_energy: Decimal = wire("ConsumedEnergy", places=ENERGY_PLACES, minimum=0)
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
            *time_order_issues(
                self.charging_start, self.charging_end, "ChargingStart", "ChargingEnd"
            ),
            *time_order_issues(self.session_start, self.session_end, "SessionStart", "SessionEnd"),
            *consumed_energy_issues(
                self.consumed_energy, self.meter_value_start, self.meter_value_end
            ),
        ]
