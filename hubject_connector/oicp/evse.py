"""EVSE master data and EVSE status: eRoamingPushEvseData 2.3 and eRoamingPushEvseStatus 2.1.

Field names, mandatory flags and length limits follow the OICP 2.3 CPO data-type tables
(03_CPO_Data_Types, "EvseDataRecordType" and the types it uses). Where the official OpenAPI
is stricter (integer ranges written as ``maximum``, which a JSON-schema validator does
enforce on numbers), the stricter bound is kept, so that every record these models accept
is also valid against the OpenAPI.

Not checked here: that each EvseID belongs to the pushing OperatorID ("Hubject checks
whether the given CPO's OperatorID or Sub-OperatorIDs ... matches every given EvseID ...
responds with the status code 018"). That needs to know who sends and which sub-operators
Hubject has configured for it: ``context.check_context`` checks it before sending.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar, Final

from hubject_connector.oicp.conformance import spec_rule
from hubject_connector.oicp.model import given_keys, one_of_issues, wire

GEO_ONE_FORMAT = spec_rule(
    "geo-one-format",
    source="03 CPO Data Types, GeoCoordinatesType: \"One of the following three options MUST "
    "be provided\"",
    wording="exactly one of Google, DecimalDegree, DegreeMinuteSeconds must be given "
    "(got {formats})",
)
GEO_RANGE = spec_rule(
    "geo-range",
    source="03 CPO Data Types, GeoCoordinates*Type: \"Based on WGS84\" (latitude -90 to 90, "
    "longitude -180 to 180 degrees; the patterns admit up to 199.999999); 02 CPO Services "
    "and Operations, eRoamingEvseData Best Practices: \"longitude and latitude has not been "
    "swapped\"",
    wording="{axis} must be between {low} and {high} degrees (got {value})",
)
GEO_MINUTES_SECONDS = spec_rule(
    "geo-minutes-seconds",
    source="03 CPO Data Types, GeoCoordinatesDegreeMinuteSecondsFormatType: degrees, minutes "
    "and seconds (the pattern admits up to 99 minutes and seconds)",
    wording="minutes and seconds must be below 60 (got {value})",
)
NO_PAYMENT_ALONE = spec_rule(
    "no-payment-alone",
    source="03 CPO Data Types, PaymentOptionType: \"No Payment can not be combined with other "
    "payment option\"",
    wording="'No Payment' cannot be combined with another payment option",
)
OPENING_TIMES_WHEN_NOT_24_HOURS = spec_rule(
    "opening-times-when-not-24-hours",
    source="03 CPO Data Types, EvseDataRecordType, OpeningTimes (M/O): \"Opening time in "
    "case that the charging station cannot be accessed around the clock\"",
    wording="is mandatory when IsOpen24Hours is false",
)
RENEWABLE_ENERGY_CONSISTENT = spec_rule(
    "renewable-energy-consistent",
    source="03 CPO Data Types, EvseDataRecordType, RenewableEnergy: \"If the Charging Station "
    "provides only renewable energy then the value MUST be true, if it use grey energy then "
    "value MUST be false\"",
    wording="must be false: EnergySource lists {energy}, which is not renewable",
)
POWER_NOT_NEGATIVE = spec_rule(
    "power-not-negative",
    source="03 CPO Data Types, ChargingFacilityType Power (kW), EvseDataRecordType MaxCapacity "
    "(kWh), PricingProductDataRecordType MaximumProductChargingPower: amounts of power or "
    "energy, which the OpenAPI leaves unbounded below",
    wording="must be at least 0",
)

_LATITUDE: Final = ("Latitude", Decimal(-90), Decimal(90))
_LONGITUDE: Final = ("Longitude", Decimal(-180), Decimal(180))
# Spec: GeoCoordinatesGoogleFormatType, "latitude and longitude (in this sequence)".
_GOOGLE: Final = re.compile(
    r"(?P<lat>-?1?\d{1,2}\.\d{1,6})\s*,?\s*(?P<lon>-?1?\d{1,2}\.\d{1,6})", re.ASCII
)
_DMS: Final = re.compile(
    r"(?P<sign>-?)(?P<deg>1?\d{1,2})°[ ]?(?P<min>\d{1,2})'[ ]?(?P<sec>\d{1,2}\.\d+)''",
    re.ASCII,
)


def _range_issues(
    key: str, axis: tuple[str, Decimal, Decimal], value: Decimal, text: str
) -> list[tuple[str, str]]:
    name, low, high = axis
    if low <= value <= high:
        return []
    return [GEO_RANGE.at(key, axis=name.lower(), low=low, high=high, value=text)]


def _dms_issues(key: str, axis: tuple[str, Decimal, Decimal], text: str) -> list[tuple[str, str]]:
    match = _DMS.fullmatch(text)
    if match is None:  # the pattern was checked first; nothing more to say
        return []
    minutes, seconds = Decimal(match["min"]), Decimal(match["sec"])
    if minutes >= 60 or seconds >= 60:
        return [GEO_MINUTES_SECONDS.at(key, value=text)]
    value = Decimal(match["deg"]) + minutes / 60 + seconds / 3600
    return _range_issues(key, axis, -value if match["sign"] else value, text)

# --- enumerations ------------------------------------------------------------------------


class ActionType(StrEnum):
    """Spec: "ActionType" of every push (EVSE data, EVSE status, pricing)."""

    FULL_LOAD = "fullLoad"
    UPDATE = "update"
    INSERT = "insert"
    DELETE = "delete"


class DeltaType(StrEnum):
    """Spec: EvseDataRecord "deltaType" (set by Hubject on pulls with LastCall)."""

    UPDATE = "update"
    INSERT = "insert"
    DELETE = "delete"


class DayValue(StrEnum):
    """Spec: "on" of OpeningTimesType and ProductAvailabilityTimesType."""

    EVERYDAY = "Everyday"
    #: Monday to Friday.
    WORKDAYS = "Workdays"
    #: Saturday and Sunday.
    WEEKEND = "Weekend"
    MONDAY = "Monday"
    TUESDAY = "Tuesday"
    WEDNESDAY = "Wednesday"
    THURSDAY = "Thursday"
    FRIDAY = "Friday"
    SATURDAY = "Saturday"
    SUNDAY = "Sunday"


class PlugType(StrEnum):
    """Spec: "PlugType"."""

    SMALL_PADDLE_INDUCTIVE = "Small Paddle Inductive"
    LARGE_PADDLE_INDUCTIVE = "Large Paddle Inductive"
    AVCON_CONNECTOR = "AVCON Connector"
    TESLA_CONNECTOR = "Tesla Connector"
    NEMA_5_20 = "NEMA 5-20"
    TYPE_E_FRENCH_STANDARD = "Type E French Standard"
    TYPE_F_SCHUKO = "Type F Schuko"
    TYPE_G_BRITISH_STANDARD = "Type G British Standard"
    TYPE_J_SWISS_STANDARD = "Type J Swiss Standard"
    TYPE_1_CONNECTOR_CABLE_ATTACHED = "Type 1 Connector (Cable Attached)"
    TYPE_2_OUTLET = "Type 2 Outlet"
    TYPE_2_CONNECTOR_CABLE_ATTACHED = "Type 2 Connector (Cable Attached)"
    TYPE_3_OUTLET = "Type 3 Outlet"
    IEC_60309_SINGLE_PHASE = "IEC 60309 Single Phase"
    IEC_60309_THREE_PHASE = "IEC 60309 Three Phase"
    CCS_COMBO_2_PLUG_CABLE_ATTACHED = "CCS Combo 2 Plug (Cable Attached)"
    CCS_COMBO_1_PLUG_CABLE_ATTACHED = "CCS Combo 1 Plug (Cable Attached)"
    CHADEMO = "CHAdeMO"


class PowerType(StrEnum):
    """Spec: "PowerType" of a charging facility."""

    AC_1_PHASE = "AC_1_PHASE"
    AC_3_PHASE = "AC_3_PHASE"
    DC = "DC"


class ChargingMode(StrEnum):
    """Spec: "ChargingModeType" (IEC 61851-1 modes, CHAdeMO)."""

    MODE_1 = "Mode_1"
    MODE_2 = "Mode_2"
    MODE_3 = "Mode_3"
    MODE_4 = "Mode_4"
    CHADEMO = "CHAdeMO"


class EnergyType(StrEnum):
    """Spec: "EnergyType" of an energy source."""

    SOLAR = "Solar"
    WIND = "Wind"
    HYDRO_POWER = "HydroPower"
    GEOTHERMAL_ENERGY = "GeothermalEnergy"
    BIOMASS = "Biomass"
    COAL = "Coal"
    NUCLEAR_ENERGY = "NuclearEnergy"
    PETROLEUM = "Petroleum"
    NATURAL_GAS = "NaturalGas"


#: The energy types that are not renewable ("grey energy").
GREY_ENERGY: Final = frozenset(
    {EnergyType.COAL, EnergyType.NUCLEAR_ENERGY, EnergyType.PETROLEUM, EnergyType.NATURAL_GAS}
)


class CalibrationLawDataAvailability(StrEnum):
    """Spec: "CalibrationLawDataAvailabilityType" (German calibration law, Eichrecht)."""

    LOCAL = "Local"
    EXTERNAL = "External"
    NOT_AVAILABLE = "Not Available"


class AuthenticationMode(StrEnum):
    """Spec: "AuthenticationModeType"."""

    NFC_RFID_CLASSIC = "NFC RFID Classic"
    NFC_RFID_DESFIRE = "NFC RFID DESFire"
    PNC = "PnC"
    REMOTE = "REMOTE"
    DIRECT_PAYMENT = "Direct Payment"
    NO_AUTHENTICATION_REQUIRED = "No Authentication Required"


class PaymentOption(StrEnum):
    """Spec: "PaymentOptionType". "No Payment" cannot be combined with another option."""

    NO_PAYMENT = "No Payment"
    DIRECT = "Direct"
    CONTRACT = "Contract"


class ValueAddedService(StrEnum):
    """Spec: "ValueAddedServiceType"."""

    RESERVATION = "Reservation"
    DYNAMIC_PRICING = "DynamicPricing"
    PARKING_SENSORS = "ParkingSensors"
    MAXIMUM_POWER_CHARGING = "MaximumPowerCharging"
    PREDICTIVE_CHARGE_POINT_USAGE = "PredictiveChargePointUsage"
    CHARGING_PLANS = "ChargingPlans"
    ROOF_PROVIDED = "RoofProvided"
    NONE = "None"


class Accessibility(StrEnum):
    """Spec: "AccessibilityType"."""

    FREE_PUBLICLY_ACCESSIBLE = "Free publicly accessible"
    RESTRICTED_ACCESS = "Restricted access"
    PAYING_PUBLICLY_ACCESSIBLE = "Paying publicly accessible"
    TEST_STATION = "Test Station"


class AccessibilityLocation(StrEnum):
    """Spec: "AccessibilityLocationType"."""

    ON_STREET = "OnStreet"
    PARKING_LOT = "ParkingLot"
    PARKING_GARAGE = "ParkingGarage"
    UNDERGROUND_PARKING_GARAGE = "UndergroundParkingGarage"


class DynamicInfoAvailable(StrEnum):
    """Spec: EvseDataRecord "DynamicInfoAvailable": the strings "true", "false", "auto".

    A JSON string, not a boolean: the OpenAPI enum is ``'true'``/``'false'``/``auto``.
    """

    TRUE = "true"
    FALSE = "false"
    #: Hubject sets it to true if the operator pushes EVSE status data.
    AUTO = "auto"


class EvseStatus(StrEnum):
    """Spec: "EvseStatusType"."""

    AVAILABLE = "Available"
    RESERVED = "Reserved"
    OCCUPIED = "Occupied"
    OUT_OF_SERVICE = "OutOfService"
    EVSE_NOT_FOUND = "EvseNotFound"
    UNKNOWN = "Unknown"


# --- small structures --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class InfoText:
    """Spec: "InfoTextType": a text and its language."""

    lang: str = wire("lang", pattern="language code")
    value: str = wire("value", max_length=150)


@dataclass(frozen=True, slots=True, kw_only=True)
class Period:
    """Spec: "PeriodType": one opening (or product availability) period, "hh:mm" to "hh:mm"."""

    begin: str = wire("begin", pattern="hh:mm")
    end: str = wire("end", pattern="hh:mm")


@dataclass(frozen=True, slots=True, kw_only=True)
class OpeningTimes:
    """Spec: "OpeningTimesType": periods on a day (or group of days)."""

    period: list[Period] = wire("Period")
    on: DayValue = wire("on")


@dataclass(frozen=True, slots=True, kw_only=True)
class Address:
    """Spec: "AddressIso19773Type"."""

    # Spec: "CountryCodeType", ISO 3166-1 alpha-3 only as of OICP 2.2.
    country: str = wire("Country", pattern="country code")
    city: str = wire("City", min_length=1, max_length=50)
    # The best-practice table: a shorter street is to be padded with underscores.
    street: str = wire("Street", min_length=2, max_length=100)
    postal_code: str = wire("PostalCode", max_length=10)
    house_num: str = wire("HouseNum", max_length=10)
    floor: str | None = wire("Floor", default=None, max_length=5)
    region: str | None = wire("Region", default=None, max_length=50)
    parking_facility: bool | None = wire("ParkingFacility", default=None)
    parking_spot: str | None = wire("ParkingSpot", default=None, max_length=5)
    # Spec: "TimeZoneType", e.g. "UTC+01:00".
    time_zone: str | None = wire("TimeZone", default=None, pattern="TimeZone")


@dataclass(frozen=True, slots=True, kw_only=True)
class GeoCoordinatesGoogle:
    """Spec: "GeoCoordinatesGoogleType": "latitude longitude" in one string."""

    # The data-type table misspells the key "Coordinatea"; the OpenAPI and every example
    # use "Coordinates".
    coordinates: str = wire("Coordinates", pattern="Google geo coordinates")

    def oicp_issues(self) -> list[tuple[str, str]]:
        match = _GOOGLE.fullmatch(self.coordinates)
        if match is None:  # the pattern was checked first
            return []
        return [
            *_range_issues("Coordinates", _LATITUDE, Decimal(match["lat"]), self.coordinates),
            *_range_issues("Coordinates", _LONGITUDE, Decimal(match["lon"]), self.coordinates),
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class GeoCoordinatesDecimalDegree:
    """Spec: "GeoCoordinatesDecimalDegreeType"."""

    longitude: str = wire("Longitude", pattern="decimal degree")
    latitude: str = wire("Latitude", pattern="decimal degree")

    def oicp_issues(self) -> list[tuple[str, str]]:
        return [
            *_range_issues("Longitude", _LONGITUDE, Decimal(self.longitude), self.longitude),
            *_range_issues("Latitude", _LATITUDE, Decimal(self.latitude), self.latitude),
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class GeoCoordinatesDegreeMinuteSeconds:
    """Spec: "GeoCoordinatesDegreeMinuteSecondsType", e.g. ``9°21'39.32''``."""

    longitude: str = wire("Longitude", pattern="degree-minute-second")
    latitude: str = wire("Latitude", pattern="degree-minute-second")

    def oicp_issues(self) -> list[tuple[str, str]]:
        return [
            *_dms_issues("Longitude", _LONGITUDE, self.longitude),
            *_dms_issues("Latitude", _LATITUDE, self.latitude),
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class GeoCoordinates:
    """Spec: "GeoCoordinatesType": exactly one of three formats, based on WGS84."""

    google: GeoCoordinatesGoogle | None = wire("Google", default=None)
    decimal_degree: GeoCoordinatesDecimalDegree | None = wire("DecimalDegree", default=None)
    degree_minute_seconds: GeoCoordinatesDegreeMinuteSeconds | None = wire(
        "DegreeMinuteSeconds", default=None
    )

    def formats(self) -> list[str]:
        """The JSON names of the formats that are set."""
        return given_keys(self)

    def oicp_issues(self) -> list[tuple[str, str]]:
        # Spec, GeoCoordinatesType: "One of the following three options MUST be provided"
        # (GEO_ONE_FORMAT, worded by ``one_of_issues``).
        return one_of_issues(self, "of Google, DecimalDegree, DegreeMinuteSeconds")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargingFacility:
    """Spec: "ChargingFacilityType".

    The field lengths (Voltage 3, Amperage 2, Power 3 digits) are the OpenAPI's integer
    ranges 0-999, 0-99 and 0-999.
    """

    power_type: PowerType = wire("PowerType")
    # Line to neutral, in volts.
    voltage: int | None = wire("Voltage", default=None, minimum=0, maximum=999)
    amperage: int | None = wire("Amperage", default=None, minimum=0, maximum=99)
    # In kW. An integer in the text and in the CPO OpenAPI (POWER_NOT_NEGATIVE).
    power: int = wire("Power", minimum=0, maximum=999)
    # The data-type table writes "Charging Modes"; the OpenAPI and examples "ChargingModes".
    charging_modes: list[ChargingMode] | None = wire("ChargingModes", default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class EnergySource:
    """Spec: "EnergySourceType": a share of the supplied energy."""

    energy: EnergyType | None = wire("Energy", default=None)
    # Field length 2: the OpenAPI range is 0-99.
    percentage: int | None = wire("Percentage", default=None, minimum=0, maximum=99)


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvironmentalImpact:
    """Spec: "EnvironmentalImpactType", in g/kWh.

    Field length 5: the OpenAPI maximum is 99999; Hubject's service Swagger sets minimum 0.
    """

    co2_emission: Decimal | None = wire("CO2Emission", default=None, minimum=0, maximum=99999)
    nuclear_waste: Decimal | None = wire(
        "NuclearWaste", default=None, minimum=0, maximum=99999
    )


# --- EVSE data ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class EvseDataRecord:
    """Spec: "EvseDataRecordType": the master data of one charging spot."""

    # Set by Hubject on pulls; a CPO normally leaves both out.
    delta_type: DeltaType | None = wire("deltaType", default=None)
    last_update: datetime | None = wire("lastUpdate", default=None)
    evse_id: str = wire("EvseID", pattern="EvseID")
    charging_pool_id: str | None = wire("ChargingPoolID", default=None, pattern="ChargingPoolID")
    # The CPO data-type table and OpenAPI spell "ChargingStationId"; the examples, the EMP
    # table and Hubject's service Swagger "ChargingStationID".
    charging_station_id: str | None = wire(
        "ChargingStationId", default=None, max_length=50, aliases=("ChargingStationID",)
    )
    charging_station_names: list[InfoText] = wire("ChargingStationNames")
    hardware_manufacturer: str | None = wire("HardwareManufacturer", default=None, max_length=50)
    # A URL of an image of the EVSE.
    charging_station_image: str | None = wire(
        "ChargingStationImage", default=None, max_length=200
    )
    sub_operator_name: str | None = wire("SubOperatorName", default=None, max_length=100)
    address: Address = wire("Address")
    geo_coordinates: GeoCoordinates = wire("GeoCoordinates")
    plugs: list[PlugType] = wire("Plugs")
    dynamic_power_level: bool | None = wire("DynamicPowerLevel", default=None)
    charging_facilities: list[ChargingFacility] = wire("ChargingFacilities")
    # True only if the station supplies renewable energy alone.
    renewable_energy: bool = wire("RenewableEnergy")
    energy_source: list[EnergySource] | None = wire("EnergySource", default=None)
    environmental_impact: EnvironmentalImpact | None = wire("EnvironmentalImpact", default=None)
    calibration_law_data_availability: CalibrationLawDataAvailability = wire(
        "CalibrationLawDataAvailability"
    )
    authentication_modes: list[AuthenticationMode] = wire("AuthenticationModes")
    # In kWh, for EVSEs with a limited capacity (e.g. a built-in battery) (POWER_NOT_NEGATIVE).
    max_capacity: int | None = wire("MaxCapacity", default=None, minimum=0)
    payment_options: list[PaymentOption] = wire("PaymentOptions")
    value_added_services: list[ValueAddedService] = wire("ValueAddedServices")
    accessibility: Accessibility = wire("Accessibility")
    accessibility_location: AccessibilityLocation | None = wire(
        "AccessibilityLocation", default=None
    )
    # Spec: "PhoneNumberType", "+" and 5 to 15 digits.
    hotline_phone_number: str = wire("HotlinePhoneNumber", pattern="phone number")
    additional_info: list[InfoText] | None = wire("AdditionalInfo", default=None)
    # Last metres to the charging station.
    charging_station_location_reference: list[InfoText] | None = wire(
        "ChargingStationLocationReference", default=None
    )
    # The entrance of the bigger facility (e.g. a car park) the spot is part of.
    geo_charging_point_entrance: GeoCoordinates | None = wire(
        "GeoChargingPointEntrance", default=None
    )
    is_open_24_hours: bool = wire("IsOpen24Hours")
    opening_times: list[OpeningTimes] | None = wire("OpeningTimes", default=None)
    hub_operator_id: str | None = wire("HubOperatorID", default=None, pattern="OperatorID")
    clearinghouse_id: str | None = wire("ClearinghouseID", default=None, max_length=20)
    # False: the spot cannot be started or stopped remotely via Hubject.
    is_hubject_compatible: bool = wire("IsHubjectCompatible")
    dynamic_info_available: DynamicInfoAvailable = wire("DynamicInfoAvailable")

    def oicp_issues(self) -> list[tuple[str, str]]:
        issues: list[tuple[str, str]] = []
        # Spec, PaymentOptionType: "No Payment can not be combined with other payment option".
        if PaymentOption.NO_PAYMENT in self.payment_options and len(set(self.payment_options)) > 1:
            issues.append(NO_PAYMENT_ALONE.at("PaymentOptions"))
        # Spec, EvseDataRecordType: OpeningTimes is "M/O", the opening times "in case that
        # the charging station cannot be accessed around the clock".
        if not self.is_open_24_hours and not self.opening_times:
            issues.append(OPENING_TIMES_WHEN_NOT_24_HOURS.at("OpeningTimes"))
        # Spec, RenewableEnergy: true only for renewable energy alone. A share of 0 % of a
        # grey source is no grey energy.
        grey = [
            source.energy.value
            for source in self.energy_source or ()
            if source.energy in GREY_ENERGY and source.percentage != 0
        ]
        if self.renewable_energy and grey:
            issues.append(RENEWABLE_ENERGY_CONSISTENT.at("RenewableEnergy", energy=grey[0]))
        return issues


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorEvseData:
    """Spec: "OperatorEvseDataType": one operator's EVSE records (0..n)."""

    operator_id: str = wire("OperatorID", pattern="OperatorID")
    operator_name: str = wire("OperatorName", max_length=100)
    evse_data_records: list[EvseDataRecord] = wire("EvseDataRecord")


@dataclass(frozen=True, slots=True, kw_only=True)
class PushEvseData:
    """Spec: "eRoamingPushEvseData" (EVSE data service 2.3): upload EVSE master data."""

    OICP_NAME: ClassVar[str] = "eRoamingPushEvseData"

    action_type: ActionType = wire("ActionType")
    operator_evse_data: OperatorEvseData = wire("OperatorEvseData")


# --- EVSE status -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class EvseStatusRecord:
    """Spec: "EvseStatusRecordType"."""

    evse_id: str = wire("EvseID", pattern="EvseID")
    evse_status: EvseStatus = wire("EvseStatus")


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorEvseStatus:
    """Spec: "OperatorEvseStatusType": one operator's status records (0..n)."""

    operator_id: str = wire("OperatorID", pattern="OperatorID")
    operator_name: str | None = wire("OperatorName", default=None, max_length=100)
    evse_status_records: list[EvseStatusRecord] = wire("EvseStatusRecord")


@dataclass(frozen=True, slots=True, kw_only=True)
class PushEvseStatus:
    """Spec: "eRoamingPushEvseStatus" (EVSE status service 2.1): upload EVSE status."""

    OICP_NAME: ClassVar[str] = "eRoamingPushEvseStatus"

    action_type: ActionType = wire("ActionType")
    operator_evse_status: OperatorEvseStatus = wire("OperatorEvseStatus")
