"""Every field of the contract reaches Hubject: a message using all of them translates.

The translation refuses a contract field that no OICP field takes ("is not allowed here"),
so a message that uses every property its schema declares, translated without error and
accepted by the official OpenAPI, shows that no field is lost on the way. The walk over the
schemas makes this test fail when a schema gains a property the data below does not use.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC
from typing import Any

import pytest

from hubject_connector.bus.contract import MessageType, make_envelope, schema_documents
from hubject_connector.oicp import codec
from hubject_connector.oicp.common import Identification
from hubject_connector.translate.payload import Payload, identification_data
from tests.unit.oicp_conformance.conftest import Spec, as_json
from tests.unit.translate.conftest import documented_data
from tests.unit.translate.test_examples import CASES, request_ref

T = MessageType
DOCUMENTS = schema_documents()
SESSION = "b2688855-7f00-0002-6d8e-48d883f6abb6"


def _resolve(node: Mapping[str, Any], document: str) -> tuple[Mapping[str, Any], str]:
    while "$ref" in node:
        target, _, fragment = node["$ref"].partition("#")
        document = target or document
        node = DOCUMENTS[document]
        for token in fragment.strip("/").split("/"):
            if token:
                node = node[token]
    return node, document


def _properties(node: Mapping[str, Any], document: str) -> dict[str, tuple[Any, str]]:
    """The properties an object schema declares, its own and those of its allOf references."""
    node, document = _resolve(node, document)
    found = {name: (sub, document) for name, sub in node.get("properties", {}).items()}
    for part in node.get("allOf", []):
        if "$ref" in part or "properties" in part:
            found.update(_properties(part, document))
    return found


def unused(node: Mapping[str, Any], document: str, value: Any, at: str = "") -> set[str]:
    """The schema properties that ``value`` leaves out (in lists: that no item uses)."""
    node, document = _resolve(node, document)
    if isinstance(value, Mapping):
        missing: set[str] = set()
        for name, (sub, doc) in _properties(node, document).items():
            if sub is False or sub.get("not") == {}:
                continue  # a property the schema forbids here (hashed_pin in a CDR)
            if name in value:
                missing |= unused(sub, doc, value[name], f"{at}/{name}")
            else:
                missing.add(f"{at}/{name}")
        return missing
    if isinstance(value, list) and "items" in node and value:
        per_item = [unused(node["items"], document, item, f"{at}/*") for item in value]
        return set.intersection(*per_item)
    return set()


def _data_schema(message_type: MessageType) -> tuple[Mapping[str, Any], str]:
    name = message_type.removeprefix("com.hubject-connector.") + ".json"
    return DOCUMENTS[name]["$defs"]["data"], name


RFID_CARD = {"kind": "rfid_mifare_family", "uid": "1234ABCD"}
EVSE_EXTRA = {
    "charging_station_image": "https://example.org/evse.jpg",
    "sub_operator_name": "ABC Sub",
    "max_capacity": 50,
    "charging_station_location_reference": [{"lang": "en", "value": "Level -1, bay 12"}],
    "geo_charging_point_entrance": {"latitude": "52.5221", "longitude": "13.4128"},
    "hub_operator_id": "DE*HUB",
    "clearinghouse_id": "CH-4711",
}
ADDRESS_EXTRA = {"floor": "-1", "region": "Berlin", "parking_facility": True,
                 "parking_spot": "12"}
#: What each documented example lacks to use every field of its schema.
EXTRA: dict[MessageType, dict[str, Any]] = {
    T.EVSE_UPSERT: {},
    T.EVSE_FULL_LOAD: {},
    T.EVSE_DELETE: {"operator_id": "DE*ABC", "operator_name": "ABC Charging"},
    T.EVSE_STATUS: {"operator_id": "DE*ABC", "operator_name": "ABC Charging"},
    T.AUTHORIZATION_START_REQUEST: {"session_id": SESSION, "emp_partner_session_id": "emp-1",
                                    "partner_product_id": "AC 22kW"},
    T.AUTHORIZATION_STOP_REQUEST: {"emp_partner_session_id": "emp-1", "operator_id": "DE*ABC"},
    T.NOTIFICATION_START: {"emp_partner_session_id": "emp-1", "operator_id": "DE*ABC",
                           "partner_product_id": "AC 22kW", "time_zone": "Europe/Berlin"},
    T.NOTIFICATION_PROGRESS: {"cpo_partner_session_id": "cpo-1",
                              "emp_partner_session_id": "emp-1", "identification": RFID_CARD,
                              "session_start": "2024-05-01T14:29:58+02:00",
                              "operator_id": "DE*ABC", "partner_product_id": "AC 22kW",
                              "time_zone": "Europe/Berlin"},
    T.NOTIFICATION_END: {"cpo_partner_session_id": "cpo-1", "emp_partner_session_id": "emp-1",
                         "identification": RFID_CARD,
                         "session_start": "2024-05-01T14:29:58+02:00",
                         "session_end": "2024-05-01T15:40:30+02:00",
                         "meter_values_in_between": ["1240.000"], "operator_id": "DE*ABC",
                         "partner_product_id": "AC 22kW", "time_zone": "Europe/Berlin"},
    T.NOTIFICATION_ERROR: {"cpo_partner_session_id": "cpo-1", "emp_partner_session_id": "emp-1",
                           "identification": RFID_CARD, "operator_id": "DE*ABC",
                           "time_zone": "Europe/Berlin"},
    T.CDR: {"emp_partner_session_id": "emp-1", "hub_operator_id": "DE*HUB",
            "hub_provider_id": "DE-HUB"},
    T.PRICING_PRODUCTS: {},
    T.PRICING_EVSE: {"operator_id": "DE*ABC"},
}


def full_record(evse_id: str) -> dict[str, Any]:
    """The documented EVSE record with every field of the schema used."""
    record: dict[str, Any] = documented_data(T.EVSE_UPSERT)["evse"]
    record.update(copy.deepcopy(EVSE_EXTRA), evse_id=evse_id)
    record["address"].update(ADDRESS_EXTRA)
    return record


def full_data(message_type: MessageType) -> dict[str, Any]:
    """The documented example's data with every field of its schema used."""
    data = documented_data(message_type)
    data.update(copy.deepcopy(EXTRA[message_type]))
    if message_type is T.EVSE_UPSERT:
        data["evse"] = full_record(data["evse"]["evse_id"])
    elif message_type is T.EVSE_FULL_LOAD:
        data["evses"].append(full_record("DE*ABC*E123456*9"))
    elif message_type is T.EVSE_DELETE:
        data["evse"] = full_record(data["evse_id"])
    elif message_type is T.CDR:
        data["calibration_law_verification_info"][
            "signed_metering_values_verification_instruction"
        ] = "Use the S.A.F.E. transparency software"
    return data


