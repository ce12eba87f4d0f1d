"""What the OICP model refuses is told at the contract field the backend sent, in its words."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hubject_connector.bus.contract import ContractIssue, MessageType
from hubject_connector.errors import ConnectorError, OicpError
from hubject_connector.translate.outbound import (
    Context,
    TranslationError,
    authorize_start,
    charge_detail_record,
    evse_pricing,
    evse_record,
    notification,
    pricing_products,
    push_evse_data,
    push_evse_status,
)
from tests.unit.translate.conftest import Example

T = MessageType


def issues_of(call: Callable[[], object]) -> list[tuple[str, str]]:
    """The (pointer, message) pairs of the TranslationError that ``call`` raises."""
    with pytest.raises(TranslationError) as info:
        call()
    return [(issue.pointer, issue.message) for issue in info.value.issues]


def told(call: Callable[[], object], pointer: str, *words: str) -> str:
    """The one issue ``call`` raises, at ``pointer``, naming each of ``words``.

    For rules worded by the OICP layer: what matters here is where they point and that they
    speak of the contract's fields, not the OICP names the backend never sees.
    """
    ((where, message),) = issues_of(call)
    assert where == pointer, message
    for word in words:
        assert word in message, message
    return message


def pointers_of(call: Callable[[], object]) -> list[str]:
    """The pointers of the TranslationError that ``call`` raises."""
    return [pointer for pointer, _ in issues_of(call)]


def test_a_translation_error_is_a_permanent_data_error() -> None:
    error = TranslationError(
        [ContractIssue("/data/b", "is wrong"), ContractIssue("/data/a", "is required"),
         ContractIssue("/data/a", "is required")]
    )
    assert isinstance(error, OicpError)
    assert isinstance(error, ConnectorError)
    assert not error.transient
    assert error.status_code == "022"
    assert str(error) == "/data/a: is required; /data/b: is wrong"


def test_consumed_energy_that_contradicts_the_meter(example: Example, ctx: Context) -> None:
    data = example(T.CDR)
    data["consumed_energy"] = "22.000"
    message = told(lambda: charge_detail_record(data, ctx), "/data/consumed_energy",
                   "meter_value_end", "meter_value_start", "22.345")
    assert "MeterValue" not in message


def test_an_end_before_its_start(example: Example, ctx: Context) -> None:
    data = example(T.CDR)
    data["session_end"] = "2024-05-01T14:00:00+02:00"
    message = told(lambda: charge_detail_record(data, ctx), "/data/session_end", "session_start")
    assert "SessionStart" not in message


def test_energy_with_four_places(example: Example, ctx: Context) -> None:
    data = example(T.NOTIFICATION_END)
    del data["meter_value_end"]
    data["consumed_energy"] = "22.3456"
    told(lambda: notification(T.NOTIFICATION_END, data, ctx), "/data/consumed_energy", "3")


def test_a_meter_value_in_between(example: Example, ctx: Context) -> None:
    data = example(T.CDR)
    data["meter_values_in_between"][1] = "1245.0125"
    assert pointers_of(lambda: charge_detail_record(data, ctx)) == [
        "/data/meter_values_in_between/1"
    ]


def test_a_decimal_sent_as_a_number(example: Example, ctx: Context) -> None:
    data = example(T.CDR)
    data["consumed_energy"] = 22.345
    assert issues_of(lambda: charge_detail_record(data, ctx)) == [
        ("/data/consumed_energy", 'must be a string holding a decimal number (e.g. "12.345")')
    ]


def test_a_missing_field_is_required(example: Example, ctx: Context) -> None:
    data = example(T.CDR)
    del data["session_id"]
    assert issues_of(lambda: charge_detail_record(data, ctx)) == [
        ("/data/session_id", "is required")
    ]


def test_a_field_no_oicp_field_takes_is_not_dropped(example: Example, ctx: Context) -> None:
    data = example(T.CDR)
    data["tariff"] = "cheap"
    assert issues_of(lambda: charge_detail_record(data, ctx)) == [
        ("/data/tariff", "is not allowed here")
    ]


def test_a_progress_without_duration_or_energy(example: Example, ctx: Context) -> None:
    data = example(T.NOTIFICATION_PROGRESS)
    del data["charging_duration_ms"], data["consumed_energy_progress"]
    told(lambda: notification(T.NOTIFICATION_PROGRESS, data, ctx), "/data",
         "charging_duration_ms", "consumed_energy_progress")


def test_a_negative_duration(example: Example, ctx: Context) -> None:
    data = example(T.NOTIFICATION_PROGRESS)
    data["charging_duration_ms"] = -1
    told(lambda: notification(T.NOTIFICATION_PROGRESS, data, ctx),
         "/data/charging_duration_ms", "0")


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        (lambda e: e["plugs"].append("Type 9"), "/data/evse/plugs/1"),
        (lambda e: e["geo_coordinates"].update(latitude="52,52"),
         "/data/evse/geo_coordinates/latitude"),
        (lambda e: e["opening_times"][1]["periods"][0].update(begin="25:00"),
         "/data/evse/opening_times/1/periods/0/begin"),
        (lambda e: e["charging_facilities"][0].update(power=1000),
         "/data/evse/charging_facilities/0/power"),
        (lambda e: e["address"].update(house_num="12345678901"), "/data/evse/address/house_num"),
        (lambda e: e["charging_station_names"][0].update(lang="German"),
         "/data/evse/charging_station_names/0/lang"),
        (lambda e: e["environmental_impact"].update(co2_emission="100000"),
         "/data/evse/environmental_impact/co2_emission"),
        (lambda e: e.update(payment_options=["No Payment", "Contract"]),
         "/data/evse/payment_options"),
        (lambda e: e.pop("opening_times"), "/data/evse/opening_times"),
    ],
)
def test_evse_record_problems_point_into_the_record(
    example: Example, ctx: Context, change: Callable[[dict[str, Any]], object], pointer: str
) -> None:
    evse = example(T.EVSE_UPSERT)["evse"]
    change(evse)
    assert pointers_of(lambda: evse_record(evse, ctx)) == [pointer]


def test_cross_field_rules_of_the_record_use_contract_names(
    example: Example, ctx: Context
) -> None:
    evse = example(T.EVSE_UPSERT)["evse"]
    del evse["opening_times"]
    message = told(lambda: evse_record(evse, ctx), "/data/evse/opening_times",
                   "is_open_24_hours")
    assert "IsOpen24Hours" not in message


def test_a_record_of_a_full_load_is_pointed_at_by_its_place(
    example: Example, ctx: Context
) -> None:
    evses = example(T.EVSE_FULL_LOAD)["evses"]
    evses[1]["charging_facilities"][0]["power"] = 1000
    assert pointers_of(lambda: evse_record(evses[1], ctx, at="/data/evses/1")) == [
        "/data/evses/1/charging_facilities/0/power"
    ]


@pytest.mark.parametrize(
    ("identification", "expected"),
    [
        ({"kind": "badge", "uid": "1234ABCD"},
         [("/data/identification/kind", 'must be one of: "rfid_mifare_family", "rfid", '
                                        '"qr_code", "plug_and_charge", "remote"')]),
        ({"uid": "1234ABCD"}, [("/data/identification/kind", "is required")]),
        ({"kind": "remote", "evco_id": "DE-8PS-C12345678-9", "uid": "1234ABCD"},
         [("/data/identification/uid", "is not allowed here")]),
    ],
)
def test_identification_problems(
    example: Example, ctx: Context, identification: dict[str, Any],
    expected: list[tuple[str, str]],
) -> None:
    data = example(T.AUTHORIZATION_START_REQUEST)
    data["identification"] = identification
    assert issues_of(lambda: authorize_start(data, ctx)) == expected


def test_a_bad_uid(example: Example, ctx: Context) -> None:
    data = example(T.AUTHORIZATION_START_REQUEST)
    data["identification"] = {"kind": "rfid_mifare_family", "uid": "1234abcd"}
    told(lambda: authorize_start(data, ctx), "/data/identification/uid", "UID")


def test_a_card_with_its_type_is_not_for_authorization(example: Example, ctx: Context) -> None:
    data = example(T.AUTHORIZATION_START_REQUEST)
    data["identification"] = {"kind": "rfid", "uid": "1234ABCD", "rfid_type": "nfc"}
    ((pointer, message),) = issues_of(lambda: authorize_start(data, ctx))
    assert pointer == "/data/identification"
    # The OICP rule's own words, told with the contract's names.
    assert message.startswith('kind "rfid" ')
    assert "authorization" in message
    assert 'kind "rfid_mifare_family"' in message
    assert "Identification" not in message


def test_a_qr_code_needs_its_pin_in_clear_for_authorization(
    example: Example, ctx: Context
) -> None:
    data = example(T.AUTHORIZATION_START_REQUEST)
    data["identification"] = {
        "kind": "qr_code", "evco_id": "DE-8PS-C12345678-9",
        "hashed_pin": {"value": "$2a$10$Z3J0ZXN0c2FsdA.h3sP1n", "function": "Bcrypt"},
    }
    ((pointer, message),) = issues_of(lambda: authorize_start(data, ctx))
    assert pointer in ("/data/identification", "/data/identification/pin")
    assert "pin" in message
    assert "PIN" not in message


def test_every_problem_is_reported_at_once(example: Example, ctx: Context) -> None:
    data = example(T.CDR)
    data["evse_id"] = "DE*ABC*X1"
    data["cpo_partner_session_id"] = "x" * 251
    data["identification"]["uid"] = "123"
    assert pointers_of(lambda: charge_detail_record(data, ctx)) == [
        "/data/cpo_partner_session_id", "/data/evse_id", "/data/identification/uid"
    ]


def test_an_operator_name_over_the_limit(example: Example, ctx: Context) -> None:
    record = evse_record(example(T.EVSE_UPSERT)["evse"], ctx)
    told(lambda: push_evse_data("update", "DE*ABC", "N" * 101, [record]),
         "/data/operator_name", "100")
    assert pointers_of(lambda: push_evse_data("update", "DE ABC", "N", [record])) == [
        "/data/operator_id"
    ]


def test_a_status_batch_says_which_entry(ctx: Context) -> None:
    pairs = [("DE*ABC*E1", "Available"), ("DE*ABC*E2", "Broken"), ("DE-ABC-E3", "Occupied")]
    (evse_id, evse_id_message), (status, status_message) = issues_of(
        lambda: push_evse_status("update", "DE*ABC", "", pairs)
    )
    assert (evse_id, status) == ("/data/evse_id", "/data/status")
    assert evse_id_message.endswith(" (entry 2 of the batch, EvseID 'DE-ABC-E3')")
    assert "EvseID pattern" in evse_id_message
    assert status_message.endswith(" (entry 1 of the batch, EvseID 'DE*ABC*E2')")
    assert "Occupied" in status_message


def test_a_product_given_twice(example: Example, ctx: Context) -> None:
    data = example(T.PRICING_PRODUCTS)
    records = data["pricing_product_data_records"]
    records.append(dict(records[0]))
    message = told(lambda: pricing_products(data, ctx), "/data/pricing_product_data_records",
                   "product_id", "AC 22kW")
    assert "ProductID" not in message


def test_pricing_problems_point_into_the_lists(example: Example, ctx: Context) -> None:
    products = example(T.PRICING_PRODUCTS)
    products["pricing_product_data_records"][0]["product_availability_times"][0]["on"] = "Daily"
    assert pointers_of(lambda: pricing_products(products, ctx)) == [
        "/data/pricing_product_data_records/0/product_availability_times/0/on"
    ]
    del products["action_type"]
    products["pricing_product_data_records"][0]["product_availability_times"][0]["on"] = "Monday"
    assert issues_of(lambda: pricing_products(products, ctx)) == [
        ("/data/action_type", "is required")
    ]
    assignments = example(T.PRICING_EVSE)
    assignments["evse_pricing"][1]["evse_id_product_list"][1] = "P" * 51
    assert pointers_of(lambda: evse_pricing(assignments, ctx)) == [
        "/data/evse_pricing/1/evse_id_product_list/1"
    ]


def test_a_time_without_offset(example: Example, ctx: Context) -> None:
    data = example(T.NOTIFICATION_START)
    data["charging_start"] = "2024-05-01T14:30:05"
    told(lambda: notification(T.NOTIFICATION_START, data, ctx), "/data/charging_start",
         "date-time")


def test_a_field_the_connector_sets_cannot_be_sent(example: Example, ctx: Context) -> None:
    data = example(T.NOTIFICATION_START)
    data["type"] = "End"
    assert issues_of(lambda: notification(T.NOTIFICATION_START, data, ctx)) == [
        ("/data/type", "is not allowed here")
    ]
