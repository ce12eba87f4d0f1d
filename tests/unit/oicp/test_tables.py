"""The status code table and the operation table."""

from __future__ import annotations

import pytest

from hubject_connector.oicp import status
from hubject_connector.oicp.operations import OPERATIONS, Direction, RetryClass, operation


@pytest.mark.parametrize("code", ["001", "002", "009", "021", "310", "320"])
def test_transient_codes(code: str) -> None:
    assert status.is_transient(code)


@pytest.mark.parametrize("code", ["000", "017", "018", "022", "400", "603", "999"])
def test_permanent_or_unknown_codes(code: str) -> None:
    assert not status.is_transient(code)


def test_unknown_code_is_described_as_such() -> None:
    assert status.describe("999").meaning == "Unknown status code."
    assert status.describe("017").meaning == "Unauthorized Access."


def test_design_paths_and_limits() -> None:
    assert len(OPERATIONS) == 12
    assert operation("PushEvseStatus").rate_per_minute == 2000
    assert operation("eRoamingPushEvseData").name == "PushEvseData"
    assert operation("AuthorizeStart").retry is RetryClass.ONCE
    assert sum(op.direction is Direction.HUBJECT_TO_CPO for op in OPERATIONS.values()) == 4
    pushes = {n for n, op in OPERATIONS.items() if op.serialized}
    assert pushes == {"PushEvseData", "PushEvseStatus", "PushPricingProductData", "PushEVSEPricing"}


def test_url_path_checks_its_parameter() -> None:
    op = operation("PushEvseData")
    assert op.url_path(operatorID="DE*ABC") == "/evsepush/v23/operators/DE*ABC/data-records"
    with pytest.raises(ValueError, match="does not match the OperatorID pattern"):
        op.url_path(operatorID="DE*ABC/../x")
    with pytest.raises(KeyError, match="operatorID"):
        op.url_path()


def test_path_regex_captures_parameter() -> None:
    op = operation("AuthorizeRemoteStart")
    match = op.path_regex().fullmatch("/charging/v21/providers/DE-8EO/authorize-remote/start")
    assert match is not None
    assert match.group("providerID") == "DE-8EO"


def test_unknown_operation_lists_known_ones() -> None:
    with pytest.raises(KeyError, match="PushEvseData"):
        operation("Nope")
