"""The rules that need context, as a user meets them: ``send`` refuses before calling
Hubject, and ``oicp validate`` reports them when told who sends.

The simulator here knows DE*XYZ as a sub-operator of DE*ABC (as Hubject would once asked
to), so every refusal below is the connector's own, not the simulator's: it records
nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from hubject_connector.certs import DevPki
from hubject_connector.simulator import Card, Simulator, SimulatorConfig

from .conftest import CARD_UID, OPERATOR_ID
from .test_send_cli import SCRIPT, STATUS_PUSH, send

SUB_OPERATOR_ID = "DE*XYZ"
SUB_EVSE_ID = "DE*XYZ*E77"
RECORD_EVSE = ("OperatorEvseStatus", "EvseStatusRecord", 0, "EvseID")


@pytest.fixture
def simulator_config(dev_pki: DevPki) -> SimulatorConfig:
    """The simulator accepts DE*XYZ's EVSEs from DE*ABC."""
    return SimulatorConfig.from_dev_pki(
        dev_pki, cards=(Card(uid=CARD_UID),), sub_operators={OPERATOR_ID: (SUB_OPERATOR_ID,)}
    )


def _config(path: Path, pki: DevPki, simulator: Simulator, *subs: str) -> Path:
    listed = ", ".join(f'"{s}"' for s in subs)
    path.write_text(
        "[hubject]\n"
        f'operator_id = "{OPERATOR_ID}"\n'
        f"sub_operator_ids = [{listed}]\n"
        f'base_url = "{simulator.url}"\n'
        f'client_cert = "{pki.cpo_client_cert}"\n'
        f'client_key = "{pki.cpo_client_key}"\n'
        f'ca_bundle = "{pki.ca_cert}"\n',
        encoding="utf-8",
    )
    return path


def _status_push(tmp_path: Path, **changes: Any) -> Path:
    payload = json.loads(json.dumps(STATUS_PUSH))
    data = payload["OperatorEvseStatus"]
    if "operator_id" in changes:
        data["OperatorID"] = changes["operator_id"]
    if "evse_id" in changes:
        data["EvseStatusRecord"][0]["EvseID"] = changes["evse_id"]
    path = tmp_path / "status.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


async def test_send_refuses_a_body_operator_other_than_the_paths(
    tmp_path: Path, dev_pki: DevPki, simulator: Simulator
) -> None:
    config = _config(tmp_path / "c.toml", dev_pki, simulator)
    # The path says DE*XYZ (--operator-id), the body DE*ABC.
    code, out, err = await send("PushEvseStatus", str(_status_push(tmp_path)),
                                "--operator-id", SUB_OPERATOR_ID, "--config", str(config))
    assert code == 1
    assert out == ""
    assert ("/OperatorEvseStatus/OperatorID: must be DE*XYZ, the OperatorID the request is "
            "sent as (got DE*ABC)") in err
    assert "not sent" in err
    assert simulator.requests == []


async def test_send_refuses_a_body_operator_other_than_the_configured_one(
    tmp_path: Path, dev_pki: DevPki, simulator: Simulator
) -> None:
    # Even a configured sub-operator: OperatorID fields name the hub that talks to Hubject.
    config = _config(tmp_path / "c.toml", dev_pki, simulator, SUB_OPERATOR_ID)
    message = _status_push(tmp_path, operator_id=SUB_OPERATOR_ID, evse_id=SUB_EVSE_ID)
    code, _, err = await send("PushEvseStatus", str(message), "--config", str(config))
    assert code == 1
    assert "/OperatorEvseStatus/OperatorID: must be DE*ABC" in err
    assert simulator.requests == []


async def test_send_refuses_an_evse_of_another_operator(
    tmp_path: Path, dev_pki: DevPki, simulator: Simulator
) -> None:
    config = _config(tmp_path / "c.toml", dev_pki, simulator)
    message = _status_push(tmp_path, evse_id=SUB_EVSE_ID)
    code, out, err = await send("PushEvseStatus", str(message), "--config", str(config))
    assert code == 1
    assert out == ""
    assert ("/OperatorEvseStatus/EvseStatusRecord/0/EvseID: belongs to operator DE*XYZ, not "
            "to DE*ABC: Hubject refuses it (018)") in err
    assert simulator.requests == []


