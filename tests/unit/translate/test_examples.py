"""Every documented example becomes an OICP request the official OpenAPI accepts.

For each message type the backend sends, the example of docs/contract.md is translated, the
OICP model encoded as on the wire, and the JSON validated against the OpenAPI's request
schema of the operation it is sent with; decoding the bytes gives the same model back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hubject_connector.bus.contract import (
    MESSAGE_SPECS,
    TYPE_PREFIX,
    Direction,
    Kind,
    MessageType,
    make_envelope,
)
from hubject_connector.oicp import codec, messages
from hubject_connector.oicp.operations import OPERATIONS
from hubject_connector.translate.outbound import (
    authorize_start,
    authorize_stop,
    charge_detail_record,
    evse_pricing,
    evse_record,
    notification,
    operator_name_of,
    operator_of,
    pricing_products,
    push_evse_data,
    push_evse_status,
)
from tests.unit.oicp_conformance.conftest import Spec, as_json, component_ref
from tests.unit.translate.conftest import CTX, documented_data

pytestmark = pytest.mark.spec

Data = dict[str, Any]


def _upsert(data: Data) -> object:
    record = evse_record(data["evse"], CTX)
    return push_evse_data("update", operator_of(data, CTX), operator_name_of(data, CTX), [record])


def _full_load(data: Data) -> object:
    records = [evse_record(e, CTX, at=f"/data/evses/{i}") for i, e in enumerate(data["evses"])]
    return push_evse_data("fullLoad", operator_of(data, CTX), operator_name_of(data, CTX), records)


def _delete(data: Data) -> object:
    # The documented delete names the EVSE only (the connector sends the record it pushed
    # last); a backend may give the record itself, as here.
    data["evse"] = {**documented_data(MessageType.EVSE_UPSERT)["evse"], "evse_id": data["evse_id"]}
    make_envelope(MessageType.EVSE_DELETE, data)
    record = evse_record(data["evse"], CTX)
    return push_evse_data("delete", operator_of(data, CTX), operator_name_of(data, CTX), [record])


def _status(data: Data) -> object:
    return push_evse_status(
        "update", operator_of(data, CTX), operator_name_of(data, CTX),
        [(data["evse_id"], data["status"])],
    )


def _notification(message_type: MessageType) -> Callable[[Data], object]:
    return lambda data: notification(message_type, data, CTX)


T = MessageType
#: Message type → (its translation, the operation it is sent with).
CASES: dict[MessageType, tuple[Callable[[Data], object], str]] = {
    T.EVSE_UPSERT: (_upsert, "PushEvseData"),
    T.EVSE_FULL_LOAD: (_full_load, "PushEvseData"),
    T.EVSE_DELETE: (_delete, "PushEvseData"),
    T.EVSE_STATUS: (_status, "PushEvseStatus"),
    T.AUTHORIZATION_START_REQUEST: (lambda d: authorize_start(d, CTX), "AuthorizeStart"),
    T.AUTHORIZATION_STOP_REQUEST: (lambda d: authorize_stop(d, CTX), "AuthorizeStop"),
    T.NOTIFICATION_START: (_notification(T.NOTIFICATION_START), "ChargingNotifications"),
    T.NOTIFICATION_PROGRESS: (_notification(T.NOTIFICATION_PROGRESS), "ChargingNotifications"),
    T.NOTIFICATION_END: (_notification(T.NOTIFICATION_END), "ChargingNotifications"),
    T.NOTIFICATION_ERROR: (_notification(T.NOTIFICATION_ERROR), "ChargingNotifications"),
    T.CDR: (lambda d: charge_detail_record(d, CTX), "ChargeDetailRecord"),
    T.PRICING_PRODUCTS: (lambda d: pricing_products(d, CTX), "PushPricingProductData"),
    T.PRICING_EVSE: (lambda d: evse_pricing(d, CTX), "PushEVSEPricing"),
}


def test_every_message_the_backend_sends_to_hubject_has_a_case() -> None:
    sent_on = {
        t for t, s in MESSAGE_SPECS.items()
        if s.direction == Direction.TO_CONNECTOR and s.kind in (Kind.EVENT, Kind.REQUEST)
    }
    assert set(CASES) == sent_on


def request_ref(spec: Spec, operation: str, model: object) -> str:
    """The OpenAPI schema a request body must satisfy.

    The notifications path's body is a oneOf of the four notification schemas that a valid
    Progress or End also matches as Start (design.md, "Pitfalls"): each notification is
    checked against its own member of that oneOf.
    """
    op = OPERATIONS[operation]
    body = spec.request_schema(op)
    if "oneOf" in body:
        ref = component_ref(type(model).OICP_NAME)  # type: ignore[attr-defined]
        assert {"$ref": ref} in body["oneOf"]
        return ref
    return spec.request_pointer(op)


@pytest.mark.parametrize("message_type", list(CASES), ids=lambda t: t.removeprefix(TYPE_PREFIX))
def test_the_example_is_a_request_the_openapi_accepts(
    spec: Spec, message_type: MessageType
) -> None:
    translate, operation = CASES[message_type]
    model = translate(documented_data(message_type))
    body = codec.encode(model)
    assert spec.errors(request_ref(spec, operation, model), as_json(body)) == [], body.decode()
    assert messages.decode_message(OPERATIONS[operation].request, body) == model
