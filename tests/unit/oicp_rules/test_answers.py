"""Answers from Hubject that break a rule get a defined outcome (the pure part; the client's
handling, with its log line and metric, is in tests/integration/hubject/test_answer_rules.py)."""

from __future__ import annotations

from typing import Any

from hubject_connector.oicp import codec, status
from hubject_connector.oicp.authorization import (
    AUTHORIZED_WITHOUT_SESSION_ID,
    AuthorizationStart,
    AuthorizationStatus,
    checked_answer,
)
from tests.unit.oicp_rules import payloads as p


def _answer(**changes: Any) -> AuthorizationStart:
    payload = {
        "SessionID": p.SESSION_ID,
        "ProviderID": "DE-XYZ",
        "AuthorizationStatus": "Authorized",
        "StatusCode": {"Code": "000", "Description": "Success"},
        **changes,
    }
    return codec.load(AuthorizationStart, {k: v for k, v in payload.items() if v is not None})


def test_authorized_without_session_id_is_not_authorized() -> None:
    answer, broken = checked_answer(_answer(SessionID=None))
    assert broken is AUTHORIZED_WITHOUT_SESSION_ID
    assert answer.authorization_status is AuthorizationStatus.NOT_AUTHORIZED
    assert not answer.authorized
    # Hubject's code is kept; the reason leads the additional information.
    assert answer.status_code.code == "000"
    assert answer.status_code.additional_info == AUTHORIZED_WITHOUT_SESSION_ID.message()
    assert answer.provider_id == "DE-XYZ"
    # What the connector acts on is still a valid answer.
    assert codec.load(AuthorizationStart, codec.dump(answer)) == answer


def test_hubjects_additional_info_is_kept_after_the_reason() -> None:
    code = {"Code": "000", "AdditionalInfo": "offline authorization"}
    answer, _ = checked_answer(_answer(SessionID=None, StatusCode=code))
    assert answer.status_code.additional_info == (
        f"{AUTHORIZED_WITHOUT_SESSION_ID.message()}; offline authorization"
    )
    long_code = {"Code": "000", "AdditionalInfo": "i" * 1000}
    answer, _ = checked_answer(_answer(SessionID=None, StatusCode=long_code))
    assert answer.status_code.additional_info is not None
    assert len(answer.status_code.additional_info) == 1000


def test_answers_that_keep_the_rules_are_unchanged() -> None:
    authorized = _answer()
    assert checked_answer(authorized) == (authorized, None)
    refused = _answer(SessionID=None, AuthorizationStatus="NotAuthorized",
                      StatusCode={"Code": "102"})
    assert checked_answer(refused) == (refused, None)


def test_an_unknown_status_code_is_described_as_such() -> None:
    info = status.describe("777")
    assert (info.code, info.meaning, info.transient) == ("777", "Unknown status code.", False)
    assert status.UNKNOWN_STATUS_CODE.message(code="777") == (
        "status code 777 is not in the OICP 2.3 table: passed on as it is"
    )
