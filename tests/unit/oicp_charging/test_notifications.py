"""Charging notifications are told apart by ``Type``, never by trying the four schemas."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from hubject_connector.oicp import codec
from hubject_connector.oicp.codec import OicpValidationError
from hubject_connector.oicp.notifications import (
    NOTIFICATION_CLASSES,
    ChargingNotificationEnd,
    ChargingNotificationError,
    ChargingNotificationProgress,
    ChargingNotificationStart,
    ChargingNotificationType,
    decode_notification,
)
from tests.unit.oicp_charging import payloads as p
from tests.unit.oicp_charging.payloads import DELETE, changed


@pytest.mark.parametrize(
    ("build", "model"),
    [
        (p.notification_start, ChargingNotificationStart),
        (p.notification_progress, ChargingNotificationProgress),
        (p.notification_end, ChargingNotificationEnd),
        (p.notification_error, ChargingNotificationError),
    ],
    ids=["Start", "Progress", "End", "Error"],
)
def test_type_picks_the_model(build: Callable[[], dict[str, Any]], model: type[Any]) -> None:
    notification = decode_notification(build())
    assert type(notification) is model
    assert notification.type.value == build()["Type"]
    # Written back, it is the same payload (Decimals exact, offsets kept).
    assert codec.parse_json(codec.encode(notification)) == build()


def test_progress_is_not_mistaken_for_start() -> None:
    progress = p.notification_progress()
    # Everything a Start needs is in a Progress, and models ignore unknown fields: only the
    # Type tells them apart. Tried as a Start, a Progress payload would lose its progress.
    as_start = codec.load(ChargingNotificationStart, changed(progress, ("Type",), "Start"))
    assert as_start.charging_start.isoformat() == "2024-03-01T10:05:00+01:00"
    decoded = decode_notification(progress)
    assert isinstance(decoded, ChargingNotificationProgress)
    assert decoded.event_occurred.isoformat() == "2024-03-01T10:15:00+01:00"
    assert decoded.charging_duration == 600000
    assert decoded.consumed_energy_progress == Decimal("4.2")


@pytest.mark.spec
def test_official_oneof_cannot_tell_progress_from_start(
    openapi_errors: Callable[[str, Any], list[str]],
) -> None:
    progress_json = codec.parse_json(codec.encode(decode_notification(p.notification_progress())))
    # The official Start schema accepts this Progress payload as it is ...
    assert openapi_errors("eRoamingChargingNotificationStart", progress_json) == []
    assert openapi_errors("eRoamingChargingNotificationProgress", progress_json) == []
    # ... so the request body's oneOf (exactly one must match) refuses a valid Progress.
    assert type(decode_notification(progress_json)) is ChargingNotificationProgress


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (DELETE, "/Type: is mandatory and missing"),
        (None, "/Type: is mandatory and may not be null"),
        ("Finish", "/Type: must be one of: Start, Progress, End, Error"),
        ("progress", "/Type: must be one of: Start, Progress, End, Error"),
        (3, "/Type: must be one of: Start, Progress, End, Error"),
    ],
    ids=["missing", "null", "unknown", "lower-case", "number"],
)
def test_missing_or_unknown_type_is_refused_at_type(change: Any, expected: str) -> None:
    with pytest.raises(OicpValidationError) as info:
        decode_notification(changed(p.notification_progress(), ("Type",), change))
    assert [str(issue) for issue in info.value.issues] == [expected]


def test_payload_must_be_an_object() -> None:
    with pytest.raises(OicpValidationError) as info:
        decode_notification(["Start"])  # type: ignore[arg-type]
    assert [str(issue) for issue in info.value.issues] == ["/: must be a JSON object"]


@pytest.mark.parametrize(
    ("model", "build"),
    [
        (ChargingNotificationStart, p.notification_end),
        (ChargingNotificationEnd, p.notification_error),
        (ChargingNotificationError, p.notification_start),
    ],
    ids=["Start-given-End", "End-given-Error", "Error-given-Start"],
)
def test_a_model_refuses_another_type(
    model: type[Any], build: Callable[[], dict[str, Any]]
) -> None:
    payload = build()
    # Fill the target's mandatory fields so that only the Type is wrong.
    payload.setdefault("ChargingStart", "2024-03-01T10:05:00+01:00")
    payload.setdefault("ChargingEnd", "2024-03-01T11:00:00+01:00")
    payload.setdefault("ErrorType", "CriticalError")
    with pytest.raises(OicpValidationError) as info:
        codec.load(model, payload)
    wanted = model.TYPE.value
    assert [str(issue) for issue in info.value.issues] == [
        f"/Type: must be {wanted} in a {model.__name__}"
    ]


def test_every_type_has_its_own_model_and_message_name() -> None:
    assert set(NOTIFICATION_CLASSES) == set(ChargingNotificationType)
    names = {cls.OICP_NAME for cls in NOTIFICATION_CLASSES.values()}
    assert names == {
        "eRoamingChargingNotificationStart",
        "eRoamingChargingNotificationProgress",
        "eRoamingChargingNotificationEnd",
        "eRoamingChargingNotificationError",
    }


@pytest.mark.spec
def test_message_names_are_the_openapi_components(cpo_openapi: dict[str, Any]) -> None:
    schemas = cpo_openapi["components"]["schemas"]
    for kind, cls in NOTIFICATION_CLASSES.items():
        assert cls.OICP_NAME in schemas
        assert kind.value in schemas["ChargingNotificationType"]["enum"]
