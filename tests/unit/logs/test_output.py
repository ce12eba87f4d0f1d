"""What really reaches the log stream, in JSON and console format."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from hubject_connector.logs import (
    PRIVATE_KEY_REDACTED,
    REDACTED,
    bind_session,
    configure_logging,
    log_context,
)
from tests.unit.logs.conftest import Capture, json_lines

EVCO = "DE-8EO-CAB123456-7"
UID = "04A2B3C4D5E6F7"
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSECRETSECRETSECRET\n"
    "-----END PRIVATE KEY-----\n"
)
SECRET_PART = "SECRETSECRETSECRET"

FORMATS = pytest.mark.parametrize("format", ["json", "console"])


@FORMATS
def test_ids_in_event_text_are_masked(capture_logs: Capture, format: str) -> None:
    out = capture_logs("json" if format == "json" else "console")
    structlog.get_logger().info(f"remote start for {EVCO} with card {UID}")
    text = out.getvalue()
    assert EVCO not in text
    assert UID not in text
    assert "DE-8EO-*********-*" in text
    assert "04************" in text


@FORMATS
def test_ids_are_masked_by_key_and_nested(capture_logs: Capture, format: str) -> None:
    out = capture_logs("json" if format == "json" else "console")
    structlog.get_logger().info(
        "authorize",
        EvcoID="DE8EOCAB123456",  # not a valid EvcoID, masked because of its key
        uid="ABCD",
        body={"Identification": {"RFIDMifareFamilyIdentification": {"UID": "04A2B3C4"}},
              "history": [{"evco_id": "XX-ABC-0000"}, f"seen {EVCO}"]},
        ids=(UID, "note"),
    )
    text = out.getvalue()
    for secret in ("DE8EOCAB123456", "ABCD", "04A2B3C4", "XX-ABC-0000", EVCO, UID):
        assert secret not in text
    if format == "json":
        (line,) = json_lines(out)
        assert line["EvcoID"] == "DE8*".ljust(14, "*")
        assert line["body"]["Identification"]["RFIDMifareFamilyIdentification"]["UID"] == (
            "04******"
        )
        assert line["ids"] == ["04************", "note"]


@FORMATS
def test_ids_used_as_keys_are_masked(capture_logs: Capture, format: str) -> None:
    out = capture_logs("json" if format == "json" else "console")
    structlog.get_logger().info("counts", per_contract={EVCO: 3})
    assert EVCO not in out.getvalue()


@FORMATS
def test_objects_are_masked_through_their_repr(capture_logs: Capture, format: str) -> None:
    from hubject_connector.oicp.common import RemoteIdentification

    out = capture_logs("json" if format == "json" else "console")
    structlog.get_logger().info("identified", who=RemoteIdentification(evco_id=EVCO))
    text = out.getvalue()
    assert EVCO not in text
    assert "RemoteIdentification" in text


@FORMATS
def test_evse_ids_stay_readable(capture_logs: Capture, format: str) -> None:
    out = capture_logs("json" if format == "json" else "console")
    with bind_session("b2b1a7d8-1234-4abc-9def-0123456789ab", evse_id="DE*ABC*E123456"):
        structlog.get_logger().info("status DE*ABC*E123456 Available")
    text = out.getvalue()
    assert text.count("DE*ABC*E123456") == 2


@FORMATS
def test_pins_and_passwords_are_redacted_whole(capture_logs: Capture, format: str) -> None:
    out = capture_logs("json" if format == "json" else "console")
    structlog.get_logger().info("qr", PIN="123456", nested={"password": "hunter2"})
    text = out.getvalue()
    assert "123456" not in text
    assert "hunter2" not in text
    assert REDACTED in text


@FORMATS
def test_private_keys_never_reach_the_log(capture_logs: Capture, format: str) -> None:
    out = capture_logs("json" if format == "json" else "console")
    log = structlog.get_logger()
    log.info(f"loaded {PEM}")
    log.info("cert", material=PEM.encode(), nested={"keys": [PEM]})
    log.warning("truncated", value=PEM[:80])
    try:
        raise ValueError(f"bad key {PEM}")
    except ValueError:
        log.exception("failed")
    text = out.getvalue()
    assert SECRET_PART not in text
    assert "MIGHAgEAMBMGByqGSM49" not in text
    assert text.count(PRIVATE_KEY_REDACTED) >= 5


@FORMATS
def test_stdlib_logging_goes_through_the_same_cleaning(
    capture_logs: Capture, format: str
) -> None:
    out = capture_logs("json" if format == "json" else "console")
    logging.getLogger("aiohttp.access").warning("remote start for %s, key %s", EVCO, PEM)
    try:
        raise RuntimeError(f"card {UID}")
    except RuntimeError:
        logging.getLogger("aio_pika").exception("consumer failed")
    text = out.getvalue()
    assert EVCO not in text
    assert UID not in text
    assert SECRET_PART not in text
    assert "aiohttp.access" in text
    assert "consumer failed" in text
    if format == "json":
        first, second = json_lines(out)
        assert first["logger"] == "aiohttp.access"
        assert first["level"] == "warning"
        assert "04************" in second["exception"]


def test_json_lines_carry_the_bound_context(capture_logs: Capture) -> None:
    out = capture_logs("json")
    log = structlog.get_logger()
    with bind_session("b2b1a7d8-1234-4abc-9def-0123456789ab", evse_id="DE*ABC*E1",
                      operation="AuthorizeRemoteStart"):
        log.info("received")
        with log_context(attempt=2):
            log.info("retrying")
    log.info("after")
    received, retrying, after = json_lines(out)
    assert received["session_id"] == "b2b1a7d8-1234-4abc-9def-0123456789ab"
    assert received["evse_id"] == "DE*ABC*E1"
    assert received["operation"] == "AuthorizeRemoteStart"
    assert received["level"] == "info"
    assert "timestamp" in received
    assert retrying["attempt"] == 2
    assert retrying["operation"] == "AuthorizeRemoteStart"
    assert "session_id" not in after
    assert "operation" not in after


def test_console_output_is_for_people(capture_logs: Capture) -> None:
    out = capture_logs("console")
    with bind_session("b2b1a7d8-1234-4abc-9def-0123456789ab"):
        structlog.get_logger().info("hello", count=3)
    line = out.getvalue()
    assert not line.startswith("{")
    assert "hello" in line
    assert "count=3" in line
    assert "session_id=b2b1a7d8-1234-4abc-9def-0123456789ab" in line


def test_lines_below_the_level_are_dropped(capture_logs: Capture) -> None:
    from hubject_connector.logs import configure_logging

    out = capture_logs("json")
    configure_logging("json", "warning", stream=out)
    structlog.get_logger().info("quiet")
    logging.getLogger("aiohttp").info("quiet too")
    structlog.get_logger().warning("loud")
    assert [line["event"] for line in json_lines(out)] == ["loud"]


def test_reconfiguring_replaces_the_handler(capture_logs: Capture) -> None:
    first = capture_logs("json")
    second = capture_logs("json")
    structlog.get_logger().info("once")
    assert first.getvalue() == ""
    assert len(json_lines(second)) == 1


def test_unknown_settings_are_refused() -> None:
    from hubject_connector.logs import configure_logging

    with pytest.raises(ValueError, match="level"):
        configure_logging("json", "verbose")
    with pytest.raises(ValueError, match="format"):
        configure_logging("xml", "info")  # type: ignore[arg-type]


class _Terminal(io.StringIO):
    """A buffer that says it is a terminal, as stderr does when a person runs a command."""

    def isatty(self) -> bool:
        return True


@pytest.mark.usefixtures("capture_logs")
def test_without_a_chosen_format_a_terminal_gets_console_lines_and_a_pipe_json() -> None:
    terminal, pipe = _Terminal(), io.StringIO()
    configure_logging(None, "info", stream=terminal)
    structlog.get_logger().info("hello", n=1)
    configure_logging(None, "info", stream=pipe)
    structlog.get_logger().info("hello", n=1)
    assert not terminal.getvalue().startswith("{")
    assert "hello" in terminal.getvalue()
    assert json.loads(pipe.getvalue())["event"] == "hello"
    # A format chosen is kept, terminal or not.
    chosen = _Terminal()
    configure_logging("json", "info", stream=chosen)
    structlog.get_logger().info("hello")
    assert json.loads(chosen.getvalue())["event"] == "hello"