@pytest.mark.parametrize("message_type", list(EXTRA), ids=lambda t: t.removeprefix(
    "com.hubject-connector."))
def test_a_message_using_every_field_translates(message_type: MessageType) -> None:
    data = full_data(message_type)
    make_envelope(message_type, data)  # valid by the contract
    assert unused(*_data_schema(message_type), data) == set()
    translate, _ = CASES[message_type]
    translate(data)


@pytest.mark.spec
@pytest.mark.parametrize("message_type", list(EXTRA), ids=lambda t: t.removeprefix(
    "com.hubject-connector."))
def test_a_message_using_every_field_is_accepted_by_the_openapi(
    spec: Spec, message_type: MessageType
) -> None:
    translate, operation = CASES[message_type]
    model = translate(full_data(message_type))
    body = codec.encode(model)
    assert spec.errors(request_ref(spec, operation, model), as_json(body)) == [], body.decode()


#: One identification of each kind, with every field its kind has.
IDENTIFICATIONS: list[dict[str, Any]] = [
    RFID_CARD,
    {"kind": "rfid", "uid": "04A2B3C4D5E6F7", "rfid_type": "mifareDes",
     "evco_id": "DE-8PS-C12345678-9", "printed_number": "No. 4711",
     "expiry_date": "2027-12-31T23:59:59+01:00"},
    {"kind": "qr_code", "evco_id": "DE-8PS-C12345678-9", "pin": "1234"},
    {"kind": "qr_code", "evco_id": "DE-8PS-C12345678-9",
     "hashed_pin": {"value": "$2a$10$Z3J0ZXN0c2FsdA.h3sP1n", "function": "Bcrypt",
                    "legacy_hash_data": {"function": "MD5", "salt": "s", "value": "v"}}},
    {"kind": "plug_and_charge", "evco_id": "DE-8PS-C12345678-9"},
    {"kind": "remote", "evco_id": "DE-8PS-C12345678-9"},
]


def test_the_identifications_use_every_field_of_every_kind() -> None:
    defs = DOCUMENTS["common.json"]["$defs"]
    for rule in defs["Identification"]["allOf"]:
        kind = rule["if"]["properties"]["kind"]["const"]
        of_kind = [i for i in IDENTIFICATIONS if i["kind"] == kind]
        assert of_kind, kind
        missing = set.intersection(*(unused(rule["then"], "common.json", i) for i in of_kind))
        assert missing == set(), kind


@pytest.mark.parametrize("identification", IDENTIFICATIONS, ids=lambda i: i["kind"])
def test_every_identification_field_reaches_its_option(identification: dict[str, Any]) -> None:
    payload = Payload(UTC)
    model = payload.load(
        Identification, payload.value(Identification, identification, "/data/i", "")
    )
    assert identification_data(model) == identification
