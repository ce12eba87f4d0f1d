"""``hubject-connector send`` as a user runs it, against the simulator over mutual TLS."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from hubject_connector.certs import DevPki
from hubject_connector.simulator import Simulator

from .conftest import OPERATOR_ID

SCRIPT = Path(sys.executable).with_name("hubject-connector")

STATUS_PUSH = {
    "ActionType": "fullLoad",
    "OperatorEvseStatus": {
        "OperatorID": OPERATOR_ID,
        "OperatorName": "ABC Charging",
        "EvseStatusRecord": [{"EvseID": "DE*ABC*E1234*1", "EvseStatus": "Available"}],
    },
}


def write_config(path: Path, pki: DevPki, simulator: Simulator) -> Path:
    path.write_text(
        "[hubject]\n"
        f'operator_id = "{OPERATOR_ID}"\n'
        f'base_url = "{simulator.url}"\n'
        f'client_cert = "{pki.cpo_client_cert}"\n'
        f'client_key = "{pki.cpo_client_key}"\n'
        f'ca_bundle = "{pki.ca_cert}"\n'
        "[hubject.retry]\n"
        "attempts = 2\n"
        "initial_delay_seconds = 0.01\n"
        "max_delay_seconds = 0.05\n",
        encoding="utf-8",
    )
    return path


async def send(*args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBJECT_CONNECTOR_")}
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT), "--log-level", "error", "send", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
def config_file(tmp_path: Path, dev_pki: DevPki, simulator: Simulator) -> Path:
    return write_config(tmp_path / "connector.toml", dev_pki, simulator)


async def test_send_prints_the_answer_and_exits_0(
    tmp_path: Path, config_file: Path, simulator: Simulator
) -> None:
    message = tmp_path / "status.json"
    message.write_text(json.dumps(STATUS_PUSH))
    code, out, err = await send("PushEvseStatus", str(message), "--config", str(config_file))
    assert code == 0, err
    answer = json.loads(out)
    assert answer["Result"] is True
    assert answer["StatusCode"]["Code"] == "000"
    recorded = simulator.requests_of("PushEvseStatus")
    assert len(recorded) == 1
    assert json.loads(recorded[0].raw_body) == STATUS_PUSH


async def test_send_refuses_an_invalid_file_without_sending(
    tmp_path: Path, config_file: Path, simulator: Simulator
) -> None:
    broken = json.loads(json.dumps(STATUS_PUSH))
    broken["OperatorEvseStatus"]["EvseStatusRecord"][0]["EvseID"] = "not an EvseID"
    del broken["ActionType"]
    message = tmp_path / "broken.json"
    message.write_text(json.dumps(broken))
    code, out, err = await send("PushEvseStatus", str(message), "--config", str(config_file))
    assert code == 1
    assert out == ""
    assert "/ActionType: " in err
    assert "/OperatorEvseStatus/EvseStatusRecord/0/EvseID: " in err
    assert simulator.requests == []


async def test_send_exits_1_on_result_false(
    tmp_path: Path, config_file: Path, simulator: Simulator
) -> None:
    simulator.faults.result_false(1, code="018")
    message = tmp_path / "status.json"
    message.write_text(json.dumps(STATUS_PUSH))
    code, out, err = await send("PushEvseStatus", str(message), "--config", str(config_file))
    assert code == 1
    assert json.loads(out)["StatusCode"]["Code"] == "018"
    assert "018" in err


async def test_send_refuses_an_operation_hubject_calls(
    tmp_path: Path, config_file: Path, simulator: Simulator
) -> None:
    message = tmp_path / "status.json"
    message.write_text("{}")
    code, _, err = await send("AuthorizeRemoteStart", str(message), "--config",
                              str(config_file))
    assert code == 2
    assert "PushEvseStatus" in err
    assert simulator.requests == []


async def test_send_says_not_authorized_on_stderr(
    tmp_path: Path, config_file: Path, simulator: Simulator
) -> None:
    message = tmp_path / "start.json"
    message.write_text(json.dumps({
        "OperatorID": OPERATOR_ID, "EvseID": "DE*ABC*E1234*1",
        "Identification": {"RFIDMifareFamilyIdentification": {"UID": "0BADCAFE"}},
    }))
    code, out, err = await send("AuthorizeStart", str(message), "--config", str(config_file))
    assert code == 1
    assert json.loads(out)["AuthorizationStatus"] == "NotAuthorized"
    [line] = err.splitlines()
    assert line.startswith("hubject-connector: AuthorizeStart: Hubject answered NotAuthorized, "
                           "status 102")
    assert "0BADCAFE" not in err


async def test_send_says_what_it_changed_in_the_message(
    tmp_path: Path, config_file: Path, simulator: Simulator
) -> None:
    start = {
        "Type": "Start",
        "SessionID": "5e7c1a2b-0d3f-4a6e-9b8c-1f2e3d4c5b6a",
        "EvseID": "DE*ABC*E1234*1",
        "ChargingStart": "2024-03-01T09:05:00Z",
        "SessionStart": "2024-03-01T10:00:00+01:00",
        "OperatorID": OPERATOR_ID,
        "Comment": "not an OICP field",
    }
    message = tmp_path / "start.json"
    message.write_text(json.dumps(start))
    _, _, err = await send("ChargingNotifications", str(message), "--config",
                           str(config_file))
    notes = [line for line in err.splitlines() if line.startswith("hubject-connector: note: ")]
    assert notes == [
        'hubject-connector: note: /ChargingStart: sent as "2024-03-01T09:05:00+00:00" '
        '(the file has "2024-03-01T09:05:00Z")',
        "hubject-connector: note: /Comment: not sent: not a field of this message",
    ]
    [sent] = simulator.requests_of("ChargingNotifications")
    body = json.loads(sent.raw_body)
    assert body["ChargingStart"] == "2024-03-01T09:05:00+00:00"
    assert "Comment" not in body


async def test_send_says_nothing_about_a_message_sent_as_written(
    tmp_path: Path, config_file: Path, simulator: Simulator
) -> None:
    message = tmp_path / "status.json"
    message.write_text(json.dumps(STATUS_PUSH))
    code, _, err = await send("PushEvseStatus", str(message), "--config", str(config_file))
    assert (code, err) == (0, "")
