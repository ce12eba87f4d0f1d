"""``oicp validate`` knows every OICP message name, and judges each by its own rules.

The command line runs in this process (``cli.main``, as the console script calls it) so that
all twenty names fit in a fast test; ``test_oicp_commands.py`` runs the real executable.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import structlog

from hubject_connector import cli
from hubject_connector.cli.oicp import known_message_names
from hubject_connector.oicp import codec, messages
from hubject_connector.oicp.model import fields_of
from tests.unit.cli.conftest import RunCli
from tests.unit.oicp_charging import payloads as charging
from tests.unit.oicp_evse import payloads as evse

Build = Callable[[], dict[str, Any]]


def acknowledgement() -> dict[str, Any]:
    """A positive eRoamingAcknowledgement."""
    return {"Result": True, "StatusCode": {"Code": "000", "Description": "Success"}}


NOTIFICATIONS: Final[list[Build]] = [
    charging.notification_start,
    charging.notification_progress,
    charging.notification_end,
    charging.notification_error,
]

#: A valid payload for each message name the command accepts.
VALID: Final[dict[str, list[Build]]] = {
    "eRoamingAcknowledgement": [acknowledgement],
    "eRoamingAcknowledgment": [acknowledgement],
    "eRoamingPushEvseData": [evse.evse_data],
    "eRoamingPushEvseStatus": [evse.evse_status],
    "eRoamingPushPricingProductData": [evse.pricing_products],
    "eRoamingPushEVSEPricing": [evse.evse_pricing],
    "eRoamingAuthorizeStart": [charging.authorize_start],
    "eRoamingAuthorizeStop": [charging.authorize_stop],
    "eRoamingAuthorizationStart": [charging.authorization_start],
    "eRoamingAuthorizationStop": [charging.authorization_stop],
    "eRoamingChargeDetailRecord": [charging.charge_detail_record],
    "eRoamingChargingNotification": NOTIFICATIONS,
    "eRoamingChargingNotificationStart": [charging.notification_start],
    "eRoamingChargingNotificationProgress": [charging.notification_progress],
    "eRoamingChargingNotificationEnd": [charging.notification_end],
    "eRoamingChargingNotificationError": [charging.notification_error],
    "eRoamingAuthorizeRemoteStart": [charging.authorize_remote_start],
    "eRoamingAuthorizeRemoteStop": [charging.authorize_remote_stop],
    "eRoamingAuthorizeRemoteReservationStart": [charging.authorize_remote_reservation_start],
    "eRoamingAuthorizeRemoteReservationStop": [charging.authorize_remote_reservation_stop],
}

CASES: Final = [
    pytest.param(name, build, id=f"{name}:{build.__name__}")
    for name, builds in VALID.items()
    for build in builds
]


@pytest.fixture
def validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[[str, dict[str, Any]], tuple[int, str]]]:
    """Run ``hubject-connector oicp validate NAME FILE``: (exit code, stdout).

    ``cli.main`` configures logging; the root logger and structlog are restored afterwards.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def run(name: str, payload: dict[str, Any]) -> tuple[int, str]:
        path = tmp_path / "message.json"
        path.write_bytes(codec.encode_json(payload))
        code = cli.main(["oicp", "validate", name, str(path)])
        return code, capsys.readouterr().out

    yield run
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    structlog.reset_defaults()


def test_every_known_message_name_has_a_case() -> None:
    assert set(VALID) == set(known_message_names())


@pytest.mark.parametrize(("name", "build"), CASES)
def test_a_valid_message_prints_valid_and_exits_0(
    validate: Callable[[str, dict[str, Any]], tuple[int, str]], name: str, build: Build
) -> None:
    assert validate(name, build()) == (cli.EXIT_OK, "valid\n")


def _a_mandatory_key(name: str, payload: dict[str, Any]) -> str:
    # The model the payload is read as (a notification's by its Type), its first mandatory key.
    model = type(messages.decode_message(name, payload))
    return next(f.rule.key for f in fields_of(model) if f.required and f.rule.key in payload)


@pytest.mark.parametrize(("name", "build"), CASES)
def test_a_message_without_a_mandatory_field_prints_its_pointer_and_exits_1(
    validate: Callable[[str, dict[str, Any]], tuple[int, str]], name: str, build: Build
) -> None:
    payload = build()
    key = _a_mandatory_key(name, payload)
    del payload[key]
    assert validate(name, payload) == (cli.EXIT_PROBLEM, f"/{key}: is mandatory and missing\n")


def test_the_message_of_another_name_is_invalid(
    validate: Callable[[str, dict[str, Any]], tuple[int, str]],
) -> None:
    # Each name applies its own rules: a remote stop is not a remote start.
    code, out = validate("eRoamingAuthorizeRemoteStart", charging.authorize_remote_stop())
    assert code == cli.EXIT_PROBLEM
    assert out == "/Identification: is mandatory and missing\n"


def test_each_notification_type_is_valid_from_stdin(run_cli: RunCli) -> None:
    for build in NOTIFICATIONS:
        body = codec.encode_json(build()).decode()
        result = run_cli("oicp", "validate", messages.NOTIFICATION_MESSAGE, "-", stdin=body)
        assert (result.returncode, result.stdout) == (0, "valid\n"), (build.__name__,
                                                                     result.stderr)
    broken = json.loads(codec.encode_json(charging.notification_end()))
    del broken["ChargingEnd"]
    result = run_cli("oicp", "validate", messages.NOTIFICATION_MESSAGE, "-",
                     stdin=json.dumps(broken))
    assert (result.returncode, result.stdout) == (1, "/ChargingEnd: is mandatory and missing\n")
