"""Hubject's own examples (the OpenAPI's) for the charging messages.

The valid ones load; the invalid ones are refused for the reason that makes them invalid,
and load once that one fault is repaired, so the model is not refusing them for anything
else. Every model written from them is valid against the official schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from hubject_connector.oicp import codec
from hubject_connector.oicp.authorization import (
    AuthorizationStart,
    AuthorizationStatus,
    AuthorizationStop,
    AuthorizeStart,
    AuthorizeStop,
)
from hubject_connector.oicp.cdr import ChargeDetailRecord
from hubject_connector.oicp.codec import OicpValidationError
from hubject_connector.oicp.notifications import (
    ChargingNotificationEnd,
    ChargingNotificationError,
    ChargingNotificationProgress,
    ChargingNotificationStart,
    ErrorType,
    decode_notification,
)
from hubject_connector.oicp.remote import (
    AuthorizeRemoteReservationStart,
    AuthorizeRemoteReservationStop,
    AuthorizeRemoteStart,
    AuthorizeRemoteStop,
)

pytestmark = pytest.mark.spec

Example = Callable[[str], dict[str, Any]]
OpenApiErrors = Callable[[str, Any], list[str]]

ALL_FIVE = (
    "RFIDMifareFamilyIdentification, RFIDIdentification, QRCodeIdentification, "
    "PlugAndChargeIdentification, RemoteIdentification"
)


def _issues(model: type[Any], payload: dict[str, Any]) -> list[str]:
    with pytest.raises(OicpValidationError) as info:
        codec.load(model, payload)
    return [str(issue) for issue in info.value.issues]


def _as_json(instance: Any) -> Any:
    return json.loads(codec.encode(instance))


@pytest.mark.parametrize(
    "model",
    [
        AuthorizationStop,
        AuthorizeRemoteStop,
        AuthorizeRemoteReservationStop,
        ChargingNotificationStart,
        ChargingNotificationError,
    ],
    ids=lambda m: m.__name__,
)
def test_valid_example_loads_and_writes_valid_json(
    model: type[Any], spec_example: Example, openapi_errors: OpenApiErrors
) -> None:
    example = spec_example(model.OICP_NAME)
    instance = codec.load(model, example)
    assert codec.load(model, _as_json(instance)) == instance
    assert openapi_errors(model.OICP_NAME, _as_json(instance)) == []


def test_example_values_survive(spec_example: Example) -> None:
    stop = codec.load(AuthorizationStop, spec_example("eRoamingAuthorizationStop"))
    assert stop.authorization_status is AuthorizationStatus.AUTHORIZED
    assert stop.status_code.code == "000"
    # The reservation schema names the field EMPPartnerSessionId, its example writes ...ID.
    reservation = codec.load(
        AuthorizeRemoteReservationStop, spec_example("eRoamingAuthorizeRemoteReservationStop")
    )
    assert reservation.emp_partner_session_id == "2345ABC"
    error = decode_notification(spec_example("eRoamingChargingNotificationError"))
    assert isinstance(error, ChargingNotificationError)
    assert error.error_type is ErrorType.CONNECTOR_ERROR


# Where the five identification options sit in each invalid example.
IDENTIFICATION_PATH: dict[type[Any], tuple[str | int, ...]] = {
    AuthorizeStart: ("Identification",),
    AuthorizeStop: ("Identification",),
    AuthorizationStart: ("AuthorizationStopIdentifications", 0),
    ChargeDetailRecord: ("Identification",),
    AuthorizeRemoteStart: ("Identification",),
    AuthorizeRemoteReservationStart: ("Identification",),
}

# The option each message may carry (remote start: RemoteIdentification only).
KEEP = {AuthorizeRemoteStart: "RemoteIdentification"}


def _identification(payload: dict[str, Any], model: type[Any]) -> dict[str, Any]:
    target: Any = payload
    for step in IDENTIFICATION_PATH[model]:
        target = target[step]
    assert isinstance(target, dict)
    return target


@pytest.mark.parametrize("model", list(IDENTIFICATION_PATH), ids=lambda m: m.__name__)
def test_example_with_all_five_identifications_is_refused_for_that(
    model: type[Any], spec_example: Example, openapi_errors: OpenApiErrors
) -> None:
    example = spec_example(model.OICP_NAME)
    pointer = "/" + "/".join(str(s) for s in IDENTIFICATION_PATH[model])
    # First fault found: its QR code option carries both a PIN and a HashedPIN.
    assert _issues(model, example) == [
        f"{pointer}/QRCodeIdentification: takes one of HashedPIN and PIN, not both"
    ]
    # With that repaired, the five options at once (IdentificationType is a choice).
    del _identification(example, model)["QRCodeIdentification"]["HashedPIN"]
    assert _issues(model, example) == [
        f"{pointer}: exactly one identification option must be given (got {ALL_FIVE})"
    ]
    # With one option left, the example is valid.
    identification = _identification(example, model)
    keep = KEEP.get(model, "RFIDMifareFamilyIdentification")
    for option in [k for k in identification if k != keep]:
        del identification[option]
    if model is ChargeDetailRecord:
        # The CDR example's charging starts 1 ms before its session (SessionStart ...039Z,
        # ChargingStart ...038Z), where the session encloses the charging.
        assert _issues(model, example) == ["/ChargingStart: must not be before SessionStart"]
        example["SessionStart"] = example["ChargingStart"]
    instance = codec.load(model, example)
    assert openapi_errors(model.OICP_NAME, _as_json(instance)) == []


def test_notification_end_example_has_charging_end_before_start(
    spec_example: Example, openapi_errors: OpenApiErrors
) -> None:
    example = spec_example("eRoamingChargingNotificationEnd")
    assert example["ChargingEnd"] < example["ChargingStart"]
    with pytest.raises(OicpValidationError) as info:
        decode_notification(example)
    assert [str(i) for i in info.value.issues] == ["/ChargingEnd: must not be before ChargingStart"]
    # Swapped back into order, it is a valid End notification.
    start, end_time = example["ChargingEnd"], example["ChargingStart"]
    example["ChargingStart"], example["ChargingEnd"] = start, end_time
    end = decode_notification(example)
    assert isinstance(end, ChargingNotificationEnd)
    assert openapi_errors("eRoamingChargingNotificationEnd", _as_json(end)) == []


def test_notification_progress_example_has_a_duration_the_times_contradict(
    spec_example: Example, openapi_errors: OpenApiErrors
) -> None:
    # Spec: "Charging Duration = EventOccurred - ChargingStart. It is a time in millisecond."
    # The example's times are 8 minutes apart (480000 ms); its duration says 48000: a zero
    # lost, which the EMP would show the customer as 48 seconds.
    example = spec_example("eRoamingChargingNotificationProgress")
    assert (example["ChargingStart"], example["EventOccurred"]) == (
        "2020-09-23T14:17:53.038Z", "2020-09-23T14:25:53.038Z"
    )
    with pytest.raises(OicpValidationError) as info:
        decode_notification(example)
    assert [str(i) for i in info.value.issues] == [
        "/ChargingDuration: must be EventOccurred - ChargingStart = 480000 ms to the second "
        "(got 48000)"
    ]
    # With the duration the times give, it is a valid Progress notification.
    example["ChargingDuration"] = 480000
    progress = decode_notification(example)
    assert isinstance(progress, ChargingNotificationProgress)
    assert codec.load(ChargingNotificationProgress, _as_json(progress)) == progress
    assert openapi_errors("eRoamingChargingNotificationProgress", _as_json(progress)) == []
