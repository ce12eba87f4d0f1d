"""The command line as a person meets it: one prefix on every error line, every
configuration problem at once, console logs on a terminal and JSON lines otherwise."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from hubject_connector.cli.send import rewrites

SCRIPT = Path(sys.executable).with_name("hubject-connector")
PREFIX = "hubject-connector: "
VALID_REMOTE_START = json.dumps({
    "SessionID": "b2b1a7d8-1234-4abc-9def-0123456789ab",
    "ProviderID": "DE-8EO",
    "EvseID": "DE*ABC*E123456",
    "Identification": {"RemoteIdentification": {"EvcoID": "DE-8EO-CAB123456-7"}},
})


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBJECT_CONNECTOR_")}
    env.update(extra or {})
    return env


def run(*args: str, stdin: str = "", env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], input=stdin, capture_output=True, text=True,
                          timeout=120, check=False, env=environment(env), cwd=cwd)


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "nothing said on stderr"
    return lines


@pytest.mark.parametrize(
    "args",
    [
        ("check-config", "--config", "absent.toml"),
        ("send", "AuthorizeRemoteStart", "-"),
        ("send", "PushEvseStatus", "missing.json"),
        ("send", "PushEvseStatus", "-", "--operator-id", "nope"),
        ("oicp", "validate", "eRoamingAuthorizeRemoteStart", "missing.json"),
        ("send", "PushEvseStatus"),
        ("certs", "csr", "--operator-id", "nope"),
    ],
    ids=["missing-config", "wrong-direction", "missing-file", "bad-operator-id",
         "validate-missing-file", "missing-argument", "csr-bad-operator"],
)
def test_every_error_line_has_the_one_prefix(args: tuple[str, ...], tmp_path: Path) -> None:
    result = run(*args, stdin="{}", cwd=tmp_path)
    assert result.returncode == 2
    errors = [line for line in error_lines(result) if not line.startswith("usage:")
              and not line.startswith(" ")]
    assert errors
    assert all(line.startswith(PREFIX) for line in errors), errors


def test_an_invalid_message_in_send_is_listed_under_the_prefix(tmp_path: Path) -> None:
    result = run("send", "PushEvseStatus", "-", stdin='{"ActionType": "sideways"}',
                 cwd=tmp_path)
    assert result.returncode == 1
    lines = error_lines(result)
    assert all(line.startswith(PREFIX) for line in lines), lines
    assert f"{PREFIX}/ActionType: must be one of: fullLoad, update, insert, delete" in lines


def test_every_configuration_problem_is_reported_at_once(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[hubject]\noperator_id = "XX"\nbase_url = "http://hubject.example"\n'
                      '[bus.rabbitmq]\nurl = "amqp://guest:pw@[::1"\n[ops]\nport = 70000\n',
                      encoding="utf-8")
    result = run("check-config", "--no-check-files", "--config", str(config),
                 env={"HUBJECT_CONNECTOR_INBOUND__PORT": "-1"})
    assert result.returncode == 2
    lines = error_lines(result)
    assert all(line.startswith(PREFIX) for line in lines), lines
    keys = [line.removeprefix(PREFIX).split(": ", 1)[0] for line in lines]
    assert keys == ["bus.rabbitmq.url", "hubject.base_url", "hubject.operator_id",
                    "inbound.port", "ops.port"]
    assert "Traceback" not in result.stderr
    assert ":pw@" not in result.stderr


def _stderr_on_a_terminal(*args: str, stdin: str) -> str:
    """Run with stderr on a pseudo-terminal, as in a person's shell; what it showed."""
    main, secondary = pty.openpty()
    try:
        process = subprocess.Popen([str(SCRIPT), *args], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=secondary,
                                   env=environment())
        os.close(secondary)
        process.communicate(stdin.encode(), timeout=120)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO once the terminal's last writer has gone
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(main)


def test_logs_on_a_terminal_are_for_people_and_json_otherwise() -> None:
    args = ("--log-level", "debug", "oicp", "validate", "eRoamingAuthorizeRemoteStart", "-")
    on_terminal = _stderr_on_a_terminal(*args, stdin=VALID_REMOTE_START)
    assert "validating" in on_terminal
    assert not any(line.lstrip().startswith("{") for line in on_terminal.splitlines()
                   if line.strip())
    piped = run(*args, stdin=VALID_REMOTE_START)
    assert [json.loads(line)["event"] for line in piped.stderr.splitlines()] == [
        "validating", "valid"]
    # A format that was chosen wins on a terminal too.
    chosen = _stderr_on_a_terminal("--log-format", "json", *args, stdin=VALID_REMOTE_START)
    assert json.loads(chosen.splitlines()[0])["event"] == "validating"


def test_rewrites_name_spellings_values_and_dropped_fields_not_equal_numbers() -> None:
    given = {"EvseDataRecord": [{"ChargingStationID": "S1", "Power": 22, "Note": "x",
                                 "Status": "available", "Energy": Decimal("1.50")}],
             "Gone": None}
    written = {"EvseDataRecord": [{"ChargingStationId": "S1", "Power": 22,
                                   "Status": "Available", "Energy": Decimal("1.5")}]}
    assert rewrites(given, written) == [
        "/EvseDataRecord/0/ChargingStationID: sent as 'ChargingStationId', the data-type "
        "table's spelling",
        "/EvseDataRecord/0/Note: not sent: not a field of this message",
        '/EvseDataRecord/0/Status: sent as "Available" (the file has "available")',
    ]
    assert rewrites(written, written) == []
