"""The message registry: names to models, decoding by name, and the operation table's names."""

from __future__ import annotations

import pytest

from hubject_connector.oicp import codec, messages
from hubject_connector.oicp.authorization import AuthorizationStart, AuthorizeStart
from hubject_connector.oicp.common import Acknowledgement, StatusCode
from hubject_connector.oicp.notifications import (
    NOTIFICATION_CLASSES,
    ChargingNotificationProgress,
    ChargingNotificationStart,
)
from hubject_connector.oicp.operations import OPERATIONS

ACK = b'{"Result":true,"StatusCode":{"Code":"000"}}'
PROGRESS = (
    b'{"Type":"Progress","SessionID":"b2688855-7f00-0002-6d8e-48d883f6abb6",'
    b'"EvseID":"DE*ABC*E1","ChargingStart":"2024-03-01T10:00:00+01:00",'
    b'"EventOccurred":"2024-03-01T10:05:00+01:00","ChargingDuration":300000,'
    b'"OperatorID":"DE*ABC"}'
)


def test_every_operation_resolves_to_classes() -> None:
    for op in OPERATIONS.values():
        requests = messages.request_classes(op)
        assert requests, op.name
        for model in (*requests, messages.response_class(op)):
            assert isinstance(model, type), op.name
            assert model.OICP_NAME in messages.MESSAGES, op.name  # type: ignore[attr-defined]
    assert messages.request_class(OPERATIONS["AuthorizeStart"]) is AuthorizeStart
    assert messages.response_class(OPERATIONS["AuthorizeStart"]) is AuthorizationStart
    assert messages.response_class(OPERATIONS["PushEvseData"]) is Acknowledgement
    assert set(messages.request_classes(OPERATIONS["ChargingNotifications"])) == set(
        NOTIFICATION_CLASSES.values()
    )


def test_registry_holds_every_model_under_its_own_name() -> None:
    for name, model in messages.MESSAGES.items():
        if name != messages.ACKNOWLEDGMENT_OPENAPI_NAME:
            assert name == model.OICP_NAME  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["eRoamingAcknowledgement", "eRoamingAcknowledgment"])
def test_both_spellings_of_the_acknowledgement(name: str) -> None:
    assert messages.message_class(name) is Acknowledgement
    ack = messages.decode_message(name, ACK)
    assert ack == Acknowledgement(result=True, status_code=StatusCode(code="000"))


def test_decode_accepts_bytes_text_and_parsed_json() -> None:
    for body in (ACK, ACK.decode(), codec.parse_json(ACK)):
        decoded = messages.decode_message("eRoamingAcknowledgement", body)
        assert isinstance(decoded, Acknowledgement)
        assert decoded.result is True


def test_notification_is_dispatched_on_type() -> None:
    decoded = messages.decode_message(messages.NOTIFICATION_MESSAGE, PROGRESS)
    assert isinstance(decoded, ChargingNotificationProgress)
    assert decoded.charging_duration == 300000


def test_notification_with_unknown_type_points_at_type() -> None:
    body = PROGRESS.replace(b'"Progress"', b'"Halfway"')
    with pytest.raises(codec.OicpValidationError) as info:
        messages.decode_message(messages.NOTIFICATION_MESSAGE, body)
    assert [i.pointer for i in info.value.issues] == ["/Type"]


def test_notification_by_its_own_name_refuses_another_type() -> None:
    with pytest.raises(codec.OicpValidationError) as info:
        messages.decode_message(ChargingNotificationStart.OICP_NAME, PROGRESS)
    assert [i.pointer for i in info.value.issues] == ["/Type"]


def test_notification_family_is_not_one_class() -> None:
    with pytest.raises(KeyError, match="told apart by Type"):
        messages.message_class(messages.NOTIFICATION_MESSAGE)
    with pytest.raises(KeyError, match="message_classes"):
        messages.request_class(OPERATIONS["ChargingNotifications"])


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="eRoamingPushEvseData") as info:
        messages.message_class("eRoamingPushEvseDta")
    assert "eRoamingPushEvseDta" in str(info.value)
    with pytest.raises(KeyError):
        messages.decode_message("eRoamingPushEvseDta", ACK)


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"Result":"yes","StatusCode":{"Code":"000"}}', "\ud800".encode(
        "utf-8", "surrogatepass")],
)
def test_invalid_bodies_raise_validation_errors(body: bytes) -> None:
    with pytest.raises(codec.OicpValidationError):
        messages.decode_message("eRoamingAcknowledgement", body)


@pytest.mark.parametrize("body", [b"[]", b"{not json", b"42"])
def test_invalid_notification_bodies_raise_validation_errors(body: bytes) -> None:
    with pytest.raises(codec.OicpValidationError):
        messages.decode_message(messages.NOTIFICATION_MESSAGE, body)
