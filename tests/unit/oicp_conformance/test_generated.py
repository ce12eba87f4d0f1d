"""Every message of every operation: generated from the models, accepted by the official
OpenAPI, and read back equal.

For each operation of the table, request and answer, Hypothesis builds objects from the
project's own models (``tests.strategies``), encodes them as on the wire, validates the JSON
against the schema the OpenAPI gives for that operation's request body or 200 answer, and
decodes the bytes back by the operation's message name. A failure here means a model
accepts (and would send) something Hubject's schema refuses, or loses data on the way.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubject_connector.oicp import codec, messages
from hubject_connector.oicp.notifications import (
    ChargingNotificationEnd,
    ChargingNotificationProgress,
)
from hubject_connector.oicp.operations import OPERATIONS, Operation
from tests.strategies import from_model
from tests.unit.oicp_conformance.conftest import Spec, as_json, component_ref

pytestmark = pytest.mark.spec


def _models() -> list[type]:
    seen: dict[type, None] = {}
    for op in OPERATIONS.values():
        for model in (*messages.request_classes(op), messages.response_class(op)):
            seen[model] = None
    return list(seen)


#: Each model once, however many operations use it (the acknowledgement answers ten): every
#: example is checked against the schema of every operation that carries the model.
MODELS = _models()


def _name(model: type) -> str:
    name: str = model.OICP_NAME  # type: ignore[attr-defined]
    return name


def _uses(spec: Spec, model: type) -> list[tuple[Operation, str, str]]:
    """(operation, message name, schema pointer) for every place the model travels."""
    uses = []
    for op in OPERATIONS.values():
        if model in messages.request_classes(op):
            schema = spec.request_schema(op)
            if "oneOf" in schema:
                # The notifications path's body is a oneOf of Start/Progress/End/Error. It is
                # ambiguous (Type is the full enum in each, no schema forbids extra fields,
                # so a valid Progress or End also matches Start, and oneOf then fails):
                # each notification is validated against its own component schema, and is
                # decoded by dispatching on Type (see test_notification_oneof_is_ambiguous).
                ref = component_ref(_name(model))
                assert ref in [option["$ref"] for option in schema["oneOf"]]
            else:
                ref = schema["$ref"]
            uses.append((op, op.request, ref))
        if model is messages.response_class(op):
            uses.append((op, op.response, spec.response_schema(op)["$ref"]))
    assert uses, f"{model.__name__} is used by no operation"
    return uses


def test_every_operation_is_covered() -> None:
    for op in OPERATIONS.values():
        assert set(messages.request_classes(op)) <= set(MODELS), op.name
        assert messages.response_class(op) in MODELS, op.name


@pytest.mark.parametrize("model", MODELS, ids=_name)
# No deadline: timing is not what is tested, and the first example of each model also builds
# its validators, which a deadline would flag on a busy machine.
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_generated_message_conforms_and_round_trips(
    spec: Spec, model: type, data: st.DataObject
) -> None:
    uses = _uses(spec, model)
    for *_, ref in uses:
        # The OpenAPI's name for the schema (e.g. eRoamingAcknowledgment) finds the model too.
        assert messages.message_class(ref.rsplit("/", 1)[1]) is model

    original = data.draw(from_model(model), label=model.__name__)
    body = codec.encode(original)
    payload = as_json(body)
    for ref in sorted({ref for _op, _n, ref in uses}):
        assert spec.errors(ref, payload) == [], f"refused by {ref}: {body.decode()}"
    # Decoded by message name, as the inbound server and the client do (notifications by Type).
    for name in sorted({name for _op, name, _ref in uses}):
        decoded: Any = messages.decode_message(name, body)
        assert type(decoded) is model, name
        assert decoded == original, name
        # Equality of date-times ignores their offsets: the bytes show that they were kept.
        assert codec.encode(decoded) == body, name


@settings(max_examples=20, deadline=None)
@given(
    notification=st.one_of(
        from_model(ChargingNotificationProgress),
        # An End without ChargingStart (optional there) is not a Start.
        from_model(ChargingNotificationEnd).filter(lambda n: n.charging_start is not None),
    )
)
def test_notification_oneof_is_ambiguous(spec: Spec, notification: Any) -> None:
    # Why the notifications are decoded by Type: the official oneOf cannot tell them apart,
    # since a valid Progress or End is a valid Start as well.
    payload = as_json(codec.encode(notification))
    assert spec.errors(component_ref(_name(type(notification))), payload) == []
    assert spec.errors(component_ref("eRoamingChargingNotificationStart"), payload) == []
    body_schema = spec.request_pointer(OPERATIONS["ChargingNotifications"])
    assert any("valid under each of" in e for e in spec.errors(body_schema, payload))
    decoded = messages.decode_message(messages.NOTIFICATION_MESSAGE, codec.encode(notification))
    assert type(decoded) is type(notification)
