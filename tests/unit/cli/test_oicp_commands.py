"""``oicp validate`` and ``oicp operations`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hubject_connector.oicp.operations import OPERATIONS
from tests.unit.cli.conftest import REMOTE_START, RunCli

ACK_VALID = {"Result": True, "StatusCode": {"Code": "000", "Description": "Success"}}
ACK_INVALID = {
    "Result": "yes",
    "StatusCode": {"Code": "0000"},
    "SessionID": "not-a-guid",
}

def write_json(directory: Path, name: str, payload: object) -> Path:
    path = directory / name
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["eRoamingAcknowledgement", "eRoamingAcknowledgment"])
def test_a_valid_message_is_valid(run_cli: RunCli, tmp_path: Path, name: str) -> None:
    path = write_json(tmp_path, "ack.json", ACK_VALID)
    result = run_cli("oicp", "validate", name, str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "valid\n"


def test_an_invalid_message_lists_each_problem_with_its_pointer(
    run_cli: RunCli, tmp_path: Path
) -> None:
    path = write_json(tmp_path, "ack.json", ACK_INVALID)
    result = run_cli("oicp", "validate", "eRoamingAcknowledgement", str(path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    pointers = [line.split(": ", 1)[0] for line in lines]
    assert pointers == ["/Result", "/SessionID", "/StatusCode/Code"]
    assert "SessionID pattern" in lines[1]
    assert "valid" not in pointers


def test_the_message_can_come_from_stdin(run_cli: RunCli) -> None:
    ok = run_cli("oicp", "validate", "eRoamingAcknowledgement", "-",
                 stdin=json.dumps(ACK_VALID))
    assert (ok.returncode, ok.stdout) == (0, "valid\n")
    bad = run_cli("oicp", "validate", "eRoamingAcknowledgement", "-", stdin="{not json")
    assert bad.returncode == 1
    assert bad.stdout.startswith("/: is not valid UTF-8 JSON")


def test_a_json_value_that_is_not_an_object_is_invalid(run_cli: RunCli) -> None:
    result = run_cli("oicp", "validate", "eRoamingAcknowledgement", "-", stdin="[1, 2]")
    assert result.returncode == 1
    assert result.stdout == "/: must be a JSON object\n"


def test_a_remote_start_is_validated_with_its_own_rules(run_cli: RunCli) -> None:
    ok = run_cli("oicp", "validate", "eRoamingAuthorizeRemoteStart", "-",
                 stdin=json.dumps(REMOTE_START))
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "valid\n", "")
    wrong = dict(REMOTE_START, EvseID="DE*ABC*123", ProviderID="DE-8EO-X")
    bad = run_cli("oicp", "validate", "eRoamingAuthorizeRemoteStart", "-",
                  stdin=json.dumps(wrong))
    assert bad.returncode == 1
    assert [line.split(":")[0] for line in bad.stdout.splitlines()] == [
        "/EvseID", "/ProviderID"
    ]


def test_an_operation_name_means_its_request(run_cli: RunCli) -> None:
    result = run_cli("oicp", "validate", "AuthorizeRemoteStart", "-",
                     stdin=json.dumps(REMOTE_START))
    assert (result.returncode, result.stdout) == (0, "valid\n")


def test_a_notification_is_dispatched_on_its_type(run_cli: RunCli) -> None:
    body = {"Type": "Nonsense", "SessionID": "b2b1a7d8-1234-4abc-9def-0123456789ab"}
    result = run_cli("oicp", "validate", "eRoamingChargingNotification", "-",
                     stdin=json.dumps(body))
    assert result.returncode == 1
    assert result.stdout.startswith("/Type: must be one of")


def test_an_unknown_message_lists_the_known_names(run_cli: RunCli) -> None:
    result = run_cli("oicp", "validate", "eRoamingPushEvseDatum", "-", stdin="{}")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "unknown OICP message 'eRoamingPushEvseDatum'" in result.stderr
    known = {line.strip() for line in result.stderr.splitlines() if line.startswith("  ")}
    assert {"eRoamingPushEvseData", "eRoamingAcknowledgement", "eRoamingAcknowledgment",
            "eRoamingChargingNotification", "eRoamingAuthorizeRemoteStart"} <= known


def test_a_missing_file_is_a_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("oicp", "validate", "eRoamingAcknowledgement", str(tmp_path / "no.json"))
    assert result.returncode == 2
    assert "cannot read" in result.stderr


def test_operations_lists_the_table(run_cli: RunCli) -> None:
    result = run_cli("oicp", "operations")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["OPERATION", "VERSION", "DIRECTION", "PATH", "REQUEST",
                                "RESPONSE", "RATE/MIN"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == set(OPERATIONS)
    assert rows["PushEvseStatus"] == [
        "PushEvseStatus", "2.1", "cpo->hubject",
        "/evsepush/v21/operators/{operatorID}/status-records",
        "eRoamingPushEvseStatus", "eRoamingAcknowledgement", "2000",
    ]
    assert rows["AuthorizeRemoteStart"][2] == "hubject->cpo"
    assert rows["AuthorizeRemoteStart"][-1] == "-"


def test_operations_as_json(run_cli: RunCli) -> None:
    result = run_cli("oicp", "operations", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["AuthorizeStart"]["response"] == "eRoamingAuthorizationStart"
    assert rows["AuthorizeStart"]["rate_per_minute"] == 200
    assert rows["PushEvseData"]["serialized"] is True
    assert rows["ChargingNotifications"]["path"] == (
        "/notificationmgmt/v11/charging-notifications"
    )
