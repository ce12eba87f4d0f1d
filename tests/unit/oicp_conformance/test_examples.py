"""Hubject's own examples in the OpenAPI: each one loads, or is listed here as known-invalid.

Some official examples break the rules the text spec states (design.md, "Pitfalls"): the
table below names each, where it breaks a rule (the pointer our decoder reports) and why.
An example that loads must also pass its own schema once written back by our encoder; an
example that starts failing, or a new example, makes a test fail until it is looked at.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

import marshmallow
import pytest

from hubject_connector.oicp import (
    codec,
    common,
    evse,
    messages,
    notifications,
    pricing,
    remote,
)
from hubject_connector.oicp.model import FieldInfo, fields_of, schema_for
from hubject_connector.oicp.operations import OPERATIONS
from tests.unit.oicp_conformance.conftest import Spec, as_json, component_ref

pytestmark = pytest.mark.spec

_ONE_OPTION = (
    "its Identification sets all five options at once where exactly one is allowed, and "
    "its QRCodeIdentification carries both PIN and HashedPIN where one is allowed (the "
    "decoder reports the innermost break first)"
)

#: Official message examples that break OICP rules: component → (issue pointers, why).
KNOWN_INVALID: Final[Mapping[str, tuple[frozenset[str], str]]] = {
    "eRoamingAuthorizationStart": (
        frozenset({"/AuthorizationStopIdentifications/0/QRCodeIdentification"}),
        "the stop identification " + _ONE_OPTION.removeprefix("its "),
    ),
    "eRoamingAuthorizeRemoteReservationStart": (
        frozenset({"/Identification/QRCodeIdentification"}),
        _ONE_OPTION,
    ),
    "eRoamingAuthorizeRemoteStart": (
        frozenset({"/Identification/QRCodeIdentification"}),
        _ONE_OPTION + "; a remote start allows only RemoteIdentification",
    ),
    "eRoamingAuthorizeStart": (
        frozenset({"/Identification/QRCodeIdentification"}),
        _ONE_OPTION + "; RFIDIdentification is not allowed in the authorization process",
    ),
    "eRoamingAuthorizeStop": (
        frozenset({"/Identification/QRCodeIdentification"}),
        _ONE_OPTION + "; RFIDIdentification is not allowed in the authorization process",
    ),
    "eRoamingChargeDetailRecord": (
        frozenset({"/Identification/QRCodeIdentification"}),
        _ONE_OPTION,
    ),
    "eRoamingChargingNotificationEnd": (
        frozenset({"/ChargingEnd"}),
        "ChargingEnd (14:17:53) lies before ChargingStart (14:50:53): the times are swapped",
    ),
    "eRoamingChargingNotificationProgress": (
        frozenset({"/ChargingDuration"}),
        "ChargingDuration is 48000 ms where EventOccurred - ChargingStart, which the spec "
        "defines it to be, is 480000 ms (8 minutes): a zero lost",
    ),
}

#: The OpenAPI's component name of every message model (it spells the answer
#: "eRoamingAcknowledgment"; every other component is named as the message).
MESSAGE_COMPONENTS: Final = sorted(
    {
        messages.ACKNOWLEDGMENT_OPENAPI_NAME
        if model is common.Acknowledgement
        else model.OICP_NAME  # type: ignore[attr-defined]
        for model in messages.MESSAGES.values()
    }
)

#: Components that are parts of messages, with the model that reads them.
COMPONENT_MODELS: Final[Mapping[str, type]] = {
    "StatusCode": common.StatusCode,
    "Identification": common.Identification,
    "RFIDMifareFamilyIdentification": common.RFIDMifareFamilyIdentification,
    "RFIDIdentification": common.RFIDIdentification,
    "QRCodeIdentification": common.QRCodeIdentification,
    "PlugAndChargeIdentification": common.PlugAndChargeIdentification,
    "RemoteIdentification": common.RemoteIdentification,
    "GeoCoordinates": evse.GeoCoordinates,
    "OpeningTimes": evse.OpeningTimes,
    "EvseDataRecord": evse.EvseDataRecord,
    "InfoTextType": evse.InfoText,
    "PricingProductDataRecord": pricing.PricingProductDataRecord,
}

#: Components that are single values, with a model field of that type that reads them.
COMPONENT_FIELDS: Final[Mapping[str, tuple[type, str]]] = {
    "EvcoID": (common.RemoteIdentification, "evco_id"),
    "SessionID": (common.Acknowledgement, "session_id"),
    "ProviderID": (remote.AuthorizeRemoteStop, "provider_id"),
    "ProviderIDAsterisk": (pricing.EvsePricing, "provider_id"),
    "OperatorID": (evse.OperatorEvseStatus, "operator_id"),
    "EvseID": (evse.EvseStatusRecord, "evse_id"),
    "UID": (common.RFIDMifareFamilyIdentification, "uid"),
    "CurrencyID": (pricing.PricingProductDataRecord, "product_price_currency"),
    "ProductID": (pricing.PricingProductDataRecord, "product_id"),
    "ReferenceUnit": (pricing.PricingProductDataRecord, "reference_unit"),
    "ChargingNotificationType": (notifications.ChargingNotificationStart, "type"),
}


def _model_of(component: str) -> type:
    return messages.message_class(component)


def _decode_message(component: str, example: Any) -> object:
    """Decode as the inbound server or client would: by message name, notifications by Type."""
    model = _model_of(component)
    name = component
    if model in notifications.NOTIFICATION_CLASSES.values():
        name = messages.NOTIFICATION_MESSAGE
    decoded = messages.decode_message(name, example)
    assert type(decoded) is model
    return decoded


def _field(model: type, name: str) -> marshmallow.fields.Field[Any]:
    return schema_for(model)().fields[name]


def test_known_invalid_examples_are_message_examples() -> None:
    assert set(KNOWN_INVALID) <= set(MESSAGE_COMPONENTS)
    for pointers, reason in KNOWN_INVALID.values():
        assert pointers
        assert reason


@pytest.mark.parametrize("component", MESSAGE_COMPONENTS)
def test_message_example(spec: Spec, component: str) -> None:
    if "example" not in spec.schemas[component]:
        pytest.skip(f"the OpenAPI gives no example of {component}")
    example = spec.schemas[component]["example"]
    if component in KNOWN_INVALID:
        pointers, reason = KNOWN_INVALID[component]
        with pytest.raises(codec.OicpValidationError) as info:
            _decode_message(component, example)
        assert {i.pointer for i in info.value.issues} == pointers, reason
        return
    # The official schema accepts the example, and so do the models ...
    assert spec.errors(component_ref(component), example) == []
    decoded: Any = _decode_message(component, example)
    # ... and what they write back is still accepted, and reads back equal.
    body = codec.encode(decoded)
    assert spec.errors(component_ref(component), as_json(body)) == []
    assert _decode_message(component, body) == decoded


def test_request_and_response_examples(spec: Spec) -> None:
    # The OICP 2.3 CPO OpenAPI gives its examples on component schemas only; should a
    # version add examples to request bodies or answers, they are read here.
    by_path = {op.path: op for op in OPERATIONS.values()}
    for path, role, example in spec.media_examples():
        op = by_path[path]
        name = op.request if role == "request" else op.response
        messages.decode_message(name, example)


def test_every_component_example_is_checked(spec: Spec) -> None:
    with_example = {name for name, schema in spec.schemas.items() if "example" in schema}
    checked = set(MESSAGE_COMPONENTS) | set(COMPONENT_MODELS) | set(COMPONENT_FIELDS)
    assert with_example - checked == set()


def test_part_examples(spec: Spec) -> None:
    checked = []
    for component, model in COMPONENT_MODELS.items():
        if "example" not in spec.schemas[component]:
            continue
        example = spec.schemas[component]["example"]
        assert spec.errors(component_ref(component), example) == [], component
        decoded: Any = codec.load(model, example)
        assert spec.errors(component_ref(component), codec.dump(decoded)) == [], component
        checked.append(component)
    assert checked, "no examples of message parts found"


def test_value_examples(spec: Spec) -> None:
    checked = []
    for component, (model, name) in COMPONENT_FIELDS.items():
        if "example" not in spec.schemas[component]:
            continue
        example = spec.schemas[component]["example"]
        assert spec.errors(component_ref(component), example) == [], component
        _field(model, name).deserialize(example)
        checked.append(component)
    assert checked, "no examples of single values found"


def _property_examples(
    spec: Spec, schema: Mapping[str, Any], model: type, pointer: str
) -> Iterator[tuple[str, marshmallow.fields.Field[Any], Any]]:
    """(pointer, model field, example) for every example inside a component's properties."""
    by_key: dict[str, FieldInfo] = {}
    for info in fields_of(model):
        for key in (info.rule.key, *info.rule.aliases):
            by_key[key] = info
    for key, prop in spec.resolve(schema).get("properties", {}).items():
        if key not in by_key:
            continue
        info = by_key[key]
        field = _field(model, info.name)
        here = f"{pointer}/properties/{key}"
        prop = spec.resolve(prop)
        if "example" in prop:
            yield here, field, prop["example"]
        items = spec.resolve(prop["items"]) if info.is_list and "items" in prop else None
        if items is not None and "example" in items:
            assert isinstance(field, marshmallow.fields.List)
            yield f"{here}/items", field.inner, items["example"]
        if isinstance(info.base, type) and hasattr(info.base, "__dataclass_fields__"):
            if items is not None:
                yield from _property_examples(spec, items, info.base, f"{here}/items")
            else:
                yield from _property_examples(spec, prop, info.base, here)


def test_property_examples(spec: Spec) -> None:
    components = {name: _model_of(name) for name in MESSAGE_COMPONENTS} | dict(COMPONENT_MODELS)
    found = []
    refused = []
    for component, model in components.items():
        schema = spec.schemas[component]
        for pointer, field, example in _property_examples(
            spec, schema, model, component_ref(component)
        ):
            found.append(pointer)
            try:
                field.deserialize(example)
            except marshmallow.ValidationError as exc:
                refused.append(f"{pointer}: {example!r}: {exc.messages}")
    assert found, "no property examples found: the walk over the OpenAPI is broken"
    assert refused == []

