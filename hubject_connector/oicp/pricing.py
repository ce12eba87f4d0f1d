"""Dynamic pricing 1.0: eRoamingPushPricingProductData and eRoamingPushEVSEPricing.

A CPO first pushes its pricing products (tariffs) per EMP, or for every EMP with the
ProviderID "*", then assigns products to EVSEs. Prices are ``Decimal`` end to end; the spec
recommends pushing them without VAT (Services and Operations, eRoamingPushPricingProductData
best practices).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar

from hubject_connector.oicp.common import PRODUCT_ID_MAX
from hubject_connector.oicp.conformance import spec_rule
from hubject_connector.oicp.evse import ActionType, DayValue, Period
from hubject_connector.oicp.model import wire

PRICE_NOT_NEGATIVE = spec_rule(
    "price-not-negative",
    source="03 CPO Data Types, PricingProductDataType and PricingProductDataRecordType: a "
    "price per reference unit (FIXED FEE: \"SHOULD be set to zero\", the lowest price), which "
    "the OpenAPI leaves unbounded below",
    wording="must be at least 0",
)
AT_LEAST_ONE = spec_rule(
    "evse-pricing-not-empty",
    source="02 CPO Services and Operations, eRoamingPushEVSEPricing: EVSEPricing \"1...n\"; "
    "03 CPO Data Types, EVSEPricingType: EvseIDProductList \"1...n\" (the OpenAPI sets no "
    "minItems)",
    wording="has {count} items, needs at least 1",
)
PRODUCT_ID_UNIQUE = spec_rule(
    "product-id-unique",
    source="03 CPO Data Types, PricingProductDataRecordType, ProductID: \"A pricing product "
    "name (for identifying a tariff) that MUST be unique\"",
    wording="ProductID {product_id!r} is given more than once",
)


class ReferenceUnit(StrEnum):
    """Spec: "ReferenceUnitType" (the OpenAPI leaves it a free string; the text lists three)."""

    HOUR = "HOUR"
    KILOWATT_HOUR = "KILOWATT_HOUR"
    MINUTE = "MINUTE"


class AdditionalReferenceType(StrEnum):
    """Spec: "AdditionalReferenceType": price components on top of the base price."""

    START_FEE = "START FEE"
    #: One price for the whole session; PricePerReferenceUnit SHOULD then be zero.
    FIXED_FEE = "FIXED FEE"
    PARKING_FEE = "PARKING FEE"
    MINIMUM_FEE = "MINIMUM FEE"
    MAXIMUM_FEE = "MAXIMUM FEE"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductAvailabilityTimes:
    """Spec: "ProductAvailabilityTimesType": when a pricing product applies."""

    # The data-type table writes "Period"; the OpenAPI requires "Periods", as do the code
    # snippets and Hubject's service Swagger, so "Periods" is written and both are read.
    periods: list[Period] = wire("Periods", aliases=("Period",))
    on: DayValue = wire("on")


@dataclass(frozen=True, slots=True, kw_only=True)
class AdditionalReference:
    """Spec: "AdditionalReferencesType": one extra price component."""

    additional_reference: AdditionalReferenceType = wire("AdditionalReference")
    additional_reference_unit: ReferenceUnit = wire("AdditionalReferenceUnit")
    # In the product's currency (PRICE_NOT_NEGATIVE).
    price_per_additional_reference_unit: Decimal = wire(
        "PricePerAdditionalReferenceUnit", minimum=0
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PricingProductDataRecord:
    """Spec: "PricingProductDataRecordType": one pricing product (tariff)."""

    product_id: str = wire("ProductID", max_length=PRODUCT_ID_MAX)
    reference_unit: ReferenceUnit = wire("ReferenceUnit")
    # Spec: "CurrencyIDType", ISO 4217.
    product_price_currency: str = wire("ProductPriceCurrency", pattern="currency")
    # PRICE_NOT_NEGATIVE.
    price_per_reference_unit: Decimal = wire("PricePerReferenceUnit", minimum=0)
    # The spec says "A value in kWh"; it is the maximum charging power of the product
    # (evse.POWER_NOT_NEGATIVE).
    maximum_product_charging_power: Decimal = wire("MaximumProductChargingPower", minimum=0)
    # If false, the availability times SHOULD be given (a recommendation, not enforced).
    is_valid_24_hours: bool = wire("IsValid24hours")
    product_availability_times: list[ProductAvailabilityTimes] = wire(
        "ProductAvailabilityTimes"
    )
    additional_references: list[AdditionalReference] | None = wire(
        "AdditionalReferences", default=None
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PricingProductData:
    """Spec: "PricingProductDataType": an operator's products for one EMP (or "*" for all)."""

    operator_id: str = wire("OperatorID", pattern="OperatorID")
    operator_name: str | None = wire("OperatorName", default=None, max_length=100)
    provider_id: str = wire("ProviderID", pattern="ProviderID or *")
    # The price for sessions at EVSEs without an assigned product (PRICE_NOT_NEGATIVE).
    pricing_default_price: Decimal = wire("PricingDefaultPrice", minimum=0)
    pricing_default_price_currency: str = wire("PricingDefaultPriceCurrency", pattern="currency")
    pricing_default_reference_unit: ReferenceUnit = wire("PricingDefaultReferenceUnit")
    pricing_product_data_records: list[PricingProductDataRecord] = wire(
        "PricingProductDataRecords"
    )

    def oicp_issues(self) -> list[tuple[str, str]]:
        # Spec, PricingProductDataRecordType: ProductID is a name "that MUST be unique".
        counts = Counter(r.product_id for r in self.pricing_product_data_records)
        return [
            PRODUCT_ID_UNIQUE.at("PricingProductDataRecords", product_id=pid)
            for pid, n in counts.items()
            if n > 1
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class EvsePricing:
    """Spec: "EVSEPricingType": the products that apply at one EVSE for one EMP (or "*")."""

    evse_id: str = wire("EvseID", pattern="EvseID")
    provider_id: str = wire("ProviderID", pattern="ProviderID or *")
    # Spec: "EvseIDProductListType", 1..n ProductIDs (AT_LEAST_ONE).
    evse_id_product_list: list[str] = wire(
        "EvseIDProductList", max_length=PRODUCT_ID_MAX, min_items=1
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PushPricingProductData:
    """Spec: "eRoamingPushPricingProductData" (dynamic pricing 1.0): upload pricing products."""

    OICP_NAME: ClassVar[str] = "eRoamingPushPricingProductData"

    action_type: ActionType = wire("ActionType")
    pricing_product_data: PricingProductData = wire("PricingProductData")


@dataclass(frozen=True, slots=True, kw_only=True)
class PushEVSEPricing:
    """Spec: "eRoamingPushEVSEPricing" (dynamic pricing 1.0): assign products to EVSEs."""

    OICP_NAME: ClassVar[str] = "eRoamingPushEVSEPricing"

    action_type: ActionType = wire("ActionType")
    # Spec: "EVSEPricing", 1..n (AT_LEAST_ONE).
    evse_pricing: list[EvsePricing] = wire("EVSEPricing", min_items=1)