async def test_send_sends_an_evse_of_a_configured_sub_operator(
    tmp_path: Path, dev_pki: DevPki, simulator: Simulator
) -> None:
    config = _config(tmp_path / "c.toml", dev_pki, simulator, SUB_OPERATOR_ID)
    message = _status_push(tmp_path, evse_id=SUB_EVSE_ID)
    code, out, err = await send("PushEvseStatus", str(message), "--config", str(config))
    assert code == 0, err
    assert json.loads(out)["Result"] is True
    recorded = simulator.requests_of("PushEvseStatus")
    assert len(recorded) == 1
    sent = json.loads(recorded[0].raw_body)
    assert sent["OperatorEvseStatus"]["EvseStatusRecord"][0]["EvseID"] == SUB_EVSE_ID


async def test_send_refuses_a_cdr_that_ends_in_the_future(
    tmp_path: Path, dev_pki: DevPki, simulator: Simulator
) -> None:
    config = _config(tmp_path / "c.toml", dev_pki, simulator)
    cdr = {
        "SessionID": "5e7c1a2b-0d3f-4a6e-9b8c-1f2e3d4c5b6a",
        "EvseID": "DE*ABC*E1234*1",
        "Identification": {"RFIDMifareFamilyIdentification": {"UID": CARD_UID}},
        "SessionStart": "2099-03-01T10:00:00+01:00",
        "ChargingStart": "2099-03-01T10:05:00+01:00",
        "ChargingEnd": "2099-03-01T10:00:00Z",
        "SessionEnd": "2099-03-01T11:10:00+01:00",
        "ConsumedEnergy": 22.125,
    }
    message = tmp_path / "cdr.json"
    message.write_text(json.dumps(cdr), encoding="utf-8")
    code, _, err = await send("ChargeDetailRecord", str(message), "--config", str(config))
    assert code == 1
    assert "/SessionEnd: lies in the future" in err
    # The time in UTC is warned about as well.
    assert "warning: /ChargingEnd: is written in UTC (Z)" in err
    assert simulator.requests == []


# --- oicp validate ---------------------------------------------------------------------------


async def validate(*args: str) -> tuple[int, str, str]:
    """``hubject-connector oicp validate ARGS``: exit code, stdout, stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBJECT_CONNECTOR_")}
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT), "--log-level", "error", "oicp", "validate", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_validate_checks_the_operator_only_when_told(tmp_path: Path) -> None:
    message = _status_push(tmp_path, evse_id=SUB_EVSE_ID)
    assert await validate("PushEvseStatus", str(message)) == (0, "valid\n", "")
    code, out, _ = await validate("PushEvseStatus", str(message), "--operator-id", OPERATOR_ID)
    assert code == 1
    assert out.startswith("/OperatorEvseStatus/EvseStatusRecord/0/EvseID: belongs to operator")
    code, out, _ = await validate("PushEvseStatus", str(message), "--operator-id", OPERATOR_ID,
                                  "--sub-operator-id", SUB_OPERATOR_ID)
    assert (code, out) == (0, "valid\n")


async def test_validate_warns_about_utc_times_and_still_says_valid(tmp_path: Path) -> None:
    notification = {
        "Type": "Start",
        "SessionID": "5e7c1a2b-0d3f-4a6e-9b8c-1f2e3d4c5b6a",
        "EvseID": "DE*ABC*E1234*1",
        "OperatorID": OPERATOR_ID,
        "ChargingStart": "2024-03-01T09:05:00Z",
    }
    message = tmp_path / "start.json"
    message.write_text(json.dumps(notification), encoding="utf-8")
    code, out, _ = await validate("eRoamingChargingNotification", str(message))
    assert code == 0
    assert out.splitlines() == [
        "warning: /ChargingStart: is written in UTC (Z): the spec asks for the charge "
        "point's local offset (+hh:mm or -hh:mm), by which the EMP prices the session",
        "valid",
    ]


async def test_validate_refuses_a_bad_operator_option(tmp_path: Path) -> None:
    message = _status_push(tmp_path)
    code, out, err = await validate("PushEvseStatus", str(message), "--operator-id", "DE*AB")
    assert (code, out) == (2, "")
    assert "--operator-id: 'DE*AB' is not an OperatorID" in err
