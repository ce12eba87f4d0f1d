"""The official OpenAPI examples of the four pushes load, and survive a round trip."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from hubject_connector.oicp import codec
from hubject_connector.oicp.evse import (
    ActionType,
    DynamicInfoAvailable,
    EvseStatus,
    PushEvseData,
    PushEvseStatus,
)
from hubject_connector.oicp.pricing import PushEVSEPricing, PushPricingProductData

pytestmark = pytest.mark.spec

MODELS: list[type[Any]] = [PushEvseData, PushEvseStatus, PushPricingProductData, PushEVSEPricing]


def _example_body(schemas: dict[str, Any], model: type[Any]) -> bytes:
    # Through JSON text, as the example would arrive on the wire (numbers become Decimal).
    return json.dumps(schemas[model.OICP_NAME]["example"]).encode("utf-8")


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.OICP_NAME)
def test_official_example_loads_and_round_trips(
    cpo_schemas: dict[str, Any], model: type[Any]
) -> None:
    loaded = codec.decode(model, _example_body(cpo_schemas, model))
    assert isinstance(loaded, model)
    assert codec.decode(model, codec.encode(loaded)) == loaded


def test_evse_data_example_values(cpo_schemas: dict[str, Any]) -> None:
    push = codec.decode(PushEvseData, _example_body(cpo_schemas, PushEvseData))
    assert push.action_type is ActionType.FULL_LOAD
    data = push.operator_evse_data
    assert data.operator_id == "DE*ABC"
    # The example's EvseID belongs to another operator (DE*XYZ): that is Hubject's 018
    # check, not a data-type rule, so the model accepts it.
    (record,) = data.evse_data_records
    assert record.evse_id == "DE*XYZ*ETEST1"
    # Written "ChargingStationID" in the example, read into the one field.
    assert record.charging_station_id == "TEST 1"
    assert record.dynamic_info_available is DynamicInfoAvailable.TRUE
    assert record.environmental_impact is not None
    assert record.environmental_impact.co2_emission == Decimal("30.3")
    assert record.last_update is not None
    assert record.last_update.utcoffset() == timedelta(0)
    assert record.geo_coordinates.formats() == ["Google"]
    assert record.opening_times is not None
    assert record.opening_times[0].period[0].begin == "09:00"


def test_evse_status_example_values(cpo_schemas: dict[str, Any]) -> None:
    push = codec.decode(PushEvseStatus, _example_body(cpo_schemas, PushEvseStatus))
    (record,) = push.operator_evse_status.evse_status_records
    assert record.evse_status is EvseStatus.AVAILABLE


def test_pricing_examples_values(cpo_schemas: dict[str, Any]) -> None:
    products = codec.decode(
        PushPricingProductData, _example_body(cpo_schemas, PushPricingProductData)
    )
    data = products.pricing_product_data
    assert data.provider_id == "*"
    (record,) = data.pricing_product_data_records
    assert record.product_availability_times[0].periods[0].end == "18:00"
    assert isinstance(record.price_per_reference_unit, Decimal)

    assignment = codec.decode(PushEVSEPricing, _example_body(cpo_schemas, PushEVSEPricing))
    (evse,) = assignment.evse_pricing
    assert evse.evse_id_product_list == ["AC 1"]
