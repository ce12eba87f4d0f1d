"""``check_context``/``ensure_context`` as the flows and ``send`` call them, and the warnings
about times written in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hubject_connector.oicp import codec, messages
from hubject_connector.oicp.cdr import ChargeDetailRecord
from hubject_connector.oicp.codec import OicpValidationError
from hubject_connector.oicp.conformance import CheckContext
from hubject_connector.oicp.context import (
    check_context,
    ensure_context,
    review,
    utc_time_warnings,
)
from hubject_connector.oicp.evse import PushEvseStatus
from tests.unit.oicp_rules import payloads as p
from tests.unit.oicp_rules.payloads import changed

STATUS_EVSE = ("OperatorEvseStatus", "EvseStatusRecord", 0, "EvseID")


def _status(evse_id: str = p.EVSE_ID, operator_id: str = p.OPERATOR_ID) -> PushEvseStatus:
    payload = changed(p.evse_status(), {
        STATUS_EVSE: evse_id, ("OperatorEvseStatus", "OperatorID"): operator_id,
    })
    return codec.load(PushEvseStatus, payload)


def _cdr(**changes: object) -> ChargeDetailRecord:
    payload = changed(p.charge_detail_record(), {(k,): v for k, v in changes.items()})
    return codec.load(ChargeDetailRecord, payload)


def test_a_request_of_the_operator_passes() -> None:
    assert check_context("PushEvseStatus", _status(), operator_id="DE*ABC") == []


def test_an_evse_of_another_operator_is_refused_with_its_pointer() -> None:
    issues = check_context("PushEvseStatus", _status(p.OTHER_EVSE_ID), operator_id="DE*ABC")
    assert [str(i) for i in issues] == [
        "/OperatorEvseStatus/EvseStatusRecord/0/EvseID: belongs to operator DE*XYZ, not to "
        "DE*ABC: Hubject refuses it (018)"
    ]


def test_an_evse_of_a_configured_sub_operator_passes() -> None:
    request = _status(p.OTHER_EVSE_ID)
    assert check_context("PushEvseStatus", request, operator_id="DE*ABC",
                         sub_operator_ids=["DE*XYZ"]) == []
    # Another sub-operator does not make DE*XYZ's EVSE ours.
    issues = check_context("PushEvseStatus", request, operator_id="DE*ABC",
                           sub_operator_ids=["DE*ABD"])
    assert [i.message for i in issues] == [
        "belongs to operator DE*XYZ, not to DE*ABC or DE*ABD: Hubject refuses it (018)"
    ]


def test_the_body_names_the_hub_not_a_sub_operator() -> None:
    # Spec: OperatorID fields name the partner talking to Hubject; sub-operators appear
    # only in EvseIDs, so a sub-operator's ID in the body is refused even when configured.
    request = _status(p.OTHER_EVSE_ID, operator_id="DE*XYZ")
    issues = check_context("PushEvseStatus", request, operator_id="DE*ABC",
                           sub_operator_ids=["DE*XYZ"])
    assert [i.pointer for i in issues] == ["/OperatorEvseStatus/OperatorID"]


@pytest.mark.parametrize(
    ("operator_id", "evse_id"),
    [
        ("DE*ABC", "DEABCE1234"),  # ISO: the separators are optional
        ("DEABC", "DE*ABC*E1234"),
        ("de*abc", "DE*ABC*E1234"),  # OperatorIDs compare case-insensitively
        ("+49*810", "+49*810*000*438"),  # DIN
        ("+49*810", "49*810*000*438"),  # DIN: the "+" is optional
        ("49*810", "+49*810*000*438"),
    ],
)
def test_spellings_of_one_operator_match(operator_id: str, evse_id: str) -> None:
    request = _status(evse_id, operator_id=operator_id)
    assert check_context("PushEvseStatus", request, operator_id=operator_id) == []
    assert check_context("PushEvseStatus", request, operator_id=operator_id.upper()) == []


@pytest.mark.parametrize(
    ("operator_id", "evse_id"),
    [
        ("DE*ABC", "DE*ABD*E1234"),
        ("DE*ABC", "AT*ABC*E1234"),  # the same letters in another country
        ("+49*810", "+49*811*000*438"),
        ("+49*810", "+43*810*000*438"),
    ],
)
def test_other_operators_do_not_match(operator_id: str, evse_id: str) -> None:
    request = _status(evse_id, operator_id=operator_id)
    issues = check_context("PushEvseStatus", request, operator_id=operator_id)
    assert [i.pointer for i in issues] == ["/OperatorEvseStatus/EvseStatusRecord/0/EvseID"]


def test_ensure_context_raises_a_data_error_with_the_issues() -> None:
    with pytest.raises(OicpValidationError) as caught:
        ensure_context("PushEvseStatus", _status(p.OTHER_EVSE_ID), operator_id="DE*ABC")
    assert caught.value.status_code == "022"
    assert [i.pointer for i in caught.value.issues] == [
        "/OperatorEvseStatus/EvseStatusRecord/0/EvseID"
    ]
    ensure_context("PushEvseStatus", _status(), operator_id="DE*ABC")


def test_the_operation_may_be_named_by_its_request_message() -> None:
    assert check_context("eRoamingPushEvseStatus", _status(), operator_id="DE*ABC") == []


def test_a_request_of_another_operation_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="PushEvseData sends PushEvseData, not PushEvseStatus"):
        check_context("PushEvseData", _status(), operator_id="DE*ABC")


def test_the_future_is_checked_only_with_a_clock() -> None:
    cdr = _cdr(SessionEnd="2099-01-01T00:00:00+01:00")
    # Pure validation has no "now": nothing to say about the future.
    assert check_context("ChargeDetailRecord", cdr, operator_id="DE*ABC") == []
    issues = check_context("ChargeDetailRecord", cdr, operator_id="DE*ABC",
                           now=datetime(2024, 3, 1, 11, 0, tzinfo=UTC))
    assert [(i.pointer, i.message) for i in issues] == [(
        "/SessionEnd",
        "lies in the future (now: 2024-03-01T11:00:00+00:00): a CDR is sent after the "
        "session ended",
    )]


def test_a_session_end_just_past_is_not_in_the_future() -> None:
    cdr = _cdr()
    # SessionEnd is 11:10+01:00, i.e. 10:10 UTC.
    assert check_context("ChargeDetailRecord", cdr, operator_id="DE*ABC",
                         now=datetime(2024, 3, 1, 10, 10, tzinfo=UTC)) == []


def test_a_naive_clock_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        CheckContext(now=datetime(2024, 3, 1, 12, 0))


def test_signed_values_are_asked_for_only_where_the_evse_says_external() -> None:
    cdr = _cdr(SignedMeteringValues=p.REMOVE)
    for availability in ("Local", "Not Available"):
        assert check_context("ChargeDetailRecord", cdr, operator_id="DE*ABC",
                             calibration_law={p.EVSE_ID: availability}) == []
    assert check_context("ChargeDetailRecord", cdr, operator_id="DE*ABC") == []
    # EvseIDs compare without separators, as Hubject reads them.
    issues = check_context("ChargeDetailRecord", cdr, operator_id="DE*ABC",
                           calibration_law={"DEABCE12341": "External"})
    assert [i.pointer for i in issues] == ["/SignedMeteringValues"]


def test_without_an_operator_only_the_other_rules_apply() -> None:
    context = CheckContext(now=p.NOW)
    body = changed(p.evse_status(), {STATUS_EVSE: p.OTHER_EVSE_ID})
    assert review("eRoamingPushEvseStatus", body, context).errors == []


# --- times in UTC --------------------------------------------------------------------------


def test_z_in_a_cpo_request_is_a_warning_and_plus_zero_is_not() -> None:
    body = changed(p.charge_detail_record(), {
        ("SessionStart",): "2024-03-01T09:00:00Z",
        ("SessionEnd",): "2024-03-01T10:10:00+00:00",
    })
    result = review("eRoamingChargeDetailRecord", body, p.CONTEXT)
    assert result.ok
    # "+00:00" can be a charge point's local offset (Lisbon, London in winter); "Z" is not a
    # "+hh:mm or -hh:mm" offset at all.
    assert [i.pointer for i in result.warnings] == ["/SessionStart"]


def test_every_z_time_is_reported_in_lists_and_parts_too() -> None:
    body = changed(p.charge_detail_record(), {
        ("Identification",): {"RFIDIdentification": {
            "UID": p.UID, "RFID": "mifareCls", "ExpiryDate": "2030-01-01T00:00:00Z"}},
        ("ChargingStart",): "2024-03-01T09:05:00Z",
    })
    result = review("eRoamingChargeDetailRecord", body, p.CONTEXT)
    assert [i.pointer for i in result.warnings] == [
        "/Identification/RFIDIdentification/ExpiryDate", "/ChargingStart"
    ]


def test_answers_and_hubjects_requests_draw_no_time_warning() -> None:
    answer = {
        "AuthorizationStatus": "Authorized",
        "SessionID": p.SESSION_ID,
        "StatusCode": {"Code": "000"},
        "AuthorizationStopIdentifications": [{"RFIDIdentification": {
            "UID": p.UID, "RFID": "mifareCls", "ExpiryDate": "2030-01-01T00:00:00Z"}}],
    }
    result = review("eRoamingAuthorizationStart", answer, CheckContext())
    assert result.ok
    assert result.warnings == []
    # The walk itself would find it: only CPO requests are reviewed for it.
    assert len(utc_time_warnings(result.message, answer)) == 1


def test_the_encoder_never_writes_z() -> None:
    body = changed(p.charge_detail_record(), {(k,): "2024-03-01T10:10:00Z" for k in (
        "SessionStart", "ChargingStart", "ChargingEnd", "SessionEnd")})
    record = messages.decode_message("eRoamingChargeDetailRecord", body)
    written = codec.encode(record)
    assert b"Z\"" not in written
    assert b"2024-03-01T10:10:00+00:00" in written
    again = review("eRoamingChargeDetailRecord", written, CheckContext())
    assert again.ok
    assert again.warnings == []


def test_an_unknown_message_name_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        review("eRoamingNothing", b"not even JSON", CheckContext())


def test_a_body_that_does_not_decode_has_its_issues_and_no_message() -> None:
    result = review("eRoamingPushEvseStatus", b"{", CheckContext())
    assert result.message is None
    assert not result.ok
    assert [i.pointer for i in result.errors] == [""]
