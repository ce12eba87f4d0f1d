"""Delivery results: every verdict becomes a result the contract accepts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hubject_connector.bus.contract import MessageType, Outcome
from hubject_connector.flows.authorization import not_authorized
from hubject_connector.flows.cdr import cdr_digest, is_duplicate_answer
from hubject_connector.flows.notifications import interval_words
from hubject_connector.flows.results import Origin, Verdict, result_envelope
from hubject_connector.flows.status import by_operator
from hubject_connector.hubject.errors import OicpStatusError
from hubject_connector.state.base import StatusChange

ORIGIN = Origin("msg-1", str(MessageType.CDR), "b2688855-7f00-0002-6d8e-48d883f6abb6")


def test_a_refusal_by_hubject_carries_its_code_texts_and_the_origin() -> None:
    error = OicpStatusError("018", "Inconsistent EvseID", "EvseID of DE*XYZ",
                            operation="ChargeDetailRecord")
    envelope = result_envelope(ORIGIN, Verdict.refused_by_hubject(
        error, reason="refused", attempts=2, session_id=ORIGIN.subject))

    assert envelope.type is MessageType.DELIVERY_RESULT
    assert envelope.correlation_id == "msg-1"
    assert envelope.subject == ORIGIN.subject
    assert envelope.data == {
        "message_id": "msg-1",
        "message_type": str(MessageType.CDR),
        "outcome": "rejected",
        "status_code": "018",
        "status_description": "Inconsistent EvseID",
        "additional_info": "EvseID of DE*XYZ",
        "reason": "refused",
        "session_id": ORIGIN.subject,
        "attempts": 2,
    }


def test_texts_longer_than_the_contract_allows_are_shortened() -> None:
    envelope = result_envelope(ORIGIN, Verdict(
        Outcome.REJECTED, status_code="022", status_description="d" * 500,
        additional_info="i" * 5000, reason="r" * 5000))

    assert len(envelope.data["status_description"]) == 200
    assert len(envelope.data["additional_info"]) == 1000
    assert len(envelope.data["reason"]) == 2000
    assert envelope.data["reason"].endswith("…")


def test_an_odd_status_code_from_hubject_cannot_make_the_result_invalid() -> None:
    envelope = result_envelope(ORIGIN, Verdict(Outcome.REJECTED, status_code="E42",
                                               reason="refused"))

    assert envelope.data["status_code"] == "022"
    assert "'E42'" in envelope.data["reason"]


@pytest.mark.parametrize("verdict", [
    Verdict.accepted(attempts=1),
    Verdict.refused_by_connector("/data/evse_id: does not belong to DE*ABC"),
    Verdict.dead_lettered("gave up after 3 retries: HttpStatusError: 503"),
    Verdict.dropped("a newer status of this EVSE is known"),
])
def test_each_outcome_makes_a_valid_result(verdict: Verdict) -> None:
    envelope = result_envelope(Origin("m", None, None, datetime.now(UTC)), verdict)
    assert envelope.data["outcome"] == verdict.outcome.value


def test_a_duplicate_cdr_answer_is_recognised_by_its_words_not_a_code() -> None:
    assert is_duplicate_answer(OicpStatusError(
        "022", "Data error", "CDR already exists for SessionID b2688855"))
    assert not is_duplicate_answer(OicpStatusError("022", "Data error", "EvseID unknown"))
    # A transient answer is never taken for a duplicate.
    assert not is_duplicate_answer(OicpStatusError("021", "already exists"))


def test_the_cdr_digest_tells_content_apart() -> None:
    assert cdr_digest(b'{"a":1}') == cdr_digest(b'{"a":1}')
    assert cdr_digest(b'{"a":1}') != cdr_digest(b'{"a":2}')


def test_a_not_authorized_reply_echoes_the_session_ids_of_no_request() -> None:
    data = not_authorized(None, "320", additional_info="no answer from Hubject: timeout")
    assert data == {
        "authorization_status": "NotAuthorized",
        "status_code": "320",
        "status_description": "Service not available.",
        "additional_info": "no answer from Hubject: timeout",
    }


def test_intervals_are_worded_for_people() -> None:
    assert interval_words(300) == "5 minutes"
    assert interval_words(60) == "1 minute"
    assert interval_words(90) == "90 seconds"


def test_statuses_are_pushed_per_operator_in_the_order_given() -> None:
    at = datetime(2024, 5, 1, tzinfo=UTC)
    changes = [
        StatusChange("DE*ABC*E1", "DE*ABC", "Available", at, "1"),
        StatusChange("DE*SUB*E1", "DE*SUB", "Occupied", at, "2"),
        StatusChange("DE*ABC*E2", "DE*ABC", "Reserved", at, "3"),
    ]
    groups = by_operator(changes)
    assert {k: [c.message_id for c in v] for k, v in groups.items()} == {
        "DE*ABC": ["1", "3"], "DE*SUB": ["2"]}


def test_a_not_authorized_reply_never_carries_a_code_that_is_no_oicp_code() -> None:
    data = not_authorized(None, "E1", description="odd", additional_info="strange")
    assert data["status_code"] == "320"
    assert data["additional_info"] == "Hubject answered status code 'E1': strange"
